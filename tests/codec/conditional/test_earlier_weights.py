"""Streams coded with weights this nvc no longer ships: `nvc decode` refuses them with a
one-line error that names the weights and how to supply them (NVC_FM_WEIGHTS), and writes
no output; listing the file in NVC_FM_WEIGHTS decodes them (MODEL_CARD-realtime2.md,
"earlier weights")."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from nvc.bitstream import Reader, Writer
from nvc.cli import main
from nvc.codec.base import StreamInfo
from nvc.codec.conditional import weights as wt
from nvc.codec.conditional.codec import FmParams
from nvc.codec.conditional.model import FMModel
from nvc.codec.pipeline import decode_frames, encode_frames
from nvc.media import synthetic_clip

# realtime2 weights shipped before the current ones (MODEL_CARD-realtime2.md): step 3775 of
# training/fm (commit 0cd5fcb), step 8001 (commit cbaf3d9), step 9130 (commit 262e457),
# step 17521 (commit d903e1c)
EARLIER_REALTIME2 = (
    "638d016510741cd43edf0b6189e91129",
    "027be6d96f897a0706b086ebe609ed76",
    "495ef2edc7d975c5477880706acd45af",
    "8c653aa42e75de91e13b42dc3ce29eb1",
)


def _fm_file(tmp_path: Path, **options: object) -> Path:
    frames = synthetic_clip(32, 24, 2, seed=3)
    stream = StreamInfo(32, 24, Fraction(25), frames[0].format, False, 2)
    path = tmp_path / "a.nvc"
    encode_frames(frames, stream, path, codec="fm", options={"q": 20, **options})
    return path


def _with_hash(src: Path, dst: Path, digest: bytes) -> Path:
    """The same stream, its header naming other weights."""
    with Reader(src) as r:
        header, units = r.header, list(r)
    params = dataclasses.replace(FmParams.from_bytes(header.codec_params), weights_hash=digest)
    with Writer(dst, dataclasses.replace(header, codec_params=params.to_bytes())) as w:
        for u in units:
            w.write(u)
    return dst


@pytest.mark.parametrize("old", EARLIER_REALTIME2)
def test_streams_of_earlier_shipped_weights_fail_in_one_line(
    old: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _with_hash(_fm_file(tmp_path), tmp_path / "old.nvc", bytes.fromhex(old))
    out = tmp_path / "out.y4m"
    code = main(["decode", str(src), "-o", str(out)])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "internal error" not in captured.err
    assert f"fm-realtime2 weights {old[:12]}" in lines[0] and wt.ENV_VAR in lines[0]
    assert not out.exists()


def test_a_listed_weights_file_decodes_such_a_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the error advises works: a weights file (here a nudged copy of the shipped
    realtime2, standing in for an earlier one) listed in NVC_FM_WEIGHTS is found by hash."""
    model = wt.load_weights(wt.shipped_path("realtime2"))
    with torch.no_grad():
        next(p for p in model.parameters() if p.ndim == 1).add_(1e-3)
    assert isinstance(model, FMModel) and model.config.variant == "realtime2"
    path = tmp_path / "earlier.pt"
    wt.save_weights(model, path)
    coded = _fm_file(tmp_path, weights=str(path))
    monkeypatch.setenv(wt.ENV_VAR, str(path))
    assert len(list(decode_frames(coded))) == 2
