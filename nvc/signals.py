"""Termination signals as a clean exit: no partial output, no temporary left behind.

SIGINT (Ctrl-C) already raises KeyboardInterrupt, which unwinds every `with` block, so
each writer aborts and deletes its temporary. SIGTERM (what `kill`, systemd and
container runtimes send) and SIGHUP (a closed terminal) would instead end the process
at once and leave `*.tmp` files. Inside `exit_on_signals()` they raise `Terminated` in
the main thread, a KeyboardInterrupt, so they unwind the same way; `nvc` then exits
with 128 + the signal number (130 SIGINT, 143 SIGTERM, 129 SIGHUP), as a shell reports
a process killed by that signal.

After the first signal further SIGTERM / SIGHUP are ignored until the block ends, so a
second `kill` cannot interrupt the cleanup it started.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

HANDLED = tuple(
    s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s
)  # the signals turned into Terminated (SIGHUP does not exist on Windows)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when a handled signal arrives."""

    def __init__(self, signum: int) -> None:
        self.signum = signum  # the signal that arrived
        super().__init__(f"terminated by {signal.Signals(signum).name}")


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The exit status for an interrupt: 128 + its signal (SIGINT for a plain Ctrl-C)."""
    signum = interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT
    return 128 + int(signum)


@contextlib.contextmanager
def exit_on_signals() -> Iterator[None]:
    """Within the block SIGTERM and SIGHUP raise Terminated (unless they were ignored,
    as under `nohup`); the previous handlers are restored afterwards. Outside the main
    thread (where Python cannot set handlers) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        for s in HANDLED:  # let the cleanup that this starts finish
            signal.signal(s, signal.SIG_IGN)
        raise Terminated(signum)

    previous = {}
    for s in HANDLED:
        if signal.getsignal(s) is not signal.SIG_IGN:  # `nohup` keeps SIGHUP ignored
            previous[s] = signal.signal(s, handler)
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)
