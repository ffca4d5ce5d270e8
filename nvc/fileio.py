"""Where nvc's outputs go: the one rule every writer follows, and standard input/output.

Every writer of nvc (.nvc files, y4m, raw yuv, mp4/mkv, PNG directories, benchmark
reports) creates its output through `OutputTarget`, which decides by what is at the path:

- nothing, or a regular file: the output is written to a temporary beside it and renamed
  onto it only on success (`commit`); a failure (`discard`) leaves the old file untouched
  and no temporary behind.
- a symbolic link: it is followed. The temporary goes beside the link's final target and
  is renamed onto the target; the link itself stays as it was. A dangling link creates
  its target (as `open()` would) when the target's directory exists.
- a character device (/dev/null, a terminal) or a FIFO: written through. The device is
  opened and the bytes are streamed into it; there is no temporary and no rename, so the
  device survives, and a failure cannot take back what was already streamed.
- `-` (where the writer allows it): standard output, streamed the same way; a path that
  names an open descriptor of the process (/dev/stdout, /dev/fd/3, /proc/self/fd/3) is
  written through that descriptor, whatever it is (pipe, terminal, the file of `> out`).
- a directory (for a file output), a block device or a socket: an error, nothing written.

A directory output (a PNG sequence) is built in a temporary directory beside the
destination and swapped in on success; a symlink to a directory is followed, and any
non-directory at the path is an error.

This module sits at the bottom of the layering next to nvc.errors: nvc.bitstream and
nvc.media both use it, and it imports nothing else of nvc.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

from nvc.errors import NvcError

STDIO = "-"  # the path that means standard output (writers) or standard input (readers)

Kind = Literal["file", "directory"]


def is_stdio(path: object) -> bool:
    """True for the path `-` (standard output or input), as a str or a Path."""
    return isinstance(path, str | os.PathLike) and os.fspath(path) == STDIO


# a path that names an open descriptor of this process: /dev/fd/N, /proc/self/fd/N
_OWN_FD = re.compile(r"/(?:dev/fd|proc/(?:self|thread-self|(?P<pid>[0-9]+))/fd)/(?P<fd>[0-9]+)")


def descriptor(path: str | os.PathLike[str]) -> int | None:
    """The descriptor number when `path` names one of this process's open descriptors
    (/dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N, or a symlink to one); else None.

    Such a path must be written through that descriptor: resolving it gives a name like
    `pipe:[1234]` or the file the shell opened, and renaming onto it would be wrong."""
    p = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on a symlink chain
        m = _OWN_FD.fullmatch(p)
        if m and (m["pid"] is None or int(m["pid"]) == os.getpid()):
            return int(m["fd"])
        if not os.path.islink(p):
            return None
        try:
            p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
        except OSError:
            return None
    return None


def is_stdout(path: str | os.PathLike[str]) -> bool:
    """True when writing `path` writes this process's standard output (`-`, /dev/stdout,
    /dev/fd/1, ...): a command must then print its reports elsewhere (stderr)."""
    return is_stdio(path) or descriptor(path) == 1


def _reason(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


def open_descriptor(fd: int = 1) -> io.BufferedWriter:
    """Descriptor `fd` (default: standard output) as a binary file on a duplicate, so that
    closing it leaves the process's own descriptor open. Python's stdout and stderr are
    flushed first, so nothing printed before is reordered behind the data."""
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        new = os.dup(fd)
    except (AttributeError, ValueError, OSError) as e:
        raise NvcError(f"descriptor {fd} (standard output: 1) is not available: {e}") from None
    return os.fdopen(new, "wb")


def _is_pipe(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def open_stdin() -> io.BufferedReader:
    """Standard input as a binary file (closing it does not close the process's stdin)."""
    try:
        fd = os.dup(sys.stdin.fileno())
    except (AttributeError, ValueError, OSError) as e:
        raise NvcError(f"standard input is not available: {e}") from None
    return os.fdopen(fd, "rb")


class OutputTarget:
    """One output being written; see the module docstring for what happens where.

    Use `write_path` (a library that wants a path) or `open()` (a binary file) to write,
    then `commit()` on success or `discard()` on failure; both are idempotent.
    `error` is the NvcError subclass raised for a path that cannot be written.
    """

    destination: Path  # where the finished output ends up (symlinks resolved); Path("-")
    kind: Kind  # "file" or "directory"
    streaming: bool  # True: bytes go straight into the destination (device, FIFO, stdout)
    stdout: bool  # True: the destination is standard output
    write_path: Path  # where to write now: the temporary, or the destination when streaming
    pipe: bool  # True: the destination cannot seek (a FIFO, or stdout on a pipe)
    fd: int | None  # the open descriptor written through ("-": 1, /dev/fd/N: N), or None

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        kind: Kind = "file",
        allow_stdout: bool = False,
        error: type[NvcError] = NvcError,
    ) -> None:
        self.requested = os.fspath(path)  # the path as given, for messages
        self.kind = kind
        self._error = error
        self._done = False
        self.stdout = is_stdio(path)
        self.fd = 1 if self.stdout else descriptor(path)  # written through this descriptor
        if self.stdout and (not allow_stdout or kind != "file"):
            raise error(f"cannot write {self._what()} to standard output ('-')")
        if self.fd is not None:
            if kind != "file":
                raise self._fail("it is an open file descriptor, not a directory")
            self.destination = self.write_path = Path(path)
            self.streaming = True
            try:
                self.pipe = _is_pipe(self.fd)
            except OSError as e:  # not open
                raise self._fail(_reason(e)) from None
            return
        self.destination = self._resolve(Path(path))
        self.streaming = self._classify(self.destination)
        self.pipe = self.streaming and stat.S_ISFIFO(os.stat(self.destination).st_mode)
        if self.streaming:
            self.write_path = self.destination
        else:
            self.write_path = self._make_temp()

    def _what(self) -> str:
        return "a directory of frames" if self.kind == "directory" else "this output"

    def _fail(self, reason: str) -> NvcError:
        return self._error(f"cannot write {self.requested}: {reason}")

    def _resolve(self, path: Path) -> Path:
        """The path the output really goes to: symlinks followed, the directory checked."""
        if path.is_symlink():
            try:
                path = Path(os.path.realpath(path, strict=False))
            except OSError as e:  # a symlink loop
                raise self._fail(_reason(e)) from None
            if path.is_symlink():  # realpath stops at a loop
                raise self._fail("its symbolic links form a loop")
        parent = path.parent
        if not parent.is_dir():
            raise self._fail(f"directory {parent} does not exist")
        return path

    def _classify(self, path: Path) -> bool:
        """True when `path` is a stream to write through; an error for what must not be
        written; False for a missing path or one that a rename may replace."""
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            return False
        except OSError as e:
            raise self._fail(_reason(e)) from None
        if self.kind == "directory":
            if stat.S_ISDIR(mode):
                return False
            what = "a file" if stat.S_ISREG(mode) else "a device or other special file"
            raise self._fail(f"it is {what}, not a directory")
        if stat.S_ISREG(mode):
            return False
        if stat.S_ISDIR(mode):
            raise self._fail("it is a directory")
        if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
            return True
        what = "a block device" if stat.S_ISBLK(mode) else "a socket or other special file"
        raise self._fail(f"it is {what}; nvc writes only files, character devices and FIFOs")

    def _make_temp(self) -> Path:
        directory, name = self.destination.parent, self.destination.name
        for _ in range(100):
            temp = directory / f".{name}.{secrets.token_hex(6)}.tmp"
            try:
                if self.kind == "directory":
                    temp.mkdir()
                else:
                    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
                    os.close(os.open(temp, flags, 0o666))
            except FileExistsError:
                continue
            except OSError as e:
                raise self._fail(_reason(e)) from None
            return temp
        raise self._fail(f"cannot create a temporary file in {directory}")

    def open(self) -> BinaryIO:
        """A binary file to write the output into (the caller closes it before commit)."""
        if self.kind != "file":
            raise self._error(f"{self.requested} is a directory output; write into write_path")
        if self.fd is not None:
            return open_descriptor(self.fd)
        try:
            if self.streaming:  # a device or FIFO: no O_CREAT, no O_TRUNC
                flags = os.O_WRONLY | getattr(os, "O_BINARY", 0)
                return os.fdopen(os.open(self.write_path, flags), "wb")
            return open(self.write_path, "wb")  # noqa: SIM115 - the caller closes it
        except OSError as e:
            raise self._fail(_reason(e)) from None

    def commit(self) -> None:
        """Move the finished output onto the destination (nothing to do when streaming)."""
        if self._done:
            return
        self._done = True
        if self.streaming:
            return
        try:
            if self.kind == "directory":
                self._swap_directory()
            else:
                os.replace(self.write_path, self.destination)
        except OSError as e:
            self._remove_temp()
            raise self._fail(_reason(e)) from None

    def _swap_directory(self) -> None:
        old = None
        if self.destination.exists():
            old = self.destination.parent / f".{self.destination.name}.{secrets.token_hex(6)}.old"
            os.replace(self.destination, old)
        try:
            os.replace(self.write_path, self.destination)
        except OSError:
            if old is not None and not self.destination.exists():
                os.replace(old, self.destination)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        """Throw away what was written: remove the temporary (a stream keeps what it got)."""
        if self._done:
            return
        self._done = True
        if not self.streaming:
            self._remove_temp()

    def _remove_temp(self) -> None:
        with contextlib.suppress(OSError):
            if self.kind == "directory":
                shutil.rmtree(self.write_path, ignore_errors=True)
            else:
                self.write_path.unlink(missing_ok=True)

    @property
    def finished(self) -> bool:
        """True after commit() or discard()."""
        return self._done


@contextlib.contextmanager
def output_path(
    path: str | os.PathLike[str], *, kind: Kind = "file", error: type[NvcError] = NvcError
) -> Iterator[Path]:
    """The path to write `path`'s content into (a temporary, or `path` itself when it is a
    device or FIFO); committed when the block ends normally, discarded when it raises."""
    target = OutputTarget(path, kind=kind, error=error)
    try:
        yield target.write_path
    except BaseException:
        target.discard()
        raise
    target.commit()
