"""Export one tenant to a portable, checksummed file, and import it as a new tenant.

File layout (format version 2; version 1 had no ``audit_count`` and no audit entries)::

    b"TVEXPORT"                      8-byte magic
    header                           msgpack map: format, tenant, dim, metric, count,
                                     wm_count, audit_count, created, exported_at,
                                     seq, tenantvec
    count x record                   msgpack [id, metadata, document, created_at,
                                              updated_at, float32 vector bytes]
    wm_count x [key, value]          side table entries as stored (value + CRC32):
    audit_count x [key, value]       working memory, then the audit log
    b"TVSHA256" + 32 bytes           SHA-256 of everything before it

Records come in label (insertion) order, so an imported tenant pages through
``get()`` in the same order. Import checks the checksum before it reads anything,
validates every record as ``add`` would, builds the tenant in a temporary directory and
renames it into place: a refused file leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import lmdb
import msgpack
import numpy as np

from .._fs import fsync_dir, staged_directory
from .._ids import check_record_ids, check_tenant_id
from .._options import StoreOptions, check_dim, check_metric
from .._validate import check_documents, check_metadata, check_vectors
from .._version import __version__
from ..errors import CorruptExport, InvalidArgument, ReadOnlyStore, TenantExists, TenantVecError
from .auditlog import append_lifecycle
from .checksum import intact, open_record, open_vector, seal
from .layout import SIDE_DBS, pack_label, packb, unpack_label
from .manager import ShardManager
from .shard import Shard
from .shardfiles import RawEnv, create_shard, open_raw
from .txn import write_txn

log = logging.getLogger("tenantvec")

MAGIC = b"TVEXPORT"
TRAILER = b"TVSHA256"
EXPORT_FORMAT = 2
#: Formats import reads: 1 had working memory as its only side table.
_READABLE_FORMATS = (1, 2)
_DIGEST = 32
_BATCH = 1000
#: Imported ``created_at``/``updated_at`` are seconds since the epoch from 0 up to the
#: end of year 9999 (the last instant ``datetime`` can show).
MAX_TIMESTAMP = 253402300800.0

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote (or an import read)."""

    tenant: str
    path: str
    records: int
    working_memory: int
    dim: int
    metric: str
    bytes: int
    sha256: str
    audit_entries: int = 0


class _HashingWriter:
    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.h.update(data)
        self.n += len(data)


def export_tenant(manager: ShardManager, tenant_id: str, path: str | os.PathLike[str], *,
                  progress: Progress | None = None) -> ExportReport:
    """Write one tenant (records, vectors, metadata, documents, timestamps, working
    memory, dim and metric) to ``path`` from one consistent LMDB snapshot.

    The file is written to ``path + ".partial"``, fsynced and renamed. Queries and
    writes on the tenant continue meanwhile (the export holds a ``Shard.long_read``, and
    keeps compaction from swapping the files under it); writes after the snapshot are
    not included. A writable store then appends an ``export`` entry to the tenant's audit
    log (after the snapshot: the file's log ends before it); a read-only one cannot.

    :raises TenantNotFound: the tenant does not exist.
    :raises InvalidArgument: ``path`` cannot name a file to write.
    """
    check_tenant_id(tenant_id)
    path = _check_path(path, reading=False)
    with manager.pinned(tenant_id) as shard:
        with shard.compaction_lock, shard.long_read() as txn:
            report = _write_export(shard, txn, path, progress)
        fsync_dir(os.path.dirname(os.path.abspath(path)))
        if not shard.readonly:
            shard.lifecycle("export", {"records": report.records, "working_memory": report.working_memory,
                                       "audit_entries": report.audit_entries})
    if progress is not None:
        progress(report.records, report.records)
    return report


def _records(shard: Shard, txn: lmdb.Transaction[bytes], count: int, progress: Progress | None) -> Iterator[bytes]:
    """Every record as exported, packed: decoded and checked, without CRC32, in label order.

    :raises TenantVecError: the id map and the records disagree (run ``verify --fix``).
    """
    dbs, tid, dim = shard.databases, shard.tenant_id, shard.dim
    vecs_get = txn.get
    written = 0
    for lb, raw in txn.cursor(db=dbs.recs):
        lab = unpack_label(lb)
        rec = open_record(raw, tid, lab)
        vec = open_vector(vecs_get(lb, db=dbs.vecs), tid, lab, dim, rec[0])
        yield packb([rec[0], rec[1], rec[2], rec[3], rec[4], vec])
        written += 1
        if progress is not None and written % _BATCH == 0:
            progress(written, count)
    if written != count:
        raise TenantVecError(f"tenant {tid!r}: {written} records but {count} ids; run `tenantvec verify --fix`",
                             tenant=tid)


def _write_export(shard: Shard, txn: lmdb.Transaction[bytes], path: str, progress: Progress | None) -> ExportReport:
    dbs = shard.databases
    count = txn.stat(dbs.ids)["entries"]
    side = dbs.side()
    entries: dict[str, Any] = {name: txn.cursor(db=db) for name, db in side.items()}
    entries["wm"] = wm = shard.wm_stored(txn)  # a read-only opener's has the writer's journal on top
    counts = {name: txn.stat(side[name])["entries"] if name in side else 0 for name in SIDE_DBS}
    counts["wm"] = len(wm)
    header = {
        "format": EXPORT_FORMAT, "tenant": shard.tenant_id, "dim": shard.dim, "metric": shard.metric,
        "count": count, **{f"{name}_count": n for name, n in counts.items()},
        "created": shard.meta(txn, b"created", None),
        "exported_at": time.time(), "seq": shard.meta(txn, b"seq"), "tenantvec": __version__,
    }
    partial = path + ".partial"
    try:
        with open(partial, "wb") as fh:
            out = _HashingWriter(fh)
            out.write(MAGIC)
            out.write(packb(header))
            for packed in _records(shard, txn, count, progress):
                out.write(packed)
            for table in entries.values():  # SIDE_DBS order
                for k, v in table:
                    out.write(packb([k, v]))
            digest = out.h.digest()
            fh.write(TRAILER + digest)
            fh.flush()
            os.fsync(fh.fileno())
            size = out.n + len(TRAILER) + _DIGEST
        os.replace(partial, path)
    except BaseException:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass
        raise
    return ExportReport(shard.tenant_id, path, count, counts["wm"], shard.dim, shard.metric, size, digest.hex(),
                        counts["audit"])


def _check_path(path: object, *, reading: bool) -> str:
    """``path`` as a str if it can name an export file to read (an existing file) or to
    write (not a directory, in an existing directory).

    :raises InvalidArgument: naming the path.
    """
    try:
        p = os.fspath(path)  # type: ignore[call-overload]
    except TypeError:
        p = None
    if not isinstance(p, str):
        raise InvalidArgument(f"export file path must be a str or os.PathLike, got {type(path).__name__} {path!r:.80}")
    if not p or "\0" in p:
        raise InvalidArgument(f"export file path {p!r} {'contains a NUL character' if p else 'is empty'}")
    if os.path.isdir(p):
        raise InvalidArgument(f"export file path {p!r} is a directory")
    if reading:
        if not os.path.exists(p):
            raise InvalidArgument(f"export file {p!r} does not exist")
        if not os.path.isfile(p):
            raise InvalidArgument(f"export file {p!r} is not a regular file")
    else:
        parent = os.path.dirname(os.path.abspath(p))
        if not os.path.isdir(parent):
            raise InvalidArgument(f"cannot write export file {p!r}: directory {parent!r} does not exist")
        if os.path.exists(p) and not os.path.isfile(p):
            raise InvalidArgument(f"cannot write export file {p!r}: it exists and is not a regular file")
    return p


# ---------------------------------------------------------------------------- import
class _Limited:
    """Read at most ``n`` bytes of ``f`` (the body before the trailer)."""

    def __init__(self, f: IO[bytes], n: int) -> None:
        self.f, self.left = f, n

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self.left:
            size = self.left
        data = self.f.read(size)
        self.left -= len(data)
        return data


def _check_file(path: str) -> tuple[int, str]:
    """Verify magic and checksum; returns the body length and the digest."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise InvalidArgument(f"cannot read export file {path!r}: {exc.strerror}") from None
    tail = len(TRAILER) + _DIGEST
    with open(path, "rb") as f:
        if size < len(MAGIC) + tail or f.read(len(MAGIC)) != MAGIC:
            raise CorruptExport(f"{path!r} is not a tenantvec export file (bad magic or too short)")
        body = size - tail
        h = hashlib.sha256(MAGIC)
        left = body - len(MAGIC)
        while left:
            chunk = f.read(min(left, 1 << 20))
            if not chunk:
                raise CorruptExport(f"{path!r} is truncated")
            h.update(chunk)
            left -= len(chunk)
        trailer = f.read(tail)
    if trailer[: len(TRAILER)] != TRAILER:
        raise CorruptExport(f"{path!r} is truncated or damaged (no checksum trailer)")
    if trailer[len(TRAILER):] != h.digest():
        raise CorruptExport(f"{path!r} fails its SHA-256 checksum: the file is damaged or incomplete")
    return body, h.hexdigest()


def _check_header(header: Any, path: str) -> dict:
    if not isinstance(header, dict):
        raise CorruptExport(f"{path!r}: the header is not a map")
    fmt = header.get("format")
    if fmt not in _READABLE_FORMATS or isinstance(fmt, bool):
        raise CorruptExport(f"{path!r}: export format {fmt!r} is not supported (expected one of {_READABLE_FORMATS})")
    if fmt == 1:
        header = {**header, "audit_count": 0}
    try:
        check_dim(header.get("dim"))
        check_metric(header.get("metric"))
    except InvalidArgument as exc:
        raise CorruptExport(f"{path!r}: {exc}") from None
    for key in ("count", *(f"{name}_count" for name in SIDE_DBS)):
        v = header.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise CorruptExport(f"{path!r}: header field {key!r} is {v!r}")
    return header


def import_tenant(directory: str, tenant_id: str, path: str | os.PathLike[str], opts: StoreOptions, *,
                  progress: Progress | None = None) -> ExportReport:
    """Create tenant ``tenant_id`` in directory ``directory`` (which must not exist) from an
    export file (of any source tenant id).

    Records keep their ids, ``created_at`` and ``updated_at``; the tenant gets the file's
    dim and metric and the HNSW parameters of ``opts``. The shard is built in a temporary
    directory beside ``directory`` and renamed into place (``_fs.staged_directory``), as
    a new tenant is: a refused file leaves nothing behind.

    :raises CorruptExport: bad magic, checksum, format or record (nothing is created).
    :raises TenantExists: ``tenant_id`` exists already.
    :raises ReadOnlyStore: read-only ``opts``.
    :raises InvalidArgument: ``path`` names no readable file.
    """
    check_tenant_id(tenant_id)
    path = _check_path(path, reading=True)
    if opts.readonly:
        raise ReadOnlyStore(f"tenant {tenant_id!r}: the store is open read-only; cannot import it", tenant=tenant_id)

    def exists() -> TenantExists:
        return TenantExists(f"tenant {tenant_id!r} already exists in {os.path.dirname(directory)!r}", tenant=tenant_id,
                            path=directory)

    if os.path.exists(directory):
        raise exists()
    body, digest = _check_file(path)
    try:
        with staged_directory(os.path.dirname(directory), directory, exists) as tmp, open(path, "rb") as fh:
            fh.seek(len(MAGIC))
            unpacker = msgpack.Unpacker(_Limited(fh, body - len(MAGIC)), raw=False, strict_map_key=False,
                                        max_buffer_size=1 << 30)
            try:
                header = _check_header(next(unpacker), path)
            except StopIteration:
                raise CorruptExport(f"{path!r}: no header") from None
            create_shard(tmp, tenant_id, header["dim"], header["metric"], opts, audit=False)
            _fill(tmp, tenant_id, opts, header, unpacker, path, progress)
            try:
                next(unpacker)
            except StopIteration:
                pass
            else:
                raise CorruptExport(f"{path!r}: data after the last record")
    except (msgpack.UnpackException, ValueError, TypeError) as exc:
        if isinstance(exc, TenantVecError):
            raise
        raise CorruptExport(f"{path!r}: cannot decode ({exc})") from exc
    log.info("imported %d records into tenant %r from %s", header["count"], tenant_id, path)
    return ExportReport(tenant_id, path, header["count"], header["wm_count"], header["dim"], header["metric"],
                        body + len(TRAILER) + _DIGEST, digest, header["audit_count"])


def _fill(tmp: str, tenant_id: str, opts: StoreOptions, header: dict, unpacker: msgpack.Unpacker, path: str,
          progress: Progress | None) -> None:
    """Validate and write every record into the new shard in ``tmp``, then its side tables
    and, after the audit log the file carries, the ``import`` entry; then build its index."""
    count = header["count"]
    seen: set[str] = set()
    label = 0
    last_write: float | None = None
    with open_raw(tmp, tenant_id, write=True, map_size=opts.map_size) as f:
        while label < count:
            batch = []
            for _ in range(min(_BATCH, count - label)):
                try:
                    batch.append(next(unpacker))
                except StopIteration:
                    raise CorruptExport(f"{path!r}: {label + len(batch)} records, the header says {count}") from None
            rows = _validate(batch, label, header["dim"], header["metric"], seen, path)
            _write_batch(f, label, rows)
            label += len(rows)
            stamp = max(r[4] for r in rows)
            last_write = stamp if last_write is None else max(last_write, stamp)
            if progress is not None:
                progress(label, count)
        side = {name: _side_entries(unpacker, name, header[f"{name}_count"], path) for name in SIDE_DBS}
        kind = "hnsw" if count > opts.hnsw_threshold else "exact"
        dbs = f.dbs.side()  # a writable environment has every side table

        def finish(txn: lmdb.Transaction[bytes]) -> None:
            for name, entries in side.items():
                for k, v in entries:
                    txn.put(k, v, db=dbs[name])
            append_lifecycle(txn, dbs["audit"], tenant_id, "import", counts={
                "records": count, "working_memory": header["wm_count"], "audit_entries": header["audit_count"]})
            for key, value in ((b"seq", 1 if count else 0), (b"next_label", count), (b"kind", kind),
                               (b"last_write", last_write)):
                txn.put(key, packb(value), db=f.dbs.meta)

        _write(f, finish)
        f.env.sync(True)
    if kind == "hnsw":
        shard = Shard.open(tmp, tenant_id, opts, False, load_index=False)
        try:
            shard.rebuild_index()
            shard.flush()
        finally:
            shard.close()


def _side_entries(unpacker: msgpack.Unpacker, name: str, n: int, path: str) -> list[list[bytes]]:
    """The ``n`` entries of side table ``name`` that come next, each ``[key, value]`` as
    stored (the value with its CRC32, checked)."""
    entries = []
    for i in range(n):
        try:
            entry = next(unpacker)
        except StopIteration:
            raise CorruptExport(f"{path!r}: {i} {name} entries, the header says {n}") from None
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, bytes) and x for x in entry)):
            raise CorruptExport(f"{path!r}: {name} entry {i} is malformed")
        if not intact(entry[1]):
            raise CorruptExport(f"{path!r}: {name} entry {entry[0]!r} fails its CRC32")
        entries.append(entry)
    return entries


def _validate(batch: list, first: int, dim: int, metric: str, seen: set[str], path: str) -> list[list]:
    where = f"{path!r}: record {first}"
    for i, row in enumerate(batch):
        if not (isinstance(row, list) and len(row) == 6 and isinstance(row[5], bytes)):
            raise CorruptExport(f"{path!r}: record {first + i} is malformed")
        for j, name in ((3, "created_at"), (4, "updated_at")):
            ts = row[j]
            if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not 0 <= ts <= MAX_TIMESTAMP:
                raise CorruptExport(
                    f"{path!r}: record {first + i} has a bad {name} {ts!r:.40} "
                    f"(expected seconds since the epoch, 0 to {MAX_TIMESTAMP:.0f})"
                )
        if len(row[5]) != 4 * dim:
            raise CorruptExport(f"{path!r}: record {first + i} has a {len(row[5]) // 4}-dimensional vector, expected {dim}")
    try:
        ids = check_record_ids([r[0] for r in batch], len(batch), "import", unique=True)
        vecs, _ = check_vectors(np.frombuffer(b"".join(r[5] for r in batch), dtype=np.float32).reshape(len(batch), dim),
                                dim, metric, "import")
        docs = check_documents([r[2] for r in batch], len(batch), "import")
        metas = check_metadata([r[1] for r in batch], len(batch), "import")
    except TenantVecError as exc:
        raise CorruptExport(f"{where}..{first + len(batch) - 1}: {exc}") from None
    for rid in ids:
        if rid in seen:
            raise CorruptExport(f"{path!r}: id {rid!r} appears twice")
        seen.add(rid)
    return [[ids[i], metas[i], docs[i], float(batch[i][3]), float(batch[i][4]), vecs[i]] for i in range(len(batch))]


def _write(f: RawEnv, body: Callable[[lmdb.Transaction[bytes]], None]) -> None:
    write_txn(f.env, body, "import")


def _write_batch(f: RawEnv, first: int, rows: list[list]) -> None:
    ids, recs, vecs = f.dbs.ids, f.dbs.recs, f.dbs.vecs

    def body(txn: lmdb.Transaction[bytes]) -> None:
        for i, (rid, meta, doc, created, updated, vec) in enumerate(rows):
            lb = pack_label(first + i)
            txn.put(rid.encode("utf-8"), seal(lb), db=ids)  # stored with their CRC32
            txn.put(lb, seal(packb([rid, meta, doc, created, updated])), db=recs)
            txn.put(lb, seal(vec.tobytes()), db=vecs)

    _write(f, body)
