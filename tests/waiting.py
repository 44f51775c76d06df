"""Polling for tests that watch other processes."""

import time


def wait_for(predicate, timeout: float, what: str, poll: float = 0.1) -> None:
    """Return once ``predicate()`` is true; raise AssertionError naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")
