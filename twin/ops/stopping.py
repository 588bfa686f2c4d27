"""Stop a run at once on SIGINT or SIGTERM, but never in the middle of writing a day.

Why not Python's default: SIGINT raises ``KeyboardInterrupt`` wherever the interpreter
is, printing a traceback, and SIGTERM kills the process outright. Inside
:func:`stop_on_signals` both raise :class:`RunStopped` instead, which the run turns into
one line saying what was kept and how to resume. A signal that arrives inside a
:func:`critical` section (the recorder renaming a day's parts into place, the progress
file being replaced) is held until the section ends, so what is on disk is always a
whole number of days.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0
_pending: int | None = None
_armed = False


class RunStopped(Exception):
    """The user stopped the run (SIGINT: Ctrl-C, or SIGTERM).

    Its only argument is the signal number: SimPy re-raises a process's exception as
    ``type(exc)(*exc.args)``, so the exception must be rebuilt from its args alone.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)

    def __str__(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum


def stopped_by(exc: BaseException) -> RunStopped | None:
    """The :class:`RunStopped` in ``exc``'s chain of causes, if any.

    The handler raises wherever the interpreter is, and when that is a Python callback of
    compiled code (numba's dispatcher unpickling a kernel's constants, at every call), the
    compiled side reports ``SystemError: ... returned a result with an exception set``,
    with the :class:`RunStopped` as its cause; SimPy then re-raises that from the
    process, again as the cause. Seen on 2 of 8 SIGTERMs to a run by hand.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, RunStopped):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _handler(signum: int, _frame) -> None:
    global _pending
    if _depth > 0:
        _pending = signum
        return
    raise RunStopped(signum)


@contextmanager
def critical() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends (then raise :class:`RunStopped`)."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
    if _depth == 0 and _pending is not None and _armed:
        signum, _pending = _pending, None
        raise RunStopped(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`RunStopped` (main thread only:
    elsewhere Python cannot install handlers, and the block leaves signals alone).

    A signal the process was told to ignore stays ignored: ``nohup`` and a shell's
    background job set SIGINT to ``SIG_IGN`` so that a Ctrl-C meant for the terminal does
    not reach them, and a run started that way must not stop on one."""
    global _armed, _pending
    if threading.current_thread() is not threading.main_thread() or _armed:
        yield
        return
    watched = [s for s in (signal.SIGINT, signal.SIGTERM)
               if signal.getsignal(s) is not signal.SIG_IGN]  # fmt: skip
    previous = {s: signal.signal(s, _handler) for s in watched}
    _armed, _pending = True, None
    try:
        yield
    except Exception as exc:  # a stop wrapped by compiled code: raised as itself
        stop = stopped_by(exc)
        if stop is None or stop is exc:
            raise
        raise RunStopped(stop.signum) from None
    finally:
        _armed = False
        for s, h in previous.items():
            signal.signal(s, h)
