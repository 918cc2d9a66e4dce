"""Listing: one line per tenant (``tenantvec ls``, ``Store.tenant_summaries``) without
loading cold tenants.

A hot tenant answers from memory; a cold one is read from its files while the manager
keeps it from loading (``ShardManager.hold``), and stays cold.
"""

from __future__ import annotations

from dataclasses import dataclass

import lmdb

from ..errors import CorruptShard, TenantVecError
from .manager import ShardManager
from .shardfiles import disk_bytes, open_raw, require_shard


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


def _peek(tenant_id: str, path: str) -> TenantSummary:
    """A cold tenant's line, read from its files; ``"corrupt"`` when they cannot be read
    or belong to another tenant."""
    nbytes = disk_bytes(path)
    try:
        with open_raw(path, tenant_id, write=False) as f, f.env.begin() as txn:
            stored = f.get_meta(txn, b"tenant")
            if stored != tenant_id:
                raise CorruptShard(f"tenant {tenant_id!r}: shard belongs to tenant {stored!r}")
            count = txn.stat(f.dbs.ids)["entries"]
            active = f.get_meta(txn, b"active", True)
            return TenantSummary(
                tenant=tenant_id, count=count, state="cold" if active else "inactive",
                dim=f.get_meta(txn, b"dim"), metric=f.get_meta(txn, b"metric"),
                index_kind=f.get_meta(txn, b"kind"), bytes_on_disk=nbytes,
                last_write=f.get_meta(txn, b"last_write"),
            )
    except (TenantVecError, lmdb.Error, ValueError) as exc:
        return TenantSummary(tenant_id, None, "corrupt", None, None, None, nbytes, None, error=str(exc))


def tenant_summary(manager: ShardManager, path: str, tenant_id: str) -> TenantSummary:
    """Count, state, dim, metric, index kind, bytes and last write of the tenant whose
    files are in directory ``path``.

    A hot tenant answers from memory; a cold one is read from its files and stays cold.
    A tenant whose files cannot be read is reported with state ``"corrupt"``.

    :raises TenantNotFound: there is no tenant directory at ``path``.
    """
    require_shard(path, tenant_id, need_data=False)
    with manager.hold(tenant_id) as shard:
        if shard is None:
            return _peek(tenant_id, path)
        info = shard.info("hot" if shard.active else "inactive")
        return TenantSummary(
            tenant=tenant_id, count=info.count, state=info.state, dim=info.dim, metric=info.metric,
            index_kind=info.index_kind, bytes_on_disk=info.bytes_on_disk, last_write=info.last_write,
        )
