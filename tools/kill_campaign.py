"""Kill campaign: SIGKILL a multi-threaded writer and read-only readers, again and again,
while they run mixed lifecycle and data calls; check nothing acknowledged is lost.

Run from the repository root::

    .venv/bin/python tools/kill_campaign.py --kills 1000 --seed 7 --out results.json

It prints a summary table at the end and writes every counter, with up to three concrete
examples of each kind of failure (seed, round, tenant, record, what was expected), to
``--out``. The issue-10 target is 0 in every failure row.

One round:

* A **writer** child opens ``Store(root, dim=8, hnsw_threshold=30, max_hot=2)`` with
  ``durability`` alternating between ``"full"`` and ``"process"``, and runs 2-3 threads
  of random calls on 5 tenants: add, upsert, delete (by ids or by a ``where``), query, get,
  count (through the incarnation-bound handle and through a fresh ``store.tenant``),
  ``drop_tenant``, ``create_tenant`` (re-create after a drop), export + drop + import
  (round trip), drop + re-create several times in a row, ``compact``,
  ``deactivate``/``activate``, ``Store.verify``; ``max_hot=2`` with 5 tenants forces
  evictions. Half the calls go to one tenant that changes every 50 calls, each drop may
  start a burst of short-lived threads calling the tenant being dropped, threads keep
  using handles they took earlier (of incarnations that may have been dropped since: they
  must refuse), and ``sys.setswitchinterval`` varies (down to 20 us) so threads switch
  inside calls. Lifecycle calls that change a tenant's incarnation (create, drop, import)
  are serialised per tenant inside the writer, so the tool always knows which incarnation
  a handle is bound to; every other call races them freely.
  Each record's document is ``"{tenant}|{incarnation}|{id}|{op}"``; the incarnation
  number grows with every create/import of that tenant id, so a record served from a
  dropped incarnation is recognisable.
* The writer appends to an ack log (``O_APPEND``, one ``os.write`` per JSON line): ``B``
  before a call, ``A`` after it returned, ``E`` when it raised a ``TenantVecError`` (not
  acknowledged: its outcome is uncertain), ``X`` for any other exception (a bug), ``W``
  when a read served a record it must not have. Lines carry ``time.monotonic()``
  (CLOCK_MONOTONIC: one clock for every process on the machine).
* 1-2 **reader** children open ``Store(root, readonly=True)`` and get/query/count in 2
  threads, logging per read its start and end time and which tenant incarnations the
  records it was served belong to. How a round kills (``KILL_MODES``): everything at one
  random moment 0.05-1.5 s after the writer is ready; or early, inside ``Store`` open,
  recovery and the first calls; or readers mid-read 2-5 times while the writer goes on,
  then everything; or (a "massacre") up to 60 readers of 16 threads each mid-read on one
  tenant while the writer and the first readers keep its LMDB environment open, until dead
  processes hold every slot of its reader table (LMDB frees them only when someone checks),
  then a newcomer must still be able to read.
* A **checker** child then opens the store read-only (read-write only to look into a
  deactivated tenant) and reports every tenant's records (id, document, vector checksum),
  query hits, count and ``Store.verify`` report; the parent compares them with the state
  rebuilt from the ack log: per record, the set of values it may hold. An acknowledged call
  sets it; a call begun but not acknowledged (killed in flight, or raised) may or may not
  have happened, so both outcomes are accepted. Ops on one record are sequential by
  construction (each writer thread owns its record ids), so this is exact. An import
  inherits what the export may have snapshotted: the state at the export's start plus the
  value of every op that overlapped the export.

Rounds accumulate on one store (damage compounds); a fresh store is started every
``--store-rounds`` rounds and after any round that found damage in the store (a lost
or unexpected record, a wrong tenant, verify still failing after a reopen, ...), so one
piece of damage is counted once; failed calls (errors, served records) do not damage it.
Failures counted:

* ``lost_acked_writes``: an acknowledged add/upsert missing or holding another value.
* ``unexpected_records``: a record present that was never acknowledged to be (an undone
  acknowledged delete, a value never written).
* ``dropped_incarnation_records`` / ``..._served_readers`` / ``..._served_writer``: a
  record of a dropped incarnation in the reopened store, served to a reader whose read
  began after the drop was acknowledged, or served through a writer handle bound to
  another incarnation (or by a tenant that does not exist).
* ``foreign_records``: a record naming another tenant (or another id) than where it was.
* ``acked_writes_after_drop``: a write on a handle of an incarnation whose drop had
  returned before the write began, acknowledged (the write went into deleted files).
* ``lifecycle_mismatches``: a tenant present after an acknowledged drop, or missing
  after an acknowledged create/import, or listed wrongly.
* ``verify_failures``: ``Store.verify`` not ok on the killed writer's files (read-only,
  as ``tenantvec verify`` would see them) for anything but the derived index snapshot (a
  kill between a snapshot's rename and its checkpoint leaves them out of step until the
  next writer open rebuilds it: counted in ``snapshots_rebuilt_on_reopen``); ``verify_failures_after_reopen``: still not ok
  after a writer reopened the store (recovery ran); ``verify_failures_live``: not ok (or
  wrong) in the running writer. ``inconsistent_reads``: count/query disagreeing with get
  in the checker; ``checker_errors``: any exception reopening or reading the store;
  ``checker_deaths``.
* ``writer_deaths`` / ``reader_deaths`` (died before our SIGKILL), ``writer_stuck``,
  ``writer_non_tve_errors`` / ``reader_non_tve_errors`` (exceptions that are not
  ``TenantVecError``: e.g. a raw ``lmdb.Error``), ``unexpected_tve_errors`` (a
  ``TenantVecError`` other than ``TenantNotFound``/``TenantInactive``, e.g. a
  ``StorageError`` for a file that vanished under a read, or ``CorruptShard`` after a
  crash); ``reader_slots_exhausted``: any error saying LMDB's reader table is full (the
  slots of killed readers were never freed).

Thread interleavings are not reproducible; ``--seed`` reproduces the op mix and the kill
schedule, so a failure found at round R reappears with the same seed often, not always.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

REPO_ROOT = Path(__file__).resolve().parent.parent
TENANTS = {"t0": "l2", "t1": "cosine", "t2": "l2", "t3": "cosine", "t4": "l2"}
HNSW_THRESHOLD = 30
EXPECTED_ERRORS = ("TenantNotFound", "TenantInactive")
DATA_WRITES = ("add", "upsert", "delete")
READY_TIMEOUT = 60.0
CHECK_TIMEOUT = 120.0
#: The writer's sys.setswitchinterval, per round: the shorter, the more often its threads
#: interleave inside a call (e.g. between a drop's eviction and its rename).
SWITCH_INTERVALS = (0.005, 0.001, 0.0002, 0.00002)
MASSACRE_KILLS = 60  # at most; a massacre stops once dead readers hold every slot of the table
#: How a round's kills fall, with weights: "all" kills the writer and the readers at one random
#: moment; "early" kills inside Store open, shard recovery and the first calls; "storm"
#: kills readers mid-read 2-5 times while the writer goes on, then everything; "massacre"
#: kills up to MASSACRE_KILLS readers mid-read on one tenant while the writer and the first
#: readers keep its environment open (stale reader slots pile up), then everything.
KILL_MODES = {"all": 0.515, "early": 0.12, "storm": 0.35, "massacre": 0.015}
#: Failures after which the store no longer matches the model: the next round starts a fresh one.
DAMAGE = {
    "lost_acked_writes", "unexpected_records", "dropped_incarnation_records", "foreign_records",
    "lifecycle_mismatches", "verify_failures_after_reopen", "inconsistent_reads", "checker_errors",
    "checker_deaths", "writer_stuck",
}

def _derived_only(problem: str) -> bool:
    """Whether a verify problem concerns only the index snapshot (derived data that a
    writer's open rebuilds or replays from LMDB), not the records."""
    return problem.startswith(("index snapshot ", "index checkpoint ", "operation log after the checkpoint"))


FAILURES = (
    "lost_acked_writes",
    "unexpected_records",
    "dropped_incarnation_records",
    "dropped_incarnation_served_readers",
    "dropped_incarnation_served_writer",
    "foreign_records",
    "acked_writes_after_drop",
    "lifecycle_mismatches",
    "verify_failures",
    "verify_failures_after_reopen",
    "verify_failures_live",
    "inconsistent_reads",
    "checker_errors",
    "checker_deaths",
    "writer_deaths",
    "reader_deaths",
    "writer_stuck",
    "writer_non_tve_errors",
    "reader_non_tve_errors",
    "unexpected_tve_errors",
    "reader_slots_exhausted",
)

# ---------------------------------------------------------------------------- children
# Each child reads a JSON config file named by argv[1].

WRITER = textwrap.dedent(
    r'''
    import hashlib, json, os, random, sys, threading, time, traceback
    import numpy as np
    import tenantvec
    from tenantvec import TenantVecError

    cfg = json.load(open(sys.argv[1]))
    RND, SEED, TIDS = cfg["round"], cfg["seed"], cfg["tenants"]
    sys.setswitchinterval(cfg["switch_interval"])  # short: threads interleave inside more calls
    mono = time.monotonic
    fd = os.open(cfg["ack"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def log(kind, opid, *rest):
        os.write(fd, (json.dumps([kind, opid, mono(), *rest]) + "\n").encode())

    def crc(v):
        return hashlib.sha1(np.ascontiguousarray(v, dtype=np.float32).tobytes()).hexdigest()[:16]

    def tb():
        return traceback.format_exc()[-3000:]

    POISON = "poison"  # a lifecycle call raised: its outcome is unknown, leave the tenant alone
    BURST_OWNER = 90   # owner number in the ids burst threads add (no worker touches them)
    handles = {}       # tid -> None (absent) | POISON | (incarnation, Tenant handle)
    lineage = {}       # (tid, inc) -> incarnations whose records it may hold (itself + import sources)
    gen = {t: 0 for t in TIDS}  # seqlock: odd while a create/drop/import of the tenant runs
    next_inc = dict(cfg["next_inc"])
    lc_locks = {t: threading.Lock() for t in TIDS}
    mutex = threading.Lock()
    live = {}          # (tid, inc) -> owner -> ids that may exist (only to pick delete targets)

    def owner_of(rid):
        try:
            return int(rid[1:].split("_")[0]) if rid[0] == "u" else int(rid.split("_")[1])
        except (ValueError, IndexError):
            return -1

    def new_inc(tid):
        with mutex:
            n = next_inc[tid]
            next_inc[tid] = n + 1
            return n

    def call(opid, fn):
        """Run a logged call: A on return, E on TenantVecError, X on anything else."""
        try:
            out = fn()
        except TenantVecError as e:
            log("E", opid, type(e).__name__, str(e)[:300])
            return False, e
        except Exception as e:
            log("X", opid, type(e).__name__, tb())
            return False, e
        return True, out

    def check_served(opid, tid, allowed, served, how):
        """served: [(id, document, metadata tenant)]; allowed: incarnations it may name, or
        None when the tenant must not exist at all."""
        for rid, doc, mt in served:
            parts = doc.split("|") if isinstance(doc, str) else []
            if len(parts) != 4 or parts[0] != tid or parts[2] != rid or mt != tid:
                log("W", opid, "foreign", tid, how, [rid, doc, mt])
            elif allowed is None or int(parts[1]) not in allowed:
                log("W", opid, "dropped_incarnation", tid, how,
                    [rid, doc, sorted(allowed) if allowed is not None else "tenant absent"])

    # ------------------------------------------------------------------ open
    try:
        store = tenantvec.Store(cfg["root"], dim=8, metric="l2", hnsw_threshold=cfg["hnsw_threshold"],
                                max_hot=2, durability=cfg["durability"], flush_interval=cfg["flush_interval"])
        for tid, st in cfg["state"].items():
            if st is None:
                handles[tid] = None
                continue
            inc, lin = st
            h = store.tenant(tid)
            handles[tid] = (inc, h)
            lineage[(tid, inc)] = frozenset(lin)
            own = live[(tid, inc)] = {}
            try:
                for r in h.get():
                    own.setdefault(owner_of(r.id), set()).add(r.id)
            except tenantvec.TenantInactive:
                pass
    except BaseException as e:
        log("X", f"{RND}:open", type(e).__name__, tb())
        os._exit(3)

    # ------------------------------------------------------------------ lifecycle
    def set_handle(tid, value):
        handles[tid] = value

    def create_locked(opid, tid):
        inc = new_inc(tid)
        gen[tid] += 1
        log("B", opid, "create", tid, inc, {})
        ok, h = call(opid, lambda: store.create_tenant(tid, metric=TIDS[tid]))
        if ok:
            lineage[(tid, inc)] = frozenset([inc])
            live[(tid, inc)] = {}
            set_handle(tid, (inc, h))
            log("A", opid)
        else:
            set_handle(tid, POISON)
        gen[tid] += 1
        return ok

    def do_create(opid, tid):
        with lc_locks[tid]:
            if handles[tid] is None:
                create_locked(opid, tid)

    def drop_locked(opid, tid, inc):
        gen[tid] += 1
        log("B", opid, "drop", tid, inc, {})
        ok, _ = call(opid, lambda: store.drop_tenant(tid))
        if ok:
            set_handle(tid, None)
            log("A", opid)
        else:
            set_handle(tid, POISON)
        gen[tid] += 1
        return ok

    def burst(opid, tid, inc, h, seed):
        """Calls on a tenant that is being dropped: adds through the handle of the incarnation
        being dropped (each id written once), and loads through a fresh store.tenant()."""
        rng, nrng = random.Random(seed), np.random.default_rng(seed)
        for j in range(rng.randint(2, 6)):
            if rng.random() < 0.6:
                write(f"{opid}.{j}", BURST_OWNER, "add", tid, inc, h, rng, nrng,
                      ids=[f"b{RND}_{BURST_OWNER}_{opid.replace(':', '-')}_{j}"])
            else:
                try:
                    store.tenant(tid).count()
                except TenantVecError:
                    pass
                except Exception as e:
                    log("X", f"{opid}.{j}", type(e).__name__, tb())

    def start_burst(opid, tid, inc, h, rng):
        for b in range(rng.randint(1, 2)):
            threading.Thread(target=burst, args=(f"{opid}B{b}", tid, inc, h, rng.randrange(2**31)), daemon=True).start()
        time.sleep(rng.uniform(0, 0.003))

    def do_drop(opid, tid, rng):
        with lc_locks[tid]:
            cur = handles[tid]
            if isinstance(cur, tuple):
                if rng.random() < 0.5:
                    start_burst(opid, tid, cur[0], cur[1], rng)
                drop_locked(opid, tid, cur[0])

    def do_churn(opid, tid, rng):
        """Drop and re-create a tenant a few times in a row, calls bursting on each drop."""
        with lc_locks[tid]:
            for i in range(rng.randint(2, 6)):
                cur = handles[tid]
                if not isinstance(cur, tuple):
                    return
                start_burst(f"{opid}c{i}", tid, cur[0], cur[1], rng)
                if not drop_locked(f"{opid}c{i}d", tid, cur[0]) or not create_locked(f"{opid}c{i}n", tid):
                    return

    def do_roundtrip(opid, tid, rng):
        with lc_locks[tid]:
            cur = handles[tid]
            if not isinstance(cur, tuple):
                return
            p = cur[0]
            path = os.path.join(cfg["export_dir"], f"{tid}-{p}-{opid.replace(':', '_')}.tve")
            xid = opid + "x"
            log("B", xid, "export", tid, p, {"path": path})
            ok, _ = call(xid, lambda: store.export_tenant(tid, path))
            if not ok:
                return
            log("A", xid)
            if rng.random() < 0.5:
                start_burst(opid, tid, p, cur[1], rng)
            if not drop_locked(opid + "d", tid, p):
                return
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0, 0.01))  # let calls on the dropped tenant land
            c = new_inc(tid)
            iid = opid + "i"
            gen[tid] += 1
            log("B", iid, "import", tid, c, {"from": p, "export": xid})
            ok, h = call(iid, lambda: store.import_tenant(tid, path))
            if ok:
                lineage[(tid, c)] = lineage[(tid, p)] | {c}
                src = dict(live.get((tid, p), {}))  # one C-level copy: other threads add owners
                live[(tid, c)] = {k: set(v) for k, v in src.items()}
                set_handle(tid, (c, h))
                log("A", iid)
            else:
                set_handle(tid, POISON)
            gen[tid] += 1
            try:
                os.unlink(path)
            except OSError:
                pass

    def simple(opid, op, tid, inc, fn, note=None):
        log("B", opid, op, tid, inc, {})
        ok, out = call(opid, fn)
        if ok:
            log("A", opid, note(out) if note else None)
        return ok

    # ------------------------------------------------------------------ data
    def write(opid, k, op, tid, inc, h, rng, nrng, ids=None):
        own = live.setdefault((tid, inc), {}).setdefault(k, set())
        if ids is not None:
            pass
        elif op == "add":
            ids = [f"a{RND}_{k}_{opid.split(':')[-1]}_{i}" for i in range(rng.randint(1, 4))]
        elif op == "upsert":
            ids = rng.sample([f"u{k}_{j}" for j in range(12)], rng.randint(1, 3))
        else:
            ids = rng.sample(sorted(own), min(len(own), rng.randint(1, 3)))
            if rng.random() < 0.3 or not ids:
                ids.append(f"u{k}_{rng.randrange(12)}")
            ids = list(dict.fromkeys(ids))
        if op == "delete":
            payload = [[rid, None] for rid in ids]
            if rng.random() < 0.3:
                fn = lambda: h.delete(where={"rid": {"$in": ids}})
            else:
                fn = lambda: h.delete(ids=ids)
        else:
            vecs = nrng.normal(size=(len(ids), 8)).astype(np.float32)
            docs = [f"{tid}|{inc}|{rid}|{opid}" for rid in ids]
            meta = [{"tenant": tid, "inc": inc, "rid": rid, "o": k} for rid in ids]
            payload = [[rid, [doc, crc(v)]] for rid, doc, v in zip(ids, docs, vecs)]
            if op == "add":
                fn = lambda: h.add(vecs, ids=ids, documents=docs, metadata=meta)
            else:
                fn = lambda: h.upsert(vecs, ids=ids, documents=docs, metadata=meta)
        log("B", opid, op, tid, inc, payload)
        ok, _ = call(opid, fn)
        if ok:
            log("A", opid)
        if op == "delete":
            if ok:
                own.difference_update(ids)
        else:
            own.update(ids)

    def served_of(h, rng, nrng):
        r = rng.random()
        if r < 0.4:
            return [(x.id, x.document, x.metadata.get("tenant")) for x in h.get()]
        if r < 0.8:
            where = {"o": rng.randrange(3)} if rng.random() < 0.3 else None
            hits = h.query(nrng.normal(size=8).astype(np.float32), k=rng.randint(1, 40), where=where)
            return [(x.id, x.document, x.metadata.get("tenant")) for x in hits]
        h.count()
        return []

    def read_bound(opid, tid, inc, h, rng, nrng):
        try:
            served = served_of(h, rng, nrng)
        except TenantVecError:
            return
        except Exception as e:
            log("X", opid, type(e).__name__, tb())
            return
        check_served(opid, tid, lineage[(tid, inc)], served, "bound handle")

    def read_fresh(opid, tid, rng, nrng):
        g = gen[tid]
        cur = handles[tid]
        try:
            h = store.tenant(tid)
            served = served_of(h, rng, nrng)
            found = True
        except TenantVecError:
            found, served = False, []
        except Exception as e:
            log("X", opid, type(e).__name__, tb())
            return
        if g % 2 or gen[tid] != g or cur == POISON:
            return  # a create/drop/import ran meanwhile: the incarnation read is not known
        if cur is None:
            if found:
                log("W", opid, "resurrected_tenant", tid, "fresh handle",
                    ["store.tenant() succeeded on a dropped tenant, served", served[:3]])
        else:
            check_served(opid, tid, lineage[(tid, cur[0])], served, "fresh handle")

    OPS = [("add", 30), ("upsert", 20), ("delete", 12), ("read", 12), ("fresh_read", 6), ("drop", 1.2),
           ("roundtrip", 1.2), ("churn", 0.4), ("compact", 2), ("verify", 1.5), ("deactivate", 1), ("activate", 0.5)]
    NAMES, WEIGHTS = [o for o, _ in OPS], [w for _, w in OPS]

    focus = [sorted(TIDS)[SEED % len(TIDS)]]  # where half the calls go for a while: they pile up on its drops

    def step(k, n, rng, nrng, mine):
        opid = f"{RND}:{k}:{n}"
        if k == 0 and n % 50 == 0:
            focus[0] = rng.choice(sorted(TIDS))
        tid = focus[0] if rng.random() < 0.5 else rng.choice(sorted(TIDS))
        cur = handles[tid]
        stale = mine.get(tid)
        if stale is not None and stale is not cur and rng.random() < 0.3:
            # A handle this thread took earlier: its tenant may have been dropped (and re-created)
            # since. It must refuse (TenantNotFound), never write into or read another incarnation.
            inc, h = stale
            op = rng.choices(["add", "upsert", "delete", "read"], [3, 2, 1, 2])[0]
            if op == "read":
                read_bound(opid, tid, inc, h, rng, nrng)
            else:
                write(opid, k, op, tid, inc, h, rng, nrng)
            if rng.random() < 0.3:
                del mine[tid]
            return
        if isinstance(cur, tuple):
            mine[tid] = cur
        if cur == POISON:
            return
        if cur is None:
            if rng.random() < 0.3:
                do_create(opid, tid)
            elif rng.random() < 0.3:
                read_fresh(opid, tid, rng, nrng)
            return
        inc, h = cur
        op = rng.choices(NAMES, WEIGHTS)[0]
        if tid == cfg["stable"] and op in ("drop", "roundtrip", "churn", "compact", "deactivate"):
            op = "read"
        if op in ("add", "upsert", "delete"):
            write(opid, k, op, tid, inc, h, rng, nrng)
        elif op == "read":
            read_bound(opid, tid, inc, h, rng, nrng)
        elif op == "fresh_read":
            read_fresh(opid, tid, rng, nrng)
        elif op == "drop":
            do_drop(opid, tid, rng)
        elif op == "roundtrip":
            do_roundtrip(opid, tid, rng)
        elif op == "churn":
            do_churn(opid, tid, rng)
        elif op == "compact":
            fn = (lambda: store.compact(tid)) if rng.random() < 0.5 else h.compact
            simple(opid, "compact", tid, inc, fn)
        elif op == "verify":
            simple(opid, "verify", tid, inc, lambda: store.verify(tid), lambda r: [r.ok, list(r.problems)[:5]])
        elif op == "deactivate":
            if simple(opid, "deactivate", tid, inc, lambda: store.deactivate(tid)):
                time.sleep(rng.uniform(0, 0.02))  # calls on it now raise TenantInactive
                simple(opid + "a", "activate", tid, inc, lambda: store.activate(tid))
        else:
            simple(opid, "activate", tid, inc, lambda: store.activate(tid))

    def worker(k):
        rng = random.Random(SEED * 31 + k)
        nrng = np.random.default_rng(SEED * 31 + k)
        n = 0
        mine = {}
        while True:
            n += 1
            try:
                step(k, n, rng, nrng, mine)
            except Exception as e:  # outside a logged call: a bug of the library or of this tool
                log("X", f"{RND}:{k}:{n}:step", type(e).__name__, tb())

    if cfg["fresh"]:
        for tid in sorted(TIDS):
            do_create(f"{RND}:init:{tid}", tid)
    for k in range(cfg["threads"]):
        threading.Thread(target=worker, args=(k,), daemon=True).start()
    log("R", f"{RND}:ready")
    open(cfg["ack"] + ".ready", "w").close()
    threading.Event().wait()
    '''
)

READER = textwrap.dedent(
    r'''
    import json, os, random, sys, threading, time, traceback
    import numpy as np
    import tenantvec
    from tenantvec import TenantVecError

    cfg = json.load(open(sys.argv[1]))
    TIDS = sorted(cfg["tenants"])
    mono = time.monotonic
    fd = os.open(cfg["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def log(*fields):
        os.write(fd, (json.dumps(list(fields)) + "\n").encode())

    while True:
        try:
            store = tenantvec.Store(cfg["root"], readonly=True)
            break
        except TenantVecError:  # the writer has not created the store yet
            time.sleep(0.01)
        except Exception as e:
            log("X", mono(), mono(), "-", type(e).__name__, traceback.format_exc()[-3000:])
            time.sleep(0.05)
    log("R", mono())

    def reader(k):
        rng = random.Random(cfg["seed"] * 7 + k)
        nrng = np.random.default_rng(cfg["seed"] * 7 + k)
        cached = {}
        while True:
            tid = cfg["focus"] or rng.choice(TIDS)
            t0 = mono()
            try:
                h = cached.get(tid) if rng.random() < 0.5 else None
                if h is None:
                    h = cached[tid] = store.tenant(tid)
                r = 0.0 if cfg["focus"] else rng.random()  # focused: long reads, to die inside one
                if r < 0.35:
                    got = h.get()
                elif r < 0.7:
                    got = h.query(nrng.normal(size=8).astype(np.float32), k=rng.randint(1, 40))
                elif r < 0.8:
                    got = h.query(nrng.normal(size=8).astype(np.float32), k=rng.randint(1, 10),
                                  where={"o": rng.randrange(3)})
                elif r < 0.9:
                    got = h.get(limit=rng.randint(1, 20), offset=rng.randint(0, 20))
                else:
                    h.count()
                    got = []
                t1 = mono()
                incs, bad = {}, []
                for x in got:
                    doc, mt = x.document, x.metadata.get("tenant")
                    parts = doc.split("|") if isinstance(doc, str) else []
                    if len(parts) != 4 or parts[0] != tid or parts[2] != x.id or mt != tid:
                        bad.append([x.id, doc, mt])
                    else:
                        incs.setdefault(parts[1], x.id)
                log("S", t0, t1, tid, incs, len(got), bad[:3], len(bad))
            except TenantVecError as e:
                cached.pop(tid, None)
                log("E", t0, mono(), tid, type(e).__name__, str(e)[:300])
            except Exception as e:
                cached.pop(tid, None)
                log("X", t0, mono(), tid, type(e).__name__, traceback.format_exc()[-3000:])

    for k in range(cfg["threads"]):
        threading.Thread(target=reader, args=(k,), daemon=True).start()
    threading.Event().wait()
    '''
)

CHECKER = textwrap.dedent(
    r'''
    import hashlib, json, sys, traceback
    import numpy as np
    import tenantvec
    from tenantvec import TenantVecError

    cfg = json.load(open(sys.argv[1]))
    out = {"tenants": {}, "listed": None, "errors": []}

    def crc(v):
        return hashlib.sha1(np.ascontiguousarray(v, dtype=np.float32).tobytes()).hexdigest()[:16]

    def err(where, e):
        return {"where": where, "type": type(e).__name__, "tve": isinstance(e, TenantVecError),
                "msg": str(e)[:500], "tb": traceback.format_exc()[-2000:]}

    def read(o, h):
        recs = h.get(include_vectors=True)
        o["records"] = [[r.id, r.document, crc(r.vector), r.metadata.get("tenant")] for r in recs]
        o["count"] = h.count()
        o["info"] = [h.info().index_kind, h.info().count]
        hits = []
        if recs:
            q = np.ones(8, dtype=np.float32)
            hits += [[x.id, x.document] for x in h.query(q, k=min(len(recs), 200))]
            mat = np.stack([r.vector for r in recs[:32]])
            for row in h.query(mat, k=1):
                hits += [[x.id, x.document] for x in row]
        o["hits"] = hits

    inactive = []
    try:
        store = tenantvec.Store(cfg["root"], readonly=True, hnsw_threshold=cfg["hnsw_threshold"])
    except Exception as e:
        out["errors"].append(err("open readonly", e))
        store = None
    if store is not None:
        try:
            out["listed"] = store.tenants()
        except Exception as e:
            out["errors"].append(err("tenants()", e))
        for tid in sorted(cfg["tenants"]):
            o = out["tenants"][tid] = {"exists": store.has_tenant(tid)}
            if not o["exists"]:
                continue
            try:
                h = store.tenant(tid)
                if h.info().state == "inactive":
                    inactive.append(tid)
                else:
                    read(o, h)
            except Exception as e:
                o["error"] = err("read", e)
            try:
                v = store.verify(tid)
                o["verify"] = [v.ok, list(v.problems)[:8]]
            except Exception as e:
                o["verify_error"] = err("verify", e)
        store.close()
    # A writer's reopen (recovery): only a writer can activate a tenant to look inside, and
    # verify again where the crashed files failed it.
    unhealthy = [t for t, o in out["tenants"].items() if o["exists"] and not o.get("verify", [False])[0]]
    if inactive or unhealthy:
        try:
            store = tenantvec.Store(cfg["root"], hnsw_threshold=cfg["hnsw_threshold"], flush_interval=0)
            for tid in inactive:
                o = out["tenants"][tid]
                o["inactive"] = True
                try:
                    store.activate(tid)
                    read(o, store.tenant(tid))
                    store.deactivate(tid)
                except Exception as e:
                    o["error"] = err("read (activated)", e)
            for tid in unhealthy:
                o = out["tenants"][tid]
                try:
                    store.tenant(tid).info()  # load it (also when deactivated): recovery runs
                    v = store.verify(tid)
                    o["verify_after_reopen"] = [v.ok, list(v.problems)[:8]]
                except Exception as e:
                    o["verify_after_reopen"] = [False, [f"{type(e).__name__}: {e}"]]
            store.close()
        except Exception as e:
            out["errors"].append(err("open writable", e))
    with open(cfg["out"], "w") as f:
        json.dump(out, f)
    '''
)

#: Diagnostic: how many slots of a tenant's LMDB reader table dead processes hold (listing
#: the table does not free them). Shows that a "massacre" put the table under pressure.
SLOTS = textwrap.dedent(
    r'''
    import json, os, sys, lmdb
    cfg = json.load(open(sys.argv[1]))
    try:
        env = lmdb.open(cfg["path"], readonly=True, lock=True, max_dbs=8, create=False)
        pids = [int(line.split()[0]) for line in env.readers().splitlines()[1:] if line.strip()]
        size = env.max_readers()  # from the lock file's size: whoever created it chose
        env.close()
        dead = 0
        for pid in pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                dead += 1
        out = {"slots": len(pids), "dead": dead, "size": size}
    except Exception as e:
        out = {"error": repr(e)}
    with open(cfg["out"], "w") as f:
        json.dump(out, f)
    '''
)

# ---------------------------------------------------------------------------- model
ABSENT = None  # a record's value when it does not exist; otherwise (document, vector crc)


@dataclass
class RecOp:
    """One call on one record; calls on a record never overlap (one thread owns it)."""

    begin: int  # position of its B line in the round's ack log
    new: tuple[str, str] | None
    end: int | None = None  # position of its A/E/X line (None: in flight when killed)
    acked: bool = False


@dataclass
class Rec:
    init: frozenset  # values it may hold before this round
    ops: list[RecOp] = field(default_factory=list)

    def final(self) -> frozenset:
        poss = set(self.init)
        for op in self.ops:
            poss = {op.new} if op.acked else poss | {op.new}
        return frozenset(poss)

    def between(self, bx: int, ax: int) -> frozenset:
        """Values a snapshot taken at some moment between log positions bx and ax may show."""
        poss, extra = set(self.init), set()
        for op in self.ops:
            if op.end is not None and op.end < bx:  # finished before the snapshot began
                poss = {op.new} if op.acked else poss | {op.new}
            elif op.begin < ax:  # may have taken effect before the snapshot
                extra.add(op.new)
        return frozenset(poss | extra)


@dataclass
class Inc:
    """One incarnation of a tenant id."""

    tid: str
    n: int
    born: float  # monotonic time of its create/import B line (it did not exist before)
    lineage: frozenset  # incarnations whose records it may hold (itself and import sources)
    records: dict[str, Rec] = field(default_factory=dict)
    died: float | None = None  # an upper bound of when its drop finished
    died_pos: int | None = None  # its drop's A line in this round's log


@dataclass
class TenantModel:
    inc: int | None = None
    pending: tuple[str, int] | None = None  # (op, incarnation) begun, outcome unknown


@dataclass
class Tally(ABC):
    """What a kill campaign counts, shared by the kill tools: rounds, stores, time, activity,
    where kills landed and every failure with up to three examples.

    A tool subclasses it with its own counters, sets ``kinds`` (its ``FAILURES``, in table
    order) and ``width`` (the failure column of its summary), and writes ``to_json`` and
    ``summary`` around ``_json`` and ``_summary``.
    """

    kinds: ClassVar[tuple[str, ...]]
    width: ClassVar[int]

    seed: int
    kills: int = 0
    rounds: int = 0
    stores: int = 0
    elapsed: float = 0.0
    failures: Counter = field(default_factory=Counter)
    examples: dict[str, list] = field(default_factory=dict)
    info: Counter = field(default_factory=Counter)
    kill_phase: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)  # where the time goes, per phase

    def fail(self, kind: str, example: dict[str, Any]) -> None:
        """Count a failure of ``kind`` (one of ``kinds``), keeping its first three examples."""
        assert kind in self.kinds, kind
        self.failures[kind] += 1
        ex = self.examples.setdefault(kind, [])
        if len(ex) < 3:
            ex.append(example)

    def failure_counts(self) -> dict[str, int]:
        """Every kind of failure with its count, zeros included, in table order."""
        return {k: self.failures[k] for k in self.kinds}

    def failed(self) -> dict[str, int]:
        """The kinds of failure that happened, with their counts."""
        return {k: v for k, v in self.failure_counts().items() if v}

    @property
    def per_100_kills(self) -> float:
        """Seconds the campaign took per 100 kills."""
        return 100 * self.elapsed / max(self.kills, 1)

    def _json(self, head: dict[str, Any], tail: dict[str, Any]) -> dict[str, Any]:
        """The JSON results: the seed, the tool's ``head`` fields, the common counters, the
        tool's ``tail`` fields and the seconds by phase."""
        return {
            "seed": self.seed, **head, "rounds": self.rounds, "stores": self.stores,
            "elapsed_s": round(self.elapsed, 1), "seconds_per_100_kills": round(self.per_100_kills, 1),
            "failures": self.failure_counts(), "failed": self.failed(), "examples": self.examples,
            "info": dict(sorted(self.info.items())), **tail,
            "seconds_by_phase": {k: round(v, 1) for k, v in self.seconds.items()},
        }

    def _summary(self, head: list[str], tail: list[str]) -> str:
        """The summary text: the tool's ``head`` lines, the failure table with each kind's
        first example, the tool's ``tail`` lines and the seconds by phase."""
        w = self.width
        lines = [*head, "", f"{'failure':<{w}}{'count':>7}  first example", "-" * 110]
        for k, v in self.failure_counts().items():
            ex = ""
            if v:
                e = self.examples[k][0]
                ex = f"round {e.get('round')}: {e.get('what', '')}"
                ex = ex if len(ex) <= 200 else ex[:197] + "..."
            lines.append(f"{k:<{w}}{v:>7}  {ex}")
        lines += ["-" * 110, f"{'TOTAL':<{w}}{sum(self.failures.values()):>7}", "", *tail]
        lines.append("seconds by phase: " + ", ".join(f"{k}={v:.0f}" for k, v in self.seconds.items()))
        return "\n".join(lines)

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """Every counter and example, as written to ``--out``."""

    @abstractmethod
    def summary(self) -> str:
        """The table printed at the end of a campaign."""

    @abstractmethod
    def progress(self, rnd: int) -> str:
        """The line printed every few rounds, after round ``rnd``."""


@dataclass
class Results(Tally):
    kinds = FAILURES
    width = 38

    library: str = ""
    writer_kills: int = 0
    reader_kills: int = 0
    writer_errors: Counter = field(default_factory=Counter)
    reader_errors: Counter = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return self._json(
            {"library": self.library, "kills": self.kills, "writer_kills": self.writer_kills,
             "reader_kills": self.reader_kills},
            {"kills_landed_inside": dict(self.kill_phase.most_common()),
             "writer_tve_errors": dict(self.writer_errors.most_common()),
             "reader_tve_errors": dict(self.reader_errors.most_common())},
        )

    def summary(self) -> str:
        return self._summary(
            [f"kill campaign  seed={self.seed}  kills={self.kills} (writer {self.writer_kills}, "
             f"reader {self.reader_kills})  rounds={self.rounds}  stores={self.stores}  "
             f"time={self.elapsed:.0f}s ({self.per_100_kills:.1f}s per 100 kills)",
             f"library: {self.library}"],
            ["activity: " + ", ".join(f"{k}={v}" for k, v in sorted(self.info.items())),
             "kills landed inside: " + ", ".join(f"{k}={v}" for k, v in self.kill_phase.most_common()),
             "writer TenantVecErrors (not acknowledged): "
             + ", ".join(f"{k}={v}" for k, v in self.writer_errors.most_common()),
             "reader TenantVecErrors: " + ", ".join(f"{k}={v}" for k, v in self.reader_errors.most_common())],
        )

    def progress(self, rnd: int) -> str:
        return (f"round {rnd:4d}  kills {self.kills:5d}  failures {sum(self.failures.values()):4d} "
                f"{dict(self.failed())}  {self.elapsed:.0f}s")


def _read_lines(path: Path) -> list[list]:
    """JSON lines of a log; a half-written last line (killed inside write) is dropped."""
    if not path.exists():
        return []
    out = []
    for raw in path.read_bytes().split(b"\n"):
        if not raw:
            continue
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue  # only the torn last line can fail
    return out


# A fork server: imports numpy and tenantvec once, then forks every child on request.
# Starting an interpreter and importing tenantvec costs ~0.5 s of CPU, and a round starts
# 3-6 processes (dozens in a "massacre") on a 2-core machine. The server has no threads
# and no LMDB environment open, so a forked child is as fresh for LMDB (whose locks are
# per process) as a new process. It reaps a child only when asked, so a pid is never
# reused while this process may still signal it.
ZYGOTE = textwrap.dedent(
    r'''
    import json, os, sys, time, traceback
    import numpy, tenantvec
    for line in sys.stdin:
        req = json.loads(line)
        if req["cmd"] == "spawn":
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    exec(req["source"], {"__name__": "__child__"})
                    code = 0
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else int(e.code is not None)
                except BaseException:
                    traceback.print_exc()
                finally:
                    sys.stderr.flush()
                    os._exit(code)
            resp = {"pid": pid, "file": tenantvec.__file__}
        else:  # wait
            deadline = None if req["timeout"] is None else time.monotonic() + req["timeout"]
            while True:
                done, status = os.waitpid(req["pid"], 0 if deadline is None else os.WNOHANG)
                if done:
                    resp = {"status": os.waitstatus_to_exitcode(status)}
                    break
                if time.monotonic() >= deadline:
                    resp = {"status": None}
                    break
                time.sleep(0.002)
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()
    '''
)


class ForkServer:
    def __init__(self, lib: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(lib), env.get("PYTHONPATH")) if p)
        env.pop("PYTHONSAFEPATH", None)
        env["OPENBLAS_NUM_THREADS"] = "1"  # no BLAS threads in the process we fork from
        # run from a directory without a tenantvec package of its own
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env, cwd=tempfile.gettempdir(), text=True)
        self.library = ""

    def request(self, **req: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server died (status {self.proc.wait()}); is {req} valid?")
        return json.loads(line)

    def spawn(self, source: str) -> int:
        resp = self.request(cmd="spawn", source=source)
        self.library = resp["file"]
        return resp["pid"]

    def wait(self, pid: int, timeout: float | None) -> int | None:
        return self.request(cmd="wait", pid=pid, timeout=timeout)["status"]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Child:
    """A child process running one of the scripts above (forked by the fork server)."""

    def __init__(self, role: str, script: Path, cfg: dict[str, Any], cfg_path: Path, err_path: Path,
                 server: ForkServer) -> None:
        cfg_path.write_text(json.dumps(cfg))
        self.role, self.err_path, self.server = role, err_path, server
        source = textwrap.dedent(f"""
            import os, sys
            fd = os.open({str(err_path)!r}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 2)
            nul = os.open(os.devnull, os.O_RDWR)
            os.dup2(nul, 0)  # 0 and 1 were the fork server's command pipes
            os.dup2(nul, 1)
            os.chdir({str(script.parent)!r})
            sys.argv = [{str(script)!r}, {str(cfg_path)!r}]
            with open({str(script)!r}) as f:
                code = compile(f.read(), {str(script)!r}, "exec")
            exec(code, {{"__name__": "__main__"}})
        """)
        self.pid = server.spawn(source)
        self.returncode: int | None = None

    def alive(self) -> bool:
        return self.wait(0) is None

    def kill(self) -> None:
        if self.returncode is None:  # not reaped yet: the pid is still ours (perhaps a zombie)
            os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.wait(self.pid, timeout)
        return self.returncode

    def stderr_tail(self) -> str:
        try:
            return self.err_path.read_text(errors="replace")[-1500:]
        except OSError:
            return ""


@dataclass
class _Round:
    """One round's processes and what its kills did."""

    rnd: int
    rdir: Path
    rng: random.Random
    ack: Path
    writer: Child
    readers: list[tuple[Child, Path]] = field(default_factory=list)
    kills: int = 0
    kill_time: float | None = None  # when the writer was dead for sure


@dataclass
class _WriterLog:
    """Replay state of one round's ack log."""

    rnd: int
    open_ops: dict[str, tuple] = field(default_factory=dict)  # begun, not ended (yet)
    exports: dict[str, tuple[str, int, int, int]] = field(default_factory=dict)  # opid -> tid, inc, B, A


class Campaign:
    """Rounds of kill, check, accumulate; see the module docstring."""

    def __init__(self, workdir: Path, seed: int, *, store_rounds: int = 50, quiet: bool = False,
                 keep_failed: int = 10, lib: Path = REPO_ROOT, kill_modes: dict[str, float] | None = None) -> None:
        self.workdir = Path(workdir)
        self.lib = Path(lib)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.seed = seed
        self.rng = random.Random(seed)
        self.store_rounds = store_rounds
        self.quiet = quiet
        self.keep_failed = keep_failed
        self.kept_kinds: set[str] = set()
        self.kill_modes = dict(KILL_MODES if kill_modes is None else kill_modes)
        assert set(self.kill_modes) <= set(KILL_MODES), self.kill_modes
        self.server = ForkServer(self.lib)
        self.res = Results(seed)
        self.rnd = 0
        self.scripts = {}
        for name, text in (("writer", WRITER), ("reader", READER), ("checker", CHECKER), ("slots", SLOTS)):
            p = self.workdir / f"{name}.py"
            p.write_text(text)
            self.scripts[name] = p
        self.root: Path | None = None
        self._new_store()

    def close(self) -> None:
        """Stop the fork server (every child was waited for by its round)."""
        self.server.close()

    # ------------------------------------------------------------------ store state
    def _new_store(self) -> None:
        if self.root is not None and self.root.parent.exists():
            shutil.rmtree(self.root.parent, ignore_errors=True)
        self.res.stores += 1
        base = self.workdir / f"store{self.res.stores}"
        base.mkdir()
        self.root = base / "root"
        self.export_dir = base / "exports"
        self.export_dir.mkdir()
        self.store_round = 0
        self.fresh = True
        self.tenants = {tid: TenantModel() for tid in TENANTS}
        self.incs: dict[tuple[str, int], Inc] = {}
        self.next_inc = dict.fromkeys(TENANTS, 1)

    def _keep_failed(self, rdir: Path, kinds: set[str]) -> None:
        """Keep the store and the round's logs of the first round failing each way (useful
        with --workdir, which is not removed)."""
        if not kinds - self.kept_kinds or self.keep_failed <= 0 or not self.root.parent.exists():
            return
        self.keep_failed -= 1
        self.kept_kinds |= kinds
        dest = self.workdir / f"failed-round{self.rnd}"
        shutil.copytree(self.root.parent, dest / "store", symlinks=True)
        shutil.copytree(rdir, dest / "logs")
        (dest / "failures.txt").write_text("\n".join(sorted(kinds)) + "\n")

    # ------------------------------------------------------------------ one round
    def round(self) -> int:
        """Run one round; returns the number of SIGKILLs delivered."""
        self.rnd += 1
        self.store_round += 1
        rnd, rng = self.rnd, random.Random(self.rng.randrange(2**62))
        rdir = self.workdir / "rounds" / str(rnd)
        rdir.mkdir(parents=True)
        mode = rng.choices(list(self.kill_modes), list(self.kill_modes.values()))[0]
        self.res.info[f"rounds_kill_{mode}"] += 1
        focus = None
        if mode == "massacre":
            present = sorted(t for t, m in self.tenants.items() if m.inc is not None and m.pending is None)
            focus = rng.choice(present or sorted(TENANTS))
        cfg = self._writer_config(rnd, rng, rdir / "acks.log", focus)
        writer = Child("writer", self.scripts["writer"], cfg, rdir / "writer.json", rdir / "writer.err", self.server)
        r = _Round(rnd, rdir, rng, rdir / "acks.log", writer)
        for _ in range(rng.choice([1, 2])):
            self._spawn_reader(r)
        try:
            self._kill_round(r, mode, focus)
        finally:
            for c in [writer] + [c for c, _ in r.readers]:
                if c.alive():
                    c.kill()
                c.wait()
        self.fresh = False
        self._finish_round(r)
        return r.kills

    def _writer_config(self, rnd: int, rng: random.Random, ack: Path, stable: str | None) -> dict[str, Any]:
        durability = "full" if rnd % 2 else "process"
        self.res.info[f"rounds_{durability}"] += 1
        return {
            "root": str(self.root), "ack": str(ack), "export_dir": str(self.export_dir), "round": rnd,
            "seed": rng.randrange(2**31), "tenants": TENANTS, "durability": durability,
            "flush_interval": rng.choice([0, 0.2, 30.0]), "hnsw_threshold": HNSW_THRESHOLD,
            "threads": rng.choice([2, 3]), "switch_interval": rng.choice(SWITCH_INTERVALS),
            "state": {tid: (None if m.inc is None else [m.inc, sorted(self.incs[(tid, m.inc)].lineage)])
                      for tid, m in self.tenants.items()},
            "next_inc": self.next_inc, "fresh": self.fresh,
            # kept from drop, re-create, compaction (each makes a new LMDB lock file) and deactivation
            "stable": stable,
        }

    def _spawn_reader(self, r: _Round, threads: int = 2, focus: str | None = None) -> tuple[Child, Path]:
        i = len(r.readers)
        log = r.rdir / f"reader{i}.log"
        cfg = {"root": str(self.root), "log": str(log), "seed": r.rng.randrange(2**31), "tenants": TENANTS,
               "threads": threads, "focus": focus}
        r.readers.append((Child("reader", self.scripts["reader"], cfg, r.rdir / f"reader{i}.json",
                                r.rdir / f"reader{i}.err", self.server), log))
        return r.readers[-1]

    def _kill_round(self, r: _Round, mode: str, focus: str | None) -> None:
        rng = r.rng
        if mode == "early":
            time.sleep(rng.uniform(0.05, 0.6))
        else:
            t_spawn = time.monotonic()
            ready = self._wait_ready(r.writer, r.ack, r.rnd)
            self.res.seconds["writer_start"] += time.monotonic() - t_spawn
            if not ready:
                mode = "all"
        if mode == "storm":
            self._storm(r)
        elif mode == "massacre":
            assert focus is not None
            self._massacre(r, focus)
        if mode != "early":
            time.sleep(rng.uniform(0.05, 1.5) if mode == "all" else rng.uniform(0.05, 0.8))
        procs = [r.writer] + [c for c, _ in r.readers if c.alive()]
        rng.shuffle(procs)
        for c in procs:
            r.kills += self._kill(c, r.rnd)
            if c is r.writer:
                r.kill_time = time.monotonic()  # the writer is dead: whatever it did, it did before

    def _storm(self, r: _Round) -> None:
        """Readers killed mid-read while the writer goes on."""
        for _ in range(r.rng.randint(2, 5)):
            live = [(c, log) for c, log in r.readers if c.alive()]
            if not live or not r.writer.alive():
                return
            c, log = r.rng.choice(live)
            self._wait_reader(c, log)
            time.sleep(r.rng.uniform(0.02, 0.3))
            r.kills += self._kill(c, r.rnd)
            self._spawn_reader(r)

    def _massacre(self, r: _Round, focus: str) -> None:
        """LMDB frees a dead reader's slot only when a process checks (reader_check) or when
        no process has the environment open; here the writer and the first readers keep
        every environment open, and each victim dies holding up to 16 read transactions on
        one tenant (LMDB's table: 126-190 slots per environment)."""
        t_m = time.monotonic()
        for i in range(1, MASSACRE_KILLS + 1):
            if not r.writer.alive():
                break
            c, log = self._spawn_reader(r, threads=16, focus=focus)
            self._wait_reader(c, log, reads=16)
            time.sleep(r.rng.uniform(0, 0.005))
            r.kills += self._kill(c, r.rnd)
            if i % 5 == 0 and self._table_full(r.rdir, focus):
                break
        self.res.seconds["massacre"] += time.monotonic() - t_m
        # A newcomer needs a free slot for each read: it fails if dead readers hold them all.
        c, log = self._spawn_reader(r, threads=2, focus=focus)
        self._wait_reader(c, log, reads=20)

    def _finish_round(self, r: _Round) -> None:
        """Check the round, keep its evidence if it failed, start a fresh store if due."""
        before = Counter(self.res.failures)
        t_check = time.monotonic()
        kill_time = r.kill_time if r.kill_time is not None else time.monotonic()
        self._process(r.rnd, r.ack, [log for _, log in r.readers], kill_time)
        self.res.seconds["check"] += time.monotonic() - t_check
        self.res.rounds += 1
        new = {k for k, v in self.res.failures.items() if v > before[k]}
        if new:
            self.res.info["rounds_with_failures"] += 1
            self._keep_failed(r.rdir, new)
        shutil.rmtree(r.rdir, ignore_errors=True)
        if new & DAMAGE:
            # The store no longer matches the model (or cannot be read): a fresh one, so the
            # same damage is not counted again.
            self.res.info["stores_replaced_after_damage"] += 1
            self._new_store()
        elif self.store_round >= self.store_rounds:
            self._new_store()

    def _table_full(self, rdir: Path, tid: str) -> bool:
        """Whether dead processes hold every slot of ``tid``'s LMDB reader table."""
        out = rdir / "slots.json"
        out.unlink(missing_ok=True)
        cfg = {"path": str(self.root / "tenants" / tid), "out": str(out)}
        Child("slots", self.scripts["slots"], cfg, rdir / "slots.cfg", rdir / "slots.err", self.server).wait(30)
        try:
            got = json.loads(out.read_text())
        except (OSError, ValueError):
            return False
        if "dead" not in got:
            return False
        info = self.res.info
        info["massacre_dead_reader_slots_max"] = max(info["massacre_dead_reader_slots_max"], got["dead"])
        info["massacre_reader_table_size_max"] = max(info["massacre_reader_table_size_max"], got["size"])
        if got["dead"] >= got["size"]:
            info["massacre_reader_tables_filled"] += 1
            return True
        return False

    def _wait_ready(self, writer: Child, ack: Path, rnd: int) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if not writer.alive():
                return False  # counted when it is killed
            if Path(f"{ack}.ready").exists():
                return True
            time.sleep(0.01)
        self.res.fail("writer_stuck", self._ex(rnd, f"writer not ready after {READY_TIMEOUT:.0f} s",
                                               stderr=writer.stderr_tail()))
        return False

    def _wait_reader(self, c: Child, log: Path, reads: int = 0) -> None:
        """Until the reader opened the store (and logged ``reads`` reads or errors)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while c.alive() and time.monotonic() < deadline:
            if log.exists() and log.stat().st_size and (not reads or log.read_bytes().count(b"\n") > reads):
                return
            time.sleep(0.005)

    def _kill(self, c: Child, rnd: int) -> int:
        if not c.alive():
            rc = c.returncode
            if rc != -signal.SIGKILL:
                kind = "writer_deaths" if c.role == "writer" else "reader_deaths"
                self.res.fail(kind, self._ex(rnd, f"{c.role} exited by itself with status {rc}",
                                             stderr=c.stderr_tail()))
            return 0
        c.kill()
        if c.wait() != -signal.SIGKILL:  # it exited just before the signal
            return self._kill(c, rnd)
        self.res.kills += 1
        if c.role == "writer":
            self.res.writer_kills += 1
        else:
            self.res.reader_kills += 1
        return 1

    # ------------------------------------------------------------------ bookkeeping
    def _ex(self, rnd: int, what: str, **more: Any) -> dict[str, Any]:
        return {"seed": self.seed, "round": rnd, "store": self.res.stores, "store_round": self.store_round,
                "what": what, **more}

    def _process(self, rnd: int, ack: Path, reader_logs: list[Path], kill_time: float) -> None:
        """Replay the writer's log into the model, check the store and the readers' logs,
        then fold the round into the state the next one starts from."""
        log = _WriterLog(rnd)
        for pos, line in enumerate(_read_lines(ack)):
            if line[0] == "B":
                self._on_begin(log, pos, line)
            elif line[0] in ("A", "E", "X"):
                self._on_end(log, pos, line)
            elif line[0] == "W":
                self._on_served(rnd, line)
        for op, _tid, _inc, _ops, _pos in log.open_ops.values():
            self.res.kill_phase[op] += 1
        if not log.open_ops:
            self.res.kill_phase["(no write or lifecycle call)"] += 1
        obs = self._check(rnd)
        if obs is None:
            return
        self._compare(rnd, obs, kill_time)
        self._check_readers(rnd, reader_logs)
        for rinc in self.incs.values():
            if rinc.died is not None:
                rinc.records.clear()
                continue
            for rid, rec in list(rinc.records.items()):
                rec.init, rec.ops = rec.final(), []
                if rec.init == {ABSENT}:
                    del rinc.records[rid]

    def _on_begin(self, log: _WriterLog, pos: int, line: list) -> None:
        opid, t, op, tid, inc, payload = line[1:7]
        self.res.info[f"begun_{op}"] += 1
        ops: list[RecOp] | None = None
        if op in DATA_WRITES:
            rinc = self.incs[(tid, inc)]
            ops = []
            for rid, val in payload:
                rec = rinc.records.get(rid)
                if rec is None:
                    rec = rinc.records[rid] = Rec(frozenset([ABSENT]))
                if rec.ops and rec.ops[-1].end is None:
                    raise AssertionError(f"tool bug: overlapping calls on {tid}/{inc}/{rid} in round {log.rnd}")
                o = RecOp(pos, tuple(val) if val else ABSENT)
                rec.ops.append(o)
                ops.append(o)
        elif op in ("create", "import"):
            self.next_inc[tid] = max(self.next_inc[tid], inc + 1)
            lineage = frozenset([inc])
            records: dict[str, Rec] = {}
            if op == "import":
                src = self.incs[(tid, payload["from"])]
                xtid, xinc, bx, ax = log.exports[payload["export"]]
                assert (xtid, xinc) == (tid, src.n), "tool bug: import of another export"
                lineage |= src.lineage
                for rid, rec in src.records.items():
                    snap = rec.between(bx, ax)
                    if snap != {ABSENT}:
                        records[rid] = Rec(snap)
            self.incs[(tid, inc)] = Inc(tid, inc, t, lineage, records)
            self.tenants[tid].pending = (op, inc)
        elif op == "drop":
            self.tenants[tid].pending = ("drop", inc)
        log.open_ops[opid] = (op, tid, inc, ops, pos)

    def _on_end(self, log: _WriterLog, pos: int, line: list) -> None:
        res, rnd = self.res, log.rnd
        kind, opid, t = line[0], line[1], line[2]
        if kind == "X":
            res.fail(_slots_or("writer_non_tve_errors", line[4]),
                     self._ex(rnd, f"{line[3]} in call {opid}", traceback=line[4]))
        elif kind == "E":
            res.writer_errors[line[3]] += 1
            if line[3] not in EXPECTED_ERRORS:
                res.fail(_slots_or("unexpected_tve_errors", line[4]),
                         self._ex(rnd, f"writer call {opid} raised {line[3]}: {line[4]}"))
        if opid not in log.open_ops:
            return  # a read's X line
        op, tid, inc, ops, bpos = log.open_ops.pop(opid)
        if kind == "A":
            res.info[f"acked_{op}"] += 1
        if ops is not None:  # a data write
            for o in ops:
                o.end, o.acked = pos, kind == "A"
            rinc = self.incs[(tid, inc)]
            if kind == "A" and rinc.died_pos is not None and bpos > rinc.died_pos:
                res.fail("acked_writes_after_drop", self._ex(
                    rnd, f"{op} {opid} on {tid} incarnation {inc} acknowledged; it began after that "
                    "incarnation's drop returned", ids=[o.new for o in ops][:3]))
            return
        if kind != "A":
            return  # a lifecycle call that raised stays pending: resolved by the checker
        m = self.tenants[tid]
        if op in ("create", "import"):
            m.inc, m.pending = inc, None
        elif op == "drop":
            m.inc, m.pending = None, None
            self.incs[(tid, inc)].died = t
            self.incs[(tid, inc)].died_pos = pos
        elif op == "export":
            log.exports[opid] = (tid, inc, bpos, pos)
        elif op == "verify" and line[3] is not None and not line[3][0]:
            res.fail("verify_failures_live", self._ex(rnd, f"Store.verify({tid!r}) in the writer: {line[3][1]}"))

    def _on_served(self, rnd: int, line: list) -> None:
        why, tid, how, detail = line[3:7]
        if why == "foreign":
            self.res.fail("foreign_records", self._ex(rnd, f"writer {how} read of {tid} served {detail}"))
        elif why == "resurrected_tenant":
            self.res.fail("lifecycle_mismatches", self._ex(rnd, f"writer {how} read of dropped {tid}: {detail}"))
        else:
            self.res.fail("dropped_incarnation_served_writer", self._ex(rnd, f"writer {how} read of {tid}: {why}: {detail}"))

    def _check(self, rnd: int) -> dict[str, Any] | None:
        out = self.workdir / "rounds" / str(rnd) / "check.json"
        cfg = {"root": str(self.root), "out": str(out), "tenants": TENANTS, "hnsw_threshold": HNSW_THRESHOLD}
        t0 = time.monotonic()
        c = Child("checker", self.scripts["checker"], cfg, out.with_suffix(".cfg"), out.with_suffix(".err"), self.server)
        if c.wait(CHECK_TIMEOUT) is None:
            c.kill()
            c.wait()
        self.res.seconds["checker_process"] += time.monotonic() - t0
        if c.returncode != 0 or not out.exists():
            self.res.fail("checker_deaths", self._ex(rnd, f"checker exited with status {c.returncode}",
                                                     stderr=c.stderr_tail()))
            return None
        return json.loads(out.read_text())

    def _compare(self, rnd: int, obs: dict[str, Any], kill_time: float) -> None:
        res = self.res
        for e in obs["errors"]:
            res.fail("checker_errors", self._ex(rnd, f"checker {e['where']}: {e['type']}: {e['msg']}", traceback=e["tb"]))
        if obs["listed"] is not None:
            existing = sorted(t for t, o in obs["tenants"].items() if o["exists"])
            if obs["listed"] != existing:
                res.fail("lifecycle_mismatches",
                         self._ex(rnd, f"store.tenants() lists {obs['listed']}, tenants with files: {existing}"))
        for tid, m in self.tenants.items():
            o = obs["tenants"].get(tid)
            if o is None:
                continue  # the checker could not open the store: counted above
            exists = o["exists"]
            if m.pending is not None:
                # Begun, not acknowledged (killed in flight, or raised): whether it happened
                # shows in whether the tenant exists (create, drop and import are renames).
                op, n = m.pending
                res.info[f"resolved_unacked_{op}_{'present' if exists else 'absent'}"] += 1
                m.inc = n if exists else None
                if not exists:  # dropped (or never created) before the writer died
                    self.incs[(tid, n)].died = kill_time
                m.pending = None
            elif exists != (m.inc is not None):
                res.fail("lifecycle_mismatches", self._ex(
                    rnd, f"tenant {tid} {'exists' if exists else 'is missing'}; acknowledged state: "
                    + (f"incarnation {m.inc}" if m.inc is not None else "dropped")))
                continue
            if not exists:
                continue
            if "error" in o:
                e = o["error"]
                res.fail("checker_errors", self._ex(rnd, f"checker {e['where']} of {tid}: {e['type']}: {e['msg']}",
                                                    traceback=e["tb"]))
            self._compare_verify(rnd, tid, o)
            if "records" in o:
                self._compare_records(rnd, tid, self.incs[(tid, m.inc)], o)

    def _compare_verify(self, rnd: int, tid: str, o: dict[str, Any]) -> None:
        """What verify said of one tenant on the killed writer's files and after a reopen."""
        res = self.res
        if "verify_error" in o:
            e = o["verify_error"]
            res.fail("checker_errors", self._ex(rnd, f"Store.verify({tid!r}) raised {e['type']}: {e['msg']}"))
        elif not o["verify"][0]:
            if all(_derived_only(p) for p in o["verify"][1]):
                # a kill between a snapshot's rename and its checkpoint: the index is
                # derived data, rebuilt from LMDB on the next open (checked just below)
                res.info["snapshots_rebuilt_on_reopen"] += 1
            else:
                res.fail("verify_failures", self._ex(
                    rnd, f"Store.verify({tid!r}) on the killed writer's files: {o['verify'][1]}",
                    after_reopen=o.get("verify_after_reopen")))
        after = o.get("verify_after_reopen")
        if after is not None and not after[0]:
            res.fail("verify_failures_after_reopen", self._ex(
                rnd, f"Store.verify({tid!r}) after a writer reopened the store: {after[1]}"))

    def _compare_records(self, rnd: int, tid: str, rinc: Inc, o: dict[str, Any]) -> None:
        res = self.res
        seen: dict[str, tuple[str, str]] = {}
        res.info["checked_records"] += len(o["records"])
        kind = o["info"][0]
        res.info[f"checked_tenants_{kind}"] += 1
        for rid, doc, vcrc, mt in o["records"]:
            if rid in seen:
                res.fail("inconsistent_reads", self._ex(rnd, f"{tid}: get() returned id {rid} twice"))
            seen[rid] = (doc, vcrc)
            parts = doc.split("|") if isinstance(doc, str) else []
            if len(parts) != 4 or parts[0] != tid or parts[2] != rid or mt != tid:
                res.fail("foreign_records", self._ex(rnd, f"tenant {tid} holds record {rid} with document {doc!r}, "
                                                     f"metadata tenant {mt!r}"))
                continue
            rec = rinc.records.get(rid)
            poss = rec.final() if rec is not None else frozenset([ABSENT])
            if (doc, vcrc) in poss:
                continue
            if int(parts[1]) not in rinc.lineage:
                res.fail("dropped_incarnation_records", self._ex(
                    rnd, f"tenant {tid} (incarnation {rinc.n}) holds {rid} = {doc!r} of dropped incarnation "
                    f"{parts[1]}", lineage=sorted(rinc.lineage)))
            elif ABSENT in poss:
                res.fail("unexpected_records", self._ex(
                    rnd, f"{tid}/{rid} holds {doc!r}; it may only be {_show(poss)}", incarnation=rinc.n))
            else:
                res.fail("lost_acked_writes", self._ex(
                    rnd, f"{tid}/{rid} holds {doc!r} (vector {vcrc}); acknowledged: {_show(poss)}",
                    incarnation=rinc.n))
        for rid, rec in rinc.records.items():
            poss = rec.final()
            if ABSENT not in poss and rid not in seen:
                res.fail("lost_acked_writes", self._ex(
                    rnd, f"{tid}/{rid} is missing; acknowledged: {_show(poss)}", incarnation=rinc.n))
        if o["count"] != len(o["records"]) or o["info"][1] != len(o["records"]):
            res.fail("inconsistent_reads", self._ex(
                rnd, f"{tid}: count()={o['count']}, info().count={o['info'][1]}, get() returned {len(o['records'])}"))
        for hid, hdoc in o["hits"]:
            if hid not in seen or seen[hid][0] != hdoc:
                res.fail("inconsistent_reads", self._ex(
                    rnd, f"{tid}: query hit {hid} ({hdoc!r}) is not a record get() returned"))
                break

    def _check_readers(self, rnd: int, logs: list[Path]) -> None:
        res = self.res
        by_tid: dict[str, list[Inc]] = {}
        for (tid, _n), rinc in self.incs.items():
            by_tid.setdefault(tid, []).append(rinc)
        for log in logs:
            for line in _read_lines(log):
                kind = line[0]
                if kind == "R":
                    continue
                t0, t1, tid = line[1], line[2], line[3]
                if kind == "E":
                    res.reader_errors[line[4]] += 1
                    if line[4] not in EXPECTED_ERRORS:
                        res.fail(_slots_or("unexpected_tve_errors", line[5]),
                                 self._ex(rnd, f"reader read of {tid} raised {line[4]}: {line[5]}"))
                    continue
                if kind == "X":
                    res.fail(_slots_or("reader_non_tve_errors", line[5]),
                             self._ex(rnd, f"reader read of {tid} raised {line[4]}", traceback=line[5]))
                    continue
                incs, n, bad, nbad = line[4], line[5], line[6], line[7]
                res.info["reader_reads"] += 1
                res.info["reader_records_served"] += n
                if nbad:
                    res.fail("foreign_records", self._ex(rnd, f"reader read of {tid} served {nbad} foreign records, "
                                                         f"e.g. {bad[0]}"))
                for x, rid in incs.items():
                    x = int(x)
                    ok = any(x in y.lineage and y.born < t1 and (y.died is None or y.died >= t0)
                             for y in by_tid.get(tid, ()))
                    if not ok:
                        src = self.incs.get((tid, x))
                        dead = (f"{(t0 - src.died) * 1000:.2f} ms after its drop returned (no incarnation "
                                f"holding its records existed then)" if src and src.died else "?")
                        res.fail("dropped_incarnation_served_readers", self._ex(
                            rnd, f"reader served {tid}/{rid} of incarnation {x}; the read began {dead}"))


def _slots_or(kind: str, text: str) -> str:
    """``reader_slots_exhausted`` for an error saying LMDB's reader table is full, else ``kind``."""
    return "reader_slots_exhausted" if "READERS_FULL" in text or "reader slot" in text else kind


def _show(poss: frozenset) -> str:
    return "{" + ", ".join("absent" if v is ABSENT else repr(v[0]) for v in sorted(poss, key=str)) + "}"


# ---------------------------------------------------------------------------- driver
class Rounds(Protocol):
    """A campaign ``drive`` can run: ``round()`` runs one round (counting its kills in ``res``)."""

    res: Tally
    rnd: int

    def round(self) -> Any: ...

    def close(self) -> None: ...


R = TypeVar("R", bound=Rounds)


def drive(make: Callable[[Path], R], kills: int, workdir: str | os.PathLike[str] | None, *, prefix: str,
          keep: bool, quiet: bool, every: int) -> R:
    """Make a campaign in ``workdir`` (created if missing; default: a new temporary directory
    named ``prefix*``, removed at the end unless ``keep``) and run rounds until ``kills``
    SIGKILLs were delivered, printing progress every ``every`` rounds unless ``quiet``;
    returns the closed campaign, its ``res.elapsed`` set."""
    tmp = None
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix=prefix)
        workdir = tmp
    try:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        camp = make(Path(workdir))
        t0 = time.monotonic()
        try:
            while camp.res.kills < kills:
                camp.round()
                camp.res.elapsed = time.monotonic() - t0
                if not quiet and camp.rnd % every == 0:
                    print(camp.res.progress(camp.rnd), flush=True)
        finally:
            camp.res.elapsed = time.monotonic() - t0
            camp.close()
    finally:
        if tmp is not None and not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return camp


def run_campaign(kills: int, seed: int, workdir: str | os.PathLike[str] | None = None, *,
                 store_rounds: int = 50, quiet: bool = False, keep: bool = False,
                 lib: str | os.PathLike[str] = REPO_ROOT, kill_modes: dict[str, float] | None = None) -> Results:
    """Run rounds until ``kills`` SIGKILLs were delivered; returns the counters.

    ``lib``: directory holding the ``tenantvec`` package the children run (default: this
    checkout), e.g. ``git archive <rev> tenantvec | tar -x -C /tmp/lib-rev``; ``kill_modes``:
    weights of the round kinds (default ``KILL_MODES``)."""
    camp = drive(lambda wd: Campaign(wd, seed, store_rounds=store_rounds, quiet=quiet, lib=Path(lib),
                                     kill_modes=kill_modes),
                 kills, workdir, prefix="tenantvec-kills-", keep=keep, quiet=quiet, every=10)
    camp.res.library = camp.server.library
    return camp.res


def campaign_parser(doc: str, *, kills_help: str, out: str, store_rounds: int) -> argparse.ArgumentParser:
    """The command line both kill tools share: ``--kills``, ``--seed``, ``--out``, ``--workdir``
    and ``--store-rounds``; ``parse_campaign_args`` adds ``--modes`` and ``--quiet``."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=1000, help=kills_help)
    ap.add_argument("--seed", type=int, default=None, help="campaign seed (default: random, printed)")
    ap.add_argument("--out", default=out, help="where to write the JSON results")
    ap.add_argument("--workdir", default=None, help="keep stores and logs here (default: a temp dir, removed)")
    ap.add_argument("--store-rounds", type=int, default=store_rounds, help="rounds on one store before a fresh one")
    return ap


def parse_campaign_args(ap: argparse.ArgumentParser, argv: list[str] | None, *, kill_modes: dict[str, float],
                        modes_help: str, noun: str) -> tuple[argparse.Namespace, dict[str, float] | None, int]:
    """Add ``--modes`` (weights of ``kill_modes``, called ``noun`` in its error) and ``--quiet``
    to ``ap`` and parse ``argv``; returns the arguments, the modes given (or None) and the
    seed (``--seed``, or a random one)."""
    ap.add_argument("--modes", default=None, help=f"{modes_help} (default: "
                    + ",".join(f"{k}={v}" for k, v in kill_modes.items()) + ")")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    modes = None
    if args.modes:
        modes = {k: float(v) for k, v in (item.split("=") for item in args.modes.split(","))}
        if not set(modes) <= set(kill_modes):
            ap.error(f"--modes: {noun} are {', '.join(kill_modes)}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    return args, modes, seed


def write_results(res: Tally, out: str) -> int:
    """Write ``res`` to ``out`` as JSON and print its summary; returns the exit status (1 if
    anything failed)."""
    Path(out).write_text(json.dumps(res.to_json(), indent=2, default=str) + "\n")
    print()
    print(res.summary())
    print(f"\nresults written to {out}")
    return 1 if res.failed() else 0


def main(argv: list[str] | None = None) -> int:
    ap = campaign_parser(__doc__, kills_help="SIGKILLs to deliver (writer and reader processes)",
                         out="kill_campaign.json", store_rounds=50)
    ap.add_argument("--lib", default=str(REPO_ROOT),
                    help="directory holding the tenantvec package to test (default: this checkout)")
    args, modes, seed = parse_campaign_args(ap, argv, kill_modes=KILL_MODES, noun="kinds",
                                            modes_help="weights of the round kinds, e.g. massacre=1 or all=1,storm=1")
    lib = Path(args.lib).resolve()
    print(f"kill campaign: {args.kills} kills, seed {seed}, library {lib}", flush=True)
    res = run_campaign(args.kills, seed, args.workdir, store_rounds=args.store_rounds, quiet=args.quiet,
                       keep=args.workdir is not None, lib=lib, kill_modes=modes)
    return write_results(res, args.out)


if __name__ == "__main__":
    sys.exit(main())
