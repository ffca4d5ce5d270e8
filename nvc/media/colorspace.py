"""Colour metadata: matrix coefficients, primaries and transfer, as H.273 code points.

The three numbers are those of ITU-T H.273 / ISO/IEC 23091-2 (the same code points
FFmpeg's AVCOL_SPC / AVCOL_PRI / AVCOL_TRC use, and H.264, HEVC, AV1 and Matroska carry).
nvc keeps them as metadata: it reads them from the input, stores them in the sequence
header, writes them to the output, and uses the matrix for RGB <-> Y'CbCr conversion
(nvc.media.color); it never converts between primaries or transfer functions.

"Unspecified" (2) is not kept: readers resolve it to BT.709, which is what nvc assumed
before colour metadata existed. The range (limited or full) is the separate `full_range`
flag of frames, streams and headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from nvc.errors import MediaError

UNSPECIFIED = 2  # H.273 "unspecified" in all three tables

# matrix_coefficients code point -> (FFmpeg name, (Kr, Kb) or None when not a Kr/Kb matrix)
MATRICES: dict[int, tuple[str, tuple[float, float] | None]] = {
    0: ("gbr", None),  # identity: the planes are G, B, R
    1: ("bt709", (0.2126, 0.0722)),
    4: ("fcc", (0.30, 0.11)),
    5: ("bt470bg", (0.299, 0.114)),  # BT.601 625-line
    6: ("smpte170m", (0.299, 0.114)),  # BT.601 525-line
    7: ("smpte240m", (0.212, 0.087)),
    8: ("ycgco", None),
    9: ("bt2020nc", (0.2627, 0.0593)),
    10: ("bt2020c", None),
    11: ("smpte2085", None),
    12: ("chroma-derived-nc", None),
    13: ("chroma-derived-c", None),
    14: ("ictcp", None),
}
# colour_primaries code point -> FFmpeg name
PRIMARIES: dict[int, str] = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
# transfer_characteristics code point -> FFmpeg name
TRANSFERS: dict[int, str] = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}


def _by_name(table: dict[int, str], name: str, what: str) -> int:
    for code, known in table.items():
        if known == name:
            return code
    raise MediaError(f"unknown colour {what} {name!r} (known: {', '.join(table.values())})")


@dataclass(frozen=True)
class ColorSpace:
    """How a stream's samples are to be interpreted (H.273 code points; see the module doc)."""

    matrix: int = 1  # matrix_coefficients: 1 BT.709, 5/6 BT.601, 9 BT.2020 ncl, 0 GBR, ...
    primaries: int = 1  # colour_primaries: 1 BT.709, 5 BT.601 625, 6 BT.601 525, 9 BT.2020
    transfer: int = 1  # transfer_characteristics: 1 BT.709, 6 BT.601, 13 sRGB, 16 PQ, 18 HLG

    def __post_init__(self) -> None:
        for name, table in (
            ("matrix", MATRICES),
            ("primaries", PRIMARIES),
            ("transfer", TRANSFERS),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"colour {name} must be an int code point")
            if value not in table:
                raise MediaError(f"unsupported colour {name} code point {value} (ITU-T H.273)")

    @classmethod
    def from_codes(cls, matrix: int, primaries: int, transfer: int) -> ColorSpace:
        """From H.273 code points as a file states them: unspecified (2), reserved or
        unknown values become BT.709's (1), nvc's assumption when nothing is said."""
        return cls(
            matrix if matrix in MATRICES else 1,
            primaries if primaries in PRIMARIES else 1,
            transfer if transfer in TRANSFERS else 1,
        )

    @classmethod
    def from_names(cls, matrix: str, primaries: str, transfer: str) -> ColorSpace:
        """From FFmpeg's names (e.g. "smpte170m", "bt709", "bt2020nc")."""
        matrix_names = {code: name for code, (name, _) in MATRICES.items()}
        return cls(
            _by_name(matrix_names, matrix, "matrix"),
            _by_name(PRIMARIES, primaries, "primaries"),
            _by_name(TRANSFERS, transfer, "transfer"),
        )

    @property
    def names(self) -> tuple[str, str, str]:
        """FFmpeg's names of (matrix, primaries, transfer)."""
        return MATRICES[self.matrix][0], PRIMARIES[self.primaries], TRANSFERS[self.transfer]

    @property
    def luma_weights(self) -> tuple[float, float]:
        """(Kr, Kb) of the matrix; MediaError for a matrix nvc cannot convert with."""
        weights = MATRICES[self.matrix][1]
        if weights is None:
            raise MediaError(
                f"nvc cannot convert between RGB and Y'CbCr with the {self.names[0]} matrix "
                "(supported: bt709, bt470bg/smpte170m (BT.601), bt2020nc, fcc, smpte240m)"
            )
        return weights

    def __str__(self) -> str:
        return "/".join(self.names)


BT709 = ColorSpace(1, 1, 1)  # HD, and nvc's default
BT601 = ColorSpace(6, 6, 6)  # SD 525-line (NTSC), as most SD files are tagged
BT601_625 = ColorSpace(5, 5, 6)  # SD 625-line (PAL)
BT2020 = ColorSpace(9, 9, 14)  # UHD, non-constant luminance, 10-bit transfer
