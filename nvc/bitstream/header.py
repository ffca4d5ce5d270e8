"""The file header and the sequence header (SPEC.md sections 1.1 and 4)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from nvc.bitstream.leb128 import U32_MAX, U63_MAX, Buffer, Truncated, decode_uleb128, encode_uleb128
from nvc.bitstream.units import MAX_UNIT_SIZE, Unit, UnitType
from nvc.errors import BitstreamError

MAGIC = b"\x89NVC\r\n"  # first 6 bytes of every .nvc file
FORMAT_VERSION = 2  # the format version this package writes
READ_VERSIONS = (1, 2)  # the format versions it reads (1: no colour description)
FILE_HEADER_SIZE = 8  # magic + u16le version

MAX_DIMENSION = 65536  # largest width or height
MAX_PIX_FMT_LENGTH = 32  # longest pixel format name

_FLAG_FULL_RANGE = 0x01
_FLAG_FRAME_COUNT = 0x02
_FLAG_COLOUR = 0x04  # version 2: a colour description follows the codec parameters
BT709_CODE = 1  # H.273 code point of BT.709 in all three colour tables: the default


def encode_file_header(version: int = FORMAT_VERSION) -> bytes:
    """The 8 bytes that start a file: MAGIC and the format version."""
    return MAGIC + version.to_bytes(2, "little")


def decode_file_header(data: Buffer) -> int:
    """Check the file header at the start of `data`; return the format version.

    Raises `Truncated` if fewer than 8 bytes are given, `BitstreamError` for a wrong magic
    or a version this package does not implement.
    """
    if bytes(data[: len(MAGIC)]) != MAGIC[: min(len(data), len(MAGIC))]:
        raise BitstreamError("not an .nvc file (wrong magic number)", 0)
    if len(data) < FILE_HEADER_SIZE:
        raise Truncated("file is shorter than the 8-byte file header", len(data))
    version = int.from_bytes(data[len(MAGIC) : FILE_HEADER_SIZE], "little")
    if version not in READ_VERSIONS:
        known = " and ".join(str(v) for v in READ_VERSIONS)
        raise BitstreamError(
            f"unsupported .nvc format version {version} (this nvc reads versions {known})",
            len(MAGIC),
        )
    return version


def _check_pix_fmt(pix_fmt: str) -> str | None:
    """Return why `pix_fmt` is not a valid pixel format name, or None if it is."""
    if not 1 <= len(pix_fmt) <= MAX_PIX_FMT_LENGTH:
        return f"pixel format name must be 1 to {MAX_PIX_FMT_LENGTH} characters"
    if not all("\x21" <= ch <= "\x7e" for ch in pix_fmt):
        return f"pixel format name {pix_fmt!r} is not printable ASCII without spaces"
    return None


@dataclass(frozen=True)
class SequenceHeader:
    """Stream parameters: the payload of the first unit of every stream.

    Invalid values raise `BitstreamError` (a ValueError).
    """

    codec_id: int  # numeric codec id from the codec registry (0 .. 2**32 - 1)
    codec_params: bytes  # codec parameters, opaque to the container
    width: int  # picture width in pixels (1 .. 65536)
    height: int  # picture height in pixels (1 .. 65536)
    fps: Fraction  # frame rate, > 0; numerator and denominator below 2**32
    pix_fmt: str  # FFmpeg pixel format name, e.g. "yuv420p10le"; not interpreted here
    full_range: bool = False  # full-range (PC/JPEG) levels rather than limited range
    frame_count: int | None = None  # number of frames, when known in advance
    # Colour description, ITU-T H.273 code points (0 .. 255; 1 is BT.709 in each table):
    matrix: int = BT709_CODE  # matrix_coefficients (1 BT.709, 5/6 BT.601, 9 BT.2020 ncl)
    primaries: int = BT709_CODE  # colour_primaries (1 BT.709, 5/6 BT.601, 9 BT.2020)
    transfer: int = BT709_CODE  # transfer_characteristics (1 BT.709, 16 PQ, 18 HLG, ...)

    @property
    def has_colour_description(self) -> bool:
        """True when the colour is not BT.709, so the header carries a colour description."""
        return (self.matrix, self.primaries, self.transfer) != (BT709_CODE,) * 3

    def __post_init__(self) -> None:
        if isinstance(self.codec_params, bytearray | memoryview):
            object.__setattr__(self, "codec_params", bytes(self.codec_params))
        if not isinstance(self.codec_params, bytes):
            raise TypeError("codec_params must be bytes")
        for name in ("codec_id", "width", "height", "matrix", "primaries", "transfer"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int")
        for name in ("matrix", "primaries", "transfer"):
            if not 0 <= getattr(self, name) <= 255:
                raise BitstreamError(f"colour {name} {getattr(self, name)} is outside 0 .. 255")
        if not 0 <= self.codec_id <= U32_MAX:
            raise BitstreamError(f"codec id {self.codec_id} is outside 0 .. {U32_MAX}")
        if not (1 <= self.width <= MAX_DIMENSION and 1 <= self.height <= MAX_DIMENSION):
            raise BitstreamError(
                f"picture size {self.width}x{self.height} is outside 1 .. {MAX_DIMENSION}"
            )
        try:
            fps = Fraction(self.fps)
        except (TypeError, ValueError, OverflowError, ZeroDivisionError) as exc:
            raise BitstreamError(f"invalid frame rate {self.fps!r}") from exc
        if fps <= 0 or fps.numerator > U32_MAX or fps.denominator > U32_MAX:
            raise BitstreamError(
                f"frame rate {fps} must be positive with numerator and denominator below 2**32"
            )
        object.__setattr__(self, "fps", fps)
        if not isinstance(self.pix_fmt, str):
            raise TypeError("pix_fmt must be a str")
        problem = _check_pix_fmt(self.pix_fmt)
        if problem:
            raise BitstreamError(problem)
        object.__setattr__(self, "full_range", bool(self.full_range))
        if self.frame_count is not None:
            if isinstance(self.frame_count, bool) or not isinstance(self.frame_count, int):
                raise TypeError("frame_count must be an int or None")
            if not 0 <= self.frame_count <= U63_MAX:
                raise BitstreamError(f"frame count {self.frame_count} is out of range")

    def to_unit(self) -> Unit:
        """The SEQUENCE_HEADER unit carrying these parameters."""
        flags = (
            (_FLAG_FULL_RANGE if self.full_range else 0)
            | (_FLAG_FRAME_COUNT if self.frame_count is not None else 0)
            | (_FLAG_COLOUR if self.has_colour_description else 0)
        )
        pix_fmt = self.pix_fmt.encode("ascii")
        parts = [
            encode_uleb128(self.codec_id),
            encode_uleb128(self.width),
            encode_uleb128(self.height),
            encode_uleb128(self.fps.numerator),
            encode_uleb128(self.fps.denominator),
            bytes((flags,)),
        ]
        if self.frame_count is not None:
            parts.append(encode_uleb128(self.frame_count))
        parts += [
            encode_uleb128(len(pix_fmt)),
            pix_fmt,
            encode_uleb128(len(self.codec_params)),
            self.codec_params,
        ]
        if self.has_colour_description:
            parts.append(bytes((self.matrix, self.primaries, self.transfer)))
        return Unit(UnitType.SEQUENCE_HEADER, b"".join(parts))

    @classmethod
    def from_unit(cls, unit: Unit, *, payload_offset: int = 0) -> SequenceHeader:
        """Parse a SEQUENCE_HEADER unit. `payload_offset` (the absolute offset of the
        payload's first byte) only serves error messages."""
        if unit.type != UnitType.SEQUENCE_HEADER:
            raise BitstreamError(
                f"expected a SEQUENCE_HEADER unit, found {unit.type_name}", payload_offset
            )
        try:
            return _parse_sequence_header(unit.payload, payload_offset)
        except Truncated as exc:
            raise BitstreamError("sequence header payload is truncated", exc.offset) from None


def _parse_sequence_header(data: bytes, base: int) -> SequenceHeader:
    def uleb(pos: int, limit: int, what: str, low: int = 0) -> tuple[int, int]:
        value, end = decode_uleb128(data, pos, limit=limit, base=base, what=what)
        if value < low:
            raise BitstreamError(f"{what} {value} is below the minimum {low}", base + pos)
        return value, end

    codec_id, pos = uleb(0, U32_MAX, "codec id")
    width, pos = uleb(pos, MAX_DIMENSION, "width", 1)
    height, pos = uleb(pos, MAX_DIMENSION, "height", 1)
    fps_num, pos = uleb(pos, U32_MAX, "frame rate numerator", 1)
    fps_den, pos = uleb(pos, U32_MAX, "frame rate denominator", 1)
    if pos >= len(data):
        raise Truncated("sequence header ends before its flags", base + pos)
    flags = data[pos]
    pos += 1
    frame_count = None
    if flags & _FLAG_FRAME_COUNT:
        frame_count, pos = uleb(pos, U63_MAX, "frame count")
    name_len, pos = uleb(pos, MAX_PIX_FMT_LENGTH, "pixel format name length", 1)
    if pos + name_len > len(data):
        raise Truncated("sequence header ends inside the pixel format name", base + len(data))
    raw_name = data[pos : pos + name_len]
    if not all(0x21 <= b <= 0x7E for b in raw_name):
        raise BitstreamError("pixel format name is not printable ASCII", base + pos)
    pos += name_len
    params_len, end = uleb(pos, MAX_UNIT_SIZE, "codec parameters length")
    if params_len > len(data) - end:
        raise BitstreamError(
            f"codec parameters length {params_len} exceeds the {len(data) - end} bytes left",
            base + pos,
        )
    pos = end
    codec_params = data[pos : pos + params_len]
    pos += params_len
    colour = (BT709_CODE,) * 3
    if flags & _FLAG_COLOUR:
        if pos + 3 > len(data):
            raise Truncated("sequence header ends inside its colour description", base + len(data))
        colour = (data[pos], data[pos + 1], data[pos + 2])
        pos += 3
    if pos != len(data):
        raise BitstreamError(
            f"{len(data) - pos} unexpected bytes after the sequence header", base + pos
        )
    return SequenceHeader(
        codec_id=codec_id,
        codec_params=codec_params,
        width=width,
        height=height,
        fps=Fraction(fps_num, fps_den),
        pix_fmt=raw_name.decode("ascii"),
        full_range=bool(flags & _FLAG_FULL_RANGE),
        frame_count=frame_count,
        matrix=colour[0],
        primaries=colour[1],
        transfer=colour[2],
    )
