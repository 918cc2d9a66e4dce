"""Recovery: damaged or stale index snapshots heal on open, a misplaced shard is refused,
the writer lock holds across processes, readonly openers see committed data, and
``durability="process"`` survives a killed writer."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from oracles import search

import tenantvec
from tenantvec._engine.index import HnswIndex
from tenantvec._ids import tenant_dir_name

DIM = 8
THRESHOLD = 20
N = 80


def tenant_path(root: Path, tid: str) -> Path:
    return root / "tenants" / tenant_dir_name(tid)


def index_file(root: Path, tid: str = "acme") -> Path:
    return tenant_path(root, tid) / "index.hnsw"


def open_store(root: Path, **kw) -> tenantvec.Store:
    return tenantvec.Store(root, hnsw_threshold=THRESHOLD, **kw)


def vectors(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


@contextlib.contextmanager
def python_child(script: str, *args: str, env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen]:
    """``python -c script args`` with pipes for stdin, stdout and stderr; killed if it is
    still running when the block exits."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def populate(root: Path, n: int = N) -> dict[str, np.ndarray]:
    """An HNSW tenant 'acme' (l2) with ``n`` records, closed cleanly (snapshot written)."""
    vecs = vectors(n, 0)
    ids = [f"m{i}" for i in range(n)]
    with open_store(root, dim=DIM, metric="l2") as store:
        t = store.create_tenant("acme")
        t.add(vecs, ids=ids, metadata=[{"tenant": "acme", "i": i} for i in range(n)])
        assert t.info().index_kind == "hnsw"
    assert index_file(root).is_file()
    return dict(zip(ids, vecs))


def check_tenant(store: tenantvec.Store, tid: str, model: dict[str, np.ndarray], metric: str = "l2") -> None:
    """The tenant holds exactly ``model``, and its index agrees with LMDB."""
    t = store.tenant(tid)
    assert t.count() == len(model)
    assert t.info().count == len(model)
    recs = t.get(include_vectors=True)
    assert {r.id for r in recs} == set(model)
    for r in recs:
        assert np.array_equal(r.vector, model[r.id]), r.id
    if not model:
        assert t.query(np.ones(DIM, dtype=np.float32), k=3) == []
        return
    # The index holds exactly the live records: a query for all of them returns each once.
    hits = t.query(np.ones(DIM, dtype=np.float32), k=len(model))
    assert sorted(h.id for h in hits) == sorted(model)
    # Every stored vector is found by its own query, at distance 0.
    ids = list(model)
    found = t.query(np.stack([model[i] for i in ids]), k=1)
    for rid, row in zip(ids, found):
        assert len(row) == 1
        assert row[0].id == rid, f"query for {rid!r} returned {row[0].id!r}"
        assert row[0].distance == pytest.approx(0.0, abs=1e-4)
    # Top-5 against the exact search of tests/oracles.py for random queries.
    for q in vectors(10, 99):
        _, want = search(metric, model, q, 5)
        got = [h.distance for h in t.query(q, k=5)]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def warnings_for(caplog, tid: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("tenantvec") and r.levelno >= logging.WARNING and repr(tid) in r.getMessage()
    ]


# ---------------------------------------------------------------------------- damaged snapshots
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _flip_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(0, 24):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def _delete(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    "damage", [_truncate, _flip, _flip_header, _delete], ids=["truncated", "flipped", "header", "deleted"]
)
def test_damaged_snapshot_heals_on_reopen(tmp_path, caplog, damage):
    root = tmp_path / "store"
    model = populate(root)
    damage(index_file(root))
    with caplog.at_level(logging.WARNING, logger="tenantvec"), open_store(root) as store:
        check_tenant(store, "acme", model)
        assert store.tenant("acme").info().index_kind == "hnsw"
    assert warnings_for(caplog, "acme"), "healing a damaged snapshot must log a warning"

    # The healed snapshot was written back: the next open is silent and still correct.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tenantvec"), open_store(root) as store:
        check_tenant(store, "acme", model)
    assert warnings_for(caplog, "acme") == []


def test_rebuilt_index_re_links_records_its_graph_left_unreachable(tmp_path, monkeypatch):
    # Which graphs leave a node unreachable is tested in test_index; here: a rebuild on
    # open asks, re-inserts what is reported, and asks again.
    root = tmp_path / "store"
    model = populate(root)
    index_file(root).unlink()
    real, looks = HnswIndex.unreachable, []

    def first_look_reports_label_3(self: HnswIndex) -> np.ndarray:
        looks.append(self.get_vectors(np.array([3]))[0].copy())
        return np.array([3]) if len(looks) == 1 else real(self)

    monkeypatch.setattr(HnswIndex, "unreachable", first_look_reports_label_3)
    with open_store(root) as store:
        check_tenant(store, "acme", model)
        assert len(looks) == 2  # re-inserted, then looked at again
        np.testing.assert_array_equal(looks[0], looks[1])  # with the same vector


def test_rebuild_goes_on_when_the_graph_cannot_be_checked(tmp_path, caplog, monkeypatch):
    root = tmp_path / "store"
    model = populate(root)
    index_file(root).unlink()

    def no_room(_self: HnswIndex) -> np.ndarray:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(HnswIndex, "unreachable", no_room)
    with caplog.at_level(logging.WARNING, logger="tenantvec"), open_store(root) as store:
        check_tenant(store, "acme", model)
        assert store.tenant("acme").info().index_kind == "hnsw"
        assert store.verify("acme").notes[-1].startswith("could not check that every record can be reached")
    assert any("could not check the new HNSW graph" in w for w in warnings_for(caplog, "acme"))


def test_stale_snapshot_from_earlier_checkpoint_heals(tmp_path, caplog):
    root = tmp_path / "store"
    model = populate(root)
    old = tmp_path / "old.hnsw"
    shutil.copy2(index_file(root), old)

    with open_store(root) as store:
        t = store.tenant("acme")
        more = vectors(30, 1)
        ids = [f"n{i}" for i in range(30)]
        t.add(more, ids=ids, metadata=[{"tenant": "acme"}] * 30)
        model.update(zip(ids, more))
        gone = [f"m{i}" for i in range(0, 20, 2)] + ["n3"]
        assert t.delete(ids=gone) == len(gone)
        for rid in gone:
            del model[rid]
        upd = vectors(5, 2)
        up_ids = ["m1", "m3", "n5", "new1", "new2"]
        t.upsert(upd, ids=up_ids)
        model.update(zip(up_ids, upd))
        store.flush()  # a newer checkpoint: the op log before it is pruned
        assert t.info().checkpoint_seq == t.info().seq
    assert not np.array_equal(np.fromfile(old, dtype=np.uint8), np.fromfile(index_file(root), dtype=np.uint8))

    shutil.copy2(old, index_file(root))  # roll the snapshot back to the earlier checkpoint
    with caplog.at_level(logging.WARNING, logger="tenantvec"), open_store(root) as store:
        check_tenant(store, "acme", model)
        # Deleted and replaced records must not come back from the old snapshot.
        t = store.tenant("acme")
        assert t.get(ids=gone) == []
        hit = t.query(model["m1"], k=1)[0]
        assert hit.id == "m1"
        assert hit.distance == pytest.approx(0.0, abs=1e-4)
    assert warnings_for(caplog, "acme")


def test_snapshot_older_than_log_is_replayed_without_loss(tmp_path):
    """Writes after the last checkpoint live in the op log only; a reopen replays them."""
    root = tmp_path / "store"
    model = populate(root)
    with open_store(root) as store:
        t = store.tenant("acme")
        more = vectors(10, 3)
        t.add(more, ids=[f"x{i}" for i in range(10)])
        model.update((f"x{i}", v) for i, v in enumerate(more))
        t.delete(ids=["m0", "m1"])
        del model["m0"], model["m1"]
        info = t.info()
        assert info.checkpoint_seq < info.seq
        snap = index_file(root).read_bytes()
        # Simulate a crash: copy the files while the writer is still open (no close-time flush).
        crashed = tmp_path / "crashed"
        shutil.copytree(root, crashed, ignore=shutil.ignore_patterns("LOCK", "lock.mdb"))
    assert (crashed / "tenants" / tenant_dir_name("acme") / "index.hnsw").read_bytes() == snap
    with open_store(crashed) as store:
        check_tenant(store, "acme", model)


def test_leftovers_of_an_interrupted_snapshot_or_compaction_are_harmless_and_removed(tmp_path):
    """A crash can leave index.hnsw.partial or a .compact-* work directory (a copy of the
    tenant's data that no file count shows). A read-only opener leaves them; the writer
    removes them when it loads the tenant, and serves the tenant unchanged."""
    root = tmp_path / "store"
    model = populate(root)
    shard_dir = index_file(root).parent
    (shard_dir / "index.hnsw.partial").write_bytes(b"\x00garbage" * 100)
    work = shard_dir / ".compact-0123abcd"
    work.mkdir()
    (work / "data.mdb").write_bytes(b"\x00" * 4096)
    with tenantvec.Store(root, readonly=True) as store:
        check_tenant(store, "acme", model)
    assert work.is_dir()
    assert (shard_dir / "index.hnsw.partial").exists()
    with open_store(root) as store:
        check_tenant(store, "acme", model)
        assert sorted(p.name for p in shard_dir.iterdir()) == ["data.mdb", "index.hnsw", "lock.mdb"]
        t = store.tenant("acme")
        t.add(vectors(1, 5), ids=["late"])
        model["late"] = vectors(1, 5)[0]
    with open_store(root) as store:
        check_tenant(store, "acme", model)


# ---------------------------------------------------------------------------- identity
def test_shard_with_foreign_tenant_id_is_refused(tmp_path):
    root = tmp_path / "store"
    with open_store(root, dim=DIM, metric="cosine") as store:
        store.create_tenant("a").add(vectors(5, 0), ids=[f"a{i}" for i in range(5)], metadata=[{"tenant": "a"}] * 5)
        store.create_tenant("b").add(vectors(3, 1), ids=[f"b{i}" for i in range(3)], metadata=[{"tenant": "b"}] * 3)
    # Put tenant a's shard where tenant b's belongs.
    shutil.rmtree(tenant_path(root, "b"))
    os.rename(tenant_path(root, "a"), tenant_path(root, "b"))

    with open_store(root) as store:
        assert store.has_tenant("b")
        # Getting a handle loads the shard, so the mismatch is refused right there, every time.
        for _ in range(2):
            with pytest.raises(tenantvec.CorruptShard) as exc:
                store.tenant("b")
            assert "'b'" in str(exc.value)
            assert "'a'" in str(exc.value)
        assert store.stats().hot == 0, "a refused shard must not stay loaded"
        # The rest of the store keeps working.
        c = store.create_tenant("c")
        c.add(vectors(2, 4), ids=["c0", "c1"])
        assert c.count() == 2

    # Nothing was written through the refused handle: put the shard back and look.
    os.rename(tenant_path(root, "b"), tenant_path(root, "a"))
    with open_store(root) as store:
        a = store.tenant("a")
        assert a.count() == 5
        assert sorted(r.id for r in a.get()) == [f"a{i}" for i in range(5)]
        assert a.get(ids=["intruder"]) == []


# ---------------------------------------------------------------------------- processes
LOCK_PROBE = textwrap.dedent(
    """
    import json, sys
    import tenantvec
    try:
        store = tenantvec.Store(sys.argv[1])
    except tenantvec.TenantVecError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    else:
        store.close()
        print(json.dumps({"error": None}))
    """
)


def test_second_writer_process_gets_store_locked(tmp_path, subprocess_env):
    root = tmp_path / "store"

    def probe() -> dict:
        proc = subprocess.run(
            [sys.executable, "-c", LOCK_PROBE, str(root)],
            capture_output=True, text=True, env=subprocess_env, cwd=tmp_path, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    with open_store(root, dim=DIM) as store:
        store.create_tenant("acme").add(vectors(2, 0))
        out = probe()
        assert out["error"] == "StoreLocked"
        assert str(os.getpid()) in out["message"], out["message"]
        # The refused opener changed nothing: this writer still works.
        assert store.tenant("acme").count() == 2
    assert probe() == {"error": None}, "the lock must be released by close()"


READER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tenantvec

    def dump(store):
        out = {"tenants": store.tenants()}
        for tid in out["tenants"]:
            t = store.tenant(tid)
            recs = t.get(include_vectors=True)
            entry = {
                "count": t.count(),
                "records": {r.id: [r.vector.tolist(), r.metadata, r.document] for r in recs},
                "all_hits": [],
                "self_hits": [],
            }
            if recs:
                q = np.ones(len(recs[0].vector), dtype=np.float32)
                hits = t.query(q, k=len(recs))
                entry["all_hits"] = [h.id for h in hits]
                entry["hit_records"] = {h.id: [h.metadata, h.document] for h in hits}
                mat = np.stack([r.vector for r in recs])
                entry["self_hits"] = [[row[0].id, row[0].distance] for row in t.query(mat, k=1)]
            out[tid] = entry
        return out

    store = tenantvec.Store(sys.argv[1], readonly=True)
    result = {"phase1": dump(store), "refused": {}}
    t = store.tenant("hn")
    v = np.ones(8, dtype=np.float32)
    attempts = {
        "add": lambda: t.add(v[None], ids=["ro"]),
        "upsert": lambda: t.upsert(v[None], ids=["ro"]),
        "delete": lambda: t.delete(ids=["h0"]),
        "delete_where": lambda: t.delete(where={}),
        "create_tenant": lambda: store.create_tenant("newcomer"),
        "drop_tenant": lambda: store.drop_tenant("ex"),
        "deactivate": lambda: store.deactivate("ex"),
    }
    for name, call in attempts.items():
        try:
            call()
        except Exception as exc:
            result["refused"][name] = type(exc).__name__
        else:
            result["refused"][name] = None
    print(json.dumps(result), flush=True)
    sys.stdin.readline()  # the parent writes more, then lets us look again
    print(json.dumps({"phase2": dump(store)}), flush=True)
    store.close()
    """
)


def _compare_dump(dump: dict, models: dict[str, dict[str, np.ndarray]]) -> None:
    assert dump["tenants"] == sorted(models)
    for tid, model in models.items():
        entry = dump[tid]
        assert entry["count"] == len(model), tid
        assert set(entry["records"]) == set(model), tid
        for rid, (vec, meta, _doc) in entry["records"].items():
            assert np.array_equal(np.asarray(vec, dtype=np.float32), model[rid]), (tid, rid)
            assert meta["tenant"] == tid
        assert sorted(entry["all_hits"]) == sorted(model), f"{tid}: index and LMDB disagree"
        for rid, (meta, doc) in entry.get("hit_records", {}).items():
            assert [meta, doc] == entry["records"][rid][1:], f"{tid}: hit {rid} differs from its record"
        for (rid, dist), want in zip(entry["self_hits"], entry["records"]):
            assert rid == want, (tid, rid, want)
            assert dist == pytest.approx(0.0, abs=1e-4), (tid, rid, want)


def test_readonly_process_sees_writer_commits(tmp_path, subprocess_env):
    root = tmp_path / "store"
    models: dict[str, dict[str, np.ndarray]] = {"ex": {}, "hn": {}, "empty": {}}

    def add(t, tid, ids, vecs):
        t.add(vecs, ids=ids, metadata=[{"tenant": tid}] * len(ids))
        models[tid].update(zip(ids, vecs))

    with open_store(root, dim=DIM, metric="l2") as store:
        ex, hn = store.create_tenant("ex"), store.create_tenant("hn")
        store.create_tenant("empty")
        add(ex, "ex", [f"e{i}" for i in range(10)], vectors(10, 0))
        add(hn, "hn", [f"h{i}" for i in range(60)], vectors(60, 1))
        store.flush()  # a checkpoint, then more writes that only the op log holds
        add(hn, "hn", [f"h{i}" for i in range(60, 75)], vectors(15, 2))
        hn.delete(ids=["h0", "h61"])
        del models["hn"]["h0"], models["hn"]["h61"]
        hn.upsert(vectors(2, 3), ids=["h1", "h70"], metadata=[{"tenant": "hn"}] * 2)
        models["hn"].update(zip(["h1", "h70"], vectors(2, 3)))
        ex.delete(ids=["e9"])
        del models["ex"]["e9"]
        info = hn.info()
        assert info.index_kind == "hnsw"
        assert info.checkpoint_seq < info.seq

        with python_child(READER, str(root), env=subprocess_env, cwd=tmp_path) as proc:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.poll() is not None else "reader printed nothing"
            first = json.loads(line)
            _compare_dump(first["phase1"], models)
            assert all(v == "ReadOnlyStore" for v in first["refused"].values()), first["refused"]

            # More commits while the reader has the tenants open.
            add(hn, "hn", [f"h{i}" for i in range(100, 110)], vectors(10, 4))
            hn.upsert(vectors(1, 7), ids=["h4"], documents=["changed"], metadata=[{"tenant": "hn", "v": 2}])
            models["hn"]["h4"] = vectors(1, 7)[0]
            ex.upsert(vectors(1, 8), ids=["e1"], documents=["changed"], metadata=[{"tenant": "ex", "v": 2}])
            models["ex"]["e1"] = vectors(1, 8)[0]
            hn.delete(ids=["h2", "h3"])
            del models["hn"]["h2"], models["hn"]["h3"]
            add(ex, "ex", ["e100"], vectors(1, 5))
            ex.delete(ids=["e5"])
            del models["ex"]["e5"]
            add(store.tenant("empty"), "empty", ["z0"], vectors(1, 6))
            proc.stdin.write("go\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            _compare_dump(json.loads(line)["phase2"], models)
            assert proc.wait(timeout=60) == 0, proc.stderr.read()
        # The readonly opener wrote nothing: the writer still sees exactly its own data.
        assert not store.has_tenant("newcomer")
        for tid, model in models.items():
            assert store.tenant(tid).count() == len(model)


EXACT_FOLLOWER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tenantvec
    from tenantvec._engine.shard import Shard

    rebuilds = []
    rebuild = Shard._rebuild_index
    Shard._rebuild_index = lambda self, txn: (rebuilds.append(self.tenant_id), rebuild(self, txn))[1]
    store = tenantvec.Store(sys.argv[1], readonly=True)
    queries = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    while sys.stdin.readline():
        out = {}
        for tid in ("cosine", "l2", "ip"):
            t = store.tenant(tid)
            hits = t.query(queries, k=1000)
            out[tid] = {"ids": sorted(h.id for h in hits[0]),
                        "top": [[h.id for h in row[:3]] for row in hits],
                        "docs": {h.id: h.document for h in hits[0]}}
        out["rebuilds"] = len(rebuilds)
        print(json.dumps(out), flush=True)
    store.close()
    """
)


def test_readonly_process_follows_exact_tenants_without_rebuilding(tmp_path, subprocess_env):
    """Exact tenants keep no op log; a read-only process catches up with the writer's adds,
    upserts and deletes from a diff of labels instead of rebuilding its index every commit,
    and answers exactly as the writer does (l2 too, whose rows are stored re-centred)."""
    root = tmp_path / "store"
    rng = np.random.default_rng(11)
    queries = np.random.default_rng(0).normal(size=(5, DIM)).astype(np.float32)
    with tenantvec.Store(root, dim=DIM) as store:  # the default threshold: exact tenants
        tenants = {m: store.create_tenant(m, metric=m) for m in ("cosine", "l2", "ip")}
        for t in tenants.values():
            t.add(rng.normal(size=(30, DIM)).astype(np.float32) + 5, ids=[f"r{i}" for i in range(30)],
                  documents=[f"doc {i}" for i in range(30)])
        with python_child(EXACT_FOLLOWER, str(root), env=subprocess_env, cwd=tmp_path) as proc:
            loads = None
            for step in range(8):
                proc.stdin.write("go\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
                assert line, proc.stderr.read()
                seen = json.loads(line)
                if loads is None:
                    loads = seen["rebuilds"]  # each tenant's first load builds its index
                assert seen["rebuilds"] == loads == 3, f"step {step}: rebuilt on refresh"
                for m, t in tenants.items():
                    want = t.query(queries, k=1000)
                    assert seen[m]["ids"] == sorted(h.id for h in want[0]), (step, m)
                    assert seen[m]["top"] == [[h.id for h in row[:3]] for row in want], (step, m)
                    assert seen[m]["docs"] == {h.id: h.document for h in want[0]}, (step, m)
                for t in tenants.values():  # the writer moves on: adds, upserts, deletes
                    t.add(rng.normal(size=(3, DIM)).astype(np.float32) + 5, ids=[f"s{step}.{i}" for i in range(3)])
                    t.upsert(rng.normal(size=(1, DIM)).astype(np.float32), ids=[f"r{step}"], documents=[f"new {step}"])
                    t.delete(ids=[f"r{29 - step}", f"s{step}.0"])
            proc.stdin.close()
            assert proc.wait(timeout=60) == 0, proc.stderr.read()


STALE_FOLLOWER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tenantvec
    from tenantvec._engine import hotrecs as _hotrecs
    from tenantvec._engine.shard import Shard

    _hotrecs.CHUNK = 4  # the in-memory copy stays partial: later labels are read from LMDB
    skip = []
    refresh = Shard._refresh
    Shard._refresh = lambda self: skip.pop() if skip else refresh(self)
    store = tenantvec.Store(sys.argv[1], readonly=True)
    t = store.tenant("a")
    q = np.asarray(json.loads(sys.argv[2]), dtype=np.float32)
    t.query(q, k=3)
    print("loaded", flush=True)
    sys.stdin.readline()  # the writer deletes records meanwhile
    skip.append(None)  # this query's first search misses the deletes, as in a race
    hits = t.query(q, k=10)
    print(json.dumps([h.id for h in hits]), flush=True)
    store.close()
    """
)


def test_readonly_query_never_comes_back_short_when_the_writer_deletes_under_it(tmp_path, subprocess_env):
    """A read-only process's index can still hold records that the writer deleted after the
    process caught up; the query then searches again, caught up, rather than return fewer
    than k hits."""
    root = tmp_path / "store"
    vecs = vectors(40, 12)
    q = vecs[4:10].mean(axis=0)
    with tenantvec.Store(root, dim=DIM) as store:
        t = store.create_tenant("a")
        t.add(vecs, ids=[f"r{i}" for i in range(40)])
        gone = [h.id for h in t.query(q, k=10) if int(h.id[1:]) >= 4][:5]  # past the first chunk
        assert len(gone) == 5
        with python_child(STALE_FOLLOWER, str(root), json.dumps(q.tolist()), env=subprocess_env, cwd=tmp_path) as proc:
            assert proc.stdout.readline().strip() == "loaded", proc.stderr.read()
            t.delete(ids=gone)
            proc.stdin.write("go\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            assert json.loads(line) == [h.id for h in t.query(q, k=10)]
            assert proc.wait(timeout=60) == 0, proc.stderr.read()


KILLED_WRITER = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import tenantvec

    rng = np.random.default_rng(7)
    store = tenantvec.Store(sys.argv[1], dim=8, metric="cosine", durability="process",
                            hnsw_threshold=20, max_hot=2)
    model = {}
    for tid, n in [("p0", 50), ("p1", 5), ("p2", 30)]:
        t = store.create_tenant(tid)
        vecs = rng.normal(size=(n, 8)).astype(np.float32)
        ids = [f"{tid}-{i}" for i in range(n)]
        t.add(vecs, ids=ids, metadata=[{"tenant": tid}] * n)
        t.delete(ids=ids[:3])
        up = rng.normal(size=(2, 8)).astype(np.float32)
        t.upsert(up, ids=[ids[3], f"{tid}-new"], metadata=[{"tenant": tid}] * 2)
        recs = dict(zip(ids[3:], vecs[3:].tolist()))
        recs[ids[3]] = up[0].tolist()
        recs[f"{tid}-new"] = up[1].tolist()
        model[tid] = recs
    print(json.dumps(model), flush=True)
    time.sleep(600)
    """
)


def test_process_durability_survives_sigkill(tmp_path, subprocess_env):
    root = tmp_path / "store"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(root)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env, cwd=tmp_path,
    )
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        acked = json.loads(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with open_store(root) as store:  # the kill left the lock free and the shards recoverable
        assert store.tenants() == sorted(acked)
        for tid, recs in acked.items():
            model = {rid: np.asarray(v, dtype=np.float32) for rid, v in recs.items()}
            check_tenant(store, tid, model, metric="cosine")
