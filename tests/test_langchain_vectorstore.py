"""TenantvecVectorStore beyond LangChain's standard suite: our filters, tenant isolation,
metadata that tenantvec reserves, scores, MMR, async paths and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core", reason="the [langchain] extra is not installed")

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

import tenantvec
from tenantvec.errors import (
    DimensionMismatch,
    DuplicateId,
    EmbedderError,
    InvalidArgument,
    InvalidFilter,
    InvalidTenantId,
    InvalidVector,
    TenantVecError,
)
from tenantvec.integrations.langchain import TenantvecVectorStore

#: Texts with hand-picked 3-d vectors: ``a2`` is a near-duplicate of ``a``; for the query
#: ``q`` the nearest are ``a2`` (0.988), ``a`` (0.958), ``b`` (0.805), ``c`` (0), ``d`` (-0.287),
#: so maximal marginal relevance (lambda 0.5) picks ``a2`` then ``b`` (0.05) over ``c`` (0)
#: and ``a`` (-0.016, too close to ``a2``).
VECTORS = {
    "a": [1.0, 0.0, 0.0],
    "a2": [0.99, 0.14, 0.0],
    "b": [0.6, 0.8, 0.0],
    "c": [0.0, 0.0, 1.0],
    "d": [0.0, -1.0, 0.0],
    "q": [1.0, 0.3, 0.0],
}


class KeyedEmbeddings(Embeddings):
    """Vectors from :data:`VECTORS` (unknown texts: ``[0.5, 0.5, 0.5]``); counts the texts
    embedded by the sync and the async paths separately."""

    def __init__(self) -> None:
        self.sync_calls: list[list[str]] = []
        self.async_calls: list[list[str]] = []

    def _vec(self, text: str) -> list[float]:
        return list(VECTORS.get(text, [0.5, 0.5, 0.5]))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.sync_calls.append(list(texts))
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.sync_calls.append([text])
        return self._vec(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        self.async_calls.append(list(texts))
        return [self._vec(t) for t in texts]

    async def aembed_query(self, text: str) -> list[float]:
        self.async_calls.append([text])
        return self._vec(text)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tenantvec.Store]:
    with tenantvec.Store(tmp_path / "store") as s:
        yield s


@pytest.fixture
def emb() -> KeyedEmbeddings:
    return KeyedEmbeddings()


@pytest.fixture
def vs(store: tenantvec.Store, emb: KeyedEmbeddings) -> TenantvecVectorStore:
    return TenantvecVectorStore(store, tenant="acme", embedding=emb)


def _ids(docs: list[Document]) -> list[str | None]:
    return [d.id for d in docs]


# -- filters -------------------------------------------------------------------------------
@pytest.fixture
def filled(vs: TenantvecVectorStore) -> TenantvecVectorStore:
    vs.add_texts(
        ["a", "a2", "b", "c", "d"],
        [{"kind": "fact", "n": 1, "tags": ["x", "y"]},
         {"kind": "fact", "n": 2, "tags": ["y"]},
         {"kind": "note", "n": 3},
         {"kind": "note", "n": 4, "tags": ["x"]},
         {"n": 5}],
        ids=["a", "a2", "b", "c", "d"],
    )
    return vs


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"kind": "fact"}, {"a", "a2"}),
        ({"n": {"$gt": 2}}, {"b", "c", "d"}),
        ({"n": {"$gte": 2, "$lt": 4}}, {"a2", "b"}),
        ({"kind": {"$in": ["note"]}}, {"b", "c"}),
        ({"kind": {"$nin": ["note"]}}, {"a", "a2", "d"}),
        ({"kind": {"$ne": "fact"}}, {"b", "c", "d"}),
        ({"kind": {"$exists": False}}, {"d"}),
        ({"tags": {"$contains": "x"}}, {"a", "c"}),
        ({"$or": [{"n": 1}, {"kind": "note"}]}, {"a", "b", "c"}),
        ({"$and": [{"kind": "fact"}, {"$not": {"n": 1}}]}, {"a2"}),
    ],
)
def test_filter_uses_tenantvec_operators(filled: TenantvecVectorStore, where: dict[str, Any], expected: set[str]) -> None:
    docs = filled.similarity_search("a", k=10, filter=where)
    assert set(_ids(docs)) == expected
    scored = filled.similarity_search_with_score("a", k=10, filter=where)
    assert {d.id for d, _ in scored} == expected
    assert set(_ids(filled.max_marginal_relevance_search("a", k=10, filter=where))) == expected


def test_filter_narrows_top_k_and_retriever_passes_it(filled: TenantvecVectorStore) -> None:
    assert _ids(filled.similarity_search("a", k=1, filter={"kind": "note"})) == ["b"]
    retriever = filled.as_retriever(search_kwargs={"k": 1, "filter": {"kind": "note"}})
    assert _ids(retriever.invoke("a")) == ["b"]
    mmr = filled.as_retriever(search_type="mmr", search_kwargs={"k": 2, "filter": {"kind": "fact"}})
    assert set(_ids(mmr.invoke("a"))) == {"a", "a2"}


def test_delete_by_filter_and_delete_all(filled: TenantvecVectorStore) -> None:
    assert filled.delete(filter={"kind": "note"}) is True
    assert filled.tenant.count() == 3
    assert filled.get_by_ids(["b", "c"]) == []
    filled.delete(["a"], filter={"kind": "note"})  # ids and filter: both must match
    assert filled.tenant.count() == 3
    filled.delete()  # LangChain's contract: no ids, no filter = everything
    assert filled.tenant.count() == 0


# -- isolation -----------------------------------------------------------------------------
def test_two_tenants_never_see_each_other(store: tenantvec.Store, emb: KeyedEmbeddings) -> None:
    acme = TenantvecVectorStore(store, tenant="acme", embedding=emb)
    globex = TenantvecVectorStore(store, tenant="globex", embedding=emb)
    acme.add_texts(["a", "b"], [{"owner": "acme"}] * 2, ids=["1", "2"])
    globex.add_texts(["a"], [{"owner": "globex"}], ids=["1"])

    assert [d.metadata for d in acme.similarity_search("a", k=10)] == [{"owner": "acme"}] * 2
    assert [d.metadata for d in globex.similarity_search("a", k=10)] == [{"owner": "globex"}]
    assert globex.get_by_ids(["1", "2"]) == [Document(id="1", page_content="a", metadata={"owner": "globex"})]
    assert globex.similarity_search("a", k=10, filter={"owner": "acme"}) == []
    assert globex.max_marginal_relevance_search("b", k=10) == _docs_of(globex)

    globex.delete(["1", "2"])  # same ids as acme's: only globex's go
    assert globex.tenant.count() == 0
    assert acme.tenant.count() == 2
    globex.delete()
    assert _ids(acme.get_by_ids(["1", "2"])) == ["1", "2"]


def _docs_of(vs: TenantvecVectorStore) -> list[Document]:
    return vs.similarity_search("a", k=100)


# -- metadata ------------------------------------------------------------------------------
ODD_METADATA: dict[str, Any] = {
    "created_at": 1700000000,
    "updated_at": "yesterday",
    "$set": {"x": 1},
    "$": None,
    "": "empty key",
    "~": "tilde",
    "~created_at": 2,
    "~~": [1, 2],
    "a.b": True,
    "nested": {"$inner": {"created_at": [None, 1.5]}, "": 0},
    "ключ ✓": "ünïcode",
}


def test_metadata_with_reserved_keys_round_trips_exactly(vs: TenantvecVectorStore) -> None:
    doc = Document(page_content="a", metadata=ODD_METADATA)
    ids = vs.add_documents([doc])
    assert vs.get_by_ids(ids) == [Document(id=ids[0], page_content="a", metadata=ODD_METADATA)]
    assert vs.similarity_search("a", k=1)[0].metadata == ODD_METADATA
    assert doc.metadata == ODD_METADATA  # the input is not modified
    assert doc.id is None
    # as stored: reserved, "$" and "~" keys escaped with one "~", the rest as they are
    stored = vs.tenant.get(ids)[0].metadata
    assert set(stored) == {"~created_at", "~updated_at", "~$set", "~$", "~", "~~", "~~created_at", "~~~",
                           "a.b", "nested", "ключ ✓"}


@pytest.mark.parametrize(
    ("where", "hit"),
    [
        ({"created_at": {"$gte": 1700000000}}, True),
        ({"updated_at": "yesterday"}, True),
        ({"": "empty key"}, True),
        ({"~": "tilde"}, True),
        ({"~created_at": 2}, True),
        ({"~~": {"$contains": 2}}, True),
        ({"a.b": True}, True),
        ({"created_at": 2}, False),  # the escaped "~created_at" is another key
    ],
)
def test_filter_names_langchain_keys(vs: TenantvecVectorStore, where: dict[str, Any], hit: bool) -> None:
    vs.add_texts(["a"], [ODD_METADATA], ids=["odd"])
    vs.add_texts(["b"], [{"created_at": 5}], ids=["plain"])
    assert ("odd" in _ids(vs.similarity_search("a", k=5, filter=where))) is hit


def test_tuples_come_back_as_lists(vs: TenantvecVectorStore) -> None:
    vs.add_texts(["a"], [{"pair": (1, 2)}], ids=["t"])
    assert vs.get_by_ids(["t"])[0].metadata == {"pair": [1, 2]}


# -- scores, MMR, ids ---------------------------------------------------------------------
def test_score_is_cosine_similarity(filled: TenantvecVectorStore) -> None:
    scored = filled.similarity_search_with_score("a", k=3)
    assert [d.id for d, _ in scored] == ["a", "a2", "b"]
    assert [s for _, s in scored] == pytest.approx([1.0, 0.99 / (0.99**2 + 0.14**2) ** 0.5, 0.6], abs=1e-5)
    relevance = filled.similarity_search_with_relevance_scores("a", k=3)
    assert [s for _, s in relevance] == pytest.approx([s for _, s in scored])
    kept = filled.as_retriever(search_type="similarity_score_threshold",
                               search_kwargs={"k": 5, "score_threshold": 0.9}).invoke("a")
    assert _ids(kept) == ["a", "a2"]


def test_mmr_prefers_diverse_documents(filled: TenantvecVectorStore) -> None:
    assert _ids(filled.max_marginal_relevance_search("q", k=2, fetch_k=5, lambda_mult=1.0)) == ["a2", "a"]
    assert _ids(filled.max_marginal_relevance_search("q", k=2, fetch_k=5, lambda_mult=0.5)) == ["a2", "b"]
    assert _ids(filled.max_marginal_relevance_search_by_vector(VECTORS["q"], k=2, lambda_mult=0.5)) == ["a2", "b"]
    # candidates are the max(k, fetch_k) nearest: with 3 of them, "c" is not among them
    assert _ids(filled.max_marginal_relevance_search("q", k=3, fetch_k=2, lambda_mult=0.5)) == ["a2", "b", "a"]
    assert _ids(filled.max_marginal_relevance_search("q", k=3, fetch_k=5, lambda_mult=0.5)) == ["a2", "b", "c"]


def test_search_by_vector_and_empty_tenant(vs: TenantvecVectorStore) -> None:
    assert vs.similarity_search_by_vector([0.0, 0.0, 1.0], k=3) == []
    assert vs.max_marginal_relevance_search("a") == []
    vs.add_texts(["a", "c"])
    assert [d.page_content for d in vs.similarity_search_by_vector([0.0, 0.0, 1.0], k=1)] == ["c"]


def test_ids_kept_generated_and_overwritten(vs: TenantvecVectorStore) -> None:
    ids = vs.add_texts(["a", "b", "c"], ids=["keep", None, ""])
    assert ids[0] == "keep"
    assert len({*ids}) == 3
    assert all(len(i) == 32 for i in ids[1:])
    assert vs.add_documents([Document("b", id="x")], ids=["y"]) == ["y"]  # ids= wins over Document.id
    vs.add_texts(["d"], [{"v": 2}], ids=["keep"])
    assert vs.get_by_ids(["keep", "keep", "nope"]) == [Document(id="keep", page_content="d", metadata={"v": 2})]


def test_batch_size_and_langchain_indexing_api(vs: TenantvecVectorStore, emb: KeyedEmbeddings) -> None:
    from langchain_core.indexing import InMemoryRecordManager, index

    emb.sync_calls.clear()  # the dimension probe
    assert len(vs.add_texts(["a", "b", "c", "d", "a2"], batch_size=2)) == 5
    assert [len(call) for call in emb.sync_calls] == [2, 2, 1]
    vs.delete()
    manager = InMemoryRecordManager("tenantvec/acme")
    manager.create_schema()
    docs = [Document("a", metadata={"source": "s1"}), Document("b", metadata={"source": "s2"})]
    assert index(docs, manager, vs, cleanup="full", key_encoder="sha256")["num_added"] == 2
    result = index(docs[:1], manager, vs, cleanup="full", key_encoder="sha256")
    assert (result["num_skipped"], result["num_deleted"]) == (1, 1)
    assert [d.page_content for d in vs.similarity_search("a", k=5)] == ["a"]


# -- construction --------------------------------------------------------------------------
def test_tenant_created_with_probed_dim_and_cosine(store: tenantvec.Store, emb: KeyedEmbeddings) -> None:
    TenantvecVectorStore(store, tenant="new", embedding=emb)
    info = store.tenant("new").info()
    assert (info.dim, info.metric) == (3, "cosine")
    assert len(emb.sync_calls) == 1
    TenantvecVectorStore(store, tenant="new", embedding=emb)  # existing tenant: no probe
    TenantvecVectorStore(store, tenant="given", embedding=emb, dim=3)  # dim given: no probe
    assert len(emb.sync_calls) == 1


def test_from_texts_with_a_path_owns_and_closes_the_store(tmp_path: Path, emb: KeyedEmbeddings) -> None:
    path = tmp_path / "owned"
    with TenantvecVectorStore.from_texts(["a", "b"], emb, [{"k": 1}, {"k": 2}], ids=["1", "2"],
                                         store_or_path=path, tenant="acme") as vs:
        assert _ids(vs.similarity_search("b", k=1)) == ["2"]
    with TenantvecVectorStore.from_documents([Document("c", id="3")], emb, store_or_path=path, tenant="acme") as vs:
        assert sorted(_ids(vs.get_by_ids(["1", "2", "3"]))) == ["1", "2", "3"]  # reopened: all persisted
    with pytest.raises(InvalidArgument, match="store_or_path= and tenant="):
        TenantvecVectorStore.from_texts(["a"], emb, tenant="acme")
    with pytest.raises(DuplicateId):  # the store opened for it is closed again: the path can be reopened
        TenantvecVectorStore.from_texts(["a", "b"], emb, ids=["x", "x"], store_or_path=path, tenant="acme")
    with tenantvec.Store(path) as store:
        assert store.tenant("acme").count() == 3


# -- async ---------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_async_paths_embed_asynchronously(vs: TenantvecVectorStore, emb: KeyedEmbeddings) -> None:
    emb.sync_calls.clear()
    ids = await vs.aadd_texts(["a", "a2", "b"], [{"n": 1}, {"n": 2}, {"n": 3}], ids=["a", "a2", "b"])
    assert ids == ["a", "a2", "b"]
    await vs.aadd_documents([Document("c", id="c", metadata={"n": 4})])
    scored = await vs.asimilarity_search_with_score("a", k=2, filter={"n": {"$lte": 2}})
    assert [(d.id, round(s, 4)) for d, s in scored] == [("a", 1.0), ("a2", round(0.99 / (0.99**2 + 0.14**2) ** 0.5, 4))]
    assert _ids(await vs.asimilarity_search("c", k=1)) == ["c"]
    assert _ids(await vs.amax_marginal_relevance_search("q", k=2, lambda_mult=0.5)) == ["a2", "b"]
    assert _ids(await vs.asimilarity_search_by_vector([0.0, 0.0, 1.0], k=1)) == ["c"]
    assert _ids(await vs.as_retriever(search_kwargs={"k": 1}).ainvoke("b")) == ["b"]
    await vs.adelete(["a"])
    assert _ids(await vs.aget_by_ids(["a", "b"])) == ["b"]
    assert emb.sync_calls == []  # every embedding went through aembed_*
    assert len(emb.async_calls) == 6


@pytest.mark.anyio
async def test_async_bad_input_raises_before_embedding(vs: TenantvecVectorStore, emb: KeyedEmbeddings) -> None:
    with pytest.raises(InvalidArgument):
        await vs.aadd_texts(["a", "b"], ids=["1"])
    with pytest.raises(InvalidFilter):
        await vs.asimilarity_search("a", filter={"n": {"$bogus": 1}})
    assert emb.async_calls == [["a"]]  # only the query of the search was embedded
    assert vs.tenant.count() == 0


# -- bad input -----------------------------------------------------------------------------
class WrongCountEmbeddings(KeyedEmbeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return super().embed_documents(texts)[:-1]


def test_bad_input_raises_tenantvec_errors_and_changes_nothing(
    filled: TenantvecVectorStore, store: tenantvec.Store
) -> None:
    before = filled.tenant.count()
    cases: list[tuple[type[TenantVecError], Any]] = [
        (InvalidArgument, lambda: filled.add_texts("abc")),
        (InvalidArgument, lambda: filled.add_texts(["a", 5])),
        (InvalidArgument, lambda: filled.add_texts(["a", "b"], [{}])),
        (InvalidArgument, lambda: filled.add_texts(["a", "b"], ids=["1", "2", "3"])),
        (InvalidArgument, lambda: filled.add_texts(["a"], [{1: "int key"}])),
        (InvalidArgument, lambda: filled.add_texts(["a"], ["not a dict"])),
        (InvalidArgument, lambda: filled.add_texts(["a"], [{"v": object()}])),
        (InvalidArgument, lambda: filled.add_texts(["a"], batch_size=0)),
        (InvalidArgument, lambda: filled.add_texts(["a"], ids=[7])),
        (InvalidArgument, lambda: filled.add_documents(["plain text"])),
        (DuplicateId, lambda: filled.add_texts(["a", "b"], ids=["z", "z"])),
        (InvalidArgument, lambda: filled.similarity_search("a", filters={"n": 1})),
        (InvalidArgument, lambda: filled.similarity_search(["a"])),
        (InvalidArgument, lambda: filled.similarity_search("a", k=0)),
        (InvalidFilter, lambda: filled.similarity_search("a", filter={"n": {"$regex": "x"}})),
        (InvalidFilter, lambda: filled.similarity_search("a", filter=["n"])),
        (InvalidFilter, lambda: filled.delete(filter={"$or": []})),
        (InvalidArgument, lambda: filled.delete("a")),
        (InvalidArgument, lambda: filled.get_by_ids("a")),
        (InvalidArgument, lambda: filled.max_marginal_relevance_search("a", lambda_mult=1.5)),
        (InvalidArgument, lambda: filled.max_marginal_relevance_search("a", fetch_k=0)),
        (InvalidArgument, lambda: filled.max_marginal_relevance_search("a", k=-1)),
        (DimensionMismatch, lambda: filled.similarity_search_by_vector([1.0, 0.0])),
        (InvalidVector, lambda: filled.similarity_search_by_vector([[1.0, 0.0, 0.0]])),
        (InvalidVector, lambda: filled.similarity_search_by_vector("abc")),
        (InvalidVector, lambda: filled.max_marginal_relevance_search_by_vector([0.0, 0.0, 0.0])),
        (EmbedderError, lambda: TenantvecVectorStore(store, tenant="acme", embedding=WrongCountEmbeddings())
            .add_texts(["a", "b"])),
        (InvalidTenantId, lambda: TenantvecVectorStore(store, tenant="a/b", embedding=KeyedEmbeddings())),
        (DimensionMismatch, lambda: TenantvecVectorStore(store, tenant="acme", embedding=KeyedEmbeddings(), dim=4)),
    ]
    for expected, call in cases:
        with pytest.raises(expected):
            call()
    assert filled.tenant.count() == before
    assert [d.metadata["n"] for d in filled.get_by_ids(["a", "a2", "b", "c", "d"])] == [1, 2, 3, 4, 5]


def test_existing_tenant_must_be_cosine(store: tenantvec.Store, emb: KeyedEmbeddings) -> None:
    store.create_tenant("l2", dim=3, metric="l2")
    with pytest.raises(InvalidArgument, match="metric"):
        TenantvecVectorStore(store, tenant="l2", embedding=emb)


def test_self_referencing_filter_is_refused(vs: TenantvecVectorStore) -> None:
    loop: dict[str, Any] = {}
    loop["$not"] = loop
    with pytest.raises(InvalidFilter, match="nest deeper"):
        vs.similarity_search("a", filter=loop)


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import tempfile

    readme = (Path(tenantvec.__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### LangChain", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the example's mkdtemp() lands here
    exec(compile(code, "README.md (### LangChain)", "exec"), {"__name__": "readme_example"})
    assert capsys.readouterr().out.splitlines()[0] == "['mysql', 'support']"
