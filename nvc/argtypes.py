"""Argument types shared by the `nvc` subcommands: sizes, frame rates, counts, times.

A leaf module (argparse only), like nvc.errors: every layer's command-line code uses it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from fractions import Fraction


def size(text: str) -> tuple[int, int]:
    """`WxH` -> (width, height), both positive."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x360, not {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, not {text!r}")
    return w, h


def even_size(text: str) -> tuple[int, int]:
    """`WxH` with both sides even (what 4:2:0 anchors need)."""
    w, h = size(text)
    if w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"size must be even, not {text!r}")
    return w, h


def fps(text: str) -> Fraction:
    """A positive frame rate: `30`, `29.97` or `30000/1001`."""
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(
            f"fps must be a number like 30 or 30000/1001, not {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"fps must be positive, not {text!r}")
    return value


def count(low: int) -> Callable[[str], int]:
    """A parser of whole numbers >= low."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected at least {low}, not {text!r}")
        return value

    return parse


positive_int = count(1)  # a whole number >= 1


def seconds(text: str) -> float:
    """A finite time >= 0, in seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative time, not {text!r}")
    return value


def probability(text: str) -> float:
    """A fraction in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction 0..1, not {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), not {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    return value


def percent(text: str) -> float:
    """A number from 0 to 100."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 100, not {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 100, not {text!r}")
    return value


def timestamp(text: str) -> float:
    """A time in seconds, as ffmpeg writes it: `12.5`, `MM:SS[.ms]` or `HH:MM:SS[.ms]`."""
    parts = text.strip().split(":")
    try:
        if len(parts) > 3 or any(not p.strip() for p in parts):
            raise ValueError
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a time in seconds or HH:MM:SS.ms, not {text!r}"
        ) from None
    *whole, secs = values
    if any(v < 0 or v != int(v) for v in whole) or (whole and not secs < 60):
        raise argparse.ArgumentTypeError(
            f"expected HH:MM:SS.ms (whole hours and minutes, seconds below 60), not {text!r}"
        )
    if len(whole) == 2 and whole[1] >= 60:
        raise argparse.ArgumentTypeError(f"minutes must be below 60 in {text!r}")
    value = secs + sum(v * 60 ** (len(whole) - i) for i, v in enumerate(whole))
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative finite time, not {text!r}")
    return value
