"""conftest.py for LangGraph's own store test suite, run against TenantvecStore.

``tools/upstream_suites.py`` copies this file next to ``tests/test_store.py`` (extracted
from the langgraph-checkpoint sdist) and runs pytest once per mode. The autouse fixture
replaces the suite module's ``InMemoryStore`` with a :class:`TenantvecStore` subclass of
that name, built on a fresh tenantvec store in ``tmp_path``:

- ``TENANTVEC_UPSTREAM_MODE=bound``: ``TenantvecStore(store, tenant="upstream", index=...)``;
- ``TENANTVEC_UPSTREAM_MODE=routed``: ``TenantvecStore(store, cross_tenant=True, index=...)``
  (the tenant is each namespace's first label; the suite searches and lists the whole store).

``TENANTVEC_UPSTREAM_REPORT`` names a JSON file that receives the collected and deselected
counts and the number of stores built, so the caller can check the substitution happened.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tenantvec
from tenantvec.integrations.langgraph import TenantvecStore

MODE = os.environ.get("TENANTVEC_UPSTREAM_MODE", "bound")
if MODE not in ("bound", "routed"):
    raise pytest.UsageError(f"TENANTVEC_UPSTREAM_MODE must be 'bound' or 'routed', got {MODE!r}")
_counts = {"collected": 0, "deselected": 0, "stores": 0, "modules_patched": 0}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _counts["collected"] = len(items)


def pytest_deselected(items: list[pytest.Item]) -> None:
    _counts["deselected"] += len(items)


@pytest.fixture(autouse=True)
def _tenantvec_instead_of_in_memory_store(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    import tests.test_store as suite

    opened: list[tenantvec.Store] = []

    class InMemoryStore(TenantvecStore):
        """TenantvecStore under the name the suite uses, with InMemoryStore's signature."""

        def __init__(self, *, index: Any = None) -> None:
            store = tenantvec.Store(tmp_path_factory.mktemp("tenantvec"), durability="process")
            opened.append(store)
            if MODE == "bound":
                super().__init__(store, tenant="upstream", index=index)
            else:
                super().__init__(store, cross_tenant=True, index=index)
            _counts["stores"] += 1

    monkeypatch.setattr(suite, "InMemoryStore", InMemoryStore)
    _counts["modules_patched"] += 1
    yield
    for store in opened:
        store.close()


def pytest_sessionfinish() -> None:
    report = os.environ.get("TENANTVEC_UPSTREAM_REPORT")
    if report:
        Path(report).write_text(json.dumps({"mode": MODE, **_counts}), encoding="utf-8")
