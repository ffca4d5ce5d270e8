"""The benchmark loop: rows, metrics, resuming after a kill, failures that do not stop it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from nvc.bench import codecs, datasets, runner
from nvc.bench.codecs import Contender

POINTS = ["x264=[26,36]", "x265=[26,36]"]


def _config(tmp_path: Path, **kw: Any) -> runner.BenchConfig:
    contenders, skipped = codecs.resolve(
        ["x264", "x265", "lossless"], threads=1, points=codecs.parse_points(POINTS)
    )
    assert not skipped
    defaults: dict[str, Any] = {
        "sequences": [datasets.synthetic_sequence(64, 48, seed=1)],
        "contenders": contenders,
        "protocol": datasets.Protocol(frames=4),
        "out_dir": tmp_path,
        "name": "t",
        "threads": 1,
        "ms_ssim": False,
    }
    defaults.update(kw)
    return runner.BenchConfig(**defaults)


def _state_rows(path: Path) -> list[dict[str, Any]]:
    items = [json.loads(line) for line in path.read_text().splitlines()]
    return [i for i in items if i["type"] == "row"]


def test_rows_hold_rate_quality_speed_and_memory(tmp_path: Path) -> None:
    config = _config(tmp_path, ms_ssim=True, repeats=2)
    outcome = runner.run(config)
    assert outcome.new_rows == 5 and not outcome.skipped
    assert [(r["codec"], r["point_label"]) for r in outcome.rows] == [
        ("x264", "crf=26"),
        ("x264", "crf=36"),
        ("x265", "crf=26"),
        ("x265", "crf=36"),
        ("lossless", "default"),
    ]
    for r in outcome.rows:
        assert r["bpp"] == pytest.approx(8 * r["bytes"] / (4 * 64 * 48))
        assert r["frames"] == 4 and (r["width"], r["height"]) == (64, 48)
        assert len(r["encode_seconds_all"]) == 2 and r["decode_fps"] > 0
        assert r["encode_peak_rss_mib"] > 10 and r["memory_method"]
        assert 0.0 < r["ms_ssim"] <= 1.0
    lossless = outcome.rows[-1]
    assert lossless["psnr_rgb"] == runner.PSNR_CAP and lossless["ms_ssim"] == 1.0
    assert outcome.rows[0]["psnr_rgb"] > outcome.rows[1]["psnr_rgb"]
    assert outcome.rows[0]["bytes_counted"] == (
        "raw elementary stream file, informational SEI removed"
    )
    assert outcome.sequences[0]["name"] == "synthetic-64x48"


def test_a_killed_run_resumes_without_duplicates(tmp_path: Path) -> None:
    config = _config(tmp_path)
    first = runner.run(config, stop_after=2)
    assert first.new_rows == 2
    # A kill in the middle of a write leaves half a line behind.
    with config.state_path.open("a") as f:
        f.write('{"type": "row", "key": "half')
    second = runner.run(config)
    assert second.new_rows == 3
    rows = _state_rows(config.state_path)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 5
    assert [r["key"] for r in second.rows] == [r["key"] for r in rows]
    third = runner.run(config)
    assert third.new_rows == 0 and len(third.rows) == 5


def test_rows_of_other_settings_are_not_reused(tmp_path: Path) -> None:
    runner.run(_config(tmp_path))
    other = runner.run(_config(tmp_path, protocol=datasets.Protocol(frames=3)))
    assert other.new_rows == 5
    assert all(r["frames"] == 3 for r in other.rows)
    fresh = runner.run(_config(tmp_path), fresh=True)
    assert fresh.new_rows == 5
    assert len(_state_rows(tmp_path / "t.state.jsonl")) == 5


def test_a_failing_codec_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Contender.encode

    def flaky(self: Contender, frames: Any, point: Mapping[str, Any], path: Any, **kw: Any) -> int:
        if self.name == "x264" and point.get("crf") == 36:
            raise RuntimeError("boom")
        return original(self, frames, point, path, **kw)

    monkeypatch.setattr(Contender, "encode", flaky)
    outcome = runner.run(_config(tmp_path))
    assert outcome.new_rows == 4
    assert len(outcome.skipped) == 1 and "boom" in outcome.skipped[0]
    monkeypatch.setattr(Contender, "encode", original)
    retry = runner.run(_config(tmp_path))
    assert retry.new_rows == 1  # failed rows are not recorded, so they are tried again


def test_resolve_skips_unknown_codecs_and_checks_options() -> None:
    contenders, skipped = codecs.resolve(["x264", "svt-av1", "nosuch", "x264"], threads=1)
    assert [c.name for c in contenders] == ["x264", "svtav1"]
    assert len(skipped) == 1 and "'nosuch' is not registered" in skipped[0]
    assert contenders[0].points == [{"crf": c} for c in (18, 23, 28, 33, 38, 43)]
    from nvc.errors import CodecError

    with pytest.raises(CodecError):
        codecs.resolve(["lossless"], points={"lossless": [{"bpp": 0.1}]})


def test_parse_points() -> None:
    got = codecs.parse_points(["x265=[22, 27]", 'inr=[{"bpp": 0.05}]', "SVT-AV1=[40]"])
    assert got == {
        "x265": [{"crf": 22}, {"crf": 27}],
        "inr": [{"bpp": 0.05}],
        "svtav1": [{"crf": 40}],
    }
    from nvc.errors import NvcError

    for bad in ["x265", "x265=[]", "x265=nope", 'x265=["a"]']:
        with pytest.raises(NvcError):
            codecs.parse_points([bad])


def test_quality_of_identical_frames_is_capped() -> None:
    clip = datasets.load(datasets.synthetic_sequence(32, 32), datasets.Protocol(frames=2)).frames
    q = runner.measure_quality(clip, clip)
    assert q["psnr_rgb"] == q["psnr_yuv"] == runner.PSNR_CAP
    assert q["ms_ssim"] == 1.0
    with pytest.raises(Exception, match="decoded 1 frames"):
        runner.measure_quality(clip, clip[:1])


def test_peak_memory_sees_a_big_allocation() -> None:
    import numpy as np

    with runner.peak_memory() as mem:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        block += 1
        del block
    assert mem.delta_mib > 40


def test_contender_runs_an_nvc_codec(tmp_path: Path) -> None:
    contenders, _ = codecs.resolve(["lossless"])
    frames = datasets.load(datasets.synthetic_sequence(32, 32), datasets.Protocol(frames=2)).frames
    path = tmp_path / "x.nvc"
    size = contenders[0].encode(frames, {}, path, fps=Fraction(25))
    assert size == path.stat().st_size
    decoded = contenders[0].decode(path, fps=Fraction(25))
    assert all(a.equal(b) for a, b in zip(frames, decoded, strict=True))


# -- codec identity: resumed rows must come from the same model and resolved options --------

FM_POINT = {"q": 10, "search": False}  # a fast fm point: 2 frames of 64x64 code in ~1 s


def _fm_config(tmp_path: Path, points: list[dict[str, Any]]) -> runner.BenchConfig:
    contenders, skipped = codecs.resolve(
        ["fm", "lossless"], threads=1, points={"fm": points, "lossless": [{}]}
    )
    assert not skipped
    return runner.BenchConfig(
        sequences=[datasets.synthetic_sequence(64, 64, seed=3)],
        contenders=contenders,
        protocol=datasets.Protocol(frames=2),
        out_dir=tmp_path,
        name="id",
        ms_ssim=False,
    )


def _rewrite_rows(path: Path, change: Any) -> None:
    items = [json.loads(line) for line in path.read_text().splitlines()]
    for item in items:
        if item["type"] == "row":
            change(item)
    path.write_text("".join(json.dumps(i, sort_keys=True) + "\n" for i in items))


STALE = "stored rows are stale (model/weights changed) and will be re-measured"


def test_fm_rows_are_reused_only_with_the_same_weights_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nvc.codec.conditional import weights as wt

    file = tmp_path / "mine.pt"
    file.write_bytes(wt.shipped_path("realtime").read_bytes())
    config = _fm_config(tmp_path, [{**FM_POINT, "weights": str(file)}])
    first = runner.run(config)
    assert first.new_rows == 2 and not first.skipped
    fm_row = first.rows[0]
    assert fm_row["codec_identity"]["weights"]["variant"] == "realtime"
    assert (
        fm_row["codec_identity"]["weights"]["hash"]
        == wt.short_hash(wt.default_model("realtime")).hex()
    )
    capsys.readouterr()
    again = runner.run(config)  # same file, same bytes: everything reused
    assert again.new_rows == 0 and len(again.rows) == 2
    assert STALE not in capsys.readouterr().err
    # Other weights under the same name: the fm row is measured again, lossless is kept.
    file.write_bytes(wt.shipped_path("realtime2").read_bytes())
    changed = runner.run(config)
    assert changed.new_rows == 1
    assert f"1 {STALE}" in capsys.readouterr().err
    assert changed.rows[0]["codec_identity"]["weights"]["variant"] == "realtime2"
    assert (
        changed.rows[0]["bytes"] != fm_row["bytes"]
        or changed.rows[0]["psnr_rgb"] != fm_row["psnr_rgb"]
    )
    assert runner.run(config).new_rows == 0


def test_a_changed_default_variant_and_old_state_files_make_fm_rows_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nvc.bench import identity

    config = _fm_config(tmp_path, [dict(FM_POINT)])  # the default variant (realtime2)
    assert runner.run(config).new_rows == 2
    old = identity.nvc_identity("fm", {**FM_POINT, "variant": "realtime"})

    def coded_with_realtime(row: dict[str, Any]) -> None:
        # As an nvc whose default variant was realtime would have stored it.
        if row["codec"] == "fm":
            row["codec_identity"] = old
            row["codec_fingerprint"] = identity.fingerprint(old)

    _rewrite_rows(config.state_path, coded_with_realtime)
    capsys.readouterr()
    rerun = runner.run(config)
    assert rerun.new_rows == 1 and f"1 {STALE}" in capsys.readouterr().err
    assert rerun.rows[0]["codec_identity"]["options"]["variant"] == "realtime2"

    def without_identity(row: dict[str, Any]) -> None:  # a state file of an older nvc
        del row["codec_identity"], row["codec_fingerprint"]

    _rewrite_rows(config.state_path, without_identity)
    old_file = runner.run(config)
    assert old_file.new_rows == 1  # fm re-measured; the lossless row is reused
    assert [r["codec"] for r in old_file.rows] == ["fm", "lossless"]
    assert "codec_fingerprint" not in old_file.rows[1]
    assert f"1 {STALE}" in capsys.readouterr().err


def test_anchor_rows_are_redone_for_another_encoder_build_and_kept_without_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    first = runner.run(config)
    assert first.rows[0]["codec_identity"]["library"].startswith("x264 - core")
    assert "crf" in first.rows[0]["codec_identity"]["options"]

    def older_build(row: dict[str, Any]) -> None:
        if row["codec"] == "x264" and row["point"] == {"crf": 26}:
            row["codec_fingerprint"] = "0" * 16  # stored by another x264 build or settings
        elif row["codec"] == "x265":
            del row["codec_fingerprint"]  # a state file older than identities: kept

    _rewrite_rows(config.state_path, older_build)
    capsys.readouterr()
    rerun = runner.run(config)
    assert rerun.new_rows == 1 and f"1 {STALE}" in capsys.readouterr().err
    assert rerun.rows[0]["codec_fingerprint"] == first.rows[0]["codec_fingerprint"]
    assert len(rerun.rows) == 5
