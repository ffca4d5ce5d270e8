"""The gaussian codec (2D mode): round trips, units, random access, exactness across
processes and thread counts, time budget, options."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from nvc.bitstream import Reader, UnitType
from nvc.codec import registry
from nvc.codec.gaussian.config import StreamParams, steps_for
from nvc.codec.pipeline import decode_frames, decode_window
from nvc.errors import BitstreamError, CodecError
from nvc.media import psnr_yuv

from .conftest import Coded, clip


def digest(frames) -> str:
    h = hashlib.sha256()
    for f in frames:
        for p in f.planes:
            h.update(np.ascontiguousarray(p).tobytes())
    return h.hexdigest()


def test_registry_knows_gaussian_as_id_4():
    spec = registry.get("gaussian")
    assert spec.id == 4 and registry.get(4) is spec and registry.name_of(4) == "gaussian"


def test_units_are_bases_every_group_and_residuals_between(coded):
    kinds = [(u.type, u.rap, u.pts) for u in coded.units]
    assert kinds == [
        (UnitType.GAUSSIAN_BASE, True, 0),
        (UnitType.GAUSSIAN_RESIDUAL, False, 1),
        (UnitType.GAUSSIAN_RESIDUAL, False, 2),
        (UnitType.GAUSSIAN_BASE, True, 3),
        (UnitType.GAUSSIAN_RESIDUAL, False, 4),
    ]
    assert StreamParams.from_bytes(coded.encoder.codec_params).group == 3


def test_file_round_trip_is_the_encoders_reconstruction(coded):
    out = list(decode_frames(coded.file_bytes()))
    assert len(out) == len(coded.frames)
    for got, want in zip(out, coded.recon, strict=True):
        assert got.equal(want)
    # better than the flat mean picture of each frame by a margin: it is coding the content
    for src, rec in zip(coded.frames, coded.recon, strict=True):
        flat = type(src)(
            tuple(np.full_like(p, int(p.mean())) for p in src.planes), src.format, src.pts
        )
        assert psnr_yuv(src, rec).weighted > psnr_yuv(src, flat).weighted + 3.0


def test_p_frames_are_smaller_than_bases(coded):
    sizes = {u.pts: len(u.payload) for u in coded.units}
    assert sizes[1] < sizes[0] and sizes[2] < sizes[0] and sizes[4] < sizes[3]


def test_decode_in_a_fresh_process_with_other_threads_is_bit_identical(coded, tmp_path):
    import torch

    path = tmp_path / "c.nvc"
    path.write_bytes(coded.file_bytes())
    want = digest(coded.recon)
    threads = 1 if torch.get_num_threads() > 1 else 2
    script = (
        "import sys, json, hashlib, numpy as np, torch\n"
        f"torch.set_num_threads({threads})\n"
        "from nvc.codec.pipeline import decode_frames\n"
        "h = hashlib.sha256()\n"
        "for f in decode_frames(sys.argv[1]):\n"
        "    for p in f.planes: h.update(np.ascontiguousarray(p).tobytes())\n"
        "print(json.dumps({'digest': h.hexdigest(), 'threads': torch.get_num_threads()}))\n"
    )
    env = {"OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}
    res = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, **env},
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["threads"] == threads
    assert out["digest"] == want


def test_seeking_starts_at_the_base_before_the_start(coded):
    with Reader(coded.file_bytes()) as reader:
        frames = list(decode_window(reader, start=4 / 25))
    assert [f.pts for f in frames] == [4]
    assert frames[0].equal(coded.recon[4])


def test_a_residual_without_its_base_is_refused(coded):
    dec = registry.get("gaussian").create_decoder(coded.header)
    with pytest.raises(BitstreamError, match="no base"):
        dec.decode(coded.units[1])
    # a missing residual: the next one is refused, unless the missing one changed nothing
    # (then the next is right): never a wrong picture
    dec = registry.get("gaussian").create_decoder(coded.header)
    dec.decode(coded.units[0])
    with contextlib.suppress(BitstreamError):
        assert dec.decode(coded.units[2])[0].equal(coded.recon[2])
    # a damaged residual drops the state: nothing until the next base
    dec = registry.get("gaussian").create_decoder(coded.header)
    dec.decode(coded.units[0])
    unit = coded.units[1]
    damaged = dataclasses.replace(unit, payload=b"\x07" + unit.payload[1:])
    with pytest.raises(BitstreamError):
        dec.decode(damaged)
    with pytest.raises(BitstreamError, match="no base"):
        dec.decode(coded.units[2])
    assert dec.decode(coded.units[3])[0].equal(coded.recon[3])  # the next base recovers


@pytest.mark.parametrize("fmt", ["rgb24", "yuv444p10le"])
def test_other_pixel_formats_round_trip(fmt):
    c = Coded(clip(fmt, frames=2), gaussians=30, max_iterations=3)
    out = list(decode_frames(c.file_bytes()))
    assert all(a.equal(b) for a, b in zip(out, c.recon, strict=True))


def test_odd_sizes_round_trip():
    from nvc.media.synth import synthetic_clip

    frames = synthetic_clip(37, 23, 2, seed=5)
    c = Coded(frames, gaussians=25, max_iterations=3)
    out = list(decode_frames(c.file_bytes()))
    assert all(a.equal(b) for a, b in zip(out, c.recon, strict=True))


def test_time_budget_is_honoured():
    frames = clip(frames=4)
    Coded(frames[:1], max_iterations=1)  # first use of the optimizer imports a lot: not timed
    start = time.perf_counter()
    c = Coded(frames, time_budget=1.0, frame_budget=30.0, max_iterations=None)
    took = time.perf_counter() - start
    fitting = sum(r.seconds for r in c.encoder.reports)
    assert took < 1.0 + 4 * 0.5  # the budget plus coding and rendering per frame
    assert fitting < 1.0 + 4 * 0.5
    assert all(r.iterations >= 1 for r in c.encoder.reports)


def test_options_are_checked():
    spec = registry.get("gaussian")
    for bad in ({"q": 64}, {"q": 1.5}, {"gaussians": 0}, {"group": 0}, {"time_budget": 0}):
        with pytest.raises(CodecError):
            spec.config(bad)
    with pytest.raises(CodecError, match="no option"):
        spec.config({"bpp": 0.1})
    fine, coarse = steps_for(63), steps_for(0)
    assert fine.position < coarse.position and fine.colour < coarse.colour


def test_bad_codec_parameters_are_refused(coded):
    spec = registry.get("gaussian")
    for params in (b"", b"\x02\x00\x14", b"\x01\x01\x14", b"\x01\x00\x00", b"\x01\x00\x14\x00"):
        header = dataclasses.replace(coded.header, codec_params=params)
        with pytest.raises(BitstreamError):
            spec.create_decoder(header)


def test_a_still_picture_costs_little_after_its_base():
    still = clip(frames=1)[0]
    c = Coded([dataclasses.replace(still, pts=i) for i in range(4)], gaussians=60, group=10)
    base, *residuals = (len(u.payload) for u in c.units)
    assert max(residuals) < 0.1 * base  # the residual that keeps the state: ~20 bytes
    psnrs = [r.psnr for r in c.encoder.reports]
    assert all(b >= a - 0.1 for a, b in zip(psnrs, psnrs[1:], strict=False))
