"""Streams written before the speed work of issue 11 decode to the same frames after it.

data/fm-pinned-*.nvc were encoded with the code of commit 8adc80b by
data/make_fm_pinned.py (its docstring has the command), which also printed the SHA-256
of each stream's decoded frames (`frames_digest`) computed by that code: the digests
below. They cover intra frames, inter frames with and without a latent, residuals,
feature refreshes and a skipped frame, for both shipped variants (realtime: the v1 image
codec; realtime2: the v2 image codec and a residual codec). The decoder's arithmetic is
exact integer arithmetic, so any decoder change that moves one bit fails here, in any
process, on any thread count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from nvc.bitstream import Reader
from nvc.codec.conditional import codec as codec_mod
from nvc.codec.pipeline import decode_frames
from nvc.media import Frame

DATA = Path(__file__).parent / "data"

# stream -> (frame flags byte per frame, SHA-256 of the decoded frames by 8adc80b)
PINNED = {
    "fm-pinned-realtime-search.nvc": (
        [1, 12, 14, 24, 14, 1, 12],
        "2022cb02fa84e71cac101cf2f83558ecbb5851326dae8d6862f25417a149bd05",
    ),
    "fm-pinned-realtime-fast.nvc": (
        [1, 4, 6, 0, 6, 1, 4],
        "2911696fff9cc5e1ab5c2f7c9b45628273287cdf4b02f6e94e78b5af0e5029ad",
    ),
    "fm-pinned-realtime2-search.nvc": (
        [1, 12, 14, 24, 14, 1, 12],
        "3b646c47bea5e6c1b2ad318191ba3f34578cb93bdee4e68b3c5c37c39c27c8d7",
    ),
    "fm-pinned-realtime2-fast.nvc": (
        [1, 4, 6, 4, 6, 1, 4],
        "7414faf9f1ba6012d2c85005917925ec14a947dcf86c69ccb0fc61fbfc3e7c0e",
    ),
}


def frames_digest(frames: Iterable[Frame]) -> str:
    """SHA-256 over each frame's (pts, format, size) and its planes' bytes, in order."""
    digest = hashlib.sha256()
    for f in frames:
        digest.update(str((f.pts, f.format, f.width, f.height)).encode())
        for plane in f.planes:
            digest.update(np.ascontiguousarray(plane).tobytes())
    return digest.hexdigest()


# every stream on one thread; the two with the most latent on two (a busy machine makes
# two threads slow, not different)
CASES = [(name, 1) for name in sorted(PINNED)] + [
    ("fm-pinned-realtime-fast.nvc", 2),
    ("fm-pinned-realtime2-fast.nvc", 2),
]


@pytest.mark.parametrize(("name", "threads"), CASES)
def test_pinned_stream_decodes_to_the_pinned_frames(
    name: str, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    flags, expected = PINNED[name]
    path = DATA / name
    with Reader(path) as reader:
        assert [u.payload[0] for u in reader] == flags  # the coverage the docstring claims
    monkeypatch.setattr(codec_mod, "DECODER_THREADS", threads)
    frames = list(decode_frames(path))
    assert len(frames) == 7 and (frames[0].width, frames[0].height) == (80, 48)
    assert frames_digest(frames) == expected
