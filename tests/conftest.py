"""Shared fixtures. Importing ``twin`` configures astropy offline for every test."""

import signal

import matplotlib
import pytest

import twin  # noqa: F401

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _sigint_delivered():
    """Every test starts with SIGINT delivered, as in a terminal. A shell starts a
    background job (``&``, ``nohup``) with SIGINT ignored, and the twin keeps an ignored
    SIGINT ignored; the tests of stopping on SIGINT would then see nothing. The test of
    an ignored SIGINT sets that up itself."""
    before = signal.getsignal(signal.SIGINT)
    if before is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)
