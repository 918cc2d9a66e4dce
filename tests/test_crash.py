"""Crash safety: a writer process is SIGKILLed at random moments, again and again; no
acknowledged write may be lost and every shard must recover by itself.

The writer logs ``B`` (begin) lines before each call and ``A`` (acknowledged) lines after
it returns, each with the tenant, record id and a checksum of the vector. A call that was
begun but not acknowledged may or may not have committed; everything acknowledged must
be on disk exactly, and nothing that was never begun may exist.
"""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import tenantvec
from tenantvec._engine.index import prepare_query

pytestmark = pytest.mark.slow

TENANTS = {"t0": "l2", "t1": "cosine", "t2": "l2", "t3": "cosine", "t4": "l2"}
ABSENT = "-"

WRITER = textwrap.dedent(
    """
    import hashlib, os, random, sys, time
    import numpy as np
    import tenantvec

    root, ack_path, seed, rnd, durability = sys.argv[1:6]
    seed, rnd = int(seed), int(rnd)
    TENANTS = {tenants!r}
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    fd = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def log(lines):
        os.write(fd, "".join(line + "\\n" for line in lines).encode())

    def crc(v):
        return hashlib.sha1(np.ascontiguousarray(v, dtype=np.float32).tobytes()).hexdigest()[:16]

    store = tenantvec.Store(root, dim=8, metric="l2", hnsw_threshold=25, max_hot=2,
                            durability=durability)
    handles = {{tid: store.tenant(tid, create=True, metric=m) for tid, m in TENANTS.items()}}
    live = {{tid: [r.id for r in t.get()] for tid, t in handles.items()}}
    open(ack_path + f".ready{{rnd}}", "w").close()
    counter = 0
    while True:
        counter += 1
        opno = f"{{rnd}}:{{counter}}"
        tid = rng.choice(sorted(TENANTS))
        t = handles[tid]
        r = rng.random()
        if r < 0.5 or not live[tid]:
            op = "add"
            n = rng.randint(1, 4)
            ids = [f"a{{rnd}}-{{counter}}-{{i}}" for i in range(n)]
        elif r < 0.8:
            op = "upsert"
            ids = rng.sample([f"u{{i}}" for i in range(30)], rng.randint(1, 3))
        else:
            op = "del"
            ids = rng.sample(live[tid], min(len(live[tid]), rng.randint(1, 3)))
            if rng.random() < 0.3:
                ids.append(f"u{{rng.randrange(30)}}")
        if op == "del":
            sums = [{absent!r}] * len(ids)
        else:
            vecs = nrng.normal(size=(len(ids), 8)).astype(np.float32)
            sums = [crc(v) for v in vecs]
        log([f"B {{op}} {{tid}} {{rid}} {{s}} {{opno}}" for rid, s in zip(ids, sums)])
        meta = [{{"tenant": tid, "op": opno}} for _ in ids]
        if op == "add":
            t.add(vecs, ids=ids, metadata=meta)
        elif op == "upsert":
            t.upsert(vecs, ids=ids, metadata=meta)
        else:
            t.delete(ids=ids)
        log([f"A {{op}} {{tid}} {{rid}} {{s}} {{opno}}" for rid, s in zip(ids, sums)])
        if op == "del":
            gone = set(ids)
            live[tid] = [x for x in live[tid] if x not in gone]
        else:
            live[tid] = [x for x in live[tid] if x not in ids] + ids
    """
).format(tenants=TENANTS, absent=ABSENT)


def vec_crc(v: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(v, dtype=np.float32).tobytes()).hexdigest()[:16]


def trim_partial_line(path: Path) -> None:
    """Drop a half-written last line (the writer died inside ``write``)."""
    if not path.exists():
        return
    data = path.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    if keep != data:
        path.write_bytes(keep)


def expected_states(ack_path: Path) -> tuple[dict[tuple[str, str], set[str]], int, int]:
    """Possible states per (tenant, id): a vector checksum or ABSENT.

    Returns (states, acknowledged calls, in-flight calls)."""
    calls: dict[str, dict[str, list]] = {}
    for line in ack_path.read_text().splitlines():
        phase, op, tid, rid, crc, opno = line.split(" ")
        call = calls.setdefault(opno, {"B": [], "A": []})
        call[phase].append((op, tid, rid, crc))
    states: dict[tuple[str, str], set[str]] = {}
    acked = inflight = 0
    for call in calls.values():  # dicts keep first-appearance order: the order of calls
        done = bool(call["A"])
        acked += done
        inflight += not done
        for op, tid, rid, crc in call["B"]:
            new = ABSENT if op == "del" else crc
            key = (tid, rid)
            if done:
                states[key] = {new}
            else:
                states[key] = states.get(key, {ABSENT}) | {new}
    return states, acked, inflight


def assert_index_holds_lmdb(store: tenantvec.Store, tid: str, context: str) -> None:
    """The index this open serves holds exactly LMDB's live labels, each with its vector."""
    shard = store._manager.hot()[tid]
    with shard._env.begin() as txn:
        labels, mat = shard.read_all_vectors(txn)
    held = shard.index.labels()
    assert np.array_equal(np.sort(held), labels), (
        f"{context}: index of {tid} holds labels {sorted(set(held.tolist()) ^ set(labels.tolist()))} "
        "that LMDB does not, or lacks them"
    )
    # as the index keeps them: cosine rows normalised, exact l2 rows re-centred (rounding)
    want = prepare_query(shard.metric, mat)
    got = shard.index.get_vectors(labels)
    bad = np.flatnonzero(~np.isclose(got, want, rtol=1e-6, atol=1e-6).all(axis=1))
    assert not len(bad), f"{context}: index vectors of {tid} labels {labels[bad].tolist()} differ from LMDB"


def check_store(root: Path, ack_path: Path, *, readonly: bool, context: str) -> int:
    states, acked, _ = expected_states(ack_path)
    store = tenantvec.Store(root, readonly=readonly, hnsw_threshold=25)
    try:
        assert store.tenants() == sorted(TENANTS), context
        for tid in TENANTS:
            t = store.tenant(tid)
            recs = t.get(include_vectors=True)
            actual = {r.id: vec_crc(r.vector) for r in recs}
            assert len(actual) == len(recs), f"{context}: duplicate ids in {tid}"
            for r in recs:
                assert r.metadata["tenant"] == tid, f"{context}: foreign record {r.id} in {tid}"
                assert (tid, r.id) in states, f"{context}: {tid}/{r.id} exists but was never written"
            for (stid, rid), possible in states.items():
                if stid != tid:
                    continue
                got = actual.get(rid, ABSENT)
                assert got in possible, (
                    f"{context}: {tid}/{rid} is {got}, acknowledged state(s) {sorted(possible)}"
                )
            # The index agrees with LMDB.
            n = t.count()
            info = t.info()
            assert n == len(recs) == info.count, context
            if not recs:
                continue
            q = np.ones(8, dtype=np.float32)
            all_hits = t.query(q, k=n)
            assert sorted(h.id for h in all_hits) == sorted(actual), f"{context}: index of {tid} != LMDB"
            mat = np.stack([r.vector for r in recs])
            misses = []
            for r, row in zip(recs, t.query(mat, k=1)):
                assert len(row) == 1, context
                assert row[0].id in actual, context
                if row[0].distance > 1e-4:  # not itself (nor a record with an identical vector)
                    misses.append(f"{r.id} found {row[0].id} at {row[0].distance}")
            # Exact search always finds a record's own vector. HNSW may not, even with the
            # right graph: a record whose every in-link was pruned is unreachable (seen here
            # for 1 of 113 records of an 8-d tenant whose tombstones crowded the neighbour
            # lists it would have joined). Whether the index holds exactly what LMDB holds
            # is checked directly, below.
            allowed = 0 if info.index_kind == "exact" else max(1, n // 20)
            assert len(misses) <= allowed, f"{context}: {tid} ({info.index_kind}): {misses}"
            assert_index_holds_lmdb(store, tid, context)
    finally:
        store.close()
    return acked


def _spawn(script: Path, root: Path, ack: Path, seed: int, rnd: int, durability: str, env, err: Path):
    return subprocess.Popen(
        [sys.executable, str(script), str(root), str(ack), str(seed), str(rnd), durability],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err.open("wb"),
        env=env, cwd=script.parent,
    )


@pytest.mark.parametrize("durability", ["full", "process"])
def test_sigkill_loses_no_acknowledged_write(tmp_path, subprocess_env, durability):
    seed = random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    root, ack = tmp_path / "store", tmp_path / "acks.log"
    kills = 5
    acked = 0
    for rnd in range(kills):
        err = tmp_path / f"writer{rnd}.err"
        proc = _spawn(script, root, ack, seed + rnd, rnd, durability, subprocess_env, err)
        try:
            if rnd == 2:
                # Kill early, possibly inside Store open / shard recovery.
                time.sleep(rng.uniform(0.05, 0.4))
            else:
                ready = Path(f"{ack}.ready{rnd}")
                deadline = time.monotonic() + 60
                while not ready.exists():
                    assert proc.poll() is None, err.read_text()
                    assert time.monotonic() < deadline, "writer never got ready"
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.05, 1.0))
            assert proc.poll() is None, f"writer died by itself (seed {seed}):\n{err.read_text()}"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        trim_partial_line(ack)
        if ack.exists() and root.exists():
            # Look without repairing anything on disk (readonly), so the next writer starts
            # from the crashed state itself.
            acked = check_store(root, ack, readonly=True, context=f"seed {seed} round {rnd} readonly")

    assert acked >= 50, f"too few acknowledged calls to mean anything ({acked}, seed {seed})"
    states, _, _ = expected_states(ack)
    assert any(p == {ABSENT} for p in states.values()), "the scenario must include acknowledged deletes"
    # Full recovery by a writer, then once more after its clean close.
    check_store(root, ack, readonly=False, context=f"seed {seed} recovered")
    check_store(root, ack, readonly=False, context=f"seed {seed} reopened")
    with tenantvec.Store(root) as store:
        kinds = {store.tenant(t).info().index_kind for t in TENANTS}
    assert "hnsw" in kinds, f"no tenant reached the HNSW path (seed {seed})"
