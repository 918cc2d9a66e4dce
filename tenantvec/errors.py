"""Errors raised by tenantvec.

Every error is a :class:`TenantVecError`. Where Python has a builtin a caller would
naturally catch, the class also subclasses it (``TenantNotFound`` is a ``KeyError``,
``InvalidVector`` a ``ValueError``), so ``except KeyError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "TenantVecError",
    "InvalidTenantId",
    "TenantNotFound",
    "TenantExists",
    "DimensionMismatch",
    "InvalidVector",
    "InvalidFilter",
    "InvalidArgument",
    "DuplicateId",
    "StoreLocked",
    "ReadOnlyStore",
    "CorruptShard",
    "CorruptExport",
    "StorageError",
    "StorageFull",
    "TenantInactive",
    "StoreClosed",
    "StoreNotFound",
    "EmbedderError",
    "EmbedderMismatch",
    "TenantMismatch",
    "MemoryNotFound",
    "SessionNotFound",
    "SessionExpired",
    "ConsolidationError",
]


class TenantVecError(Exception):
    """Root of every error tenantvec raises.

    ``tenant`` names the tenant the failed call was about and ``path`` the file or
    directory involved, where the raiser knew them (else ``None``).
    """

    def __init__(self, *args: object, tenant: str | None = None, path: str | None = None) -> None:
        super().__init__(*args)
        self.tenant = tenant
        self.path = path


class _KeyErrorStr(KeyError):
    # KeyError.__str__ repr()s its argument; our messages are sentences.
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidTenantId(TenantVecError, ValueError):
    """A tenant id is empty, too long, or contains characters a tenant id may not hold."""


class TenantNotFound(TenantVecError, _KeyErrorStr):
    """The tenant does not exist in this store (or was dropped and re-created)."""


class TenantExists(TenantVecError, FileExistsError):
    """``create_tenant`` was asked for a tenant id that already exists."""


class DimensionMismatch(TenantVecError, ValueError):
    """A vector or an explicit ``dim`` disagrees with the dimension on disk."""


class InvalidVector(TenantVecError, ValueError):
    """A vector is malformed: wrong shape, NaN or infinity, or zero under cosine."""


class InvalidFilter(TenantVecError, ValueError):
    """A ``where`` filter is malformed; the message names the offending path."""


class InvalidArgument(TenantVecError, ValueError):
    """An argument other than a vector, filter or tenant id has a bad value."""


class DuplicateId(TenantVecError, ValueError):
    """``add`` was given a record id that already exists, or the same id twice."""


class StoreLocked(TenantVecError, BlockingIOError):
    """Another process holds the store's writer lock."""


class ReadOnlyStore(TenantVecError, PermissionError):
    """A write was attempted on a store opened with ``readonly=True``."""


class CorruptShard(TenantVecError):
    """A tenant's files cannot be trusted and the damage cannot be healed automatically."""


class StorageError(TenantVecError, OSError):
    """The filesystem or LMDB failed under a call (I/O error, no reader slot, ...); the
    original error is chained as ``__cause__``. The call changed nothing it did not report."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StorageFull(StorageError):
    """The filesystem holding a tenant (or an export) has no room for a write.

    ``path`` names where the write went and ``free`` the bytes that were free when it
    failed. Nothing was acknowledged: free space (or compact tenants) and retry.
    """

    def __init__(self, *args: object, tenant: str | None = None, path: str | None = None,
                 free: int | None = None) -> None:
        super().__init__(*args, tenant=tenant, path=path)
        self.free = free


class CorruptExport(TenantVecError, ValueError):
    """An export file is truncated, fails its checksum, or is not a tenantvec export."""


class TenantInactive(TenantVecError, PermissionError):
    """The tenant was deactivated with ``Store.deactivate``; ``activate`` restores it."""


class StoreClosed(TenantVecError, RuntimeError):
    """The store (or a handle obtained from it) was used after ``close()``."""


class StoreNotFound(TenantVecError, FileNotFoundError):
    """A read-only open found no store at ``path`` (no ``tenantvec.json``)."""


class EmbedderError(TenantVecError):
    """An embedder failed or returned unusable vectors (wrong shape, NaN), or its model or
    library is not installed or not available offline; the message says which and how to fix it."""


class EmbedderMismatch(TenantVecError, ValueError):
    """The embedder given is not the one the tenant's texts were embedded with.

    ``stored`` and ``given`` are the two fingerprints, ``(name, dim)``; the message names both.
    Use the tenant's embedder, or re-embed the tenant with the new one.
    """

    def __init__(self, *args: object, tenant: str | None = None, path: str | None = None,
                 stored: tuple[str, int] | None = None, given: tuple[str, int] | None = None) -> None:
        super().__init__(*args, tenant=tenant, path=path)
        self.stored = stored
        self.given = given


class TenantMismatch(TenantVecError, ValueError):
    """An item carries another tenant's or another session's stamp than the call it came
    through (e.g. a ``distill`` output during consolidation); nothing was written."""


class MemoryNotFound(TenantVecError, _KeyErrorStr):
    """No memory of the tenant has this id (never had, or it was forgotten)."""


class SessionNotFound(TenantVecError, _KeyErrorStr):
    """The tenant has no working-memory session with this id."""


class SessionExpired(SessionNotFound):
    """The working-memory session outlived its TTL; its contents are gone from every read."""


class ConsolidationError(TenantVecError):
    """A consolidation's ``distill`` callable raised or returned something that is not a
    list of memories (the cause is chained); nothing was written."""
