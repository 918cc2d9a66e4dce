"""LangChain's own vector store test suite (``langchain-tests``) against TenantvecVectorStore.

Every case of ``VectorStoreIntegrationTests`` runs, sync and async (its opt-in flags
``has_sync``, ``has_async`` and ``has_get_by_ids`` are all on, their defaults). The async
cases run under anyio's pytest plugin (``pytestmark`` below), on asyncio.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("langchain_core", reason="the [langchain] extra is not installed")
pytest.importorskip("langchain_tests", reason="langchain-tests (a dev dependency) is not installed")

from langchain_tests.integration_tests import VectorStoreIntegrationTests

import tenantvec
from tenantvec.integrations.langchain import TenantvecVectorStore

pytestmark = pytest.mark.anyio


class TestTenantvecVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[TenantvecVectorStore]:
        """An empty vector store over tenant "acme" of a fresh store in ``tmp_path``."""
        with tenantvec.Store(tmp_path / "store") as store:
            yield TenantvecVectorStore(store, tenant="acme", embedding=self.get_embeddings())


def test_every_opt_in_flag_is_on_and_the_case_count_is_the_readmes() -> None:
    """The suite skips nothing of its own accord (sync, async and get_by_ids cases all run),
    and it has the 25 cases the README reports for the pinned langchain-tests (update the
    README's "LangChain" section when an upgrade changes the count)."""
    suite = TestTenantvecVectorStoreStandard()
    assert (suite.has_sync, suite.has_async, suite.has_get_by_ids) == (True, True, True)
    assert len([name for name in dir(VectorStoreIntegrationTests) if name.startswith("test_")]) == 25
