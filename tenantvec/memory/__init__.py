"""Agent memory on tenantvec: per-tenant long-term memories (episodic, semantic,
procedural) recalled by meaning, working-memory sessions, exactly-once consolidation and a
hash-chained audit log, all inside each tenant's own shard.

    from tenantvec.memory import Memory
    from tenantvec.embedders import HashingEmbedder

    with Memory("/var/lib/agent-memory", embedder=HashingEmbedder()) as mem:
        acme = mem.tenant("acme", create=True)
        acme.remember("Acme bills through PostgreSQL", kind="semantic", source="user")
        hits = acme.recall("where is billing data?", k=5, sources=["user"])

Storage is reached only through the hooks a ``tenantvec.Tenant`` hands out (its
transactions, read views and working-memory table): a ``TenantMemory`` can touch one
tenant's shard and nothing else.
"""

from .._audit import AuditEntry
from ._items import KINDS, SOURCES, ConsolidationReport, ErasureReport, MemoryHit, Note
from ._memory import ERASURE_LOG, Memory
from ._tenant import SessionInfo, SweepReport, TenantMemory
from ._working import WorkingMemory

__all__ = [
    "ERASURE_LOG",
    "KINDS",
    "SOURCES",
    "AuditEntry",
    "ConsolidationReport",
    "ErasureReport",
    "Memory",
    "MemoryHit",
    "Note",
    "SessionInfo",
    "SweepReport",
    "TenantMemory",
    "WorkingMemory",
]
