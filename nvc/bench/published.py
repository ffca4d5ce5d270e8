"""Published rate-distortion figures on UVG, for reference curves in the plots.

The numbers live in `data/published_uvg.json`, each curve with the file or paper it comes
from. They are other projects' measurements, on the full UVG protocol (1920x1080, all
frames); nvc draws them only on plots of a full UVG run, dashed and labelled
"published", and never mixes them into its own tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).with_name("data") / "published_uvg.json"


@dataclass(frozen=True)
class PublishedCurve:
    system: str  # e.g. "VTM 17 RA"
    sequence: str  # a UVG sequence name, or "average"
    kind: str  # "neural" or "traditional"
    bpp: tuple[float, ...]
    psnr: tuple[float, ...]  # dB, as the source computes it
    source: str  # where the numbers come from
    url: str


@cache
def _data() -> dict[str, Any]:
    with open(DATA_FILE, encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def curves(sequence: str = "average") -> list[PublishedCurve]:
    """The published UVG curves for one sequence (or the 7-sequence average)."""
    out = []
    for c in _data()["curves"]:
        if c["sequence"].lower() == sequence.lower():
            out.append(
                PublishedCurve(
                    system=c["system"],
                    sequence=c["sequence"],
                    kind=c["kind"],
                    bpp=tuple(c["bpp"]),
                    psnr=tuple(c["psnr"]),
                    source=c["source"],
                    url=c["url"],
                )
            )
    return out


def bd_rates() -> list[dict[str, Any]]:
    """Published BD-rates (system, anchor, percent, metric, source)."""
    return list(_data()["bd_rates"])


def about() -> str:
    return str(_data()["about"])
