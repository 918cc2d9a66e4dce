"""LangGraph long-term memory on tenantvec (``pip install 'tenantvec[langgraph]'``).

:class:`TenantvecStore` is a LangGraph ``BaseStore`` (``store=TenantvecStore(...)`` in
``graph.compile`` or ``create_react_agent``), :class:`AsyncTenantvecStore` its
``AsyncBatchedBaseStore`` twin for asyncio applications. Every namespace lives in a
tenantvec tenant's shard: one tenant for the whole store (``tenant="acme"``), or a tenant
per namespace picked by ``tenant_from`` (default: the first label). LangGraph's own store
test suite (``langgraph-checkpoint`` 4.3.2) runs against both modes in CI
(``tools/upstream_suites.py``).
"""

from __future__ import annotations

try:
    import langgraph.store.base  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "tenantvec.integrations.langgraph needs langgraph-checkpoint: pip install 'tenantvec[langgraph]'"
    ) from exc

from ._store import AsyncTenantvecStore, TenantvecStore, first_label

__all__ = ["AsyncTenantvecStore", "TenantvecStore", "first_label"]
