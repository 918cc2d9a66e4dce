"""Shard maintenance: list tenants without loading them, verify and repair.

This module works at the shard layer (it reads a tenant's LMDB environment and index
file directly), but only for one tenant at a time and only while the store's
:class:`~tenantvec._engine.manager.ShardManager` keeps that tenant from being loaded or
unloaded under it (``ShardManager.hold``). The public entry points are the thin
wrappers on :class:`~tenantvec.Store` and :class:`~tenantvec.Tenant`:
``Store.tenant_summaries`` and ``Store.verify`` (compaction lives in ``_compact``,
export and import in ``_export``).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import lmdb
import numpy as np

from .._ids import HASHED_ID_FILE, check_tenant_id
from .._options import METRICS, StoreOptions
from .._validate import pack_label, packb, unpack_label, unpackb
from ..errors import CorruptShard, TenantNotFound, TenantVecError
from .checksum import CRC_BYTES, ID_MAP, RECORD, VECTOR, intact, rows_view, seal
from .index import ExactIndex, HnswIndex, prepare_query
from .lmdbfile import check_data_file
from .shard import (
    _DB_NAMES,
    _READER_MAP_SIZE,
    FORMAT_UNSEALED,
    FORMAT_VERSION,
    INDEX_FILE,
    Shard,
    _crc_of,
    open_checked_env,
)
from .storage import storage_error

if TYPE_CHECKING:
    from .._store import Store

log = logging.getLogger("tenantvec")

#: Stored vectors queried against the index by ``verify`` (each must find itself).
VERIFY_SAMPLE = 64
_SELF_K = 10
_TOL = 1e-4
_NO_REPAIR = (
    "verify(fix=True) cannot repair LMDB's page structure: restore the tenant's files from a backup, "
    "or drop the tenant and import its last export"
)


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class TenantSummary:
    """One line of ``tenantvec ls``: read from the tenant's files without loading its index."""

    tenant: str
    count: int | None
    state: str  # "hot", "cold", "inactive" or "corrupt"
    dim: int | None
    metric: str | None
    index_kind: str | None
    bytes_on_disk: int
    last_write: float | None
    error: str | None = None


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


# ---------------------------------------------------------------------------- raw files
@dataclass
class _Files:
    """A tenant's LMDB environment opened directly (the tenant is held cold)."""

    env: lmdb.Environment
    dbs: dict[str, Any] = field(default_factory=dict)

    def get_meta(self, txn: lmdb.Transaction[bytes], key: bytes, default: Any = None) -> Any:
        raw = txn.get(key, db=self.dbs["meta"])
        return default if raw is None else unpackb(raw)


def _tenant_path(store: Store, tenant_id: str, *, need_data: bool = True) -> str:
    """The tenant's directory; without ``need_data`` a directory that lost its data.mdb
    counts as existing (listing and verify report it as damaged)."""
    check_tenant_id(tenant_id)
    path = store._tenant_path(tenant_id)
    if not (path / "data.mdb").is_file() and (need_data or not path.is_dir()):
        raise TenantNotFound(f"tenant {tenant_id!r} does not exist in {str(store.path)!r}")
    return str(path)


@contextmanager
def _open_files(path: str, tenant_id: str, *, write: bool, map_size: int = 0) -> Iterator[_Files]:
    try:
        if write:
            size = os.path.getsize(os.path.join(path, "data.mdb"))
            map_size = max(map_size, size + (64 << 20))
        env = open_checked_env(path, tenant_id, readonly=not write, map_size=map_size if write else _READER_MAP_SIZE)
    except TenantVecError:
        raise
    except FileNotFoundError as exc:  # a tenant directory without its data file
        raise CorruptShard(f"tenant {tenant_id!r}: cannot open LMDB environment in {path}: {exc}") from exc
    except (lmdb.Error, OSError) as exc:  # damage is CorruptShard; no fds, memory, permission: StorageError
        raise storage_error(exc, f"tenant {tenant_id!r}: cannot open LMDB environment", path) from exc
    try:
        files = _Files(env)
        for name in _DB_NAMES:
            try:
                files.dbs[name] = env.open_db(name.encode(), create=False)
            except lmdb.Error as exc:
                raise CorruptShard(f"tenant {tenant_id!r}: LMDB database {name!r} is missing in {path}") from exc
        yield files
    finally:
        env.close()


def _files_bytes(path: str) -> int:
    total = 0
    for name in ("data.mdb", "lock.mdb", INDEX_FILE):
        try:
            total += os.path.getsize(os.path.join(path, name))
        except OSError:
            pass
    return total


def _open_unloaded(path: str, tenant_id: str, opts: StoreOptions, *, readonly: bool) -> Shard:
    """A Shard with its environment and metadata open but no index loaded yet."""
    return Shard.open(path, tenant_id, opts, readonly, load_index=False)


def _close_unloaded(shard: Shard) -> None:
    if not hasattr(shard, "index"):
        shard.index = ExactIndex(shard.dim, shard.metric, capacity=1)
    shard.close()


# ---------------------------------------------------------------------------- listing
def _peek(tenant_id: str, path: str) -> TenantSummary:
    nbytes = _files_bytes(path)
    try:
        with _open_files(path, tenant_id, write=False) as f, f.env.begin() as txn:
            stored = f.get_meta(txn, b"tenant")
            if stored != tenant_id:
                raise CorruptShard(f"tenant {tenant_id!r}: shard belongs to tenant {stored!r}")
            count = txn.stat(f.dbs["ids"])["entries"]
            active = f.get_meta(txn, b"active", True)
            return TenantSummary(
                tenant=tenant_id, count=count, state="cold" if active else "inactive",
                dim=f.get_meta(txn, b"dim"), metric=f.get_meta(txn, b"metric"),
                index_kind=f.get_meta(txn, b"kind"), bytes_on_disk=nbytes,
                last_write=f.get_meta(txn, b"last_write"),
            )
    except (TenantVecError, lmdb.Error, ValueError) as exc:
        return TenantSummary(tenant_id, None, "corrupt", None, None, None, nbytes, None, error=str(exc))


def tenant_summary(store: Store, tenant_id: str) -> TenantSummary:
    """Count, state, dim, metric, index kind, bytes and last write of one tenant.

    A hot tenant answers from memory; a cold one is read from its files and stays cold.
    A tenant whose files cannot be read is reported with state ``"corrupt"``.
    """
    path = _tenant_path(store, tenant_id, need_data=False)
    with store._manager.hold(tenant_id) as shard:
        if shard is None:
            return _peek(tenant_id, path)
        info = shard.info("hot" if shard.active else "inactive")
        return TenantSummary(
            tenant=tenant_id, count=info.count, state=info.state, dim=info.dim, metric=info.metric,
            index_kind=info.index_kind, bytes_on_disk=info.bytes_on_disk, last_write=info.last_write,
        )


def store_totals(store: Store) -> dict[str, Any]:
    """Store-wide totals for ``tenantvec stats``: tenants by state and index kind,
    records, bytes on disk, plus this process's hot-shard statistics."""
    summaries = store.tenant_summaries()
    st = store.stats()
    states = Counter(s.state for s in summaries)
    kinds = Counter(s.index_kind for s in summaries if s.index_kind)
    return {
        "tenants": len(summaries),
        "records": sum(s.count or 0 for s in summaries),
        "bytes": sum(s.bytes_on_disk for s in summaries),
        "hot": states["hot"], "cold": states["cold"], "inactive": states["inactive"], "corrupt": states["corrupt"],
        "exact_indexes": kinds["exact"], "hnsw_indexes": kinds["hnsw"],
        "memory_bytes": st["memory_bytes"], "memory_budget": st["memory_budget"], "max_hot": st["max_hot"],
        "loads": st["loads"], "evictions": st["evictions"], "hit_rate": st["hit_rate"],
    }


# ---------------------------------------------------------------------------- verify
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
    next_label: int | None = None  # raise meta next_label to this
    rebuild_index: bool = False

    @property
    def lmdb_repairs(self) -> bool:
        return bool(self.drop or self.drop_vecs or self.drop_ids or self.restore_ids or self.next_label)


def _valid_record(rec: Any) -> bool:
    return (
        isinstance(rec, list) and len(rec) == 5 and isinstance(rec[0], str) and bool(rec[0])
        and isinstance(rec[1], dict) and (rec[2] is None or isinstance(rec[2], str))
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in rec[3:5])
    )


def _check_meta(f: _Files, txn: lmdb.Transaction[bytes], tenant_id: str, path: str, out: _Findings) -> dict | None:
    try:
        meta = {k: f.get_meta(txn, k) for k in (b"format", b"tenant", b"dim", b"metric", b"kind", b"seq", b"next_label")}
    except Exception as exc:
        out.problems.append(f"shard metadata does not decode ({exc})")
        out.fatal = True
        return None
    missing = [k.decode() for k, v in meta.items() if v is None]
    if missing:
        out.problems.append(f"shard metadata is missing {', '.join(missing)}")
        out.fatal = True
        return None
    if meta[b"format"] == FORMAT_UNSEALED:  # a writable store upgrades it first (see verify_tenant)
        out.problems.append(
            f"shard format {FORMAT_UNSEALED} (written by an older tenantvec) has no record checksums; "
            "open the store once without readonly=True (or run `tenantvec verify --fix`) to upgrade it"
        )
        out.fatal = True
    elif meta[b"format"] != FORMAT_VERSION:
        out.problems.append(f"shard format {meta[b'format']!r} is not supported (this tenantvec reads {FORMAT_VERSION})")
        out.fatal = True
    if meta[b"tenant"] != tenant_id:
        out.problems.append(
            f"stored tenant id {meta[b'tenant']!r} does not match its directory (tenant {tenant_id!r}); "
            "the tenant refuses to open. Restore the right files or drop the tenant"
        )
        out.fatal = True
    hashed = os.path.join(path, HASHED_ID_FILE)
    if os.path.basename(path).startswith("~"):
        try:
            with open(hashed, encoding="utf-8") as fh:
                if fh.read() != tenant_id:
                    out.problems.append(f"{HASHED_ID_FILE} does not name tenant {tenant_id!r}")
        except UnicodeDecodeError:
            out.problems.append(f"{HASHED_ID_FILE} does not name tenant {tenant_id!r} (it is not UTF-8)")
        except OSError:
            out.problems.append(f"{HASHED_ID_FILE} is missing (the tenant is not listed)")
    dim, metric = meta[b"dim"], meta[b"metric"]
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= 65536 or metric not in METRICS:
        out.problems.append(f"shard metadata has dim {dim!r} and metric {metric!r}")
        out.fatal = True
    if meta[b"kind"] not in ("exact", "hnsw"):
        out.problems.append(f"shard metadata has index kind {meta[b'kind']!r}")
        out.fatal = True
    return None if out.fatal else {k.decode(): v for k, v in meta.items()}


def _check_records(f: _Files, txn: lmdb.Transaction[bytes], meta: dict, out: _Findings) -> dict[int, bytes]:
    """Records, vectors and the id map. Returns the live map label -> id bytes."""
    dim, metric, next_label = meta["dim"], meta["metric"], meta["next_label"]
    recs: dict[int, bytes] = {}
    max_label = -1
    for lb, raw in txn.cursor(db=f.dbs["recs"]):
        if len(lb) != 8:
            out.problems.append(f"record key {lb!r} is not a label")
            out.fatal = True  # unexpected shape: leave it to a human
            continue
        lab = unpack_label(lb)
        max_label = max(max_label, lab)
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
    vec_labels = []
    bad_vec = 0
    good_keys, good_vals = [], []
    for lb, raw in txn.cursor(db=f.dbs["vecs"]):
        lab = unpack_label(lb) if len(lb) == 8 else -1
        if lab < 0:
            out.problems.append(f"vector key {lb!r} is not a label")
            out.fatal = True
            continue
        max_label = max(max_label, lab)
        vec_labels.append(lab)
        if lab not in recs and lab not in out.drop:
            out.drop_vecs.append(lab)
        elif not intact(raw):
            out.drop.setdefault(lab, f"fails its checksum ({VECTOR})")
            bad_vec += 1
        elif len(raw) != 4 * dim + CRC_BYTES:
            out.drop.setdefault(lab, f"has a vector of {(len(raw) - CRC_BYTES) // 4} dimensions, expected {dim}")
            bad_vec += 1
        else:
            good_keys.append(lab)
            good_vals.append(raw)
    if good_vals:
        mat = rows_view(b"".join(good_vals), len(good_vals), dim)
        bad = ~np.isfinite(mat).all(axis=1)
        if metric == "cosine":
            bad |= ~mat.any(axis=1)
        for i in np.flatnonzero(bad).tolist():
            out.drop.setdefault(good_keys[i], "has a vector with NaN, infinity or (cosine) all zeros")
    has_vec = set(vec_labels)
    for lab in recs:
        if lab not in has_vec:
            out.drop.setdefault(lab, "has no vector")
    live = {lab: rid for lab, rid in recs.items() if lab not in out.drop}
    # id -> label map against the records (recs[label][0] is the id)
    mapped: dict[bytes, int] = {}
    named: dict[int, bytes] = {}  # label -> id, for entries of records being dropped
    dangling = 0
    bad_ids: list[bytes] = []  # entries failing their checksum: dropped, their records re-mapped
    for idb, lb in txn.cursor(db=f.dbs["ids"]):
        if not intact(lb):
            bad_ids.append(idb)
            out.drop_ids.append(idb)
            continue
        lab = unpack_label(lb[:8]) if len(lb) == 8 + CRC_BYTES else -1
        if lab >= 0 and live.get(lab) == idb:
            mapped[idb] = lab
            continue
        out.drop_ids.append(idb)
        if lab in out.drop:
            named[lab] = idb
        else:
            dangling += 1
    for lab, rid in live.items():
        if mapped.get(rid) == lab:
            continue
        if rid in mapped:  # the id belongs to another (newer) record
            out.drop[lab] = f"duplicates id {rid.decode(errors='replace')!r} of label {mapped[rid]}"
        else:
            out.restore_ids[rid] = seal(pack_label(lab))
    live = {lab: rid for lab, rid in live.items() if lab not in out.drop}
    max_label = max(live, default=-1)  # not the dropped ones: a damaged key may read as any label
    if max_label >= next_label:
        out.next_label = max_label + 1
    # report
    for lab, why in sorted(out.drop.items()):
        rid = recs.get(lab) or named.get(lab)
        if rid:
            out.names[lab] = rid.decode(errors="replace")
        who = f" (id {out.names[lab]!r})" if rid else ""
        out.problems.append(f"record label {lab}{who} {why}")
    if out.drop_vecs:
        out.problems.append(f"{len(out.drop_vecs)} vectors have no record (e.g. label {out.drop_vecs[0]})")
    for idb in bad_ids:
        out.problems.append(f"id map entry {idb.decode(errors='replace')!r} fails its checksum ({ID_MAP})")
    if dangling:
        example = next(i for i in out.drop_ids if i not in named.values() and i not in bad_ids)
        out.problems.append(
            f"{dangling} id map entries point to no matching record (e.g. {example.decode(errors='replace')!r})"
        )
    if out.restore_ids:
        first = next(iter(out.restore_ids)).decode(errors="replace")
        out.problems.append(f"{len(out.restore_ids)} records are missing from the id map (e.g. {first!r})")
    if out.next_label:
        out.problems.append(f"labels reach {max_label} but next_label is {next_label}")
    out.records = len(live)
    return live


def _check_snapshot(f: _Files, txn: lmdb.Transaction[bytes], path: str, meta: dict, out: _Findings) -> bool:
    """Checkpoint, file size and checksum, op log; returns whether the snapshot is usable."""
    ckpt = f.get_meta(txn, b"ckpt")
    file = os.path.join(path, INDEX_FILE)
    if meta["kind"] != "hnsw":
        if os.path.exists(file):
            out.notes.append(f"{INDEX_FILE} is left over from an HNSW index (unused by the exact index)")
        return True
    if ckpt is None:
        if txn.stat(f.dbs["ids"])["entries"]:
            out.notes.append("no index snapshot yet (the index is rebuilt from LMDB on open)")
        return True
    why = None
    try:
        fd = os.open(file, os.O_RDONLY)
    except FileNotFoundError:
        why = f"index snapshot {INDEX_FILE} is missing (checkpoint at seq {ckpt['seq']})"
    else:
        try:
            crc, size = _crc_of(fd)
        finally:
            os.close(fd)
        if size != ckpt["size"]:
            why = f"index snapshot {INDEX_FILE} has {size} bytes, its checkpoint says {ckpt['size']} (truncated or replaced)"
        elif crc != ckpt["crc"]:
            why = f"index snapshot {INDEX_FILE} fails its checksum (crc {crc:08x}, checkpoint {ckpt['crc']:08x})"
    if why is None and ckpt["seq"] > meta["seq"]:
        why = f"index checkpoint seq {ckpt['seq']} is ahead of the last operation {meta['seq']}"
    if why is None:
        expect = ckpt["seq"] + 1
        cur = txn.cursor(db=f.dbs["oplog"])
        if cur.set_range(pack_label(expect)):
            for k in cur.iternext(keys=True, values=False):
                if unpack_label(k) != expect:
                    break
                expect += 1
        if expect - 1 != meta["seq"]:
            why = f"operation log after the checkpoint (seq {ckpt['seq']}) has a gap before seq {meta['seq']}"
    if why:
        out.problems.append(why)
        out.rebuild_index = True
        return False
    if ckpt["seq"] != meta["seq"]:
        out.notes.append(f"index snapshot is at seq {ckpt['seq']}, LMDB at {meta['seq']} (the op log is replayed on open)")
    return True


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
    rng = np.random.default_rng(0)
    pick = np.sort(want[rng.choice(len(want), size=min(sample, len(want)), replace=False)])
    with shard._env.begin() as txn:
        raws = [txn.get(pack_label(lab), db=shard._vecs) for lab in pick.tolist()]
    lost = [int(lab) for lab, raw in zip(pick.tolist(), raws) if raw is None or len(raw) != 4 * shard.dim + CRC_BYTES]
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
    if isinstance(index, HnswIndex):
        try:
            lost = index.unreachable().tolist()
        except OSError as exc:  # the links are read from a temporary copy of the index
            out.notes.append(f"could not check that every record can be reached by a search: {exc}")
            lost = []
        if lost:
            ids = [repr(live[lab].decode("utf-8")) for lab in lost]
            if len(lost) == 1:
                what, it = "1 record cannot be found by any search: an HNSW node that no link leads to", "it"
            else:
                what, it = f"{len(lost)} records cannot be found by any search: HNSW nodes that no link leads to", "them"
            out.problems.append(f"{what} (ids {_short(ids)}); rebuilding the index links {it} again")
            out.rebuild_index = True
            return
    if shard.metric == "l2":
        self_d = np.zeros(len(pick))
    else:
        self_d = 1.0 - np.einsum("ij,ij->i", prepared, prepared)
    k = min(_SELF_K, len(want))
    misses = 0
    for i, (labels, dists) in enumerate(index.search(mat, k)):
        if int(pick[i]) in labels.tolist():
            continue
        tie = len(dists) and (
            (len(dists) == k and dists[-1] <= self_d[i] + _TOL)
            or (shard.metric != "ip" and dists.min() <= self_d[i] + _TOL)
        )
        if not tie:
            misses += 1
    allowed = 0 if index.kind == "exact" else max(1, len(pick) // 20)
    if misses > allowed:
        out.problems.append(f"{misses} of {len(pick)} sampled records are not found by searching for their own vector")
        out.rebuild_index = True
    elif misses:
        out.notes.append(f"{misses} of {len(pick)} sampled records not in their own top-{k} (approximate index)")


def _examine(store: Store, tenant_id: str, path: str, sample: int) -> _Findings:
    try:  # LMDB's own structure first: LMDB trusts it, and damage there kills the process
        why = check_data_file(os.path.join(path, "data.mdb"), cached=False, full=True)
    except OSError:
        why = None  # missing or unreadable: opening the environment reports it
    if why is not None:
        return _Findings(problems=[f"LMDB data file is damaged: {why}. {_NO_REPAIR}"], fatal=True)
    try:
        return _examine_files(store, tenant_id, path, sample)
    except CorruptShard as exc:  # the environment itself cannot be opened or lacks a database
        return _Findings(problems=[str(exc)], fatal=True)


def _examine_files(store: Store, tenant_id: str, path: str, sample: int) -> _Findings:
    out = _Findings()
    for attempt in range(5):
        out = _Findings()
        with _open_files(path, tenant_id, write=False) as f, f.env.begin() as txn:
            meta = _check_meta(f, txn, tenant_id, path, out)
            if meta is None:
                return out
            live = _check_records(f, txn, meta, out)
            snapshot_ok = _check_snapshot(f, txn, path, meta, out)
            ckpt = f.get_meta(txn, b"ckpt")
        if not snapshot_ok and store.readonly and attempt < 4:
            # A writer process may be between renaming a new snapshot and recording its
            # checkpoint; look again once the checkpoint has moved on.
            time.sleep(0.05 * (attempt + 1))
            with _open_files(path, tenant_id, write=False) as f, f.env.begin() as txn:
                if f.get_meta(txn, b"ckpt") != ckpt:
                    continue
        break
    if out.fatal or out.lmdb_repairs or not snapshot_ok:
        return out
    try:
        shard = _open_unloaded(path, tenant_id, store.options, readonly=True)
    except CorruptShard as exc:
        out.problems.append(str(exc))
        return out
    try:
        with shard._env.begin() as txn:
            # load exactly what an open would serve, without its self-healing: snapshot
            # plus op log for HNSW (the exact index is always built from LMDB)
            shard._loaded_seq = shard._seq
            why = shard._try_load_snapshot(txn) if shard.kind == "hnsw" else "missing"
            if why is not None and why != "missing":
                out.problems.append(f"index snapshot {why}")
                out.rebuild_index = True
                return out
            if why == "missing":
                shard._rebuild_index(txn)
        shard._dirty = False
        live = None
        for _ in range(5):  # a writer process may commit while we compare
            with shard._env.begin() as txn:
                seq = shard._get_meta(txn, b"seq")
                if seq == shard._loaded_seq:
                    live = {unpack_label(lb[:8]): idb for idb, lb in txn.cursor(db=shard._ids)}
                    break
            shard._refresh()
        if live is None:
            out.notes.append("the tenant changed on every look; index contents not compared")
        else:
            _check_index(shard, live, sample, out)
    finally:
        _close_unloaded(shard)
    return out


def _repair(store: Store, tenant_id: str, path: str, found: _Findings) -> list[str]:
    """Apply what ``found`` calls for, from LMDB (the source of truth)."""
    done: list[str] = []
    rebuild = found.rebuild_index
    if found.lmdb_repairs:
        with _open_files(path, tenant_id, write=True, map_size=store.options.map_size) as f:
            _repair_lmdb(f, found)
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
        rebuild = True
    if rebuild:
        shard = _open_unloaded(path, tenant_id, store.options, readonly=False)
        try:
            with shard._env.begin() as txn:
                shard._rebuild_index(txn)
            if shard.kind == "hnsw":
                shard._dirty = True
                shard.flush()
                done.append(f"rebuilt the HNSW index from LMDB ({len(shard.index)} vectors) and wrote a new snapshot")
            else:
                done.append("the exact index is rebuilt from LMDB on every open")
        finally:
            _close_unloaded(shard)
    return done


def _repair_lmdb(f: _Files, found: _Findings) -> None:
    """One write transaction: drop unusable records and dangling entries, re-map ids."""
    ids, recs, vecs, meta = f.dbs["ids"], f.dbs["recs"], f.dbs["vecs"], f.dbs["meta"]
    with f.env.begin(write=True) as txn:
        for idb in found.drop_ids:
            txn.delete(idb, db=ids)
        for lab in found.drop:
            lb = pack_label(lab)
            txn.delete(lb, db=recs)
            txn.delete(lb, db=vecs)
        for lab in found.drop_vecs:
            txn.delete(pack_label(lab), db=vecs)
        for idb, lb in found.restore_ids.items():
            txn.put(idb, lb, db=ids)
        if found.next_label:
            txn.put(b"next_label", packb(found.next_label), db=meta)
        seq = unpackb(txn.get(b"seq", db=meta)) + 1
        txn.put(b"seq", packb(seq), db=meta)
        txn.put(b"last_write", packb(time.time()), db=meta)
        # the index is rebuilt from the repaired records right after
        txn.delete(b"ckpt", db=meta)
        txn.drop(f.dbs["oplog"], delete=False)


def _short(items: list[Any], n: int = 5) -> str:
    head = ", ".join(str(x) for x in items[:n])
    return head + (", ..." if len(items) > n else "")


def _upgrade_unsealed(store: Store, tenant_id: str, path: str) -> str | None:
    """Upgrade a format-1 shard (no record checksums) as a writer opening it would, so that
    a writable store verifies every record's checksum; returns a note when it did."""
    try:
        with _open_files(path, tenant_id, write=False) as f, f.env.begin() as txn:
            if f.get_meta(txn, b"format") != FORMAT_UNSEALED or f.get_meta(txn, b"tenant") != tenant_id:
                return None
        _close_unloaded(_open_unloaded(path, tenant_id, store.options, readonly=False))
    except (TenantVecError, lmdb.Error, ValueError):
        return None  # the examination reports what is wrong
    return f"upgraded shard format {FORMAT_UNSEALED} to {FORMAT_VERSION}: added CRC32 checksums to every record"


def verify_tenant(store: Store, tenant_id: str, *, fix: bool = False, sample: int = VERIFY_SAMPLE) -> VerifyReport:
    """Check one tenant's files; with ``fix``, repair what LMDB allows and check again.

    Checks: the stored tenant id matches the directory; every record, vector and id map
    entry passes its CRC32 and every record decodes; vectors
    are finite with the tenant's dimension; the id map and the records agree; the index
    snapshot matches its checkpoint (size, CRC32, sequence) and the op log has no gap;
    the loaded index holds exactly the live records, a search can reach each of them,
    and sampled stored vectors find themselves. The tenant is unloaded for the duration
    (a running store waits for it).
    """
    path = _tenant_path(store, tenant_id, need_data=False)
    if fix:
        store._check_writable(f"repair tenant {tenant_id!r}")
    with store._manager.exclusive(tenant_id):
        if not os.path.isdir(path):  # dropped while we waited for running calls
            raise TenantNotFound(f"tenant {tenant_id!r} does not exist in {str(store.path)!r}")
        upgraded = None if store.readonly else _upgrade_unsealed(store, tenant_id, path)
        found = _examine(store, tenant_id, path, sample)
        if upgraded:
            found.notes.insert(0, upgraded)
        if not found.problems or not fix:
            return VerifyReport(tenant_id, not found.problems, found.records, tuple(found.problems),
                                tuple(found.problems), (), tuple(found.notes))
        fixed = [] if found.fatal else _repair(store, tenant_id, path, found)
        after = _examine(store, tenant_id, path, sample)
        if upgraded:
            after.notes.insert(0, upgraded)
    return VerifyReport(tenant_id, not after.problems, after.records, tuple(after.problems),
                        tuple(found.problems), tuple(fixed), tuple(after.notes))
