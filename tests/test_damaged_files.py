"""Damaged tenant files never take the host process down.

LMDB maps data.mdb and trusts it: a truncated file or a zeroed page used to kill the
whole process (SIGBUS, or SIGABRT from an LMDB assertion) at the first access, and
``Store.verify`` with it. Every access of a damaged store here runs in a child process;
the tests count the children killed by a signal (none allowed), check that each failure
is a ``TenantVecError`` (``CorruptShard`` for LMDB damage) and that the other tenants of
the same store still answer. The second half tests the validator
(``tenantvec._engine.lmdbfile.check_data_file``) on its own.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import pytest

import tenantvec
from tenantvec._engine import lmdbfile as _lmdbfile
from tenantvec._engine.lmdbfile import check_data_file
from tenantvec._ids import HASHED_ID_FILE, tenant_dir_name

REPO_ROOT = Path(tenantvec.__file__).resolve().parent.parent
DIM = 8
EXACT = "exact-victim"
HNSW = "h" * 40 + "\u00fc" * 40  # escapes past the directory-name limit: a hashed directory
BYSTANDER = "bystander"
OPTS: dict[str, Any] = {"dim": DIM, "hnsw_threshold": 50}
CHILD_TIMEOUT = 120

# One child runs a list of damaged stores, printing a JSON line as it starts and as it
# finishes each; the parent restarts it after the store it died on.
CHILD = r"""
import json, sys
import numpy as np
import tenantvec
from tenantvec.errors import TenantVecError

import resource
# a damaged length or label may ask for any amount of memory: fail with MemoryError, not the OOM killer
resource.setrlimit(resource.RLIMIT_DATA, (2 << 30, 2 << 30))
jobs = json.loads(sys.stdin.read())
if jobs and jobs[0].get("no_validator"):
    import tenantvec._engine.verify, tenantvec._engine.shardfiles
    tenantvec._engine.shardfiles.check_data_file = tenantvec._engine.verify.check_data_file = lambda *a, **k: None
q = np.linspace(-1.0, 1.0, jobs[0]["dim"] if jobs else 8).astype(np.float32)
for job in jobs:
    print(json.dumps({"start": job["name"]}), flush=True)
    out = {"name": job["name"]}

    def attempt(what, fn):
        try:
            value = fn()
        except TenantVecError as exc:
            out[what] = type(exc).__name__
            return None
        except Exception as exc:
            out[what] = "!" + type(exc).__name__ + ": " + str(exc)[:300]
            return None
        out[what] = "ok"
        return value

    store = attempt("open", lambda: tenantvec.Store(job["root"], **job["opts"]))
    if store is not None:
        victim, other = job["victim"], job["bystander"]
        attempt("tenant", lambda: store.tenant(victim))
        attempt("query", lambda: store.tenant(victim).query(q, k=5))
        attempt("get", lambda: store.tenant(victim).get(ids=job["ids"]))
        attempt("get_where", lambda: store.tenant(victim).get(where={"i": {"$gte": 0}}, limit=5))
        attempt("count", lambda: store.tenant(victim).count())
        for fix in (False, True):
            what = "verify_fix" if fix else "verify"
            report = attempt(what, lambda: store.verify(victim, fix=fix))
            if report is not None:
                out[what] = "ok" if report.ok else "problems"
                out[what + "_says"] = " | ".join(report.problems)[:400]
        attempt("summaries", lambda: store.tenant_summaries())

        def bystander():
            assert len(store.tenant(other).query(q, k=3)) == 3 and store.tenant(other).count() == 20

        attempt("bystander", bystander)
        attempt("close", store.close)
    print(json.dumps(out), flush=True)
"""


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.pop("PYTHONSAFEPATH", None)
    return env


def run_children(jobs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[tuple[str, int]], int]:
    """Run ``jobs`` in as few children as deaths allow: (results, deaths, children)."""
    results: list[dict[str, Any]] = []
    deaths: list[tuple[str, int]] = []
    children = 0
    todo = list(jobs)
    while todo:
        children += 1
        proc = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(todo), capture_output=True,
                              text=True, env=child_env(), timeout=CHILD_TIMEOUT)
        started: str | None = None
        done = 0
        for line in proc.stdout.splitlines():
            if not line.startswith("{"):
                continue
            msg = json.loads(line)
            if "start" in msg:
                started = msg["start"]
            else:
                results.append(msg)
                started = None
                done += 1
        if proc.returncode == 0:
            assert done == len(todo), proc.stderr[-2000:]
            break
        assert started is not None, f"child failed outside a job (rc {proc.returncode}): {proc.stderr[-2000:]}"
        if proc.returncode < 0:
            deaths.append((started, -proc.returncode))
        else:
            results.append({"name": started, "exit": proc.returncode, "stderr": proc.stderr[-1000:]})
        todo = todo[done + 1:]
    return results, deaths, children


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An undamaged store: an exact tenant (45 records, some documents on overflow
    pages), an HNSW tenant (300 records, hashed directory, index snapshot on disk) and a
    bystander (20 records)."""
    root = tmp_path_factory.mktemp("damage") / "template"
    rng = np.random.default_rng(7)
    with tenantvec.Store(root, **OPTS) as store:
        for tid, n, step in ((EXACT, 45, 15), (HNSW, 300, 100), (BYSTANDER, 20, 20)):
            t = store.tenant(tid, create=True)
            for start in range(0, n, step):
                m = min(step, n - start)
                docs = [f"document {start + j} " * (1 + j % 5) for j in range(m)]
                if tid == EXACT:
                    docs = [d * (1 + 60 * (j % 3)) for j, d in enumerate(docs)]  # up to ~8 KB
                t.add(rng.standard_normal((m, DIM)).astype(np.float32), ids=[f"r{start + j}" for j in range(m)],
                      metadata=[{"i": start + j, "tag": "x" * (j % 7)} for j in range(m)], documents=docs)
        store.tenant(EXACT).delete(ids=[f"r{j}" for j in range(0, 45, 9)])  # free pages too
        assert store.tenant(EXACT).info().index_kind == "exact"
        assert store.tenant(HNSW).info().index_kind == "hnsw"
    hnsw_dir = root / "tenants" / tenant_dir_name(HNSW)
    assert (hnsw_dir / "index.hnsw").is_file()
    assert (hnsw_dir / HASHED_ID_FILE).is_file()
    return root


def tenant_dir(root: Path, tid: str) -> Path:
    return root / "tenants" / tenant_dir_name(tid)


def make_variant(template: Path, base: Path, name: str, victim: str, damage: Any) -> dict[str, Any]:
    root = base / name
    shutil.copytree(template, root)
    damage(tenant_dir(root, victim))
    return {"name": name, "root": str(root), "opts": OPTS, "victim": victim, "bystander": BYSTANDER,
            "ids": ["r1", "r2", "r40", "r250"], "dim": DIM}


def truncate(fraction: float | None) -> Any:
    def damage(d: Path) -> None:
        f = d / "data.mdb"
        size = f.stat().st_size
        os.truncate(f, size - 4096 if fraction is None else int(size * fraction))
    return damage


def zero_page(pgno: int) -> Any:
    def damage(d: Path) -> None:
        with open(d / "data.mdb", "r+b") as fh:
            fh.seek(pgno * 4096)
            fh.write(bytes(4096))
    return damage


def flip_bytes(name: str, seed: int, n: int = 8) -> Any:
    def damage(d: Path) -> None:
        f = d / name
        raw = bytearray(f.read_bytes())
        rng = np.random.default_rng(seed)
        for off in rng.integers(0, len(raw), size=n).tolist():
            raw[off] ^= int(rng.integers(1, 256))
        f.write_bytes(bytes(raw))
    return damage


def pages_of(root: Path, tid: str) -> int:
    return (tenant_dir(root, tid) / "data.mdb").stat().st_size // 4096


def check_results(results: list[dict[str, Any]], deaths: list[tuple[str, int]]) -> None:
    assert not deaths, f"{len(deaths)} children killed by a signal: {deaths[:10]}"
    ops = ("tenant", "query", "get", "get_where", "count", "verify", "verify_fix", "summaries")
    for r in results:
        assert "exit" not in r, r
        assert r["open"] == "ok", r
        assert r["close"] == "ok", r
        assert r["bystander"] == "ok", r  # the other tenants of the store still answer
        for op in ops:
            assert not r[op].startswith("!"), f"{r['name']}: {op} raised a non-TenantVecError: {r[op]}"
        if r["tenant"] == "CorruptShard":  # the damage is reported, never hidden
            assert r["verify"] == "problems", r
            if "-truncate-" in r["name"] or "-zero-page-" in r["name"]:  # LMDB structure: not repairable
                assert r["verify_fix"] == "problems", r
                assert "cannot repair" in r["verify_fix_says"], r


# ---------------------------------------------------------------------------- damage, in children
@pytest.mark.slow
def test_damaged_stores_never_kill_the_host(template: Path, tmp_path: Path) -> None:
    jobs: list[dict[str, Any]] = []
    for victim, tag in ((EXACT, "exact"), (HNSW, "hnsw")):
        for frac in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, None):
            jobs.append(make_variant(template, tmp_path, f"{tag}-truncate-{frac}", victim, truncate(frac)))
        for pgno in range(pages_of(template, victim)):  # every page of these small files
            jobs.append(make_variant(template, tmp_path, f"{tag}-zero-page-{pgno}", victim, zero_page(pgno)))
        files = ["data.mdb"] * 8 + ["lock.mdb"] * 2
        if victim == HNSW:
            files += ["index.hnsw"] * 3 + [HASHED_ID_FILE] * 2
        for i, name in enumerate(files):
            jobs.append(make_variant(template, tmp_path, f"{tag}-flip-{name}-{i}", victim, flip_bytes(name, seed=i)))
    t0 = time.monotonic()
    results, deaths, children = run_children(jobs)
    elapsed = time.monotonic() - t0
    check_results(results, deaths)
    by_kind: dict[str, dict[str, int]] = {}
    for r in results:
        kind = r["name"].split("-")[1]
        by_kind.setdefault(kind, {}).setdefault(r["tenant"], 0)
        by_kind[kind][r["tenant"]] += 1
    print(f"{len(jobs)} damaged variants, {children} children, {len(deaths)} deaths, {elapsed:.1f} s: {by_kind}")
    truncated = [r for r in results if "-truncate-" in r["name"] and not r["name"].endswith("None")]
    assert all(r["tenant"] == "CorruptShard" for r in truncated), [r for r in truncated if r["tenant"] != "CorruptShard"]
    for r in results:  # one page short: damage, unless the last page was free (LMDB needs only used pages)
        if r["name"].endswith("-truncate-None"):
            assert r["tenant"] == "CorruptShard" or r["verify"] == "ok", r
    zeroed = [r for r in results if "-zero-page-" in r["name"]]
    assert sum(r["tenant"] == "CorruptShard" for r in zeroed) >= len(zeroed) // 2  # most pages are in use
    for r in zeroed:
        assert r["tenant"] in ("ok", "CorruptShard"), r


def test_harness_sees_deaths_without_the_validator(template: Path, tmp_path: Path) -> None:
    """The harness counts deaths: with the validator switched off, a truncated file
    kills the child (SIGBUS) as it did before the validator existed."""
    job = make_variant(template, tmp_path, "truncate-no-validator", EXACT, truncate(0.5))
    job["no_validator"] = True
    results, deaths, _ = run_children([job])
    assert [name for name, _ in deaths] == ["truncate-no-validator"], (results, deaths)


def test_readonly_follower_skips_a_damaged_tenant(template: Path, tmp_path: Path) -> None:
    """A read-only store (the CLI inspecting a live store) refuses the damaged tenant
    and still serves the others."""
    job = make_variant(template, tmp_path, "readonly-zero", EXACT, zero_page(pages_of(template, EXACT) - 1))
    job["opts"] = {**OPTS, "readonly": True}
    code = (
        "import json, sys, numpy as np, tenantvec\n"
        "job = json.loads(sys.stdin.read())\n"
        "s = tenantvec.Store(job['root'], readonly=True)\n"
        "out = {}\n"
        "try:\n    s.tenant(job['victim']).count(); out['victim'] = 'ok'\n"
        "except tenantvec.TenantVecError as e:\n    out['victim'] = type(e).__name__\n"
        "out['bystander'] = s.tenant(job['bystander']).count()\n"
        "out['ls'] = {x.tenant: x.state for x in s.tenant_summaries()}\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(job), capture_output=True, text=True,
                          env=child_env(), timeout=CHILD_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["victim"] in ("ok", "CorruptShard"), out
    assert out["bystander"] == 20, out
    if out["victim"] == "CorruptShard":
        assert out["ls"][EXACT] == "corrupt", out


# ---------------------------------------------------------------------------- the validator
def _env_with(path: Path, fill: Any, **kw: Any) -> Path:
    env = lmdb.open(str(path), max_dbs=8, map_size=1 << 30, **kw)
    try:
        fill(env)
    finally:
        env.close()
    return path / "data.mdb"


def _plain(n: int, size: int) -> Any:
    def fill(env: lmdb.Environment) -> None:
        db = env.open_db(b"plain")
        with env.begin(write=True) as txn:
            for i in range(n):
                txn.put(struct.pack(">Q", i), bytes([i % 251]) * size, db=db)
    return fill


def _varied(env: lmdb.Environment) -> None:
    """Named databases of every kind, big values, duplicates (inline and in sub-trees),
    fixed-size duplicates, integer keys, and deletions that leave free pages."""
    rng = np.random.default_rng(3)
    plain = env.open_db(b"plain")
    dups = env.open_db(b"dups", dupsort=True)
    fixed = env.open_db(b"fixed", dupsort=True, dupfixed=True)
    ints = env.open_db(b"ints", integerkey=True)
    env.open_db(b"empty")
    for round_ in range(4):
        with env.begin(write=True) as txn:
            for i in range(400):
                txn.put(f"k{round_}-{i}".encode(), rng.bytes(int(rng.integers(1, 9000))), db=plain)
                txn.put(f"d{i % 7}".encode(), rng.bytes(int(rng.integers(1, 40))), db=dups)
                txn.put(f"f{i % 3}".encode(), struct.pack("<Q", round_ * 1000 + i), db=fixed)
                txn.put(struct.pack("=Q", i), b"x" * (i % 50), db=ints)
                if i % 40 == 0:  # few duplicates: kept inline, on a sub-page of the leaf
                    for v in (b"a", b"b", b"c"):
                        txn.put(f"s{round_}-{i}".encode(), v, db=dups)
                    for v in (1, 2):
                        txn.put(f"t{round_}-{i}".encode(), struct.pack("<Q", v), db=fixed)
        with env.begin(write=True) as txn:
            for i in range(0, 400, 3):
                txn.delete(f"k{round_}-{i}".encode(), db=plain)


@pytest.mark.parametrize("fill", [
    pytest.param(lambda _env: None, id="empty"),
    pytest.param(_plain(10, 100), id="one-leaf"),
    pytest.param(_plain(3000, 300), id="branches"),
    pytest.param(_plain(200, 20000), id="overflow"),
    pytest.param(_varied, id="varied"),
])
def test_valid_files_pass(tmp_path: Path, fill: Any) -> None:
    path = _env_with(tmp_path, fill)
    assert check_data_file(str(path), cached=False) is None


def test_valid_tenantvec_shards_pass(template: Path) -> None:
    for tid in (EXACT, HNSW, BYSTANDER):
        assert check_data_file(str(tenant_dir(template, tid) / "data.mdb"), cached=False) is None


WRITER = r"""
import os, struct, sys, lmdb
env = lmdb.open(sys.argv[1], max_dbs=4, map_size=1 << 30, sync=False, metasync=False)
db = env.open_db(b"churn")
i = 0
while not os.path.exists(sys.argv[2]):
    with env.begin(write=True) as txn:
        for j in range(40):
            txn.put(struct.pack(">Q", (i * 40 + j) % 3000), os.urandom(50 + (i * 97 + j * 31) % 6000), db=db)
        if i % 5 == 0:
            for j in range(0, 3000, 7):
                txn.delete(struct.pack(">Q", (j + i) % 3000), db=db)
    i += 1
    if i == 20:
        print("ready", flush=True)
print(i, flush=True)
"""


def test_no_damage_reported_while_another_process_commits(tmp_path: Path) -> None:
    """A read-only follower checks a file another process keeps committing to (pages
    freed and reused): never damage."""
    lmdb.open(str(tmp_path), max_dbs=4, map_size=1 << 30).close()
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(stop)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        checks = 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            assert check_data_file(str(tmp_path / "data.mdb"), cached=False) is None
            checks += 1
    finally:
        stop.touch()
        out, _ = writer.communicate(timeout=60)
    assert writer.returncode == 0
    assert checks > 5
    assert int(out.split()[-1]) > 20  # the writer committed while we checked


STORE_WRITER = r"""
import os, sys, numpy as np, tenantvec
rng = np.random.default_rng(0)
with tenantvec.Store(sys.argv[1], dim=8, hnsw_threshold=50, durability="process") as store:
    t = store.tenant("busy", create=True)
    i = 0
    while not os.path.exists(sys.argv[2]):
        t.upsert(rng.standard_normal((20, 8)).astype(np.float32), ids=[f"r{(i * 20 + j) % 500}" for j in range(20)],
                 documents=["d" * int(rng.integers(1, 6000)) for _ in range(20)])
        if i % 4 == 0:
            t.delete(ids=[f"r{(i * 7 + j) % 500}" for j in range(10)])
        i += 1
        if i == 5:
            print("ready", flush=True)
print(i, flush=True)
"""


def test_readonly_follower_opens_a_tenant_being_written(tmp_path: Path) -> None:
    """A read-only store opening (cold, again and again) a tenant that a writer process
    keeps changing never sees damage."""
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", STORE_WRITER, str(tmp_path / "s"), str(stop)],
                              stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        opens = 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            with tenantvec.Store(tmp_path / "s", readonly=True) as store:
                assert store.tenant("busy").count() > 0
            opens += 1
    finally:
        stop.touch()
        out, _ = writer.communicate(timeout=60)
    assert writer.returncode == 0
    assert opens > 3
    assert int(out.split()[-1]) > 5


def _pages(path: Path) -> list[tuple[int, int, int]]:
    """(page number, flags, lower) of every page that has its own number in its header."""
    raw = path.read_bytes()
    out = []
    for pg in range(len(raw) // 4096):
        pgno, _pad, flags, lower, _upper = struct.unpack_from("<QHHHH", raw, pg * 4096)
        if pgno == pg:
            out.append((pg, flags, lower))
    return out


def _patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


@pytest.fixture
def branchy(tmp_path: Path) -> Path:
    return _env_with(tmp_path, _plain(3000, 300))


def _reachable_leaf(path: Path) -> int:
    """A leaf page of the newest snapshot (a leaf page the current tree reaches)."""
    for pg, flags, _ in reversed(_pages(path)):
        if flags == 0x02:
            probe = bytearray(path.read_bytes())
            probe[pg * 4096 + 10] = 0  # is it reached? zero its flags and ask
            copy = path.parent / "probe.mdb"
            copy.write_bytes(bytes(probe))
            reached = check_data_file(str(copy), cached=False) is not None
            copy.unlink()
            if reached:
                return pg
    raise AssertionError("no reachable leaf")


@pytest.mark.parametrize(("damage", "says"), [
    ("truncate", "truncated"),
    ("truncate-metas", "too few"),
    ("zero-leaf", "zeroed or overwritten"),
    ("zero-meta0", "meta page 0"),
    ("magic", "magic"),
    ("page-size", "page size"),
    ("root", "root page"),
    ("node-offset", "has offset"),
    ("node-size", "runs to byte"),
    ("child", "points to page"),
    ("twice", "reached twice"),
    ("bounds", "bounds"),
])
def test_each_damage_is_named(branchy: Path, damage: str, says: str) -> None:
    path = branchy
    size = path.stat().st_size
    branch = next(pg for pg, flags, lower in reversed(_pages(path)) if flags == 0x01 and lower >= 20)
    if damage == "truncate":
        os.truncate(path, size // 2)
    elif damage == "truncate-metas":
        os.truncate(path, 3000)
    elif damage == "zero-leaf":
        _patch(path, _reachable_leaf(path) * 4096, bytes(4096))
    elif damage == "zero-meta0":
        _patch(path, 0, bytes(4096))
    elif damage == "magic":
        _patch(path, 4096 + 16, struct.pack("<I", 0xDEADBEEF))
    elif damage == "page-size":
        _patch(path, 16 + 24, struct.pack("<I", 3000))
    elif damage == "root":  # both metas: the main database's root past the last page
        for meta in (0, 1):
            _patch(path, meta * 4096 + 16 + 24 + 48 + 40, struct.pack("<Q", 1 << 40))
    elif damage in ("node-offset", "node-size", "child", "twice"):
        raw = path.read_bytes()
        ptr = struct.unpack_from("<H", raw, branch * 4096 + 16 + 2)[0]  # node 1 of a branch page
        if damage == "node-offset":
            _patch(path, branch * 4096 + 16 + 2, struct.pack("<H", 4095))
        elif damage == "node-size":
            _patch(path, branch * 4096 + ptr + 6, struct.pack("<H", 5000))
        else:
            first = struct.unpack_from("<HHH", raw, branch * 4096 + struct.unpack_from("<H", raw, branch * 4096 + 16)[0])
            child = first if damage == "twice" else (0xFFFF, 0x7FFF, 0)  # node 0's child, or far away
            _patch(path, branch * 4096 + ptr, struct.pack("<HHH", *child))
    elif damage == "bounds":
        _patch(path, branch * 4096 + 12, struct.pack("<HH", 4000, 100))
    why = check_data_file(str(path), cached=False)
    assert why is not None, why
    assert says in why, why


def test_page_past_the_end_is_damage_unless_free(tmp_path: Path) -> None:
    """LMDB may leave pages past the end of the file unwritten when they are free, so a
    file shorter than its last page is damaged only when the snapshot still uses a page
    past the end."""
    def fill(env: lmdb.Environment) -> None:
        db = env.open_db(b"plain")
        with env.begin(write=True) as txn:
            for i in range(50):
                txn.put(b"k%d" % i, b"v" * 100, db=db)
        with env.begin(write=True) as txn:
            txn.put(b"big", b"B" * 40000, db=db)  # an overflow run
        with env.begin(write=True) as txn:
            txn.delete(b"big", db=db)  # frees it; the new pages go to the end
        for i in range(3):  # reuse the run: the pages at the end are freed in turn
            with env.begin(write=True) as txn:
                txn.put(b"k%d" % i, b"w" * 100, db=db)

    path = _env_with(tmp_path, fill)
    fd = os.open(path, os.O_RDONLY)
    try:
        metas = _lmdbfile._read_metas(fd)
        assert not isinstance(metas, str)
        walk = _lmdbfile._Walk(fd, max(metas, key=lambda m: m.txnid), _lmdbfile._take_buffer())
        walk.run()
    finally:
        os.close(fd)
    used = int(np.flatnonzero(walk.pages.owned).max())
    assert used < walk.meta.last_pg  # the snapshot ends in free pages
    os.truncate(path, (used + 1) * 4096)  # cut them off: still sane, and LMDB reads it
    assert check_data_file(str(path), cached=False) is None
    code = ("import lmdb, sys\nenv = lmdb.open(sys.argv[1], max_dbs=2, readonly=True)\n"
            "db = env.open_db(b'plain', create=False)\n"
            "with env.begin() as txn:\n    print(sum(1 for _ in txn.cursor(db=db)))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.strip() == "50", (proc.returncode, proc.stderr)
    os.truncate(path, used * 4096)  # now a page in use is gone
    assert "truncated" in (check_data_file(str(path), cached=False) or "")


def test_cached_result_follows_changes(tmp_path: Path) -> None:
    path = _env_with(tmp_path, _plain(3000, 300))
    assert check_data_file(str(path)) is None
    assert check_data_file(str(path)) is None  # from the cache
    os.truncate(path, path.stat().st_size // 2)
    assert "truncated" in (check_data_file(str(path)) or "")
