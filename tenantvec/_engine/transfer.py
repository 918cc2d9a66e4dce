"""Export one tenant to a portable, checksummed file, and import it as a new tenant.

File layout (format version 1)::

    b"TVEXPORT"                      8-byte magic
    header                           msgpack map: format, tenant, dim, metric, count,
                                     wm_count, created, exported_at, seq, tenantvec
    count x record                   msgpack [id, metadata, document, created_at,
                                              updated_at, float32 vector bytes]
    wm_count x [key, value]          working memory entries (raw bytes)
    b"TVSHA256" + 32 bytes           SHA-256 of everything before it

Records come in label (insertion) order, so an imported tenant pages through
``get()`` in the same order. Import checks the checksum before it reads anything,
validates every record as ``add`` would, builds the tenant in a temporary directory and
renames it into place: a refused file leaves nothing behind.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import lmdb
import msgpack
import numpy as np

from .._ids import HASHED_ID_FILE, check_record_ids, check_tenant_id
from .._options import check_dim, check_metric
from .._validate import check_documents, check_metadata, check_vectors, pack_label, packb, unpack_label
from ..errors import CorruptExport, InvalidArgument, TenantExists, TenantVecError
from .checksum import open_record, open_vector, seal
from .shard import Shard, _fsync_dir, write_txn
from .verify import _close_unloaded, _open_files, _open_unloaded

if TYPE_CHECKING:
    from .._store import Store

log = logging.getLogger("tenantvec")

MAGIC = b"TVEXPORT"
TRAILER = b"TVSHA256"
EXPORT_FORMAT = 1
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


class _HashingWriter:
    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.h.update(data)
        self.n += len(data)


def export_tenant(store: Store, tenant_id: str, path: str | os.PathLike[str], *,
                  progress: Progress | None = None) -> ExportReport:
    """Write one tenant (records, vectors, metadata, documents, timestamps, working
    memory, dim and metric) to ``path`` from one consistent LMDB snapshot.

    The file is written to ``path + ".partial"``, fsynced and renamed. Queries and
    writes on the tenant continue meanwhile; writes after the snapshot are not included.

    :raises TenantNotFound: the tenant does not exist.
    """
    check_tenant_id(tenant_id)
    path = _check_path(path, reading=False)
    store._check_open()
    shard = store._manager.pin(tenant_id)
    try:
        shard._begin_read(inactive_ok=True)  # a read-only store follows the writer's latest files first
        shard._lock.release_read()
        # the compaction lock keeps the environment from being swapped under us; the
        # long-read gate keeps a writer from growing the map under our read transaction
        with shard._compact_lock, shard.long_reads.read():
            return _export_shard(shard, path, progress)
    finally:
        store._manager.unpin(shard)


def _export_shard(shard: Shard, path: str, progress: Progress | None) -> ExportReport:
    partial = path + ".partial"
    with shard.read_txn() as txn:
        count = txn.stat(shard._ids)["entries"]
        wm_count = txn.stat(shard.wm_db)["entries"]
        header = {
            "format": EXPORT_FORMAT,
            "tenant": shard.tenant_id,
            "dim": shard.dim,
            "metric": shard.metric,
            "count": count,
            "wm_count": wm_count,
            "created": shard._get_meta(txn, b"created", None),
            "exported_at": time.time(),
            "seq": shard._get_meta(txn, b"seq"),
            "tenantvec": _version(),
        }
        try:
            with open(partial, "wb") as fh:
                out = _HashingWriter(fh)
                out.write(MAGIC)
                out.write(packb(header))
                written = 0
                vecs_get, vecs_db, tid, dim = txn.get, shard._vecs, shard.tenant_id, shard.dim
                for lb, raw in txn.cursor(db=shard._recs):  # exported decoded: checked, without CRC32
                    lab = unpack_label(lb)
                    rec = open_record(raw, tid, lab)
                    vec = open_vector(vecs_get(lb, db=vecs_db), tid, lab, dim, rec[0])
                    out.write(packb([rec[0], rec[1], rec[2], rec[3], rec[4], vec]))
                    written += 1
                    if progress is not None and written % _BATCH == 0:
                        progress(written, count)
                if written != count:
                    raise TenantVecError(
                        f"tenant {shard.tenant_id!r}: {written} records but {count} ids; run `tenantvec verify --fix`"
                    )
                for k, v in txn.cursor(db=shard.wm_db):
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
    _fsync_dir(os.path.dirname(os.path.abspath(path)))
    if progress is not None:
        progress(count, count)
    return ExportReport(shard.tenant_id, path, count, wm_count, shard.dim, shard.metric, size, digest.hex())


def _version() -> str:
    from .. import __version__

    return __version__


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
    if header.get("format") != EXPORT_FORMAT:
        raise CorruptExport(f"{path!r}: export format {header.get('format')!r} is not supported (expected {EXPORT_FORMAT})")
    try:
        check_dim(header.get("dim"))
        check_metric(header.get("metric"))
    except InvalidArgument as exc:
        raise CorruptExport(f"{path!r}: {exc}") from None
    for key in ("count", "wm_count"):
        v = header.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise CorruptExport(f"{path!r}: header field {key!r} is {v!r}")
    return header


def import_tenant(store: Store, tenant_id: str, path: str | os.PathLike[str], *,
                  progress: Progress | None = None) -> ExportReport:
    """Create tenant ``tenant_id`` from an export file (any source tenant id).

    Records keep their ids, ``created_at`` and ``updated_at``; the tenant gets the
    file's dim and metric and this store's HNSW parameters.

    :raises CorruptExport: bad magic, checksum, format or record (nothing is created).
    :raises TenantExists: ``tenant_id`` exists already.
    :raises ReadOnlyStore: the store is read-only.
    """
    store._check_open()
    check_tenant_id(tenant_id)
    path = _check_path(path, reading=True)
    store._check_writable(f"import tenant {tenant_id!r}")
    final = store._tenant_path(tenant_id)
    if final.exists():
        raise TenantExists(f"tenant {tenant_id!r} already exists in {str(store.path)!r}")
    body, digest = _check_file(path)
    tmp = final.parent / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        with open(path, "rb") as fh:
            fh.seek(len(MAGIC))
            unpacker = msgpack.Unpacker(_Limited(fh, body - len(MAGIC)), raw=False, strict_map_key=False,
                                        max_buffer_size=1 << 30)
            try:
                header = _check_header(next(unpacker), path)
            except StopIteration:
                raise CorruptExport(f"{path!r}: no header") from None
            if final.name.startswith("~"):
                (tmp / HASHED_ID_FILE).write_text(tenant_id, encoding="utf-8")
            Shard.create(str(tmp), tenant_id, header["dim"], header["metric"], store.options)
            _fill(store, tenant_id, str(tmp), header, unpacker, path, progress)
            try:
                next(unpacker)
            except StopIteration:
                pass
            else:
                raise CorruptExport(f"{path!r}: data after the last record")
        try:
            os.rename(tmp, final)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            raise TenantExists(f"tenant {tenant_id!r} already exists in {str(store.path)!r}") from None
        _fsync_dir(str(final.parent))
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, (msgpack.UnpackException, ValueError, TypeError)) and not isinstance(exc, TenantVecError):
            raise CorruptExport(f"{path!r}: cannot decode ({exc})") from exc
        raise
    log.info("imported %d records into tenant %r from %s", header["count"], tenant_id, path)
    return ExportReport(tenant_id, path, header["count"], header["wm_count"], header["dim"], header["metric"],
                        body + len(TRAILER) + _DIGEST, digest)


def _fill(store: Store, tenant_id: str, tmp: str, header: dict, unpacker: msgpack.Unpacker, path: str,
          progress: Progress | None) -> None:
    """Validate and write every record into the new shard in ``tmp``, then build its index."""
    dim, metric, count = header["dim"], header["metric"], header["count"]
    seen: set[str] = set()
    label = 0
    last_write: float | None = None
    with _open_files(tmp, tenant_id, write=True, map_size=store.options.map_size) as f:
        while label < count:
            batch = []
            for _ in range(min(_BATCH, count - label)):
                try:
                    batch.append(next(unpacker))
                except StopIteration:
                    raise CorruptExport(f"{path!r}: {label + len(batch)} records, the header says {count}") from None
            rows = _validate(batch, label, dim, metric, seen, path)
            _write_batch(f, label, rows)
            label += len(rows)
            stamp = max(r[4] for r in rows)
            last_write = stamp if last_write is None else max(last_write, stamp)
            if progress is not None:
                progress(label, count)
        wm = []
        for i in range(header["wm_count"]):
            try:
                entry = next(unpacker)
            except StopIteration:
                raise CorruptExport(f"{path!r}: {i} working memory entries, the header says {header['wm_count']}") from None
            if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, bytes) and x for x in entry)):
                raise CorruptExport(f"{path!r}: working memory entry {i} is malformed")
            wm.append(entry)
        kind = "hnsw" if count > store.options.hnsw_threshold else "exact"

        def finish(txn: lmdb.Transaction[bytes]) -> None:
            for k, v in wm:
                txn.put(k, v, db=f.dbs["wm"])
            meta = f.dbs["meta"]
            for key, value in ((b"seq", 1 if count else 0), (b"next_label", count), (b"kind", kind),
                               (b"last_write", last_write)):
                txn.put(key, packb(value), db=meta)

        _write(f, finish)
        f.env.sync(True)
    if kind == "hnsw":
        shard = _open_unloaded(tmp, tenant_id, store.options, readonly=False)
        try:
            with shard.read_txn() as txn:
                shard._rebuild_index(txn)
            shard._dirty = True
            shard.flush()
        finally:
            _close_unloaded(shard)


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


def _write(f: Any, body: Callable[[lmdb.Transaction[bytes]], None]) -> None:
    write_txn(f.env, body, "import")


def _write_batch(f: Any, first: int, rows: list[list]) -> None:
    ids, recs, vecs = f.dbs["ids"], f.dbs["recs"], f.dbs["vecs"]

    def body(txn: lmdb.Transaction[bytes]) -> None:
        for i, (rid, meta, doc, created, updated, vec) in enumerate(rows):
            lb = pack_label(first + i)
            txn.put(rid.encode("utf-8"), seal(lb), db=ids)  # stored with their CRC32
            txn.put(lb, seal(packb([rid, meta, doc, created, updated])), db=recs)
            txn.put(lb, seal(vec.tobytes()), db=vecs)

    _write(f, body)
