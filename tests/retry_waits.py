"""Retries in tests record how long they would have waited; nothing sleeps.

A module of its own (not the conftest, which pytest loads a second time under
another name) so that every test and fixture appends to the same list.
"""

from __future__ import annotations

from providers.calls import RetryPolicy

# How long this test's retries would have waited (emptied before each test).
RETRY_WAITS: list[float] = []


def record_retry_wait(seconds: float) -> None:
    """The ``sleep`` of every retry in tests: it records the wait instead of waiting."""
    RETRY_WAITS.append(seconds)


def recording_retry_policy() -> RetryPolicy:
    """The retry policy of a client a test makes itself: 3 attempts, waits recorded."""
    return RetryPolicy(attempts=3, sleep=record_retry_wait)
