"""Work that outlives the request that started it (a move started from a browser)."""

from __future__ import annotations

import threading
from collections.abc import Callable


def in_a_thread(work: Callable[[], None]) -> None:
    """Run ``work`` in a daemon thread of this process.

    If the process stops, the work stops with it; what it records in the database
    (a run's lease lapsing) is how another process notices and takes it over."""
    threading.Thread(target=work, name="brokerage-hub-background", daemon=True).start()
