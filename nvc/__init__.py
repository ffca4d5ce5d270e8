"""nvc: a neural video codec and streaming system.

The public API mirrors the command line:

    nvc.encode_file("clip.mp4", "clip.nvc", codec="lossless")
    nvc.decode_file("clip.nvc", "clip.y4m")
    with nvc.open("clip.nvc") as f:          # decode frames lazily
        for frame in f: ...

Importing `nvc` is cheap: the API is loaded on first use, so `nvc.bitstream` and
`nvc.media` stay usable without torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# the names of nvc.api.__all__ (tests/nvc/test_api.py checks that they agree)
_API = {
    "encode_file",
    "decode_file",
    "encode_frames",
    "decode_frames",
    "open",
    "EncodeReport",
    "DecodeReport",
    "NvcReader",
    "NvcWriter",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        from nvc import api

        return getattr(api, name)
    raise AttributeError(f"module 'nvc' has no attribute {name!r}")


__all__ = sorted(_API | {"__version__"})
