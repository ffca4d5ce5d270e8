"""Limits on what a stream may ask a decoder to allocate or compute (bitstream SPEC.md 8.1).

A sequence header of a few bytes can announce a 65536 x 65536 picture, and an inr header
a network of billions of weights. Every decoder checks what a stream asks for against
these limits before it allocates anything for it, and refuses with a one-line
`BitstreamError` that names the limit. Only the pixel limit is meant to be raised by
users (`nvc decode --max-pixels N`, `nvc.open(path, max_pixels=N)`); the others bound
network shapes that no nvc encoder writes.
"""

from __future__ import annotations

from nvc.bitstream import SequenceHeader
from nvc.errors import BitstreamError

DEFAULT_MAX_PIXELS = 3840 * 2160  # luma pixels per frame a decoder accepts (4K UHD)
# Weights of an inr network (the decoder holds each as an int64 integer and a float32
# weight: 12 bytes and more). The encoder's rate control picks 99M at 4K and 1 bpp.
INR_MAX_PARAMS = 1 << 27
# Decoder work per output pixel: 65x the realtime preset's cap of 4000, and above what the
# encoder's own rate control chooses for any preset.
INR_MAX_MACS_PER_PIXEL = 1 << 19
# The largest feature map of the inr network, in values per output pixel (192: 4 bytes
# each, about 770 bytes per pixel at the worst; the presets need 6 to 146).
INR_MAX_VALUES_PER_PIXEL = 192


def resolve_max_pixels(max_pixels: int | None) -> int:
    """`max_pixels`, or the default when None; a bad value is a ValueError."""
    if max_pixels is None:
        return DEFAULT_MAX_PIXELS
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive int, got {max_pixels!r}")
    return max_pixels


def check_picture(header: SequenceHeader, max_pixels: int | None = None) -> None:
    """Refuse a stream whose frames have more luma pixels than `max_pixels` (None: the
    default), before anything is allocated for them."""
    limit = resolve_max_pixels(max_pixels)
    pixels = header.width * header.height
    if pixels > limit:
        raise BitstreamError(
            f"the stream's {header.width}x{header.height} frames ({pixels} pixels) exceed "
            f"the decoder's limit of {limit} pixels (raise it with --max-pixels or "
            f"max_pixels=)"
        )


def check_at_most(what: str, value: int, limit: int) -> None:
    """Refuse a stream that asks for `value` of something bounded by `limit`."""
    if value > limit:
        raise BitstreamError(f"the stream asks for {value} {what}, above the limit of {limit}")
