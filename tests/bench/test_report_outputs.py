"""Benchmark reports follow nvc.fileio's output rule: symlinks kept, devices written through."""

from __future__ import annotations

import json
import os
from pathlib import Path

from nvc.bench import report
from tests.specialfiles import is_null_device, make_null_device


def _report() -> report.Report:
    rows = [
        {
            "sequence": "clip",
            "codec": "x264",
            "label": "x264",
            "kind": "anchor",
            "point": {"crf": crf},
            "point_label": f"crf={crf}",
            "bpp": bpp,
            "psnr_rgb": 30.0 + i,
            "psnr_yuv": 32.0 + i,
            "ms_ssim_db": 12.0 + i,
        }
        for i, (crf, bpp) in enumerate(((40, 0.02), (32, 0.05), (24, 0.12)))
    ]
    meta = {"protocol": {"statement": "test", "quick": True}}
    return report.Report("r", meta, rows, [], anchor="x264", published_ok=False)


def test_symlinked_and_device_outputs_are_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    kept = tmp_path / "kept"
    kept.mkdir()
    (out / "r.json").symlink_to(kept / "results.json")  # dangling: created through the link
    null = make_null_device(out)
    if null.parent == out:
        null.rename(out / "r.csv")  # a device named like an output: written through
    paths = report.write_all(_report(), out)
    assert (out / "r.json").is_symlink() and os.readlink(out / "r.json") == str(
        kept / "results.json"
    )
    assert json.loads((kept / "results.json").read_text())["rows"][0]["codec"] == "x264"
    if null.parent == out:
        assert is_null_device(out / "r.csv")
    assert paths["md"].read_text().startswith("#")
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp")) == []
    assert sorted(p.name for p in kept.iterdir()) == ["results.json"]
