"""SIGINT/SIGTERM during a run: a clean stop, except for a signal the process ignores."""

from __future__ import annotations

import os
import signal

import pytest

from twin.ops.stopping import RunStopped, critical, stop_on_signals, stopped_by


@pytest.fixture
def restore_signals():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in before.items():
        signal.signal(s, h)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_the_block_stops_the_run(restore_signals, signum):
    with pytest.raises(RunStopped) as stopped, stop_on_signals():
        os.kill(os.getpid(), signum)
    assert stopped.value.exit_code == 128 + signum


def test_a_signal_in_a_critical_section_waits_for_its_end(restore_signals):
    done = []
    with pytest.raises(RunStopped), stop_on_signals():
        with critical():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("finished")  # the day's part is renamed into place first
    assert done == ["finished"]


def test_an_ignored_sigint_stays_ignored_as_under_nohup(restore_signals):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with stop_on_signals():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)  # nothing happens
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    with pytest.raises(RunStopped), stop_on_signals():  # SIGTERM still stops the run
        os.kill(os.getpid(), signal.SIGTERM)


def _wrapped_like_numba(signum: int) -> SystemError:
    """What a signal during a kernel call surfaces as: the handler's RunStopped under
    numba's SystemError, under SimPy's re-raise of it (both set ``__cause__``)."""
    try:
        try:
            raise RunStopped(signum)
        except RunStopped as stop:
            raise SystemError("CPUDispatcher returned a result with an exception set") from stop
    except SystemError as inner:
        outer = SystemError(*inner.args)
        outer.__cause__ = inner
        return outer


def test_stopped_by_finds_a_stop_under_compiled_codes_wrapping():
    stop = stopped_by(_wrapped_like_numba(signal.SIGTERM))
    assert isinstance(stop, RunStopped) and stop.signum == signal.SIGTERM
    assert stopped_by(SystemError("unrelated")) is None
    looped = ValueError("a")
    looped.__context__ = ValueError("b")
    looped.__context__.__context__ = looped  # a cycle ends the walk
    assert stopped_by(looped) is None


def test_a_wrapped_stop_leaves_the_block_as_a_stop(restore_signals):
    with pytest.raises(RunStopped) as stopped, stop_on_signals():
        raise _wrapped_like_numba(signal.SIGINT)
    assert type(stopped.value) is RunStopped
    assert stopped.value.exit_code == 128 + signal.SIGINT
    with pytest.raises(SystemError), stop_on_signals():  # anything else passes through
        raise SystemError("unrelated")
