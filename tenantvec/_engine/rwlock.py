"""A small writer-preferring readers/writer lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class RWLock:
    """Many readers or one writer; waiting writers block new readers (no starvation)."""

    __slots__ = ("_cond", "_lock", "_readers", "_sleepers", "_waiting", "_writer")

    def __init__(self) -> None:
        # Everyone takes the condition's lock directly (a C call) and touches the condition
        # (Python code) only to sleep, or to wake sleepers when there are any.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._readers = 0
        self._writer = False
        self._waiting = 0  # writers waiting: they hold new readers back
        self._sleepers = 0  # threads inside _cond.wait()

    def _sleep(self) -> None:
        self._sleepers += 1
        try:
            self._cond.wait()
        finally:
            self._sleepers -= 1

    def _wake(self) -> None:
        if self._sleepers:
            self._cond.notify_all()

    def acquire_read(self) -> None:
        with self._lock:
            while self._writer or self._waiting:
                self._sleep()
            self._readers += 1

    def release_read(self) -> None:
        with self._lock:
            self._readers -= 1
            if not self._readers and self._waiting:
                self._wake()

    def acquire_write(self) -> None:
        with self._lock:
            self._waiting += 1
            try:
                while self._writer or self._readers:
                    self._sleep()
            except BaseException:  # interrupted: readers held back for this writer may go
                self._waiting -= 1
                if not self._waiting:
                    self._wake()
                raise
            self._waiting -= 1
            self._writer = True

    def release_write(self) -> None:
        with self._lock:
            self._writer = False
            self._wake()

    @contextmanager
    def read(self) -> Iterator[None]:
        self.acquire_read()
        try:
            yield
        finally:
            self.release_read()

    @contextmanager
    def write(self) -> Iterator[None]:
        self.acquire_write()
        try:
            yield
        finally:
            self.release_write()
