"""A full filesystem: no process death, every failure a named TenantVecError, no
acknowledged write lost.

Each test mounts a small tmpfs (the tests run as root in CI; elsewhere they skip), fills
it through a tenant in a child process (a SIGBUS there is a counted failure, not a dead
suite), then runs every write path on the full disk — create, import, compact, export,
add, upsert, delete, flush, verify and its repair, deactivate, drop — and records how
each ended. The parent then gives the filesystem room again, reopens the store and
checks every acknowledged record.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import tenantvec

pytestmark = pytest.mark.slow

DIM = 16


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A fresh 6 MiB tmpfs, unmounted afterwards (skips where mounting is not allowed)."""
    mnt = tmp_path / f"fs-{uuid.uuid4().hex[:8]}"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip() or res.returncode}); run as root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def grow(mnt: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)


CHILD = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import tenantvec
    from tenantvec import StorageFull, TenantVecError

    root, ack_path, export_src, durability = sys.argv[1:5]
    DIM = 16
    rng = np.random.default_rng(0)
    ack = open(ack_path, "a")
    store = tenantvec.Store(root, dim=DIM, metric="l2", hnsw_threshold=50, flush_interval=0,
                            durability=durability)

    def acked(tid, ids, vecs):
        for rid, v in zip(ids, vecs):
            ack.write(json.dumps([tid, rid, v.tolist()]) + "\\n")
        ack.flush()

    def add(t, tid, n, prefix):
        vecs = rng.random((n, DIM), dtype=np.float32)
        ids = [f"{prefix}{rng.integers(1 << 40)}" for _ in range(n)]
        t.add(vecs, ids=ids, documents=["x" * 400] * n)
        acked(tid, ids, vecs)
        return ids

    hnsw = store.create_tenant("h")
    add(hnsw, "h", 120, "h")  # an HNSW tenant
    seed = store.create_tenant("seed")
    add(seed, "seed", 30, "s")
    store.export_tenant("seed", export_src)
    a = store.create_tenant("a")
    fill_error = None
    for _ in range(100000):
        try:
            add(a, "a", 40, "a")
        except TenantVecError as exc:
            fill_error = type(exc).__name__
            break
    out = {"fill": fill_error}

    def attempt(name, fn):
        try:
            fn()
            out[name] = "ok"
        except TenantVecError as exc:
            out[name] = type(exc).__name__
        except BaseException as exc:
            out[name] = "RAW " + type(exc).__module__ + "." + type(exc).__name__ + ": " + str(exc)[:200]

    some = [r.id for r in a.get(limit=5)]
    out["begun_delete"] = some[1]
    attempt("create", lambda: store.create_tenant("b"))
    attempt("import", lambda: store.import_tenant("c", export_src))
    attempt("compact", lambda: store.compact("a"))
    attempt("compact_hnsw", lambda: store.compact("h"))
    attempt("export", lambda: store.export_tenant("a", os.path.join(root, "a.tvx")))
    attempt("add", lambda: add(a, "a", 40, "a"))
    attempt("add_hnsw", lambda: add(hnsw, "h", 40, "h"))
    attempt("upsert", lambda: a.upsert(rng.random((1, DIM), dtype=np.float32), ids=[some[0]]))
    attempt("delete", lambda: a.delete(ids=[some[1]]))
    attempt("flush_hnsw", lambda: hnsw.flush())
    attempt("store_flush", lambda: store.flush())
    attempt("verify", lambda: store.verify("a"))
    attempt("verify_fix", lambda: store.verify("h", fix=True))
    attempt("summaries", lambda: store.tenant_summaries())
    attempt("query", lambda: a.query(rng.random(DIM, dtype=np.float32), k=5))
    attempt("deactivate", lambda: store.deactivate("seed"))
    attempt("activate", lambda: store.activate("seed"))
    attempt("drop", lambda: store.drop_tenant("seed"))
    attempt("close", lambda: store.close())
    print(json.dumps(out), flush=True)
    """
)

#: Calls that must succeed on a full disk (they write nothing, or only remove).
MUST_WORK = {"query", "summaries", "verify", "drop", "close"}
#: Calls that need room: they may work (space freed meanwhile) or fail with StorageFull.
NEED_ROOM = {"create", "import", "compact", "compact_hnsw", "export", "add", "add_hnsw", "upsert"}


@pytest.mark.parametrize("durability", ["full", "process"])
def test_every_write_path_on_a_full_disk(
    small_fs: Path, tmp_path: Path, subprocess_env: dict[str, str], durability: str
) -> None:
    root = small_fs / "store"
    ack_path = tmp_path / "acks.jsonl"
    export_src = tmp_path / "seed.tvx"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(ack_path), str(export_src), durability],
        capture_output=True, text=True, env=subprocess_env, timeout=300,
    )
    assert proc.returncode == 0, f"child died (rc {proc.returncode}): {proc.stderr[-3000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out.pop("fill") == "StorageFull"
    begun_delete = out.pop("begun_delete")
    raw = {k: v for k, v in out.items() if v.startswith("RAW")}
    assert not raw, raw
    for name in MUST_WORK:
        assert out[name] == "ok", (name, out[name])
    for name in NEED_ROOM:
        assert out[name] in ("ok", "StorageFull"), (name, out[name])
    assert out["create"] == "StorageFull"
    assert out["import"] == "StorageFull"
    assert out["export"] == "StorageFull"
    # every other call failed, if at all, with a TenantVecError (checked above: no RAW)

    grow(small_fs)
    expected: dict[tuple[str, str], list[float]] = {}
    for line in ack_path.read_text().splitlines():
        tid, rid, vec = json.loads(line)
        expected[(tid, rid)] = vec
    with tenantvec.Store(root) as store:
        assert not [p.name for p in (root / "tenants").iterdir() if p.name.startswith((".tmp-", ".drop-"))]
        assert not store.has_tenant("b")
        assert not store.has_tenant("c")
        for tid in store.tenants():
            assert store.verify(tid).ok, store.verify(tid)
        for tid in ("a", "h"):
            t = store.tenant(tid)
            got = {r.id: r.vector for r in t.get(include_vectors=True)}
            want = {rid: vec for (ttid, rid), vec in expected.items() if ttid == tid}
            # the delete above may or may not have happened; everything else acknowledged is there
            missing = set(want) - set(got) - {begun_delete}
            assert not missing, f"tenant {tid}: acknowledged records lost: {sorted(missing)[:5]}"
            for rid, vec in want.items():
                if rid in got and tid == "h":
                    np.testing.assert_array_equal(got[rid], np.asarray(vec, np.float32))
        # the store works again: writes, a create, an import
        store.tenant("a").add(np.ones((1, DIM), np.float32), ids=["after"])
        store.create_tenant("b")
        store.import_tenant("c", export_src)
        assert store.tenant("c").count() == 30


def test_create_on_a_full_disk_raises_storage_full_in_process(small_fs: Path) -> None:
    """The pre-checks raise before LMDB maps anything (this would be a SIGBUS before)."""
    root = small_fs / "store"
    store = tenantvec.Store(root, dim=DIM, flush_interval=0)
    filler = small_fs / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    before = sorted(p.name for p in (root / "tenants").iterdir())
    with pytest.raises(tenantvec.StorageFull) as info:
        store.create_tenant("b")
    assert info.value.path is not None
    assert str(small_fs) in info.value.path
    assert info.value.free is not None
    assert info.value.free < 1 << 20
    assert "free" in str(info.value)
    assert sorted(p.name for p in (root / "tenants").iterdir()) == before
    assert not store.has_tenant("b")
    store.close()
