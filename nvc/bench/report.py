"""Benchmark outputs: BD tables, JSON, CSV, a Markdown summary and RD-curve PNGs.

Files written into the output directory for a run called NAME:

    NAME.json   everything: command, git revision, machine, versions, protocol,
                codec configurations, every row, BD tables
    NAME.csv    one line per (sequence, codec, rate point)
    NAME.md     summary: protocol statement, BD-rate / BD-PSNR tables, rate points
    NAME.png    RD curves (PSNR-RGB against bpp) averaged over the sequences
    NAME_SEQ.png  RD curves of each sequence (when there are several)

BD values compare each codec with the anchor codec of the run on each sequence, over the
quality range both cover, after keeping only each curve's upper envelope
(`bdrate.pareto_front`); the average is the mean of the per-sequence values, as in the
literature. The average RD curve of a codec is the mean bpp and mean PSNR of each of its
rate points over the sequences (only points that every sequence has).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nvc.bench import bdrate, published
from nvc.fileio import output_path

PSNR_CAP = 100.0  # dB recorded for exact frames (see runner.PSNR_CAP)

# Metrics a BD value can be computed on: key in the rows -> label.
BD_METRICS = {"psnr_rgb": "PSNR-RGB", "psnr_yuv": "PSNR-YUV 6:1:1", "ms_ssim_db": "MS-SSIM (dB)"}

CSV_COLUMNS = [
    "sequence",
    "codec",
    "kind",
    "point",
    "frames",
    "width",
    "height",
    "fps",
    "bytes",
    "bpp",
    "psnr_rgb",
    "psnr_y",
    "psnr_u",
    "psnr_v",
    "psnr_yuv",
    "ms_ssim",
    "ms_ssim_db",
    "encode_seconds",
    "encode_fps",
    "decode_seconds",
    "decode_fps",
    "encode_peak_rss_mib",
    "encode_rss_increase_mib",
    "decode_peak_rss_mib",
    "decode_rss_increase_mib",
    "repeats",
    "protocol",
]


@dataclass
class Report:
    """Everything the writers need."""

    name: str  # file prefix
    meta: dict[str, Any]  # command, git, machine, versions, protocol, codecs, ...
    rows: list[dict[str, Any]]  # measured rows
    sequences: list[dict[str, Any]]  # sequence info
    anchor: str  # codec BD values are computed against
    bd_method: str = "pchip"
    published_ok: bool = False  # draw published UVG curves (full UVG protocol only)
    skipped: list[str] = field(default_factory=list)

    @property
    def protocol_line(self) -> str:
        return str(self.meta.get("protocol", {}).get("statement", ""))

    @property
    def sequence_names(self) -> list[str]:
        names = [s["name"] for s in self.sequences]
        for r in self.rows:
            if r["sequence"] not in names:
                names.append(r["sequence"])
        return names

    @property
    def codec_names(self) -> list[str]:
        out: list[str] = []
        for r in self.rows:
            if r["codec"] not in out:
                out.append(r["codec"])
        return out

    def label(self, codec: str) -> str:
        for r in self.rows:
            if r["codec"] == codec:
                return str(r.get("label", codec))
        return codec


# -- BD tables --------------------------------------------------------------------------


def _curve(rows: Sequence[dict[str, Any]], metric: str) -> list[tuple[float, float]]:
    pts = [
        (float(r["bpp"]), float(r[metric]))
        for r in rows
        if r.get(metric) is not None and r.get("bpp") and r["bpp"] > 0
    ]
    return bdrate.pareto_front(pts)


def bd_entry(
    anchor_rows: Sequence[dict[str, Any]],
    test_rows: Sequence[dict[str, Any]],
    metric: str,
    method: str,
) -> dict[str, Any]:
    """BD-rate (%) and BD-quality of test against anchor on one metric, or why not."""
    a = _curve(anchor_rows, metric)
    t = _curve(test_rows, metric)
    entry: dict[str, Any] = {"bd_rate": None, "bd_quality": None, "overlap": None, "note": None}
    if len(a) < 2 or len(t) < 2:
        entry["note"] = "fewer than two rate points"
        return entry
    if method == "cubic" and (len(a) < 4 or len(t) < 4):
        entry["note"] = "cubic needs four rate points"
        return entry
    ra, qa = [p[0] for p in a], [p[1] for p in a]
    rt, qt = [p[0] for p in t], [p[1] for p in t]
    entry["overlap"] = bdrate.overlap(qa, qt)
    try:
        entry["bd_rate"] = bdrate.bd_rate(ra, qa, rt, qt, method)
    except ValueError as e:
        entry["note"] = f"BD-rate: {e}"
    try:
        entry["bd_quality"] = bdrate.bd_psnr(ra, qa, rt, qt, method)
    except ValueError as e:
        entry["note"] = (entry["note"] + "; " if entry["note"] else "") + f"BD-quality: {e}"
    return entry


def bd_tables(report: Report) -> dict[str, Any]:
    """BD values of every codec against the anchor, per sequence and averaged."""
    out: dict[str, Any] = {"anchor": report.anchor, "method": report.bd_method, "metrics": {}}
    for metric in BD_METRICS:
        per: list[dict[str, Any]] = []
        for seq in report.sequence_names:
            anchor_rows = [
                r for r in report.rows if r["sequence"] == seq and r["codec"] == report.anchor
            ]
            for codec in report.codec_names:
                if codec == report.anchor:
                    continue
                test_rows = [r for r in report.rows if r["sequence"] == seq and r["codec"] == codec]
                if not test_rows:
                    continue
                if not anchor_rows:
                    entry: dict[str, Any] = {"bd_rate": None, "bd_quality": None, "overlap": None}
                    entry["note"] = f"no {report.anchor} rows"
                else:
                    entry = bd_entry(anchor_rows, test_rows, metric, report.bd_method)
                per.append({"sequence": seq, "codec": codec, **entry})
        average: list[dict[str, Any]] = []
        for codec in report.codec_names:
            if codec == report.anchor:
                continue
            mine = [e for e in per if e["codec"] == codec]
            rates = [e["bd_rate"] for e in mine if e["bd_rate"] is not None]
            quals = [e["bd_quality"] for e in mine if e["bd_quality"] is not None]
            average.append(
                {
                    "codec": codec,
                    "bd_rate": statistics.fmean(rates) if rates else None,
                    "bd_quality": statistics.fmean(quals) if quals else None,
                    "sequences": len(rates),
                    "of": len(mine),
                }
            )
        out["metrics"][metric] = {"per_sequence": per, "average": average}
    return out


# -- average curves ---------------------------------------------------------------------


def average_curve(
    report: Report, codec: str, metric: str = "psnr_rgb"
) -> list[tuple[float, float]]:
    """Mean (bpp, metric) of each rate point of `codec` that every sequence has."""
    seqs = report.sequence_names
    by_point: dict[str, list[dict[str, Any]]] = {}
    for r in report.rows:
        if r["codec"] == codec and r.get(metric) is not None:
            by_point.setdefault(json.dumps(r["point"], sort_keys=True), []).append(r)
    out = []
    for rows in by_point.values():
        if len({r["sequence"] for r in rows}) == len(seqs):
            out.append(
                (
                    statistics.fmean(r["bpp"] for r in rows),
                    statistics.fmean(r[metric] for r in rows),
                )
            )
    return sorted(out)


# -- writers ----------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def to_json(report: Report, bd: dict[str, Any]) -> str:
    rows = [{k: v for k, v in r.items() if k not in ("type", "fingerprint")} for r in report.rows]
    data = {
        "nvc_bench": 1,
        "name": report.name,
        **report.meta,
        "anchor": report.anchor,
        "bd_method": report.bd_method,
        "sequences": report.sequences,
        "skipped": report.skipped,
        "rows": rows,
        "bd": bd,
        "published_curves_drawn": report.published_ok,
    }
    return json.dumps(_clean(data), indent=2, allow_nan=False) + "\n"


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in report.rows:
        line = {k: r.get(k) for k in CSV_COLUMNS}
        line["point"] = r.get("point_label")
        line["protocol"] = report.protocol_line
        for k, v in line.items():
            if isinstance(v, float):
                line[k] = f"{v:.6g}"
        writer.writerow(line)
    return buf.getvalue()


def _repeats(rows: Sequence[dict[str, Any]]) -> str:
    counts = sorted({int(r.get("repeats", 1)) for r in rows})
    return "/".join(str(c) for c in counts) or "1"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:+.1f}%"


def _db(v: float | None) -> str:
    return "–" if v is None else f"{v:+.2f} dB"


def _num(v: Any, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def to_markdown(report: Report, bd: dict[str, Any], png_names: Sequence[str] = ()) -> str:
    meta = report.meta
    proto = meta.get("protocol", {})
    lines: list[str] = [f"# nvc rate-distortion benchmark: {report.name}", ""]
    del proto
    lines.append(f"> **{report.protocol_line}**")
    lines.append("")
    git = meta.get("git") or {}
    machine = meta.get("machine") or {}
    versions = meta.get("versions") or {}
    lines += [
        f"- Command: `{meta.get('command', '')}`",
        f"- Finished: {meta.get('finished', '')}; nvc {versions.get('nvc', '?')}, git "
        f"{git.get('revision') or 'unknown'}{' (uncommitted changes)' if git.get('dirty') else ''}"
        " (each row records the revision it was measured at)",
        f"- Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('platform', '?')}; PyAV {versions.get('av', '?')} "
        f"(libavcodec {versions.get('libavcodec', '?')})",
        f"- BD values: against {report.label(report.anchor)} ({report.anchor}), "
        f"{report.bd_method} interpolation, negative BD-rate = fewer bits at equal quality",
        "",
        "Sequences:",
        "",
    ]
    for s in report.sequences:
        notes = "; ".join(s.get("notes") or [])
        lines.append(
            f"- {s['name']}: {s['width']}x{s['height']}, {s['frames']} frames at {s['fps']} fps "
            f"({s['kind']}: {s['source']}{'; ' + notes if notes else ''})"
        )
    lines.append("")
    for png in png_names[:1]:
        lines += [f"![RD curves]({png})", ""]

    seqs = report.sequence_names
    primary = bd["metrics"]["psnr_rgb"]
    others = [c for c in report.codec_names if c != report.anchor]
    if others:
        for title, field_name, fmt in (
            (f"BD-rate against {report.anchor}, PSNR-RGB", "bd_rate", _pct),
            (f"BD-PSNR against {report.anchor}, PSNR-RGB", "bd_quality", _db),
        ):
            lines += [f"## {title}", ""]
            head = ["codec", "average"] + (seqs if len(seqs) > 1 else [])
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * len(head))
            for codec in others:
                avg = next(a for a in primary["average"] if a["codec"] == codec)
                cells = [report.label(codec), fmt(avg[field_name])]
                if len(seqs) > 1:
                    for seq in seqs:
                        e = next(
                            (
                                e
                                for e in primary["per_sequence"]
                                if e["codec"] == codec and e["sequence"] == seq
                            ),
                            None,
                        )
                        cells.append(fmt(e[field_name]) if e else "–")
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        lines += [f"## BD-rate against {report.anchor} on other metrics (average)", ""]
        lines.append("| codec | " + " | ".join(BD_METRICS.values()) + " |")
        lines.append("|" + "---|" * (len(BD_METRICS) + 1))
        for codec in others:
            cells = [report.label(codec)]
            for metric in BD_METRICS:
                avg = next(a for a in bd["metrics"][metric]["average"] if a["codec"] == codec)
                cells.append(_pct(avg["bd_rate"]))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        bd_notes = [
            f"{e['sequence']} {e['codec']}: {e['note']}"
            for e in primary["per_sequence"]
            if e.get("note")
        ]
        if bd_notes:
            lines += ["BD notes: " + "; ".join(bd_notes), ""]

    lines += ["## Rate points", ""]
    head = [
        "sequence",
        "codec",
        "point",
        "bpp",
        "PSNR-RGB",
        "PSNR-YUV",
        "MS-SSIM",
        "encode s",
        "encode fps",
        "decode fps",
        "peak RSS MiB enc / dec",
    ]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in report.rows:
        lines.append(
            "| "
            + " | ".join(
                [
                    r["sequence"],
                    r["codec"],
                    r["point_label"],
                    f"{r['bpp']:.4f}",
                    _num(r.get("psnr_rgb"), ".2f"),
                    _num(r.get("psnr_yuv"), ".2f"),
                    _num(r.get("ms_ssim"), ".4f"),
                    _num(r.get("encode_seconds"), ".2f"),
                    _num(r.get("encode_fps"), ".1f"),
                    _num(r.get("decode_fps"), ".1f"),
                    f"{_num(r.get('encode_peak_rss_mib'), '.0f')} / "
                    f"{_num(r.get('decode_peak_rss_mib'), '.0f')}",
                ]
            )
            + " |"
        )
    lines.append("")
    lines += [
        "bpp counts every byte of the coded file (raw elementary stream for the anchors, the "
        ".nvc file with its container for nvc codecs) over frames x width x height. PSNR and "
        "MS-SSIM are means of per-frame values; timings are medians over "
        f"{_repeats(report.rows)} encode+decode repeat(s) per rate point; peak RSS is the "
        "process's resident memory while encoding / decoding.",
        "",
        "## Codec configurations",
        "",
    ]
    for c in meta.get("codecs", []):
        conf = ", ".join(f"{k} {v}" for k, v in c.get("config", {}).items())
        pts = ", ".join(
            ",".join(f"{k}={v}" for k, v in sorted(p.items())) or "default" for p in c["points"]
        )
        lines.append(f"- **{c['label']}** ({c['name']}): {conf}; rate points: {pts}")
    lines.append("")
    if report.skipped:
        lines += ["## Skipped", ""] + [f"- {s}" for s in report.skipped] + [""]
    if report.published_ok:
        lines += ["## Published reference curves", "", published.about(), ""]
        for c in published.curves("average"):
            lines.append(f"- {c.system}: {c.source}")
        lines.append("")
    else:
        lines += [
            "Published UVG curves are not drawn: they apply only to the full UVG protocol "
            "(7 sequences, all frames, 1920x1080).",
            "",
        ]
    return "\n".join(lines)


# -- plots ------------------------------------------------------------------------------

_STYLE = {
    "x264": ("tab:blue", "o"),
    "x265": ("tab:orange", "s"),
    "svtav1": ("tab:green", "^"),
}
_NVC_COLOURS = ["tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
# Published curves: muted colours and their own markers, dashed, the same in every plot.
_PUBLISHED_STYLE = {
    "NeRV": ("#8c6d31", "v"),
    "HNeRV": ("#9c9ede", "<"),
    "HiNeRV": ("#637939", ">"),
    "C3": ("#7b4173", "*"),
    "VTM 17 RA": ("#393b79", "x"),
    "HM 18 RA": ("#6b6ecf", "+"),
    "x265 medium, no B-frames": ("#ad494a", "1"),
}


def _minor_label(value: float, _pos: object) -> str:
    """Label the 2x and 5x minor ticks of a log axis (0.02, 0.05, ...), not the others."""
    if value <= 0:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return f"{value:g}" if round(mantissa, 6) in (2.0, 5.0) else ""


def plot(
    report: Report,
    path: Path,
    *,
    sequence: str | None,
) -> None:
    """Write one RD plot: a sequence's curves, or (sequence None) the average."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(7.5, 5.4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    nvc_i = 0
    exact: list[str] = []
    for codec in report.codec_names:
        if sequence is None:
            pts = average_curve(report, codec)
        else:
            pts = sorted(
                (r["bpp"], r["psnr_rgb"])
                for r in report.rows
                if r["codec"] == codec and r["sequence"] == sequence and r.get("psnr_rgb")
            )
        if any(p[1] >= PSNR_CAP for p in pts):
            exact.append(report.label(codec))
            pts = [p for p in pts if p[1] < PSNR_CAP]  # exact points would flatten the plot
        if not pts:
            continue
        kind = next(r["kind"] for r in report.rows if r["codec"] == codec)
        if kind == "anchor":
            colour, marker = _STYLE.get(codec, ("tab:gray", "o"))
            width = 1.6
        else:
            colour, marker = _NVC_COLOURS[nvc_i % len(_NVC_COLOURS)], "D"
            nvc_i += 1
            width = 2.4
        label = report.label(codec) + (" (anchor)" if codec == report.anchor else "")
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            marker=marker,
            color=colour,
            linewidth=width,
            markersize=5,
            label=label,
        )
    if report.published_ok:
        target = "average" if sequence is None else sequence
        for c in published.curves(target):
            colour, marker = _PUBLISHED_STYLE.get(c.system, ("0.5", "."))
            ax.plot(
                c.bpp,
                c.psnr,
                linestyle="--",
                marker=marker,
                markersize=5,
                color=colour,
                linewidth=1.0,
                alpha=0.85,
                label=f"{c.system} (published)",
            )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(_minor_label))
    ax.set_xlabel("bits per pixel (log scale)")
    ax.set_ylabel("PSNR-RGB (dB)")
    ax.grid(True, which="both", alpha=0.3)
    title = (
        sequence
        if sequence is not None
        else (
            "average of " + ", ".join(report.sequence_names)
            if len(report.sequence_names) > 1
            else report.sequence_names[0]
            if report.sequence_names
            else report.name
        )
    )
    ax.set_title(title, fontsize=11)
    quick = bool(report.meta.get("protocol", {}).get("quick"))
    fig.suptitle(
        report.protocol_line,
        fontsize=8.5,
        color="darkred" if quick else "black",
        wrap=True,
        y=0.985,
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7.5, loc="best")
    foot = (
        "Dashed: published figures (sources: nvc/bench/data/published_uvg.json), not measured here."
        if report.published_ok
        else "All curves measured in this run (no published curves: not a full UVG run)."
    )
    if exact:
        foot += f" Lossless points not drawn: {', '.join(exact)}."
    fig.text(0.01, 0.005, foot, fontsize=7, color="0.3")
    fig.tight_layout(rect=(0, 0.025, 1, 0.96))
    with output_path(path) as where:  # atomic; a symlink is followed, a device written through
        fig.savefig(where, format="png")


def _file_part(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


def write_all(report: Report, out_dir: Path) -> dict[str, Path]:
    """Write every output; returns {kind: path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bd = bd_tables(report)
    paths: dict[str, Path] = {}
    pngs: list[str] = []
    if report.rows:
        main_png = out_dir / f"{report.name}.png"
        plot(report, main_png, sequence=None)
        paths["png"] = main_png
        pngs.append(main_png.name)
        if len(report.sequence_names) > 1:
            for seq in report.sequence_names:
                p = out_dir / f"{report.name}_{_file_part(seq)}.png"
                plot(report, p, sequence=seq)
                paths[f"png:{seq}"] = p
                pngs.append(p.name)
    for kind, text in (
        ("json", to_json(report, bd)),
        ("csv", to_csv(report)),
        ("md", to_markdown(report, bd, pngs)),
    ):
        p = out_dir / f"{report.name}.{kind}"
        with output_path(p) as where:
            where.write_text(text, encoding="utf-8")
        paths[kind] = p
    return paths
