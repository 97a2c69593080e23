"""Gunicorn hooks for the load harness (``gunicorn -c python:bench.gunicorn_conf``).

A worker says so on the error log once it has loaded the app, so the harness
starts the load when every worker can answer, without sleeping or guessing.
"""

from __future__ import annotations

from typing import Any

READY_LINE = "brokerage-hub worker ready"


def post_worker_init(worker: Any) -> None:
    worker.log.info("%s (pid %s)", READY_LINE, worker.pid)
