"""Writes the pinned fm streams that tests/codec/conditional/test_pinned.py decodes.

They were made with the code of commit 8adc80b (before the speed work of issue 11):

    git worktree add /tmp/fm-base 8adc80b
    cd /tmp/fm-base && OMP_NUM_THREADS=1 PYTHONPATH=/tmp/fm-base \
        python /work/main/tests/codec/conditional/data/make_fm_pinned.py \
        /work/main/tests/codec/conditional/data

Content: 7 frames of 80x48 windows moving over vtest-crop.png (frame 3 repeats frame 2),
the shipped realtime and realtime2 weights, with and without the encoder's RD search. The
script prints each stream's frame flags and the SHA-256 of its decoded frames
(test_pinned.frames_digest); those digests are the test's expected values.
"""

from __future__ import annotations

import hashlib
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from nvc.bitstream import Reader
from nvc.codec.base import StreamInfo
from nvc.codec.pipeline import decode_frames, encode_frames
from nvc.media import Frame, convert


def main(data: Path) -> None:
    torch.set_num_threads(1)
    with av.open(str(data / "vtest-crop.png")) as c:
        rgb = next(c.decode(video=0)).to_ndarray(format="rgb24")
    frames = []
    for t, k in enumerate((0, 1, 2, 2, 3, 4, 5)):  # frame 3 repeats frame 2
        crop = np.ascontiguousarray(rgb[k : k + 48, 2 * k : 2 * k + 80])
        frames.append(convert(Frame((crop,), "rgb24", t, Fraction(1, 25), False), "yuv420p"))
    for variant in ("realtime", "realtime2"):
        for search in (True, False):
            out = data / f"fm-pinned-{variant}-{'search' if search else 'fast'}.nvc"
            stream = StreamInfo(80, 48, Fraction(25), "yuv420p", False, len(frames))
            options = {
                "variant": variant,
                "q": 40 if search else 24,
                "refresh": 2,
                "intra_period": 5,
                "search": search,
            }
            encode_frames(frames, stream, out, codec="fm", options=options)
            with Reader(out) as reader:
                flags = [u.payload[0] for u in reader]
            digest = hashlib.sha256()
            for d in decode_frames(out):
                digest.update(str((d.pts, d.format, d.width, d.height)).encode())
                for p in d.planes:
                    digest.update(np.ascontiguousarray(p).tobytes())
            print(out.name, out.stat().st_size, "flags", flags, digest.hexdigest())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
