"""Lifecycle calls racing data calls: drops, re-creates, verify and eviction.

A drop is atomic with respect to every other call on its tenant: a call that was running
finishes first, a call arriving meanwhile waits and then fails with ``TenantNotFound``;
nothing ever loads a dropped incarnation again, nothing is acknowledged into deleted
files, and a stream of calls cannot starve the drop. Read-only followers (separate
processes) notice a drop or a re-create on their next call and never answer from the
previous incarnation's memory.

The races are driven deterministically: a patched point inside the drop (its rename)
starts the competing calls and checks that they are held back before letting it go on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import tenantvec
from tenantvec import _store

DIM = 4


def ones(n: int = 1) -> np.ndarray:
    return np.ones((n, DIM), np.float32)


def test_issue_reproduction_nested_call_before_drop_resurrects_nothing(tmp_path: Path) -> None:
    """The reproduction from the issue: a call landing while drop_tenant runs (played by
    a patched uuid4) no longer reloads the dropped files."""
    s = tenantvec.Store(tmp_path, dim=DIM)
    s.create_tenant("a").add(ones(), ids=["old"], documents=["dropped data"])
    real = uuid.uuid4

    def racing() -> uuid.UUID:
        s.tenant("a").count()
        return real()

    uuid.uuid4 = racing
    try:
        s.drop_tenant("a")
    finally:
        uuid.uuid4 = real
    s.create_tenant("a")
    assert [(r.id, r.document) for r in s.tenant("a").get()] == []
    s.tenant("a").add(ones(), ids=["new"])
    assert s.verify("a").records == 1
    assert [r.id for r in s.tenant("a").get()] == ["new"]
    s.close()


class _RenameGate:
    """Patches the rename inside ``drop_tenant``: on the first call it starts ``racers``
    (threads), checks they are still waiting after ``hold`` seconds, then renames."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, racers: list[threading.Thread], hold: float = 0.3) -> None:
        self.racers, self.hold = racers, hold
        self.blocked: list[bool] = []
        self._real = os.rename
        monkeypatch.setattr(_store.os, "rename", self)

    def __call__(self, src: object, dst: object) -> None:
        if not self.blocked and ".drop-" in str(dst):
            for t in self.racers:
                t.start()
            time.sleep(self.hold)
            self.blocked = [t.is_alive() for t in self.racers]
        self._real(src, dst)  # type: ignore[arg-type]


def _run(outcomes: dict[str, object], name: str, fn) -> threading.Thread:  # noqa: ANN001
    def body() -> None:
        try:
            outcomes[name] = fn()
        except BaseException as exc:
            outcomes[name] = exc

    return threading.Thread(target=body, name=name)


def test_calls_landing_inside_a_drop_wait_and_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = tenantvec.Store(tmp_path, dim=DIM, flush_interval=0)
    old = s.create_tenant("a")
    old.add(ones(3), ids=["x", "y", "z"], documents=["d1", "d2", "d3"])
    outcomes: dict[str, object] = {}
    racers = [
        _run(outcomes, "count", lambda: s.tenant("a").count()),
        _run(outcomes, "add_old_handle", lambda: old.add(ones(), ids=["late"])),
        _run(outcomes, "query", lambda: old.query(ones()[0], k=3)),
        _run(outcomes, "get_by_store", lambda: s.tenant("a").get()),
    ]
    gate = _RenameGate(monkeypatch, racers)
    s.drop_tenant("a")
    for t in racers:
        t.join(10)
    assert gate.blocked == [True] * len(racers), "calls on the tenant ran inside the drop"
    for name, out in outcomes.items():
        assert isinstance(out, tenantvec.TenantNotFound), (name, out)
    assert not s.has_tenant("a")
    assert not s._manager.is_hot("a")
    new = s.create_tenant("a")
    assert new.get() == [] and s.tenant("a").count() == 0
    s.tenant("a").add(ones(), ids=["new"])
    with pytest.raises(tenantvec.TenantNotFound):
        old.add(ones(), ids=["into-the-old-one"])
    assert [r.id for r in new.get()] == ["new"]
    assert s.verify("a").records == 1
    s.close()
    with tenantvec.Store(tmp_path, readonly=True) as ro:
        assert [r.id for r in ro.tenant("a").get()] == ["new"]


def test_a_call_running_when_the_drop_starts_completes_first(tmp_path: Path) -> None:
    s = tenantvec.Store(tmp_path, dim=DIM, flush_interval=0)
    t = s.create_tenant("a")
    t.add(ones(), ids=["x"])
    entered, release = threading.Event(), threading.Event()
    seen: list[object] = []

    def slow_where(rec: list) -> bool:  # noqa: ARG001
        entered.set()
        release.wait(5)
        return True

    # A running call: holds the shard pinned until released.
    shard = s._manager.pin("a")
    dropped = threading.Event()

    def drop() -> None:
        s.drop_tenant("a")
        dropped.set()

    th = threading.Thread(target=drop)
    th.start()
    time.sleep(0.2)
    assert not dropped.is_set(), "the drop did not wait for the running call"
    seen.append(shard.count())  # the running call still reads its tenant
    s._manager.unpin(shard)
    th.join(5)
    assert dropped.is_set() and seen == [1]
    with pytest.raises(tenantvec.TenantNotFound):
        t.count()
    s.close()


@pytest.mark.parametrize("op", ["drop", "verify", "deactivate"])
def test_lifecycle_calls_are_not_starved_by_a_querying_thread(tmp_path: Path, op: str) -> None:
    s = tenantvec.Store(tmp_path, dim=DIM, flush_interval=0)
    t = s.create_tenant("a")
    t.add(np.random.default_rng(0).random((50, DIM), dtype=np.float32))
    stop = threading.Event()
    errors: list[BaseException] = []

    def hammer() -> None:
        while not stop.is_set():
            try:
                t.query(ones()[0], k=5)
            except (tenantvec.TenantNotFound, tenantvec.TenantInactive):
                pass
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for th in threads:
        th.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    try:
        if op == "drop":
            s.drop_tenant("a")
        elif op == "verify":
            assert s.verify("a").ok
        else:
            s.deactivate("a")
        took = time.monotonic() - t0
    finally:
        stop.set()
        for th in threads:
            th.join(10)
    assert not errors
    assert took < 5.0, f"{op} took {took:.1f} s under a stream of queries"
    s.close()


def test_verify_and_drop_racing_many_threads_never_mix_incarnations(tmp_path: Path) -> None:
    """Threads add, query and read while others drop and re-create the tenants: every
    record served belongs to the incarnation the reader's handle was bound to, and
    every acknowledged write of the current incarnation is present at the end."""
    s = tenantvec.Store(tmp_path, dim=DIM, flush_interval=0, max_hot=2)
    tids = ["a", "b", "c"]
    for tid in tids:
        s.create_tenant(tid)
    lock = threading.Lock()
    acked: dict[tuple[str, str], set[str]] = {}  # (tenant, incarnation uuid) -> acked ids
    bad: list[str] = []
    stop = threading.Event()
    rng_seed = iter(range(1000))

    def worker() -> None:
        rng = np.random.default_rng(next(rng_seed))
        n = 0
        while not stop.is_set():
            tid = tids[int(rng.integers(len(tids)))]
            try:
                h = s.tenant(tid)
                inc = h._uuid
                if rng.random() < 0.5:
                    n += 1
                    rid = f"{threading.get_ident()}-{n}"
                    h.add(rng.random((1, DIM), dtype=np.float32) + 0.1, ids=[rid], documents=[f"{tid}|{inc}"])
                    with lock:
                        acked.setdefault((tid, inc), set()).add(rid)
                else:
                    for r in h.get():
                        if r.document != f"{tid}|{inc}":
                            bad.append(f"{tid}/{inc} served {r.id} {r.document}")
            except tenantvec.TenantNotFound:
                pass

    def lifecycle() -> None:
        rng = np.random.default_rng(99)
        while not stop.is_set():
            tid = tids[int(rng.integers(len(tids)))]
            try:
                if rng.random() < 0.5:
                    s.drop_tenant(tid)
                    s.create_tenant(tid)
                else:
                    assert s.verify(tid).ok
            except (tenantvec.TenantNotFound, tenantvec.TenantExists):
                pass

    threads = [threading.Thread(target=worker) for _ in range(4)] + [threading.Thread(target=lifecycle)]
    for th in threads:
        th.start()
    time.sleep(3)
    stop.set()
    for th in threads:
        th.join(20)
    assert not any(th.is_alive() for th in threads)
    assert not bad, bad[:5]
    for tid in tids:
        h = s.tenant(tid)
        got = {r.id for r in h.get()}
        assert got == acked.get((tid, h._uuid), set())
        assert s.verify(tid).ok
    s.close()


# ---------------------------------------------------------------------------- followers
FOLLOWER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tenantvec
    store = tenantvec.Store(sys.argv[1], readonly=True)
    handles = {}
    def run(cmd):
        op, name = cmd["op"], cmd.get("handle")
        if op == "bind":
            handles[name] = store.tenant(cmd["tenant"])
            return "bound"
        h = handles[name] if name else store.tenant(cmd["tenant"])
        if op == "get":
            return [[r.id, r.document, r.metadata] for r in h.get(where=cmd.get("where"))]
        if op == "query":
            hits = h.query(np.asarray(cmd["vector"], np.float32), k=cmd["k"], where=cmd.get("where"))
            return [[x.id, x.document, x.metadata] for x in hits]
        if op == "count":
            return h.count()
    for line in sys.stdin:
        try:
            out = {"ok": run(json.loads(line))}
        except tenantvec.TenantVecError as exc:
            out = {"error": type(exc).__name__, "message": str(exc)}
        print(json.dumps(out), flush=True)
    """
)


class Follower:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FOLLOWER, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env,
        )

    def __call__(self, **cmd: object) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"follower died: rc={self.proc.poll()} {self.proc.stderr.read() if self.proc.stderr else ''}"
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("n", [5, 40])  # exact and HNSW tenants (hnsw_threshold=20)
def test_follower_never_serves_a_dropped_or_previous_incarnation(
    tmp_path: Path, subprocess_env: dict[str, str], metric: str, n: int
) -> None:
    rng = np.random.default_rng(1)
    w = tenantvec.Store(tmp_path, dim=DIM, metric=metric, hnsw_threshold=20, flush_interval=0)
    vecs = rng.random((n, DIM), dtype=np.float32) + 0.1
    w.create_tenant("a").add(vecs, ids=[f"old{i}" for i in range(n)], documents=["first customer"] * n,
                             metadata=[{"who": "first", "i": i} for i in range(n)])
    w.flush()
    f = Follower(tmp_path, subprocess_env)
    try:
        f(op="bind", handle="old", tenant="a")
        assert len(f(op="get", tenant="a")["ok"]) == n  # hot in the follower
        w.drop_tenant("a")
        for cmd in ({"op": "get", "handle": "old"}, {"op": "get", "tenant": "a"},
                    {"op": "query", "handle": "old", "vector": vecs[0].tolist(), "k": 3}):
            assert f(**cmd).get("error") == "TenantNotFound", cmd
        # re-created under the same id, with the same labels (0..n-1) but other data
        w.create_tenant("a").add(vecs, ids=[f"new{i}" for i in range(n)], documents=["second customer"] * n,
                                 metadata=[{"who": "second", "i": i} for i in range(n)])
        w.flush()
        assert f(op="get", handle="old").get("error") == "TenantNotFound"
        got = f(op="get", tenant="a")["ok"]
        assert sorted(r[0] for r in got) == sorted(f"new{i}" for i in range(n))
        assert {r[1] for r in got} == {"second customer"}
        hits = f(op="query", tenant="a", vector=vecs[0].tolist(), k=3, where={"i": {"$lt": 3}})["ok"]
        assert hits and all(h[0].startswith("new") and h[2]["who"] == "second" and h[2]["i"] < 3 for h in hits)
        f(op="bind", handle="new", tenant="a")
        assert f(op="count", handle="new")["ok"] == n
    finally:
        f.close()
        w.close()


def test_follower_follows_a_drop_while_it_holds_the_tenant_cold_then_hot(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """Drop + re-create while the follower has the tenant cold, then hot again."""
    w = tenantvec.Store(tmp_path, dim=DIM, flush_interval=0)
    w.create_tenant("a").add(ones(), ids=["one"])
    w.create_tenant("b").add(ones(), ids=["b1"])
    f = Follower(tmp_path, subprocess_env)
    try:
        assert f(op="count", tenant="b")["ok"] == 1
        w.drop_tenant("a")
        assert f(op="count", tenant="a").get("error") == "TenantNotFound"
        w.create_tenant("a").add(ones(2), ids=["two", "three"])
        assert sorted(r[0] for r in f(op="get", tenant="a")["ok"]) == ["three", "two"]
        assert f(op="count", tenant="b")["ok"] == 1
    finally:
        f.close()
        w.close()
