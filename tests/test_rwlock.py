"""The shard's readers/writer lock (tenantvec._engine.rwlock): readers share, writers exclude,
waiting writers hold back new readers, and an interrupted writer lets them go again."""

from __future__ import annotations

import threading
import time

from tenantvec._engine.rwlock import RWLock


def _start(target) -> threading.Thread:
    th = threading.Thread(target=target, daemon=True)
    th.start()
    return th


def _wait_until(cond, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.002)
    return cond()


def test_readers_share_and_a_writer_excludes_them():
    lock = RWLock()
    lock.acquire_read()
    lock.acquire_read()  # a second reader does not wait
    wrote = threading.Event()

    def writer():
        with lock.write():
            wrote.set()

    th = _start(writer)
    time.sleep(0.05)
    assert not wrote.is_set()  # two readers hold it
    lock.release_read()
    time.sleep(0.05)
    assert not wrote.is_set()  # one still does
    lock.release_read()
    th.join(5)
    assert wrote.is_set()


def test_waiting_writer_holds_back_new_readers():
    lock = RWLock()
    lock.acquire_read()
    order: list[str] = []
    w = _start(lambda: (lock.acquire_write(), order.append("w"), lock.release_write()))
    assert _wait_until(lambda: lock._waiting == 1)
    r = _start(lambda: (lock.acquire_read(), order.append("r"), lock.release_read()))
    time.sleep(0.05)
    assert order == []  # the new reader waits behind the writer
    lock.release_read()
    w.join(5)
    r.join(5)
    assert order == ["w", "r"]


class _Interrupted(Exception):
    pass


class _InterruptibleCondition:
    """Wraps the lock's condition so that one chosen thread's wait() raises, as a signal
    handler raising KeyboardInterrupt in a waiting writer would."""

    def __init__(self, cond: threading.Condition) -> None:
        self._cond = cond
        self.victim: int | None = None

    def wait(self, timeout: float | None = None) -> bool:
        result = self._cond.wait(timeout)
        if threading.get_ident() == self.victim:
            raise _Interrupted
        return result

    def notify_all(self) -> None:
        self._cond.notify_all()

    def notify_first(self) -> None:
        self._cond.notify(1)  # CPython wakes waiters in the order they began waiting

    def __enter__(self):
        return self._cond.__enter__()

    def __exit__(self, *exc):
        return self._cond.__exit__(*exc)


def test_interrupted_writer_releases_the_readers_it_held_back():
    lock = RWLock()
    cond = _InterruptibleCondition(lock._cond)
    lock._cond = cond  # type: ignore[assignment]
    lock.acquire_read()  # a long-running reader: the writer has to wait
    outcome: list[str] = []

    def writer():
        cond.victim = threading.get_ident()
        try:
            lock.acquire_write()
        except _Interrupted:
            outcome.append("interrupted")

    w = _start(writer)
    assert _wait_until(lambda: lock._waiting == 1)
    got_read = threading.Event()
    r = _start(lambda: (lock.acquire_read(), got_read.set()))
    time.sleep(0.05)
    assert not got_read.is_set()  # held back by the waiting writer
    with lock._lock:
        cond.notify_first()  # wakes only the writer (the first waiter); its wait() raises
    w.join(5)
    assert outcome == ["interrupted"]
    assert lock._waiting == 0
    assert got_read.wait(5), "reader stayed blocked after the writer gave up"
    r.join(5)
    lock.release_read()
    lock.release_read()
    with lock.write():  # and the lock still works
        pass
