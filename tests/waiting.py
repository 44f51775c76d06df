"""Polling for tests that watch other processes."""

import time


def wait_for(predicate, timeout: float, what, poll: float = 0.1) -> None:
    """Return once ``predicate()`` is true; raise AssertionError naming ``what`` (a string, or a callable
    giving one at the time of failure) after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
