"""--time-budget bounds the encode: training, coding and the exact reconstruction together."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import pytest

from nvc.codec import registry
from nvc.codec.base import StreamInfo
from nvc.codec.inr.train import _StepClock
from nvc.codec.pipeline import decode_frames, encode_frames
from nvc.media import synthetic_clip

# Outside the encoder's clock: building the encoder (plan, renderer) and the pipeline's
# own work (writing units, the file's index). Measured 0.03-0.1 s on a busy 2-core machine;
# torch's one-time warm-up (first model built in a process, ~1.5 s) is paid before timing.
ALLOWANCE_S = 0.3


def _timed_encode(
    tmp_path: Path, budget: float, known_length: bool = True, **options: object
) -> tuple[float, object]:
    frames = list(synthetic_clip(64, 48, 8, fps=Fraction(25), format="yuv420p", seed=2))
    count = len(frames) if known_length else None  # None: as from a pipe or some containers
    stream = StreamInfo(64, 48, Fraction(25), "yuv420p", frame_count=count)
    opts = {"time_budget": budget, **options}
    registry.get("inr").create_encoder(stream, opts)  # torch's one-time warm-up, untimed
    start = time.perf_counter()
    report = encode_frames(frames, stream, tmp_path / "b.nvc", codec="inr", options=opts)
    return time.perf_counter() - start, report


@pytest.mark.parametrize(
    "options",
    [
        {"preset": "quality"},  # one group: the reserve comes from a trial coding
        {"preset": "realtime", "group_size": 4},  # two: the second uses the first's coding time
    ],
)
@pytest.mark.parametrize("known_length", [True, False])
def test_a_small_budget_bounds_the_whole_encode(tmp_path, options, known_length):
    budget = 3.0
    seconds, report = _timed_encode(tmp_path, budget, known_length, **options)
    assert seconds <= 1.05 * budget + ALLOWANCE_S, f"{seconds:.2f} s for a {budget} s budget"
    assert seconds >= 0.5 * budget  # the budget is used for training, not thrown away
    assert len(list(decode_frames(tmp_path / "b.nvc"))) == report.frames == 8


def test_step_clock_leaves_out_the_slow_first_step():
    clock = _StepClock()
    clock.steps.append(5.0)
    assert clock.step_seconds() == 5.0  # alone, it is all there is
    clock.steps.extend([0.1, 0.2, 0.1])
    assert clock.step_seconds() == 0.1


def test_a_cpu_seconds_budget_bounds_the_process_cpu_time(tmp_path):
    """cpu_seconds: the budget counts this process's CPU time (benchmarks on a shared
    machine), from the encoder's creation (planning) to the last coded group."""
    frames = list(synthetic_clip(64, 48, 6, fps=Fraction(25), format="yuv420p", seed=3))
    stream = StreamInfo(64, 48, Fraction(25), "yuv420p", frame_count=len(frames))
    opts = {"time_budget": 2.0, "cpu_seconds": True, "preset": "realtime", "group_size": 3}
    registry.get("inr").create_encoder(stream, opts)  # torch's one-time warm-up, untimed
    start = time.process_time()
    report = encode_frames(frames, stream, tmp_path / "c.nvc", codec="inr", options=opts)
    cpu = time.process_time() - start
    assert 1.0 <= cpu <= 1.05 * 2.0 + ALLOWANCE_S, f"{cpu:.2f} CPU-s for a 2 s budget"
    assert report.frames == 6
