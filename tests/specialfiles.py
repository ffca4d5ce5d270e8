"""Special files for the output tests: a private null device and a FIFO with a reader."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path


def make_null_device(directory: Path) -> Path:
    """A private character device that acts as /dev/null (mknod needs root), else
    /dev/null itself: a writer must write through either, never replace it."""
    node = directory / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError):
        return Path("/dev/null")
    return node


def is_null_device(path: Path) -> bool:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3


class FifoReader:
    """Reads everything written to a FIFO in a thread (opening a FIFO blocks until both
    ends are open)."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.data = b""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with open(self.path, "rb") as f:
            self.data = f.read()

    def result(self) -> bytes:
        self._thread.join(timeout=20)
        assert not self._thread.is_alive(), "the FIFO was never closed by its writer"
        return self.data
