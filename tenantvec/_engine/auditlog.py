"""The audit log (:mod:`tenantvec._audit`) in a shard's ``audit`` database, written through
a raw LMDB write transaction: how engine code appends its lifecycle entries in the same
transaction as the change it records, and how ``verify`` reads the chain.

Lifecycle entries (``create``, ``deactivate``, ``activate``, ``export``, ``import``,
``compact``, ``verify``) have the actor :data:`LIFECYCLE_ACTOR`; values are sealed with
their CRC32 like every side table value (:func:`~.checksum.seal`). The memory layer
appends its own entries through ``Tenant.transaction()`` (``tx.side("audit")``), the same
table seen through :class:`~tenantvec._engine.txn.SideTable`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import lmdb

from .._audit import AuditEntry, append, check_chain
from .checksum import CRC_BYTES, intact, open_side, seal

#: The actor of the entries the engine writes.
LIFECYCLE_ACTOR = "system"
_TABLE = "audit"


class RawAuditTable:
    """An :class:`~tenantvec._audit.AuditTable` over database ``db`` in the LMDB
    transaction ``txn`` (a write transaction for :meth:`put`). A value that fails its
    CRC32 raises ``CorruptShard`` (``verify --fix`` removes it)."""

    __slots__ = ("_db", "_tenant", "_txn")

    def __init__(self, txn: lmdb.Transaction[bytes], db: Any, tenant: str) -> None:
        self._txn, self._db, self._tenant = txn, db, tenant

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key``, or None."""
        raw = self._txn.get(key, db=self._db)
        return None if raw is None else open_side(raw, self._tenant, _TABLE, key)

    def put(self, key: bytes, value: bytes) -> None:
        """Store ``value`` (sealed) under ``key``."""
        self._txn.put(key, seal(value), db=self._db)

    def items(self, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        """Every (key, value) whose key starts with ``prefix``, in key order."""
        return [(k, open_side(raw, self._tenant, _TABLE, k)) for k, raw in self._txn.cursor(db=self._db)
                if k.startswith(prefix)]


def append_lifecycle(txn: lmdb.Transaction[bytes], db: Any, tenant: str, op: str, *, ids: Iterable[str] = (),
                     counts: Mapping[str, int] | None = None, now: float | None = None,
                     actor: str | None = None, reason: str | None = None) -> AuditEntry:
    """Append lifecycle entry ``op`` (by ``actor``, default :data:`LIFECYCLE_ACTOR`, at ``now``,
    default the clock's time, for ``reason``) to the audit database ``db`` in the write
    transaction ``txn``.

    :raises CorruptShard: the head of the log fails its CRC32 (``verify --fix`` removes it).
    """
    return append(RawAuditTable(txn, db, tenant), op=op, time=time.time() if now is None else now,
                  actor=LIFECYCLE_ACTOR if actor is None else actor, ids=ids, counts=counts, reason=reason)


def chain_problems(txn: lmdb.Transaction[bytes], db: Any) -> list[str]:
    """:func:`~tenantvec._audit.check_chain` over the audit database ``db`` (None: an older
    shard opened read-only, no log); values failing their CRC32 are left out (``verify``
    reports them with the other side tables) and show as missing entries."""
    if db is None:
        return []
    return check_chain([(k, raw[:-CRC_BYTES]) for k, raw in txn.cursor(db=db) if intact(raw)])
