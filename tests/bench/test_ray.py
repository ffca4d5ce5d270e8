"""`nvc bench` and `nvc batch` as Ray tasks on a local Ray instance: the same outputs as here.

The module starts one local Ray instance (2 CPUs) through nvc's own `ray_session`, as
`--ray local` does, and shuts it down at the end.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from nvc.bench import batch, codecs, datasets, executor, runner
from nvc.cli import main
from nvc.errors import NvcError
from nvc.media import synthetic_clip
from tests.conftest import write_frames

LOCAL_RAY = executor.RayTarget("local", num_cpus=2)
# What may differ between two runs of the same rows: where and when they ran, and timings.
CIRCUMSTANCES = {"executor", "host", "measured_utc", "coded_utc", "seconds"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with executor.ray_session(LOCAL_RAY) as rt:
        assert rt.is_initialized() and rt.cluster_resources()["CPU"] == 2
        yield rt
    assert not ray.is_initialized()  # the session that started Ray stops it


def _bench_config(out: Path, target: executor.RayTarget | None) -> runner.BenchConfig:
    contenders, skipped = codecs.resolve(
        ["x264", "x265", "lossless"],
        threads=1,
        points=codecs.parse_points(["x264=[26,36]", "x265=[30]"]),
    )
    assert not skipped
    return runner.BenchConfig(
        sequences=[datasets.synthetic_sequence(64, 48, seed=1)],
        contenders=contenders,
        protocol=datasets.Protocol(frames=4),
        out_dir=out,
        name="t",
        threads=1,
        ms_ssim=False,
        ray=target,
    )


def _measured(row: dict[str, Any]) -> dict[str, Any]:
    """A row without its timings, memory and whereabouts."""
    skip = ("seconds", "fps", "rss", "memory")
    return {
        k: v for k, v in row.items() if k not in CIRCUMSTANCES and not any(s in k for s in skip)
    }


def test_bench_rows_on_ray_equal_local_rows_and_resume_either_way(
    cluster: Any, tmp_path: Path
) -> None:
    here = runner.run(_bench_config(tmp_path / "here", None))
    assert here.new_rows == 4 and not here.skipped
    on_ray = runner.run(_bench_config(tmp_path / "ray", LOCAL_RAY), stop_after=3)
    assert on_ray.new_rows == 3 and not on_ray.skipped
    assert {r["executor"] for r in on_ray.rows} == {"ray local"}
    # A local run finishes what the Ray run left, and a Ray rerun then has nothing to do.
    rest = runner.run(_bench_config(tmp_path / "ray", None))
    assert rest.new_rows == 1
    again = runner.run(_bench_config(tmp_path / "ray", LOCAL_RAY))
    assert again.new_rows == 0 and len(again.rows) == 4
    assert [_measured(r) for r in again.rows] == [_measured(r) for r in here.rows]
    # Ray resumes by the same codec identity: a row stored by another encoder build is redone.
    state = tmp_path / "ray" / "t.state.jsonl"
    lines = state.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if '"x265"' in line and '"type": "row"' in line)
    lines[row] = lines[row].replace(again.rows[2]["codec_fingerprint"], "0" * 16)
    state.write_text("\n".join(lines) + "\n")
    redo = runner.run(_bench_config(tmp_path / "ray", LOCAL_RAY))
    assert redo.new_rows == 1 and redo.rows[2]["executor"] == "ray local"
    assert redo.rows[2]["codec_fingerprint"] == again.rows[2]["codec_fingerprint"]


def test_batch_on_ray_writes_the_same_files_and_state_as_a_local_batch(
    cluster: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i, size in enumerate([(48, 32), (32, 24), (40, 16)]):
        write_frames(folder / f"v{i}.y4m", synthetic_clip(*size, 2 + i, format="yuv420p", seed=i))
    (folder / "broken.mp4").write_bytes(b"no video here" * 30)
    jobs = batch.plan_jobs(batch.collect_inputs([str(folder)], []), "lossless", {}, None)
    local = batch.run_batch(jobs, tmp_path / "local")
    remote = batch.run_batch(jobs, tmp_path / "ray", ray=LOCAL_RAY)
    assert remote.new == local.new == 3
    # The job's own error comes back from the worker, with its message.
    assert len(remote.failed) == 1 and remote.failed[0] == local.failed[0]
    assert "broken.mp4" in remote.failed[0]
    for name in ("v0.nvc", "v1.nvc", "v2.nvc"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert not (tmp_path / "ray" / "broken.nvc").exists()
    assert [_measured(r) for r in remote.rows] == [_measured(r) for r in local.rows]
    assert {r["executor"] for r in remote.rows} == {"ray local"}
    # Resumable: a rerun on Ray codes nothing; a lost output is coded again.
    (tmp_path / "ray" / "v1.nvc").unlink()
    rerun = batch.run_batch(jobs, tmp_path / "ray", ray=LOCAL_RAY)
    assert (
        rerun.new == 1
        and (tmp_path / "ray" / "v1.nvc").read_bytes()
        == (tmp_path / "local" / "v1.nvc").read_bytes()
    )


def test_the_commands_take_ray(
    cluster: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_frames(tmp_path / "one.y4m", synthetic_clip(32, 24, 2, format="yuv420p"))
    code = main(["batch", str(tmp_path / "one.y4m"), "-o", str(tmp_path / "o"), "--ray", "local"])
    assert code == 0 and "1 of 1 videos coded (1 now)" in capsys.readouterr().out
    args = ["bench", "--synthetic", "64x48", "--frames", "2", "--codecs", "x264"]
    args += ["--points", "x264=[30]", "--anchor", "x264", "--threads", "1", "--no-ms-ssim"]
    args += ["--out", str(tmp_path / "b"), "--ray", "local", "--quiet"]
    assert main(args) == 0
    assert '"executor": "ray local"' in (tmp_path / "b" / "rd.json").read_text()


def test_an_address_nobody_answers_fails_at_once_and_leaves_nothing(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write_frames(tmp_path / "one.y4m", synthetic_clip(32, 24, 2, format="yuv420p"))
    jobs = batch.plan_jobs([tmp_path / "one.y4m"], "lossless", {}, None)
    dead = executor.RayTarget(f"127.0.0.1:{port}")
    with pytest.raises(NvcError, match=f"cannot reach Ray at 127.0.0.1:{port}"):
        batch.run_batch(jobs, tmp_path / "out", ray=dead)
    with pytest.raises(NvcError, match="cannot reach Ray"):
        runner.run(_bench_config(tmp_path / "bench", dead))
    assert not (tmp_path / "out").exists() and not (tmp_path / "bench").exists()
    with pytest.raises(NvcError, match="expected local, auto, HOST:PORT"):
        executor.check_reachable("no-port-here")


def test_without_ray_installed_the_error_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(NvcError, match=r"pip install 'nvc\[ray\]'"):
        executor.import_ray()
