"""Writes the pinned fm streams that tests/codec/conditional/test_pinned.py decodes.

They were made with the code of commit 8adc80b (before the speed work of issue 11):

    git worktree add /tmp/fm-base 8adc80b
    cd /tmp/fm-base && OMP_NUM_THREADS=1 PYTHONPATH=/tmp/fm-base \
        python /work/main/tests/codec/conditional/data/make_fm_pinned.py \
        /work/main/tests/codec/conditional/data

Content: 7 frames of 80x48 windows moving over vtest-crop.png (frame 3 repeats frame 2),
coded with and without the encoder's RD search by models of the realtime and realtime2
shapes whose weights `pinned_model` draws from a fixed seed (not the shipped weights,
which are retrained and replaced; a stream names its weights by hash). The script prints
each stream's frame flags, its model's weights hash and the SHA-256 of its decoded frames
(test_pinned.frames_digest): the test's expected values.
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
from nvc.codec.conditional import weights as wt
from nvc.codec.conditional.model import FMModel, ModelConfig
from nvc.codec.pipeline import decode_frames, encode_frames
from nvc.media import Frame, convert

# the shapes of the realtime and realtime2 variants as of 8adc80b
SHAPES = {
    "realtime": ModelConfig("realtime", 64, 64, 32, 32, 32, 16, 64, 1),
    "realtime2": ModelConfig(
        "realtime2",
        64,
        64,
        32,
        32,
        32,
        16,
        64,
        1,
        residual_codec=True,
        image="v2",
        image_channels=96,
        image_blocks=2,
        image_hyper=32,
        image_prior=64,
        lambda_min=256.0,
        lambda_max=65536.0,
    ),
}
SEED = 11


def pinned_model(variant: str) -> FMModel:
    """The model of a pinned stream: the variant's shape, weights drawn from SEED."""
    torch.manual_seed(SEED)
    return FMModel(SHAPES[variant]).eval()


def main(data: Path) -> None:
    torch.set_num_threads(1)
    with av.open(str(data / "vtest-crop.png")) as c:
        rgb = next(c.decode(video=0)).to_ndarray(format="rgb24")
    frames = []
    for t, k in enumerate((0, 1, 2, 2, 3, 4, 5)):  # frame 3 repeats frame 2
        crop = np.ascontiguousarray(rgb[k : k + 48, 2 * k : 2 * k + 80])
        frames.append(convert(Frame((crop,), "rgb24", t, Fraction(1, 25), False), "yuv420p"))
    for variant in ("realtime", "realtime2"):
        weights = data / f"pinned-{variant}.pt"
        wt.save_weights(pinned_model(variant), weights)
        model_hash = wt.register(wt.load_weights(weights)).hex()  # the decoder finds it
        for search in (True, False):
            out = data / f"fm-pinned-{variant}-{'search' if search else 'fast'}.nvc"
            stream = StreamInfo(80, 48, Fraction(25), "yuv420p", False, len(frames))
            options = {
                "weights": str(weights),
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
            print(out.name, out.stat().st_size, flags, model_hash, digest.hexdigest())
        weights.unlink()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
