"""``Memory``: agent memory over a store, one :class:`TenantMemory` per tenant, plus the
store-wide steps: consolidating many tenants' sessions and offboarding a tenant."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from .._fs import fsync_dir
from .._store import CONFIG_FILE, Store
from ..embedders import Embedder, fingerprint
from ..errors import InvalidArgument, StorageError, TenantVecError
from ._items import ConsolidationReport, ErasureReport, Note, default_clock, now_of
from ._tenant import TenantMemory

log = logging.getLogger("tenantvec")

ERASURE_LOG: Final = "erasures.jsonl"
"""The store-level erasure log: one JSON line per offboarded tenant, kept after the tenant is gone."""


class Memory:
    """Agent memory over a tenantvec store: ``Memory(path, embedder=emb)`` opens (or
    creates) the store at ``path`` with ``store_options`` (see ``tenantvec.Store``);
    ``Memory(store, embedder=emb)`` uses an open store and leaves closing it to the caller.

    ``clock`` (default ``time.time``) is what every TTL, validity and audit time is read
    from (tests inject one). ``actor`` is written into audit entries unless a tenant
    handle names its own. Use as a context manager, or call :meth:`close`.

    :raises InvalidArgument: ``embedder`` is not an embedder (see ``tenantvec.embedders``).
    """

    def __init__(self, path_or_store: Store | str | os.PathLike[str], *, embedder: Embedder,
                 clock: Callable[[], float] | None = None, actor: str = "app", **store_options: Any) -> None:
        self._fp = fingerprint(embedder)
        self.embedder = embedder
        self._clock = clock if clock is not None else default_clock
        self.actor = _check_actor(actor)
        if isinstance(path_or_store, Store):
            if store_options:
                raise InvalidArgument(f"store options {sorted(store_options)} given with an open Store")
            self.store, self._owns = path_or_store, False
        else:  # a new store takes the embedder's dim as its default; an existing one keeps its own
            if not (Path(path_or_store) / CONFIG_FILE).is_file():
                store_options.setdefault("dim", self._fp[1])
            self.store, self._owns = Store(path_or_store, **store_options), True
        self._swept: set[str] = set()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tenantvec.memory.Memory {str(self.store.path)!r} embedder={self._fp[0]!r}>"

    def close(self) -> None:
        """Close the store if this object opened it (idempotent)."""
        if self._owns:
            self.store.close()

    def tenant(self, tenant_id: str, *, create: bool = False, actor: str | None = None) -> TenantMemory:
        """The memory of tenant ``tenant_id`` (created, with the embedder's dim and the cosine
        metric, when absent and ``create``). The first handle a ``Memory`` makes for a tenant
        sweeps its expired sessions and memories (on a writable store).

        :raises TenantNotFound: absent and not ``create``.
        :raises EmbedderMismatch: the tenant's memories were embedded with another embedder.
        :raises DimensionMismatch: the tenant holds vectors of another dim.
        """
        t = self.store.tenant(tenant_id, create=create, dim=self._fp[1], metric="cosine")
        writable = not self.store.readonly
        tm = TenantMemory(t, self.embedder, self._clock, self.actor if actor is None else _check_actor(actor),
                          writable=writable)
        if writable and t.id not in self._swept:
            tm.sweep()
            self._swept.add(t.id)
        return tm

    def tenants(self) -> list[str]:
        """Every tenant of the store, sorted."""
        return self.store.tenants()

    def consolidate_many(self, items: Iterable[tuple[str, str]],
                         distill: Callable[[list[Note]], Iterable[Any]] | None = None, *,
                         dedupe: float | None = 0.05) -> dict[str, list[ConsolidationReport]]:
        """Consolidate many ``(tenant_id, session_id)`` pairs, each in its own tenant's
        transaction: the batch job that mixes tenants without mixing their data. A failure
        in one item (an unknown tenant or session, a ``distill`` that raises or emits another
        tenant's item) is reported in that item's report (``error``) and the rest go on.
        Returns the reports by tenant, in the order given.

        :raises InvalidArgument: ``items`` is not a list of (tenant id, session id) pairs.
        """
        pairs = list(items) if not isinstance(items, (str, bytes)) else None
        if pairs is None or any(not isinstance(p, tuple) or len(p) != 2 for p in pairs):
            raise InvalidArgument(f"consolidate_many takes (tenant_id, session_id) pairs, got {items!r:.80}")
        out: dict[str, list[ConsolidationReport]] = {}
        handles: dict[str, TenantMemory] = {}
        for tenant_id, session_id in pairs:
            try:
                tm = handles.get(tenant_id)
                if tm is None:
                    tm = handles[tenant_id] = self.tenant(tenant_id)
                report = tm.consolidate(session_id, distill, dedupe=dedupe)
            except TenantVecError as exc:
                log.warning("consolidating tenant %r session %r failed: %s", tenant_id, session_id, exc)
                report = ConsolidationReport(str(tenant_id), str(session_id), error=f"{type(exc).__name__}: {exc}")
            out.setdefault(str(tenant_id), []).append(report)
        return out

    def offboard(self, tenant_id: str, *, reason: str, export_to: str | os.PathLike[str] | None = None
                 ) -> ErasureReport:
        """Erase a tenant: deactivate it (its calls now fail; its audit log records the
        deactivation with ``offboard: <reason>``),
        export it to ``export_to`` when given, drop its files, check that none remain, and
        append an erasure record (SHA-256 digest of the tenant id, time, reason, bytes and
        files removed) to the store's erasure log, which outlives the tenant.

        :raises InvalidArgument: ``reason`` is empty.
        :raises TenantNotFound: no such tenant.
        :raises StorageError: a file of the tenant is still there after the drop.
        """
        report = offboard_tenant(self.store, tenant_id, reason=reason, actor=self.actor, now=now_of(self._clock),
                                 export_to=export_to)
        self._swept.discard(tenant_id)
        return report

    def erasures(self) -> list[ErasureReport]:
        """The store's erasure log, oldest first."""
        p = self.store.path / ERASURE_LOG
        if not p.exists():
            return []
        out = []
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip():
                d = json.loads(line)
                out.append(ErasureReport(d["tenant_digest"], d["time"], d["reason"], d["bytes_removed"],
                                         d["files_removed"], d.get("exported_to")))
        return out


def offboard_tenant(store: Store, tenant_id: str, *, reason: str, actor: str, now: float,
                    export_to: str | os.PathLike[str] | None = None) -> ErasureReport:
    """What :meth:`Memory.offboard` does, on an open writable ``store`` and with no embedder
    (the CLI's ``offboard``): deactivation audited with ``actor`` and the reason, the optional
    export, the drop, the check that no file remains and the erasure record.

    :raises InvalidArgument: ``reason`` is empty.
    :raises ReadOnlyStore: ``store`` is read-only.
    :raises TenantNotFound: no such tenant.
    :raises StorageError: a file of the tenant is still there after the drop.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidArgument(f"offboarding needs a reason, got {reason!r}")
    store.check_writable(f"offboard tenant {tenant_id!r}")
    # The tenant stops serving first; its last audit entry says why (and travels with an export).
    store.deactivate(tenant_id, actor=actor, reason=f"offboard: {reason}")
    exported = None
    if export_to is not None:
        store.export_tenant(tenant_id, export_to)
        exported = str(export_to)
    path = store.tenant_path(tenant_id)
    files = [p for p in path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    store.drop_tenant(tenant_id)
    if path.exists():
        raise StorageError(f"tenant {tenant_id!r}: {path} still exists after the drop", tenant=tenant_id,
                           path=str(path))
    report = ErasureReport(hashlib.sha256(tenant_id.encode()).hexdigest(), now, reason, size, len(files),
                           exported)
    _append_erasure(store.path / ERASURE_LOG, report)
    log.info("offboarded a tenant (%d files, %d bytes): %s", len(files), size, reason)
    return report


def _append_erasure(path: Path, report: ErasureReport) -> None:
    line = json.dumps({"tenant_digest": report.tenant_digest, "time": report.time, "reason": report.reason,
                       "bytes_removed": report.bytes_removed, "files_removed": report.files_removed,
                       "exported_to": report.exported_to}, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


def _check_actor(actor: object) -> str:
    if not isinstance(actor, str) or not actor.strip():
        raise InvalidArgument(f"actor must be a non-empty str, got {actor!r}")
    return actor

