"""The error types of nvc. Every failure a user can cause is one of these.

This module is at the very bottom of the layering: every package may import it,
and it imports nothing of nvc.
"""

from __future__ import annotations


class NvcError(Exception):
    """Base of every error nvc raises on purpose. The message is one line for the user."""


class BitstreamError(NvcError, ValueError):
    """A .nvc file or stream is malformed, truncated, corrupted or unsupported.

    `offset` is the byte offset where the problem was found, when known.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        if offset is not None:
            message = f"{message} (at byte offset {offset})"
        super().__init__(message)


class MediaError(NvcError):
    """A video file cannot be read or written: not a video, bad size, unsupported format."""


class CodecError(NvcError):
    """A codec was misused or met data it cannot code (unknown codec, bad parameters)."""
