"""`nvc batch`: a folder or list of videos into .nvc files, resumable, same bytes as encode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nvc.bench import batch
from nvc.cli import main
from nvc.codec.pipeline import decode_frames, encode_file
from nvc.errors import NvcError
from nvc.media import Frame, synthetic_clip
from tests.conftest import write_frames


def make_videos(folder: Path) -> dict[str, list[Frame]]:
    folder.mkdir(parents=True, exist_ok=True)
    clips = {
        "a": synthetic_clip(48, 32, 3, format="yuv420p", seed=1),
        "b": synthetic_clip(32, 24, 2, format="yuv420p", seed=2),
    }
    for name, frames in clips.items():
        write_frames(folder / f"{name}.y4m", frames)
    (folder / "notes.txt").write_text("not a video")
    return clips


def test_a_folder_is_coded_into_decodable_files_identical_to_nvc_encode(tmp_path: Path) -> None:
    clips = make_videos(tmp_path / "in")
    out = tmp_path / "out"
    jobs = batch.plan_jobs(batch.collect_inputs([str(tmp_path / "in")], []), "lossless", {}, None)
    assert [j.output_name for j in jobs] == ["a.nvc", "b.nvc"]  # notes.txt is left alone
    outcome = batch.run_batch(jobs, out)
    assert outcome.new == 2 and not outcome.failed
    for name, frames in clips.items():
        decoded = list(decode_frames(out / f"{name}.nvc"))
        assert len(decoded) == len(frames)
        for a, b in zip(frames, decoded, strict=True):
            for pa, pb in zip(a.planes, b.planes, strict=True):
                np.testing.assert_array_equal(pa, pb)
        encode_file(tmp_path / "in" / f"{name}.y4m", tmp_path / f"{name}.nvc", codec="lossless")
        assert (out / f"{name}.nvc").read_bytes() == (tmp_path / f"{name}.nvc").read_bytes()
    rows = [json.loads(line) for line in (out / batch.STATE_NAME).read_text().splitlines()]
    assert [r["output"] for r in rows] == ["a.nvc", "b.nvc"]
    assert rows[0]["frames"] == 3 and rows[0]["bytes"] == (out / "a.nvc").stat().st_size
    assert rows[0]["executor"] == "local"
    assert not list(out.glob("*.partial"))


def test_a_rerun_codes_only_what_is_missing_or_changed(tmp_path: Path) -> None:
    make_videos(tmp_path / "in")
    out = tmp_path / "out"

    def jobs() -> list[batch.BatchJob]:
        inputs = batch.collect_inputs([str(tmp_path / "in")], [])
        return batch.plan_jobs(inputs, "lossless", {}, None)

    assert batch.run_batch(jobs(), out).new == 2
    again = batch.run_batch(jobs(), out)
    assert again.new == 0 and len(again.rows) == 2
    (out / "b.nvc").write_bytes(b"damaged")  # an output that no longer matches its record
    assert batch.run_batch(jobs(), out).new == 1
    assert len(list(decode_frames(out / "b.nvc"))) == 2
    write_frames(tmp_path / "in" / "a.y4m", synthetic_clip(48, 32, 4, format="yuv420p", seed=9))
    redo = batch.run_batch(jobs(), out)  # a changed input is coded again
    assert redo.new == 1 and len(list(decode_frames(out / "a.nvc"))) == 4
    frames_limited = batch.plan_jobs(
        batch.collect_inputs([str(tmp_path / "in")], []), "lossless", {}, 1
    )
    assert batch.run_batch(frames_limited, out).new == 2  # other settings: not the same outputs


def test_list_files_name_clashes_and_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_videos(tmp_path / "in")
    (tmp_path / "in" / "broken.mp4").write_bytes(b"this is no video" * 20)
    listing = tmp_path / "videos.txt"
    listing.write_text("# two good videos and a broken one\nin/a.y4m\n\nin/broken.mp4\n")
    inputs = batch.collect_inputs([str(tmp_path / "in" / "b.y4m")], [str(listing)])
    assert [p.name for p in inputs] == ["b.y4m", "a.y4m", "broken.mp4"]
    outcome = batch.run_batch(batch.plan_jobs(inputs, "lossless", {}, None), tmp_path / "out")
    assert outcome.new == 2 and len(outcome.failed) == 1 and "broken.mp4" in outcome.failed[0]
    assert not (tmp_path / "out" / "broken.nvc").exists()
    assert not list((tmp_path / "out").glob("*.partial"))

    (tmp_path / "other").mkdir()
    write_frames(tmp_path / "other" / "a.y4m", synthetic_clip(32, 24, 2, format="yuv420p"))
    clash = batch.collect_inputs([str(tmp_path / "in" / "a.y4m"), str(tmp_path / "other")], [])
    with pytest.raises(NvcError, match="would both be coded to a.nvc"):
        batch.plan_jobs(clash, "lossless", {}, None)
    with pytest.raises(NvcError, match="no such file or folder"):
        batch.collect_inputs([str(tmp_path / "missing.mp4")], [])
    with pytest.raises(NvcError, match="no videos to code"):
        batch.collect_inputs([str(tmp_path / "out")], [])

    # The command: one line per video, exit status 1 and a one-line error when one failed.
    code = main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "cli")])
    captured = capsys.readouterr()
    assert code == 1
    assert "nvc: error: 1 of 3 videos failed" in captured.err
    assert "a.nvc: 3 frames 48x32" in captured.err and "2 of 3 videos coded" in captured.out
    assert main(["batch", str(tmp_path / "in" / "a.y4m"), "-o", str(tmp_path / "cli")]) == 0
    assert "resuming: 1 of 1 videos already coded" in capsys.readouterr().err
    bad = main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "x"), "--options", "[1]"])
    assert bad == 1 and "--options wants a JSON object" in capsys.readouterr().err


def test_an_fm_job_is_coded_again_when_its_weights_change(tmp_path: Path) -> None:
    from nvc.codec.conditional import weights as wt

    (tmp_path / "in").mkdir()
    write_frames(tmp_path / "in" / "c.y4m", synthetic_clip(64, 64, 2, format="yuv420p", seed=4))
    file = tmp_path / "mine.pt"
    file.write_bytes(wt.shipped_path("realtime").read_bytes())
    options = {"q": 10, "search": False, "weights": str(file)}
    jobs = batch.plan_jobs(batch.collect_inputs([str(tmp_path / "in")], []), "fm", options, None)
    out = tmp_path / "out"
    assert batch.run_batch(jobs, out).new == 1
    assert batch.run_batch(jobs, out).new == 0  # the same weights: reused
    before = (out / "c.nvc").read_bytes()
    file.write_bytes(wt.shipped_path("realtime2").read_bytes())  # other weights, same name
    assert batch.run_batch(jobs, out).new == 1
    assert (out / "c.nvc").read_bytes() != before  # the header names the other weights
