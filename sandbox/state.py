"""The emulator's mutable state, optionally shared between processes.

The web app and the MCP server may each start an emulator. What a person
changes through one (an Item removed, a connection disabled) must be seen by
the other, so with a ``path`` the state lives in a JSON file: every change is a
read-modify-write under an exclusive ``flock`` on a side lock file, and the file
is replaced atomically so a reader never sees half a write.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox.data import initial_state

State = dict[str, Any]


class StateStore:
    """Holds the state in memory (``path=None``) or in a shared JSON file."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, seed: Callable[[], State] = initial_state
    ) -> None:
        self.path = Path(path) if path is not None else None
        self._seed = seed
        self._memory: State = {} if self.path else seed()
        self._thread_lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with self._file_lock():
                if not self.path.exists():
                    self._write_file(seed())

    def read(self) -> State:
        """A private copy of the current state."""
        if self.path is None:
            with self._thread_lock:
                return copy.deepcopy(self._memory)
        # os.replace makes each version of the file complete: no lock needed to read.
        return self._read_file()

    @contextmanager
    def transaction(self) -> Iterator[State]:
        """Yield the state for changing; it is saved when the block ends without error."""
        if self.path is None:
            with self._thread_lock:
                state = copy.deepcopy(self._memory)
                yield state
                self._memory = state
            return
        with self._file_lock():
            state = self._read_file()
            yield state
            self._write_file(state)

    def reset(self) -> None:
        """Back to the seeded demo data."""
        with self.transaction() as state:
            state.clear()
            state.update(self._seed())

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        assert self.path is not None
        lock_path = self.path.with_name(self.path.name + ".lock")
        with self._thread_lock:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def _read_file(self) -> State:
        assert self.path is not None
        try:
            with open(self.path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            # Deleted behind our back (e.g. `make clean`): start again from the seed.
            return self._seed()

    def _write_file(self, state: State) -> None:
        assert self.path is not None
        # mkstemp makes the file 0600: the state holds the demo's tokens and holdings.
        fd, tmp_name = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(state, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
