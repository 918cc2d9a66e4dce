"""Verify and repair one tenant's files.

An operation over (the store's manager, the tenant's directory, the store's options):
the tenant is held cold by the manager (``ShardManager.exclusive``) while its LMDB
environment and index snapshot are read directly, checked with the same functions an
open uses (:func:`~.layout.examine_meta`, :func:`~.snapshot.check_snapshot`,
``Shard.load_index``), and, with ``fix``, repaired from LMDB (the source of truth). The
public entry point is ``Store.verify``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import lmdb
import numpy as np

from .._ids import HASHED_ID_FILE
from .._options import StoreOptions
from ..errors import CorruptShard, ReadOnlyStore, TenantNotFound, TenantVecError
from .auditlog import append_lifecycle, chain_problems
from .checksum import CRC_BYTES, ID_MAP, RECORD, VECTOR, intact, rows_view, seal
from .index import ExactIndex, HnswIndex, prepare_query
from .layout import (
    DATA_FILE,
    FORMAT_UNSEALED,
    FORMAT_VERSION,
    INDEX_FILE,
    JOURNAL_FILE,
    ShardMeta,
    examine_meta,
    pack_label,
    packb,
    unpack_label,
    unpackb,
)
from .lmdbfile import check_data_file
from .manager import ShardManager
from .shard import Shard
from .shardfiles import RawEnv, open_raw, require_shard
from .snapshot import NO_CHECKPOINT, check_snapshot, record_checkpoint
from .wmlog import journal_damage, journal_pending

log = logging.getLogger("tenantvec")

#: Stored vectors queried against the index by ``verify`` (each must find itself).
VERIFY_SAMPLE = 64
_SELF_K = 10
_TOL = 1e-4
#: Looks at a tenant a read-only verify takes while the writer process moves it on.
_LOOKS = 5
_NO_REPAIR = (
    "verify(fix=True) cannot repair LMDB's page structure: restore the tenant's files from a backup, "
    "or drop the tenant and import its last export"
)


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class VerifyReport:
    """What ``Store.verify`` found in one tenant and, with ``fix=True``, what it repaired.

    ``ok`` is true when no problem remains; ``found`` lists the problems seen before
    repairing, ``problems`` those that remain, ``fixed`` the repairs made.
    """

    tenant: str
    ok: bool
    records: int
    problems: tuple[str, ...]
    found: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass
class _Findings:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fatal: bool = False  # nothing can be repaired (foreign tenant, unknown format, no meta)
    records: int = 0
    drop: dict[int, str] = field(default_factory=dict)  # label -> why its record goes
    drop_vecs: list[int] = field(default_factory=list)  # vectors without a record
    drop_ids: list[bytes] = field(default_factory=list)  # dangling or damaged id -> label entries
    names: dict[int, str] = field(default_factory=dict)  # label -> id of records dropped, where known
    restore_ids: dict[bytes, bytes] = field(default_factory=dict)  # id -> label to re-map
    drop_side: list[tuple[str, bytes]] = field(default_factory=list)  # damaged side table entries
    next_label: int | None = None  # raise meta next_label to this
    rebuild_index: bool = False

    @property
    def lmdb_repairs(self) -> bool:
        return bool(self.drop or self.drop_vecs or self.drop_ids or self.restore_ids or self.next_label
                    or self.drop_side)


@dataclass
class _IdMap:
    """How the id map matched the records: entries of dropped records (label -> id),
    entries that match nothing, and entries failing their CRC32."""

    named: dict[int, bytes] = field(default_factory=dict)
    dangling: int = 0
    damaged: list[bytes] = field(default_factory=list)


def _short(items: list[Any], n: int = 5) -> str:
    head = ", ".join(str(x) for x in items[:n])
    return head + (", ..." if len(items) > n else "")


# ---------------------------------------------------------------------------- metadata
def _check_meta(f: RawEnv, txn: lmdb.Transaction[bytes], tenant_id: str, path: str, out: _Findings) -> ShardMeta | None:
    """The shard's metadata, checked as an open checks it (any problem is fatal), and the
    file naming the tenant of a hashed directory."""
    meta, problems = examine_meta(txn, f.dbs.meta, tenant_id, path)
    out.problems.extend(problems)
    out.fatal = meta is None
    if os.path.basename(path).startswith("~"):
        try:
            with open(os.path.join(path, HASHED_ID_FILE), encoding="utf-8") as fh:
                if fh.read() != tenant_id:
                    out.problems.append(f"{HASHED_ID_FILE} does not name tenant {tenant_id!r}")
        except UnicodeDecodeError:
            out.problems.append(f"{HASHED_ID_FILE} does not name tenant {tenant_id!r} (it is not UTF-8)")
        except OSError:
            out.problems.append(f"{HASHED_ID_FILE} is missing (the tenant is not listed)")
    return meta


# ---------------------------------------------------------------------------- records
def _valid_record(rec: Any) -> bool:
    return (
        isinstance(rec, list) and len(rec) == 5 and isinstance(rec[0], str) and bool(rec[0])
        and isinstance(rec[1], dict) and (rec[2] is None or isinstance(rec[2], str))
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in rec[3:5])
    )


def _read_records(f: RawEnv, txn: lmdb.Transaction[bytes], out: _Findings) -> dict[int, bytes]:
    """The id (bytes) of every record that passes its CRC32 and decodes, by label."""
    recs: dict[int, bytes] = {}
    for lb, raw in txn.cursor(db=f.dbs.recs):
        if len(lb) != 8:
            out.problems.append(f"record key {lb!r} is not a label")
            out.fatal = True  # unexpected shape: leave it to a human
            continue
        lab = unpack_label(lb)
        if not intact(raw):
            out.drop[lab] = f"fails its checksum ({RECORD})"
            continue
        try:
            rec = unpackb(raw[:-CRC_BYTES])
        except Exception:
            rec = None
        if not _valid_record(rec):
            out.drop[lab] = "does not decode"
            continue
        recs[lab] = rec[0].encode("utf-8")
    return recs


def _check_vectors(f: RawEnv, txn: lmdb.Transaction[bytes], meta: ShardMeta, recs: dict[int, bytes],
                   out: _Findings) -> None:
    """Every vector: intact, of the tenant's dimension, finite (non-zero under cosine),
    with a record; and every record with a vector."""
    has_vec = set()
    good_keys, good_vals = [], []
    for lb, raw in txn.cursor(db=f.dbs.vecs):
        if len(lb) != 8:
            out.problems.append(f"vector key {lb!r} is not a label")
            out.fatal = True
            continue
        lab = unpack_label(lb)
        has_vec.add(lab)
        if lab not in recs and lab not in out.drop:
            out.drop_vecs.append(lab)
        elif not intact(raw):
            out.drop.setdefault(lab, f"fails its checksum ({VECTOR})")
        elif len(raw) != 4 * meta.dim + CRC_BYTES:
            out.drop.setdefault(lab, f"has a vector of {(len(raw) - CRC_BYTES) // 4} dimensions, expected {meta.dim}")
        else:
            good_keys.append(lab)
            good_vals.append(raw)
    if good_vals:
        mat = rows_view(b"".join(good_vals), len(good_vals), meta.dim)
        bad = ~np.isfinite(mat).all(axis=1)
        if meta.metric == "cosine":
            bad |= ~mat.any(axis=1)
        for i in np.flatnonzero(bad).tolist():
            out.drop.setdefault(good_keys[i], "has a vector with NaN, infinity or (cosine) all zeros")
    for lab in recs:
        if lab not in has_vec:
            out.drop.setdefault(lab, "has no vector")


def _check_id_map(f: RawEnv, txn: lmdb.Transaction[bytes], live: dict[int, bytes], out: _Findings) -> _IdMap:
    """The id -> label map against the live records (``live[label]`` is the id): entries
    to drop, records to re-map, and records whose id a newer record holds (dropped)."""
    found = _IdMap()
    mapped: dict[bytes, int] = {}
    for idb, lb in txn.cursor(db=f.dbs.ids):
        if not intact(lb):
            found.damaged.append(idb)
            out.drop_ids.append(idb)
            continue
        lab = unpack_label(lb[:8]) if len(lb) == 8 + CRC_BYTES else -1
        if lab >= 0 and live.get(lab) == idb:
            mapped[idb] = lab
            continue
        out.drop_ids.append(idb)
        if lab in out.drop:
            found.named[lab] = idb
        else:
            found.dangling += 1
    for lab, rid in live.items():
        if mapped.get(rid) == lab:
            continue
        if rid in mapped:  # the id belongs to another (newer) record
            out.drop[lab] = f"duplicates id {rid.decode(errors='replace')!r} of label {mapped[rid]}"
        else:
            out.restore_ids[rid] = seal(pack_label(lab))
    return found


def _report_records(recs: dict[int, bytes], ids: _IdMap, out: _Findings) -> None:
    """Name what :func:`_check_records` found in ``out.problems``."""
    for lab, why in sorted(out.drop.items()):
        rid = recs.get(lab) or ids.named.get(lab)
        if rid:
            out.names[lab] = rid.decode(errors="replace")
        who = f" (id {out.names[lab]!r})" if rid else ""
        out.problems.append(f"record label {lab}{who} {why}")
    if out.drop_vecs:
        out.problems.append(f"{len(out.drop_vecs)} vectors have no record (e.g. label {out.drop_vecs[0]})")
    for idb in ids.damaged:
        out.problems.append(f"id map entry {idb.decode(errors='replace')!r} fails its checksum ({ID_MAP})")
    if ids.dangling:
        example = next(i for i in out.drop_ids if i not in ids.named.values() and i not in ids.damaged)
        out.problems.append(
            f"{ids.dangling} id map entries point to no matching record (e.g. {example.decode(errors='replace')!r})"
        )
    if out.restore_ids:
        first = next(iter(out.restore_ids)).decode(errors="replace")
        out.problems.append(f"{len(out.restore_ids)} records are missing from the id map (e.g. {first!r})")


def _check_records(f: RawEnv, txn: lmdb.Transaction[bytes], meta: ShardMeta, out: _Findings) -> None:
    """Records, vectors and the id map, each value against its CRC32; what cannot be
    served goes to ``out.drop`` (and friends), the live records are counted."""
    recs = _read_records(f, txn, out)
    _check_vectors(f, txn, meta, recs, out)
    live = {lab: rid for lab, rid in recs.items() if lab not in out.drop}
    ids = _check_id_map(f, txn, live, out)
    live = {lab: rid for lab, rid in live.items() if lab not in out.drop}
    max_label = max(live, default=-1)  # not the dropped ones: a damaged key may read as any label
    if max_label >= meta.next_label:
        out.next_label = max_label + 1
    _report_records(recs, ids, out)
    if out.next_label:
        out.problems.append(f"labels reach {max_label} but next_label is {meta.next_label}")
    out.records = len(live)


# ---------------------------------------------------------------------------- index
def _check_side_tables(f: RawEnv, txn: lmdb.Transaction[bytes], out: _Findings) -> None:
    """Every side table value (working memory, audit) must pass its CRC32."""
    for name, db in f.dbs.side().items():
        bad = [k for k, raw in txn.cursor(db=db) if not intact(raw)]
        if bad:
            out.problems.append(f"{len(bad)} {name} entries fail their CRC32 (keys {_short(bad)}); "
                                "verify(fix=True) removes them")
            out.drop_side.extend((name, k) for k in bad)


def _check_audit(f: RawEnv, txn: lmdb.Transaction[bytes], out: _Findings) -> None:
    """The audit log's hash chain (:func:`~tenantvec._audit.check_chain`): an edited,
    removed, moved or undecodable entry, or a head that does not match, is reported and
    never repaired (rewriting the chain would erase the evidence)."""
    problems = chain_problems(txn, f.dbs.audit)
    if problems:
        out.problems.extend(f"audit log: {p}" for p in problems)
        out.notes.append("verify(fix=True) cannot repair an audit log: a broken chain is reported, never rewritten")


def _check_snapshot(f: RawEnv, txn: lmdb.Transaction[bytes], path: str, meta: ShardMeta, out: _Findings) -> bool:
    """The snapshot against its checkpoint and the op log (as an open checks it);
    returns whether it can serve."""
    if meta.kind != "hnsw":
        if os.path.exists(os.path.join(path, INDEX_FILE)):
            out.notes.append(f"{INDEX_FILE} is left over from an HNSW index (unused by the exact index)")
        return True
    ckpt = meta.checkpoint
    why = check_snapshot(path, ckpt, meta.seq, txn, f.dbs.oplog)
    if why is NO_CHECKPOINT:
        if txn.stat(f.dbs.ids)["entries"]:
            out.notes.append("no index snapshot yet (the index is rebuilt from LMDB on open)")
        return True
    if why is not None:
        out.problems.append(f"index snapshot {INDEX_FILE} {why}")
        out.rebuild_index = True
        return False
    if ckpt is not None and ckpt["seq"] != meta.seq:
        out.notes.append(f"index snapshot is at seq {ckpt['seq']}, LMDB at {meta.seq} (the op log is replayed on open)")
    return True


def _sample(want: np.ndarray, sample: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.sort(want[rng.choice(len(want), size=min(sample, len(want)), replace=False)])


def _unreachable(index: HnswIndex, live: dict[int, bytes], out: _Findings) -> bool:
    """Whether some record cannot be reached by any search (reported)."""
    try:
        lost = index.unreachable().tolist()
    except OSError as exc:  # the links are read from a temporary copy of the index
        out.notes.append(f"could not check that every record can be reached by a search: {exc}")
        return False
    if not lost:
        return False
    ids = [repr(live[lab].decode("utf-8")) for lab in lost]
    if len(lost) == 1:
        what, it = "1 record cannot be found by any search: an HNSW node that no link leads to", "it"
    else:
        what, it = f"{len(lost)} records cannot be found by any search: HNSW nodes that no link leads to", "them"
    out.problems.append(f"{what} (ids {_short(ids)}); rebuilding the index links {it} again")
    out.rebuild_index = True
    return True


def _self_search(index: ExactIndex | HnswIndex, metric: str, pick: np.ndarray, mat: np.ndarray,
                 prepared: np.ndarray, live: int, out: _Findings) -> None:
    """Each sampled stored vector must find itself (or a tie) among its nearest."""
    self_d = np.zeros(len(pick)) if metric == "l2" else 1.0 - np.einsum("ij,ij->i", prepared, prepared)
    k = min(_SELF_K, live)
    misses = 0
    for i, (labels, dists) in enumerate(index.search(mat, k)):
        if int(pick[i]) in labels.tolist():
            continue
        tie = len(dists) and (
            (len(dists) == k and dists[-1] <= self_d[i] + _TOL)
            or (metric != "ip" and dists.min() <= self_d[i] + _TOL)
        )
        if not tie:
            misses += 1
    allowed = 0 if index.kind == "exact" else max(1, len(pick) // 20)
    if misses > allowed:
        out.problems.append(f"{misses} of {len(pick)} sampled records are not found by searching for their own vector")
        out.rebuild_index = True
    elif misses:
        out.notes.append(f"{misses} of {len(pick)} sampled records not in their own top-{k} (approximate index)")


def _check_index(shard: Shard, live: dict[int, bytes], sample: int, out: _Findings) -> None:
    """The loaded index (snapshot plus op log) holds exactly the live records, a search
    can reach every one of them (HNSW), and sampled stored vectors find themselves."""
    index = shard.index
    got = index.labels()
    want = np.fromiter(sorted(live), dtype=np.int64, count=len(live))
    extra = np.setdiff1d(got, want)
    missing = np.setdiff1d(want, got)
    if len(extra) or len(missing):
        out.problems.append(
            f"index holds {len(got)} vectors, LMDB {len(want)} records "
            f"({len(missing)} missing from the index, {len(extra)} not in LMDB)"
        )
        out.rebuild_index = True
        return
    if not len(want) or not sample:
        return
    pick = _sample(want, sample)
    vecs = shard.databases.vecs
    with shard.read_txn() as txn:
        raws = [txn.get(pack_label(lab), b"", db=vecs) for lab in pick.tolist()]
    lost = [int(lab) for lab, raw in zip(pick.tolist(), raws) if len(raw) != 4 * shard.dim + CRC_BYTES]
    if lost:  # listed by a cursor, not found by a lookup: keys out of order in the data file
        out.problems.append(f"the vector of label {lost[0]} cannot be looked up: LMDB's key order is damaged. {_NO_REPAIR}")
        out.fatal = True
        return
    mat = rows_view(b"".join(raws), len(pick), shard.dim)  # their CRC32s were checked with the records
    prepared = prepare_query(shard.metric, mat)
    held = index.get_vectors(pick)
    if not np.allclose(held, prepared, atol=1e-4, rtol=1e-3):
        bad = int(np.flatnonzero(~np.isclose(held, prepared, atol=1e-4, rtol=1e-3).all(axis=1))[0])
        out.problems.append(f"index vector of label {int(pick[bad])} differs from the one in LMDB")
        out.rebuild_index = True
        return
    if isinstance(index, HnswIndex) and _unreachable(index, live, out):
        return
    _self_search(index, shard.metric, pick, mat, prepared, len(want), out)


def _compare_index(path: str, tenant_id: str, opts: StoreOptions, sample: int, out: _Findings) -> None:
    """Load the index exactly as an open serves it, without its self-healing (snapshot
    plus op log for HNSW; the exact index is always built from LMDB), and compare it
    with LMDB's live records."""
    try:
        shard = Shard.open(path, tenant_id, opts, True, load_index=False)
    except CorruptShard as exc:
        out.problems.append(str(exc))
        return
    try:
        why = shard.load_index()
        if why is not None:
            out.problems.append(f"index snapshot {INDEX_FILE} {why}")
            out.rebuild_index = True
            return
        for _ in range(_LOOKS):  # a writer process may commit while we compare
            with shard.reading(inactive_ok=True) as txn:  # a read-only shard catches up first
                if shard.meta(txn, b"seq") == shard.loaded_seq:
                    live = {unpack_label(lb[:8]): idb for idb, lb in txn.cursor(db=shard.databases.ids)}
                    break
        else:
            out.notes.append("the tenant changed on every look; index contents not compared")
            return
        _check_index(shard, live, sample, out)
    finally:
        shard.close()


# ---------------------------------------------------------------------------- examine
def _examine_files(path: str, tenant_id: str, opts: StoreOptions, sample: int) -> _Findings:
    out = _Findings()
    for attempt in range(_LOOKS):
        out = _Findings()
        with open_raw(path, tenant_id, write=False) as f, f.env.begin() as txn:
            meta = _check_meta(f, txn, tenant_id, path, out)
            if meta is None:
                return out
            _check_records(f, txn, meta, out)
            _check_side_tables(f, txn, out)
            _check_audit(f, txn, out)
            snapshot_ok = _check_snapshot(f, txn, path, meta, out)
        if not snapshot_ok and opts.readonly and attempt < _LOOKS - 1:
            # A writer process may be between renaming a new snapshot and recording its
            # checkpoint; look again once the checkpoint has moved on.
            time.sleep(0.05 * (attempt + 1))
            with open_raw(path, tenant_id, write=False) as f, f.env.begin() as txn:
                if f.get_meta(txn, b"ckpt") != meta.checkpoint:
                    continue
        break
    if not (out.fatal or out.lmdb_repairs or not snapshot_ok):
        _compare_index(path, tenant_id, opts, sample, out)
    return out


def _examine(path: str, tenant_id: str, opts: StoreOptions, sample: int) -> _Findings:
    try:  # LMDB's own structure first: LMDB trusts it, and damage there kills the process
        why = check_data_file(os.path.join(path, DATA_FILE), cached=False, full=True)
    except OSError:
        why = None  # missing or unreadable: opening the environment reports it
    if why is not None:
        return _Findings(problems=[f"LMDB data file is damaged: {why}. {_NO_REPAIR}"], fatal=True)
    try:
        return _examine_files(path, tenant_id, opts, sample)
    except CorruptShard as exc:  # the environment itself cannot be opened or lacks a database
        return _Findings(problems=[str(exc)], fatal=True)


# ---------------------------------------------------------------------------- repair
def _repair_counts(found: _Findings) -> dict[str, int]:
    """What a repair changes, as the counts of its ``verify`` audit entry."""
    counts = {"records_removed": len(found.drop), "vectors_removed": len(found.drop_vecs),
              "id_entries_removed": len(found.drop_ids), "ids_remapped": len(found.restore_ids),
              "side_entries_removed": len(found.drop_side), "index_rebuilt": 1}
    return {name: n for name, n in counts.items() if n}


def _repair_lmdb(f: RawEnv, found: _Findings, tenant_id: str) -> None:
    """One write transaction: drop unusable records and dangling entries, re-map ids, and
    append the ``verify`` audit entry (the ids of the records removed, where known)."""
    dbs = f.dbs
    with f.env.begin(write=True) as txn:
        for idb in found.drop_ids:
            txn.delete(idb, db=dbs.ids)
        for lab in found.drop:
            lb = pack_label(lab)
            txn.delete(lb, db=dbs.recs)
            txn.delete(lb, db=dbs.vecs)
        for lab in found.drop_vecs:
            txn.delete(pack_label(lab), db=dbs.vecs)
        for idb, lb in found.restore_ids.items():
            txn.put(idb, lb, db=dbs.ids)
        side = dbs.side()
        for name, key in found.drop_side:
            txn.delete(key, db=side[name])
        if found.next_label:
            txn.put(b"next_label", packb(found.next_label), db=dbs.meta)
        txn.put(b"seq", packb(f.get_meta(txn, b"seq") + 1), db=dbs.meta)
        txn.put(b"last_write", packb(time.time()), db=dbs.meta)
        record_checkpoint(txn, dbs, None)  # the index is rebuilt from the repaired records right after
        append_lifecycle(txn, dbs.audit, tenant_id, "verify", ids=sorted(set(found.names.values())),
                         counts=_repair_counts(found))


def _lmdb_repairs_done(found: _Findings) -> list[str]:
    done = []
    if found.drop:
        which = [f"{lab} (id {found.names[lab]!r})" if lab in found.names else str(lab) for lab in sorted(found.drop)]
        done.append(f"removed {len(found.drop)} unusable records (labels {_short(which)})")
    if found.drop_vecs:
        done.append(f"removed {len(found.drop_vecs)} vectors without a record")
    if found.drop_ids:
        done.append(f"removed {len(found.drop_ids)} dangling or damaged id map entries")
    if found.restore_ids:
        done.append(f"re-mapped {len(found.restore_ids)} records missing from the id map")
    if found.next_label:
        done.append(f"raised next_label to {found.next_label}")
    if found.drop_side:
        done.append(f"removed {len(found.drop_side)} damaged side table entries")
    return done


def _repair(path: str, tenant_id: str, opts: StoreOptions, found: _Findings) -> list[str]:
    """Apply what ``found`` calls for, from LMDB (the source of truth)."""
    done: list[str] = []
    if found.lmdb_repairs:
        with open_raw(path, tenant_id, write=True, map_size=opts.map_size) as f:
            _repair_lmdb(f, found, tenant_id)
        done = _lmdb_repairs_done(found)
    if found.lmdb_repairs or found.rebuild_index:
        shard = Shard.open(path, tenant_id, opts, False, load_index=False)
        try:
            shard.rebuild_index()
            if shard.kind == "hnsw":
                shard.flush()
                done.append(f"rebuilt the HNSW index from LMDB ({len(shard.index)} vectors) and wrote a new snapshot")
            else:
                done.append("the exact index is rebuilt from LMDB on every open")
            if not found.lmdb_repairs:  # the index alone changed: its audit entry right after
                shard.lifecycle("verify", _repair_counts(found))
        finally:
            shard.close()
    return done


def _upgrade_unsealed(path: str, tenant_id: str, opts: StoreOptions) -> str | None:
    """Upgrade a format-1 shard (no record checksums) as a writer opening it would, so that
    a writable store verifies every record's checksum; returns a note when it did."""
    try:
        with open_raw(path, tenant_id, write=False) as f, f.env.begin() as txn:
            if f.get_meta(txn, b"format") != FORMAT_UNSEALED or f.get_meta(txn, b"tenant") != tenant_id:
                return None
        Shard.open(path, tenant_id, opts, False, load_index=False).close()
    except (TenantVecError, lmdb.Error, ValueError):
        return None  # the examination reports what is wrong
    return f"upgraded shard format {FORMAT_UNSEALED} to {FORMAT_VERSION}: added CRC32 checksums to every record"


def _check_journal(path: str, tenant_id: str, opts: StoreOptions) -> list[str]:
    """Notes on the working memory journal (:mod:`~.wmlog`): a tail that cannot be read
    (a write a killed process did not finish, or damage) is reported, not repaired; a
    writable store then folds what the journal holds into LMDB, as closing the shard
    would, so that it is verified with the rest."""
    damage = journal_damage(path)
    notes = [f"working memory journal {JOURNAL_FILE}: {damage} (a write the process did not finish)"] if damage else []
    if not opts.readonly and journal_pending(path):
        try:
            Shard.open(path, tenant_id, opts, False, load_index=False).close()
        except (TenantVecError, lmdb.Error, OSError, ValueError):
            pass  # the examination reports what is wrong
    return notes


def verify_tenant(manager: ShardManager, path: str, tenant_id: str, opts: StoreOptions, *, fix: bool = False,
                  sample: int = VERIFY_SAMPLE) -> VerifyReport:
    """Check the files of tenant ``tenant_id`` in directory ``path``; with ``fix``,
    repair what LMDB allows and check again.

    Checks: the stored tenant id matches the directory; every record, vector and id map
    entry passes its CRC32 and every record decodes; vectors are finite with the
    tenant's dimension; the id map and the records agree; the index snapshot matches its
    checkpoint (size, CRC32, sequence) and the op log has no gap; the loaded index holds
    exactly the live records, a search can reach each of them, and ``sample`` stored
    vectors find themselves; the audit log's hash chain is intact (a broken one is
    reported and never repaired). A repair appends a ``verify`` entry to the audit log.
    The tenant is unloaded for the duration (a running store waits for it). A writable
    store first upgrades a format-1 shard, as opening it would.

    :raises TenantNotFound: no tenant directory at ``path``.
    :raises ReadOnlyStore: ``fix`` with read-only ``opts``.
    """
    require_shard(path, tenant_id, need_data=False)
    if fix and opts.readonly:
        raise ReadOnlyStore(f"tenant {tenant_id!r}: the store is open read-only; cannot repair it", tenant=tenant_id)
    with manager.exclusive(tenant_id):
        if not os.path.isdir(path):  # dropped while we waited for running calls
            raise TenantNotFound(f"tenant {tenant_id!r} does not exist (no shard in {path})", tenant=tenant_id)
        upgraded = None if opts.readonly else _upgrade_unsealed(path, tenant_id, opts)
        journal = _check_journal(path, tenant_id, opts)
        found = _examine(path, tenant_id, opts, sample)
        if upgraded:
            found.notes.insert(0, upgraded)
        found.notes.extend(journal)
        if not found.problems or not fix:
            return VerifyReport(tenant_id, not found.problems, found.records, tuple(found.problems),
                                tuple(found.problems), (), tuple(found.notes))
        fixed = [] if found.fatal else _repair(path, tenant_id, opts, found)
        after = _examine(path, tenant_id, opts, sample)
        if upgraded:
            after.notes.insert(0, upgraded)
        after.notes.extend(journal)
    return VerifyReport(tenant_id, not after.problems, after.records, tuple(after.problems),
                        tuple(found.problems), tuple(fixed), tuple(after.notes))
