"""Streams written before the speed work of issue 11 decode to the same frames after it.

data/fm-pinned-*.nvc were encoded with the code of commit 8adc80b by
data/make_fm_pinned.py (its docstring has the command), which also printed the SHA-256
of each stream's decoded frames (`frames_digest`) computed by that code: the digests
below. The models are the realtime and realtime2 shapes with weights drawn from a fixed
seed (make_fm_pinned.pinned_model; the shipped weights get replaced, a stream names its
weights by hash). Together the streams cover intra frames of both image codecs, inter
frames with and without a latent, residuals, feature refreshes and a skipped frame. The
decoder's arithmetic is exact integer arithmetic, so any decoder change that moves one bit
fails here, in any process, on any thread count.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from nvc.bitstream import Reader
from nvc.codec.conditional import codec as codec_mod
from nvc.codec.conditional import weights as wt
from nvc.codec.pipeline import decode_frames
from nvc.media import Frame

DATA = Path(__file__).parent / "data"
# the weights hash of each pinned model, as make_fm_pinned.py printed it
MODEL_HASHES = {
    "realtime": "621c325e07236afbf716bcb88da5a809",
    "realtime2": "6994f57dabe2f51dd78cdd39ef2f901d",
}

# stream -> (frame flags byte per frame, SHA-256 of the decoded frames by 8adc80b)
PINNED = {
    "fm-pinned-realtime-search.nvc": (
        [1, 8, 10, 8, 10, 1, 8],
        "4043d7a4bba4669096790271f61840d92955fc3f1410b1b0fed5c16a3bcc039c",
    ),
    "fm-pinned-realtime-fast.nvc": (
        [1, 0, 2, 0, 2, 1, 0],
        "58742cf632f43e6d082c6fa09540d018fd4d2b581fd05dc155d3e0ac760b957f",
    ),
    "fm-pinned-realtime2-search.nvc": (
        [1, 12, 14, 28, 14, 1, 12],
        "9345e75d2b79f518ed3a4544f2e859b755e90a0e9b833a519594fa6e712b0b0a",
    ),
    "fm-pinned-realtime2-fast.nvc": (
        [1, 4, 6, 0, 6, 1, 4],
        "6606c5bcfdf904fd2c8d2199663af7dd5c02c34f76e909a895ab1c9c14002c8f",
    ),
}


@pytest.fixture(scope="module", autouse=True)
def _pinned_models() -> None:
    """Make the pinned models findable by the decoder (by hash, as a stream names them)."""
    spec = importlib.util.spec_from_file_location("make_fm_pinned", DATA / "make_fm_pinned.py")
    assert spec is not None and spec.loader is not None
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    for variant, expected in MODEL_HASHES.items():
        # a different hash: the models' initialisation changed, not the decoder
        assert wt.register(maker.pinned_model(variant)).hex() == expected, variant


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
