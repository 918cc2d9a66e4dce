"""pytest fixtures for testing your agent against the real tenantvec engine: no server, no
network, a fresh store in each test's ``tmp_path``.

Installing tenantvec registers this module as a pytest plugin (entry point ``pytest11``),
so the fixtures are there in every test without an import::

    def test_agent_remembers(tenantvec_memory, tenantvec_clock):
        acme = tenantvec_memory.tenant("acme", create=True)
        acme.remember("Acme bills through PostgreSQL", source="user", ttl=3600)
        assert acme.recall("where are Acme bills kept?", k=1)[0].text.startswith("Acme bills")
        tenantvec_clock.advance(7200)                 # the TTL ran out: no sleeping
        assert acme.recall("where are Acme bills kept?", k=1) == []

- ``tenantvec_store``: a writable :class:`tenantvec.Store` (default dim: the embedder's;
  ``durability="process"``), closed after the test;
- ``tenantvec_memory``: a :class:`tenantvec.memory.Memory` on it, with ``tenantvec_embedder``
  and ``tenantvec_clock``;
- ``tenantvec_embedder``: a :class:`~tenantvec.embedders.HashingEmbedder` (deterministic,
  texts sharing words are close); override this fixture to test with another embedder;
- ``tenantvec_clock``: a :class:`FakeClock`, the time of ``tenantvec_memory`` (TTLs,
  validity, recency, audit), which moves only when the test advances it;
- ``tenantvec_langgraph_store``: a LangGraph ``BaseStore``
  (:class:`tenantvec.integrations.langgraph.TenantvecStore`) bound to tenant
  :data:`LANGGRAPH_TENANT`, with semantic search through ``tenantvec_embedder`` and TTLs on
  ``tenantvec_clock``; skips unless the ``langgraph`` extra is installed;
- ``tenantvec_langchain_vectorstore``: a LangChain ``VectorStore``
  (:class:`tenantvec.integrations.langchain.TenantvecVectorStore`) on tenant
  :data:`LANGCHAIN_TENANT`, embedding with ``tenantvec_embedder``; skips unless the
  ``langchain`` extra is installed.

The plugin is loaded into every pytest session of a project that installs tenantvec, so
loading it imports nothing but pytest and ``tenantvec`` itself (which loads no storage
engine): the store, the memory layer and the frameworks are imported by the fixture that
needs them, when it runs.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from .errors import InvalidArgument

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from . import Store
    from .embedders import Embedder, HashingEmbedder
    from .integrations.langchain import TenantvecVectorStore
    from .integrations.langgraph import TenantvecStore
    from .memory import Memory

__all__ = ["LANGCHAIN_TENANT", "LANGGRAPH_TENANT", "FakeClock"]

#: The tenant ``tenantvec_langgraph_store`` is bound to.
LANGGRAPH_TENANT: Final = "test-langgraph"
#: The tenant ``tenantvec_langchain_vectorstore`` reads and writes.
LANGCHAIN_TENANT: Final = "test-langchain"


class FakeClock:
    """Unix seconds that move only when the test says so: pass it as a ``clock=`` (it is
    callable) and call :meth:`advance` instead of sleeping.

    >>> clock = FakeClock()
    >>> clock.advance(60) - FakeClock.START
    60.0
    """

    #: Where a new clock starts: 2023-11-14 22:13:20 UTC.
    START: Final = 1_700_000_000.0

    def __init__(self, now: float = START) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def __repr__(self) -> str:
        return f"FakeClock({self.now!r})"

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` forward and return the new time.

        :raises InvalidArgument: ``seconds`` is negative or not a finite number.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
                or seconds < 0:
            raise InvalidArgument(f"FakeClock.advance takes a finite number of seconds >= 0, got {seconds!r}")
        self.now += seconds
        return self.now


@pytest.fixture
def tenantvec_clock() -> FakeClock:
    """A :class:`FakeClock` at :attr:`FakeClock.START`, the clock of ``tenantvec_memory``."""
    return FakeClock()


@pytest.fixture
def tenantvec_embedder() -> HashingEmbedder:
    """A ``HashingEmbedder`` (384-d, deterministic, no model): the embedder of
    ``tenantvec_memory`` and of the framework fixtures. Override it in your ``conftest.py``
    to run those fixtures with another :class:`~tenantvec.embedders.Embedder`."""
    from .embedders import HashingEmbedder

    return HashingEmbedder()


@pytest.fixture
def tenantvec_store(tmp_path: Path, tenantvec_embedder: Embedder) -> Iterator[Store]:
    """A writable ``tenantvec.Store`` in ``tmp_path`` (new tenants default to the embedder's
    dim; ``durability="process"``: commits are not fsynced), closed after the test."""
    from . import Store

    with Store(tmp_path / "tenantvec", dim=tenantvec_embedder.dim, durability="process") as store:
        yield store


@pytest.fixture
def tenantvec_memory(tenantvec_store: Store, tenantvec_embedder: Embedder,
                     tenantvec_clock: FakeClock) -> Iterator[Memory]:
    """A ``tenantvec.memory.Memory`` on ``tenantvec_store`` with ``tenantvec_embedder`` and
    ``tenantvec_clock``: ``tenantvec_memory.tenant("acme", create=True)`` is a tenant's memory."""
    from .memory import Memory

    with Memory(tenantvec_store, embedder=tenantvec_embedder, clock=tenantvec_clock) as memory:
        yield memory


@pytest.fixture
def tenantvec_langgraph_store(tenantvec_store: Store, tenantvec_embedder: Embedder,
                              tenantvec_clock: FakeClock) -> Iterator[TenantvecStore]:
    """A LangGraph ``BaseStore`` (``TenantvecStore``) bound to tenant ``"test-langgraph"``
    (:data:`LANGGRAPH_TENANT`) of ``tenantvec_store``, indexing items' text with
    ``tenantvec_embedder`` and timing TTLs with ``tenantvec_clock``; pass it as
    ``graph.compile(store=...)``. Skips when LangGraph (``tenantvec[langgraph]``) is missing."""
    _require("tenantvec_langgraph_store", "langgraph", "langgraph.store.base")
    from .integrations.langgraph import TenantvecStore

    def embed(texts: Sequence[str]) -> list[list[float]]:
        return tenantvec_embedder.embed_documents(list(texts)).tolist()

    with TenantvecStore(tenantvec_store, tenant=LANGGRAPH_TENANT, index={"dims": tenantvec_embedder.dim, "embed": embed},
                        clock=tenantvec_clock) as store:
        yield store


@pytest.fixture
def tenantvec_langchain_vectorstore(tenantvec_store: Store,
                                    tenantvec_embedder: Embedder) -> Iterator[TenantvecVectorStore]:
    """A LangChain ``VectorStore`` (``TenantvecVectorStore``) on tenant ``"test-langchain"``
    (:data:`LANGCHAIN_TENANT`) of ``tenantvec_store``, embedding with ``tenantvec_embedder``
    (as LangChain ``Embeddings``); ``.as_retriever()`` makes a retriever. Skips when
    LangChain (``tenantvec[langchain]``) is missing."""
    _require("tenantvec_langchain_vectorstore", "langchain", "langchain_core.vectorstores")
    from .integrations.langchain import TenantvecVectorStore

    with TenantvecVectorStore(tenantvec_store, tenant=LANGCHAIN_TENANT,
                              embedding=_langchain_embeddings(tenantvec_embedder)) as vectorstore:
        yield vectorstore


def _require(fixture: str, extra: str, framework_module: str) -> None:
    """Skip the test unless ``framework_module`` and tenantvec's integration for it import."""
    pytest.importorskip(framework_module,
                        reason=f"{fixture} needs the {extra} extra: pip install 'tenantvec[{extra}]'")
    module = f"tenantvec.integrations.{extra}"
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{fixture} needs {module}, which this tenantvec does not have")


def _langchain_embeddings(embedder: Embedder) -> Embeddings:
    """``embedder`` as LangChain ``Embeddings`` (lists of floats)."""
    from langchain_core.embeddings import Embeddings

    class TenantvecEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed_documents(list(texts)).tolist()

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed_query(text).tolist()

    return TenantvecEmbeddings()
