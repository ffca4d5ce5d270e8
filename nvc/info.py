"""`nvc info`: what a .nvc file holds, as a dict (for --json) or as text."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from nvc.bitstream import Reader, UnitType
from nvc.codec import registry
from nvc.errors import NvcError
from nvc.media.colorspace import BT709, ColorSpace


def _type_name(value: int) -> str:
    try:
        return UnitType(value).name
    except ValueError:
        return f"UNKNOWN_{value}"


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read every unit's framing (not its payload's meaning) and summarise the file."""
    units: list[dict[str, Any]] = []
    with Reader(path) as reader:
        header = reader.header
        for entry in reader.entries():
            u = entry.unit
            units.append(
                {
                    "offset": entry.offset,
                    "size": entry.size,
                    "type": _type_name(u.type),
                    "pts": u.pts,
                    "rap": u.rap,
                    "payload_bytes": len(u.payload),
                }
            )
    total = os.path.getsize(path)
    frames = header.frame_count
    if frames is None:
        pts = [u["pts"] for u in units if u["type"] == "FRAME"]
        frames = max(pts) + 1 if pts else None
    duration = float(frames / header.fps) if frames else None
    counts = Counter(u["type"] for u in units)
    return {
        "file": os.fspath(path),
        "bytes": total,
        "codec": registry.name_of(header.codec_id) or "unknown",
        "codec_id": header.codec_id,
        "codec_params_bytes": len(header.codec_params),
        "width": header.width,
        "height": header.height,
        "fps": str(header.fps),
        "pix_fmt": header.pix_fmt,
        "full_range": header.full_range,
        "colorspace": str(
            ColorSpace.from_codes(header.matrix, header.primaries, header.transfer)
        ),  # matrix/primaries/transfer, FFmpeg's names
        "frames": frames,
        "duration_s": duration,
        "bitrate_kbps": 8 * total / duration / 1000 if duration else None,
        "bpp": 8 * total / (frames * header.width * header.height) if frames else None,
        "unit_counts": dict(counts),
        "random_access_points": [
            {"pts": u["pts"], "offset": u["offset"]} for u in units if u["rap"]
        ],
        "scene": _scene(header),
        "units": units,
    }


def _scene(header: Any) -> dict[str, Any] | None:
    """The camera rig of a gaussian 3D (free-viewpoint) stream, else None."""
    if header.codec_id != 4:
        return None
    from nvc.codec.gaussian.config import MODE_3D
    from nvc.codec.gaussian.params3d import PACKS, SceneParams, stream_mode  # no torch

    if stream_mode(header.codec_params) != MODE_3D:
        return {"mode": "2d"}
    try:
        p = SceneParams.from_bytes(header.codec_params, header.width, header.height)
    except NvcError as e:
        return {"mode": "3d", "error": str(e)}
    return {
        "mode": "3d",
        "group": p.group,
        "residual_coder": PACKS[p.pack],
        "default_view": p.default_view,
        "cameras": [c.name for c in p.rig],
    }


def format_text(info: dict[str, Any], *, units: bool = True) -> str:
    """A person's view of describe()'s result."""
    lines = [
        f"file      {info['file']} ({info['bytes']} bytes)",
        f"codec     {info['codec']} (id {info['codec_id']}, "
        f"{info['codec_params_bytes']} bytes of parameters)",
        f"video     {info['width']}x{info['height']} {info['pix_fmt']}"
        f"{' full range' if info['full_range'] else ''} at {info['fps']} fps"
        f"{'' if info['colorspace'] == str(BT709) else ', colour ' + info['colorspace']}",
    ]
    if info["frames"]:
        lines.append(
            f"frames    {info['frames']} ({info['duration_s']:.3f} s), "
            f"{info['bitrate_kbps']:.1f} kbit/s, {info['bpp']:.4f} bpp"
        )
    scene = info.get("scene")
    if scene and scene["mode"] == "3d" and "cameras" in scene:
        names = scene["cameras"]
        lines.append(
            f"scene     free-viewpoint (3D Gaussians), {len(names)} cameras "
            f"({', '.join(names[:12])}{', ...' if len(names) > 12 else ''}), default view "
            f"{scene['default_view']} ({names[scene['default_view']]}), group "
            f"{scene['group']}, {scene['residual_coder']} residuals"
        )
    elif scene and scene["mode"] == "3d":
        lines.append(f"scene     free-viewpoint, unreadable rig: {scene['error']}")
    counts = ", ".join(f"{n} {t}" for t, n in sorted(info["unit_counts"].items()))
    lines.append(f"units     {counts}")
    lines.append(f"random access points: {len(info['random_access_points'])}")
    if units:
        lines.append("")
        lines.append(f"{'offset':>12} {'size':>10}  {'type':<18} {'pts':>7}  rap")
        for u in info["units"]:
            rap = "*" if u["rap"] else ""
            lines.append(f"{u['offset']:>12} {u['size']:>10}  {u['type']:<18} {u['pts']:>7}  {rap}")
    return "\n".join(lines) + "\n"
