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


def _run(outcomes: dict[str, object], name: str, fn) -> threading.Thread:
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
    assert new.get() == []
    assert s.tenant("a").count() == 0
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
    seen: list[object] = []

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
    assert dropped.is_set()
    assert seen == [1]
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
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
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
        assert hits
        assert all(h[0].startswith("new") and h[2]["who"] == "second" and h[2]["i"] < 3 for h in hits)
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


# ---------------------------------------------------------------------------- review findings
def _tenant_dir(root: Path, tid: str = "a") -> Path:
    return root / "tenants" / _store.tenant_dir_name(tid)


def _replace_data_file(root: Path) -> None:
    """What a writer's compaction does to a follower: a new data.mdb (same contents and
    uuid) renamed in, the old lock file removed."""
    d = _tenant_dir(root)
    tmp = root / "new.mdb"
    tmp.write_bytes((d / "data.mdb").read_bytes())
    os.replace(tmp, d / "data.mdb")
    os.unlink(d / "lock.mdb")


def _in_thread(fn, timeout: float = 10.0) -> object:
    out: list[object] = []

    def body() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            out.append(exc)

    th = threading.Thread(target=body, daemon=True)
    th.start()
    th.join(timeout)
    assert out, f"hung for {timeout} s"
    return out[0]


def test_follower_whose_reopen_fails_leaks_no_pin_and_recovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tenantvec._engine import shardfiles as _shard

    w = tenantvec.Store(tmp_path, dim=DIM, flush_interval=0)
    w.create_tenant("a").add(ones(), ids=["x"])
    w.close()
    r = tenantvec.Store(tmp_path, readonly=True)
    t = r.tenant("a")
    assert t.count() == 1
    _replace_data_file(tmp_path)
    real = _shard.reserve_lock_file

    def full_once(path: str) -> None:
        monkeypatch.setattr(_shard, "reserve_lock_file", real)
        raise tenantvec.StorageFull("no room for the lock file", path=path, free=0)

    monkeypatch.setattr(_shard, "reserve_lock_file", full_once)
    assert isinstance(_in_thread(t.count), tenantvec.StorageFull)
    assert _in_thread(t.count) == 1  # room again: loaded anew, not hung on a leaked pin
    assert [s.tenant for s in _in_thread(r.tenant_summaries)] == ["a"]  # type: ignore[attr-defined]
    assert _in_thread(r.close) is None


def test_deactivate_waits_for_a_write_already_past_its_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tenantvec._engine import shard as _shard

    s = tenantvec.Store(tmp_path, dim=DIM, flush_interval=0)
    t = s.create_tenant("a")
    t.add(ones(), ids=["before"])
    entered, go = threading.Event(), threading.Event()
    real_put = _shard.Shard.put

    def paused_put(self: object, *a: object, **kw: object) -> object:
        entered.set()
        go.wait(10)
        return real_put(self, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(_shard.Shard, "put", paused_put)
    out: dict[str, object] = {}
    th = _run(out, "add", lambda: t.add(ones(), ids=["after"]))
    th.start()
    assert entered.wait(10)
    monkeypatch.setattr(_shard.Shard, "put", real_put)
    s.deactivate("a")
    go.set()
    th.join(10)
    assert isinstance(out["add"], tenantvec.TenantInactive), out  # never acknowledged after deactivate
    s.activate("a")
    assert [r.id for r in t.get()] == ["before"]
    s.close()


def test_writer_shard_whose_swap_cannot_reopen_is_loaded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tenantvec._engine import shardfiles as _shard

    s = tenantvec.Store(tmp_path, dim=DIM, flush_interval=0)
    t = s.create_tenant("a")
    t.add(np.random.default_rng(0).random((20, DIM), dtype=np.float32), ids=[f"r{i}" for i in range(20)])
    t.delete(ids=[f"r{i}" for i in range(10)])
    real = _shard.reserve_lock_file

    def full_once(path: str) -> None:
        monkeypatch.setattr(_shard, "reserve_lock_file", real)
        raise tenantvec.StorageFull("no room for the lock file", path=path, free=0)

    monkeypatch.setattr(_shard, "reserve_lock_file", full_once)
    with pytest.raises(tenantvec.StorageFull):
        t.compact()
    assert t.count() == 10
    assert s.tenant("a").count() == 10
    t.add(ones(), ids=["more"])
    assert s.verify("a").ok
    assert t.count() == 11
    s.close()


def test_a_failed_rename_that_is_not_a_collision_is_not_tenant_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    s = tenantvec.Store(tmp_path, dim=DIM, flush_interval=0)
    s.create_tenant("seed").add(ones(), ids=["x"])
    s.export_tenant("seed", tmp_path / "seed.tvx")
    real = os.rename

    def enospc(src: object, dst: object) -> None:
        if ".tmp-" in str(src):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", enospc)
    with pytest.raises(tenantvec.StorageFull):
        s.create_tenant("a")
    with pytest.raises(tenantvec.StorageFull):
        s.import_tenant("c", tmp_path / "seed.tvx")
    monkeypatch.setattr(os, "rename", real)
    assert not s.has_tenant("a")
    assert not s.has_tenant("c")
    assert not [p for p in (tmp_path / "tenants").iterdir() if p.name.startswith(".tmp-")]
    s.close()


def test_out_of_file_descriptors_is_a_storage_error_not_damage(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    w = tenantvec.Store(tmp_path, dim=DIM, flush_interval=0)
    w.create_tenant("a").add(ones(), ids=["x"])
    w.close()
    script = textwrap.dedent(
        """
        import os, resource, sys
        import tenantvec
        store = tenantvec.Store(sys.argv[1], readonly=True)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        held = []
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        try:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        try:
            store.tenant("a")
            print("ok")
        except tenantvec.TenantVecError as exc:
            print(type(exc).__name__)
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        print(store.tenant("a").count())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          env=subprocess_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["StorageError", "1"]


def test_read_only_export_listing_and_dry_run_follow_a_re_create(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    w = tenantvec.Store(tmp_path, dim=DIM, flush_interval=0)
    w.create_tenant("a").add(ones(), ids=["old"])
    w.close()
    r = tenantvec.Store(tmp_path, readonly=True)
    assert r.tenant("a").count() == 1  # hot in the reader
    subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys, numpy as np, tenantvec
        s = tenantvec.Store(sys.argv[1], flush_interval=0)
        s.drop_tenant("a")
        s.create_tenant("a").add(np.ones((2, 4), np.float32), ids=["n1", "n2"])
        s.close()
        """), str(tmp_path)], check=True, env=subprocess_env, timeout=60)
    assert r.export_tenant("a", tmp_path / "a.tvx").records == 2
    assert [(x.tenant, x.count) for x in r.tenant_summaries()] == [("a", 2)]
    assert r.compact("a", dry_run=True).count == 2
    r.close()


def test_follower_sees_a_deactivate_on_its_next_call(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    w = tenantvec.Store(tmp_path, dim=DIM, flush_interval=0)
    w.create_tenant("a").add(ones(), ids=["x"])
    w.close()
    f = Follower(tmp_path, subprocess_env)
    try:
        assert f(op="count", tenant="a")["ok"] == 1
        subprocess.run([sys.executable, "-c", "import sys, tenantvec; s = tenantvec.Store(sys.argv[1]); "
                        "s.deactivate('a'); s.close()", str(tmp_path)], check=True, env=subprocess_env, timeout=60)
        assert f(op="count", tenant="a").get("error") == "TenantInactive"
        subprocess.run([sys.executable, "-c", "import sys, tenantvec; s = tenantvec.Store(sys.argv[1]); "
                        "s.activate('a'); s.close()", str(tmp_path)], check=True, env=subprocess_env, timeout=60)
        assert f(op="count", tenant="a")["ok"] == 1
    finally:
        f.close()
