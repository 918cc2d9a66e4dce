"""Mem0 (``mem0ai``) on the ``tenantvec`` vector-store provider.

End to end through ``mem0.Memory`` (and ``AsyncMemory``) configured with the provider and
tenantvec's deterministic ``HashingEmbedder``: add (``infer=False``, so the LLM Mem0
insists on building is never called), search, get, update, history, delete, get_all,
delete_all, reset, and two users that never see each other. Then the provider alone: the
filter translation (with the ``contains``/``icontains`` post-filter), the id directory,
bound mode, collections, configuration.

Offline: mem0 is imported with its telemetry (PostHog) switched off and its home directory
in ``tmp_path``, and every network connection is refused and recorded while these tests
run; the module fails if one was attempted.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import socket
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tenantvec.embedders import HashingEmbedder
from tenantvec.errors import (
    DimensionMismatch,
    DuplicateId,
    EmbedderError,
    InvalidArgument,
    InvalidFilter,
    InvalidVector,
    MemoryNotFound,
    StoreClosed,
    TenantMismatch,
)

pytestmark = pytest.mark.skipif(importlib.util.find_spec("mem0") is None,
                                reason="the [mem0] extra is not installed (pip install 'tenantvec[mem0]')")

DIM = 64


@pytest.fixture(scope="module", autouse=True)
def tv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.ModuleType]:
    """``tenantvec.integrations.mem0``, imported (with mem0) offline: mem0's telemetry off
    (``MEM0_TELEMETRY`` is read once, at import; the module flags are forced off too in
    case another test imported mem0 first), its home (``MEM0_DIR``) in a temporary
    directory, and every DNS lookup and socket connection refused and recorded; at the end,
    none may have been attempted."""
    attempts: list[object] = []

    def refuse(what: object) -> None:
        attempts.append(what)
        raise OSError(f"network access in an offline test: {what!r}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEM0_TELEMETRY", "False")
        mp.setenv("MEM0_DIR", str(tmp_path_factory.mktemp("mem0-home")))
        mp.setattr(socket.socket, "connect", lambda _sock, address: refuse(address))
        mp.setattr(socket.socket, "connect_ex", lambda _sock, address: refuse(address))
        mp.setattr(socket, "getaddrinfo", lambda *args, **_kw: refuse(args))
        pytest.importorskip("mem0", reason="the [mem0] extra is not installed")
        for name in ("mem0.memory.telemetry", "mem0.memory.main"):
            mp.setattr(importlib.import_module(name), "MEM0_TELEMETRY", False)
        yield importlib.import_module("tenantvec.integrations.mem0")
    assert attempts == [], f"mem0 tried to reach the network: {attempts}"


# -- end to end through mem0.Memory --------------------------------------------------------
MakeMemory = Callable[..., Any]


@pytest.fixture
def make_memory(tv: types.ModuleType, tmp_path: Path) -> Iterator[MakeMemory]:
    """``make_memory(name, **provider_config)``: a ``mem0.Memory`` on the tenantvec store in
    ``tmp_path/store`` (shared by every memory of the test) with its own history database;
    closed (history and providers) at the end."""
    from mem0 import Memory

    made: list[Any] = []

    def make(name: str = "m", *, memory_class: Any = Memory, **provider_config: Any) -> Any:
        config = {
            "vector_store": {"provider": "tenantvec",
                             "config": {"path": str(tmp_path / "store"), "embedding_model_dims": DIM, **provider_config}},
            "embedder": tv.embedder_config(HashingEmbedder(dim=DIM)),
            # Mem0 builds an LLM client whatever the calls; with infer=False it is never used
            # (and the network is refused anyway).
            "llm": {"provider": "openai", "config": {"api_key": "never-used-offline"}},
            "history_db_path": str(tmp_path / f"{name}-history.db"),
        }
        memory = memory_class.from_config(config)
        made.append(memory)
        return memory

    yield make
    for memory in made:
        memory.close()
        for provider in (memory.vector_store, memory._entity_store):
            if provider is not None:
                provider.close()


def _ids(results: dict[str, Any]) -> list[str]:
    return [r["id"] for r in results["results"]]


def _add(memory: Any, text: str, **kwargs: Any) -> str:
    out = memory.add(text, infer=False, **kwargs)["results"]
    assert [r["event"] for r in out] == ["ADD"]
    return str(out[0]["id"])


def test_provider_is_registered_in_mem0s_own_registries(tv: types.ModuleType, tmp_path: Path) -> None:
    from mem0.utils.factory import VectorStoreFactory
    from mem0.vector_stores.configs import VectorStoreConfig
    from pydantic import ValidationError

    tv.register()  # idempotent
    assert VectorStoreFactory.provider_to_class["tenantvec"] == "tenantvec.integrations.mem0.TenantvecVectorStore"
    cfg = VectorStoreConfig(provider="tenantvec", config={"path": str(tmp_path), "embedding_model_dims": 8})
    assert isinstance(cfg.config, tv.TenantvecConfig)
    assert (cfg.config.collection_name, cfg.config.scope_fields) == ("mem0", ["user_id", "agent_id", "run_id"])
    with pytest.raises(ValidationError, match="nonsense"):
        VectorStoreConfig(provider="tenantvec", config={"path": str(tmp_path), "nonsense": 1})
    provider = VectorStoreFactory.create("tenantvec", cfg.config)
    assert isinstance(provider, tv.TenantvecVectorStore)
    provider.close()


def test_add_search_get_update_history_delete(make_memory: MakeMemory) -> None:
    m = make_memory()
    email = _add(m, "Alice prefers invoices by email", user_id="alice", metadata={"topic": "billing"})
    berlin = _add(m, "Alice works from the Berlin office", user_id="alice", metadata={"topic": "office"})

    found = m.search("invoices by email", filters={"user_id": "alice"})["results"]
    assert found[0]["id"] == email
    assert {r["id"] for r in found} <= {email, berlin}
    assert all(0.0 <= r["score"] <= 1.0 for r in found)
    assert (found[0]["metadata"], found[0]["user_id"]) == ({"topic": "billing"}, "alice")
    assert _ids(m.search("office", filters={"user_id": "alice", "topic": "office"})) == [berlin]

    got = m.get(email)
    assert (got["memory"], got["user_id"], got["metadata"]) == ("Alice prefers invoices by email", "alice",
                                                                {"topic": "billing"})
    m.update(email, text="Alice prefers invoices by fax")
    updated = m.get(email)
    assert updated["memory"] == "Alice prefers invoices by fax"
    assert updated["created_at"] == got["created_at"]
    assert updated["updated_at"] > got["updated_at"]
    assert updated["metadata"] == {"topic": "billing"}
    assert _ids(m.search("invoices by fax", filters={"user_id": "alice"}))[0] == email

    m.delete(email)
    assert m.get(email) is None
    assert [h["event"] for h in m.history(email)] == ["ADD", "UPDATE", "DELETE"]
    assert _ids(m.get_all(filters={"user_id": "alice"})) == [berlin]
    with pytest.raises(ValueError, match="not found"):
        m.delete(email)


def test_get_all_delete_all_and_reset(make_memory: MakeMemory) -> None:
    m = make_memory()
    alice = [_add(m, f"Alice note {i}", user_id="alice") for i in range(3)]
    bob = [_add(m, f"Bob note {i}", user_id="bob") for i in range(2)]
    assert _ids(m.get_all(filters={"user_id": "alice"})) == alice  # oldest first
    assert _ids(m.get_all(filters={"user_id": "alice"}, top_k=2)) == alice[:2]
    assert _ids(m.get_all(filters={"user_id": "bob"})) == bob

    m.delete_all(user_id="alice")
    assert m.get_all(filters={"user_id": "alice"})["results"] == []
    assert _ids(m.get_all(filters={"user_id": "bob"})) == bob
    assert all(m.get(i) is None for i in alice)

    m.reset()
    assert m.get_all(filters={"user_id": "bob"})["results"] == []
    assert m.get(bob[0]) is None
    assert m.vector_store.list_cols() == ["mem0"]
    assert _add(m, "After the reset", user_id="bob")  # the collection works again


def test_two_users_never_see_each_other(make_memory: MakeMemory) -> None:
    m = make_memory()
    alice = _add(m, "Alice prefers invoices by email", user_id="alice")
    bob = _add(m, "Bob prefers invoices by post", user_id="bob")
    agent = _add(m, "An agent called alice keeps notes", agent_id="alice")

    # The query is Alice's memory word for word: Bob's scope still returns only Bob's.
    assert _ids(m.search("Alice prefers invoices by email", filters={"user_id": "bob"})) == [bob]
    assert _ids(m.search("Bob prefers invoices by post", filters={"user_id": "alice"})) == [alice]
    assert _ids(m.get_all(filters={"user_id": "bob"})) == [bob]
    # Same id value, another scope field: another tenant.
    assert _ids(m.get_all(filters={"user_id": "alice"})) == [alice]
    assert _ids(m.get_all(filters={"agent_id": "alice"})) == [agent]

    store = m.vector_store.store
    assert store.tenants() == ["mem0", "mem0:agent_id:alice", "mem0:user_id:alice", "mem0:user_id:bob"]
    assert [r.id for r in store.tenant("mem0:user_id:alice").get()] == [alice]
    assert [r.id for r in store.tenant("mem0:user_id:bob").get()] == [bob]


def test_a_bound_memory_cannot_reach_another_user_even_by_id(make_memory: MakeMemory) -> None:
    alice_m = make_memory("alice", bind={"user_id": "alice"})
    bob_m = make_memory("bob", bind={"user_id": "bob"})
    alice = _add(alice_m, "Alice prefers invoices by email", user_id="alice")
    bob = _add(bob_m, "Bob prefers invoices by post", user_id="bob")

    assert bob_m.get(alice) is None
    with pytest.raises(ValueError, match="not found"):
        bob_m.update(alice, text="Alice wants no invoices")
    with pytest.raises(ValueError, match="not found"):
        bob_m.delete(alice)
    with pytest.raises(TenantMismatch):
        bob_m.search("invoices", filters={"user_id": "alice"})
    with pytest.raises(TenantMismatch):
        bob_m.get_all(filters={"user_id": "alice"})
    with pytest.raises(TenantMismatch):
        bob_m.add("Alice now wants invoices by post", user_id="alice", infer=False)
    with pytest.raises(TenantMismatch):
        bob_m.delete_all(user_id="alice")
    assert _ids(bob_m.search("Alice prefers invoices by email", filters={"user_id": "bob"})) == [bob]

    bob_m.reset()  # clears Bob's tenant only
    assert bob_m.get(bob) is None
    assert alice_m.get(alice)["memory"] == "Alice prefers invoices by email"
    assert _ids(alice_m.get_all(filters={"user_id": "alice"})) == [alice]


def test_mem0_filter_syntax_end_to_end(make_memory: MakeMemory) -> None:
    m = make_memory()
    email = _add(m, "Invoices go out by email", user_id="u", metadata={"topic": "billing", "priority": 3})
    post = _add(m, "Reminders go out by post", user_id="u", metadata={"topic": "billing", "priority": 1})
    office = _add(m, "The office is in Berlin", user_id="u", metadata={"topic": "office", "priority": 2})

    def search(**filters: Any) -> set[str]:
        return set(_ids(m.search("go out by email post office Berlin", filters={"user_id": "u", **filters})))

    assert search(priority={"gte": 2}) == {email, office}
    assert search(topic={"in": ["office", "hr"]}) == {office}
    assert search(OR=[{"priority": 1}, {"topic": "office"}]) == {post, office}
    assert search(NOT=[{"topic": "billing"}]) == {office}
    assert search(AND=[{"priority": {"gt": 1}}, {"topic": {"ne": "office"}}]) == {email}
    assert search(topic={"icontains": "BILL"}) == {email, post}
    assert search(topic="*") == {email, post, office}
    assert set(_ids(m.get_all(filters={"user_id": "u", "OR": [{"priority": 1}, {"priority": 2}]}))) == {post, office}


def test_async_memory(make_memory: MakeMemory) -> None:
    from mem0 import AsyncMemory

    am = make_memory("async", memory_class=AsyncMemory)

    async def run() -> tuple[str, list[str]]:
        added = await am.add("Carol prefers tea", user_id="carol", infer=False)
        found = await am.search("tea", filters={"user_id": "carol"})
        return added["results"][0]["id"], _ids(found)

    added, found = asyncio.run(run())
    assert found == [added]


# -- the provider alone --------------------------------------------------------------------
@pytest.fixture
def make_provider(tv: types.ModuleType, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``make_provider(**config)``: a provider on the store in ``tmp_path/store`` (4-dim
    cosine by default), closed at the end."""
    made: list[Any] = []

    def make(**config: Any) -> Any:
        provider = tv.TenantvecVectorStore(**{"path": tmp_path / "store", "embedding_model_dims": 4, **config})
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


def _unit(*xs: float) -> list[float]:
    v = np.asarray(xs, dtype=np.float64)
    return (v / np.linalg.norm(v)).tolist()  # type: ignore[no-any-return]


RECORDS = {
    "r1": {"user_id": "u", "kind": "fact", "n": 1, "title": "Invoice Policy", "tags": ["a", "b"],
           "created_at": "2024-01-01"},
    "r2": {"user_id": "u", "kind": "pref", "n": 5, "title": "invoice by email", "tags": ["b"],
           "created_at": "2024-06-01"},
    "r3": {"user_id": "u", "kind": "fact", "n": 10, "title": "Office in Berlin", "flag": True,
           "created_at": "2025-01-01"},
    "r4": {"user_id": "u", "n": "7", "title": "misc"},
}

FILTER_CASES = [
    ({"kind": "fact"}, {"r1", "r3"}),
    ({"kind": {"eq": "fact"}}, {"r1", "r3"}),
    ({"kind": {"$eq": "fact"}}, {"r1", "r3"}),
    ({"kind": {"ne": "fact"}}, {"r2", "r4"}),  # a record without the field matches ne
    ({"n": {"gt": 1}}, {"r2", "r3"}),  # "7" is a string: not in a numeric range
    ({"n": {"gte": 1, "lte": 5}}, {"r1", "r2"}),
    ({"n": {"lt": 5}}, {"r1"}),
    ({"n": 1}, {"r1"}),
    ({"flag": True}, {"r3"}),
    ({"n": True}, set()),  # True is not 1
    ({"kind": {"in": ["pref", "x"]}}, {"r2"}),
    ({"kind": ["pref", "x"]}, {"r2"}),  # a list means in
    ({"kind": {"nin": ["fact"]}}, {"r2", "r4"}),
    ({"kind": "*"}, {"r1", "r2", "r3"}),  # the field exists
    ({"title": {"contains": "nvoice"}}, {"r1", "r2"}),
    ({"title": {"contains": "invoice"}}, {"r2"}),  # case-sensitive
    ({"title": {"icontains": "INVOICE"}}, {"r1", "r2"}),
    ({"tags": {"contains": "a"}}, {"r1"}),  # an element of a list field
    ({"created_at": {"gte": "2024-06-01"}}, {"r2", "r3"}),  # a payload key tenantvec reserves
    ({"OR": [{"kind": "pref"}, {"n": 10}]}, {"r2", "r3"}),
    ({"$or": [{"kind": "pref"}, {"n": 10}]}, {"r2", "r3"}),
    ({"NOT": [{"kind": "fact"}]}, {"r2", "r4"}),
    ({"NOT": [{"kind": "fact"}, {"n": 5}]}, {"r4"}),  # neither
    ({"$not": {"kind": "fact"}}, {"r2", "r4"}),
    ({"AND": [{"n": {"gte": 1}}, {"n": {"lte": 5}}]}, {"r1", "r2"}),
    ({"NOT": [{"title": {"icontains": "invoice"}}]}, {"r3", "r4"}),
    ({"OR": [{"title": {"icontains": "berlin"}}, {"kind": "pref"}]}, {"r2", "r3"}),
    ({"kind": "fact", "title": {"icontains": "invoice"}}, {"r1"}),
    ({"NOT": [{"OR": [{"title": {"contains": "Policy"}}, {"tags": {"contains": "b"}}]}]}, {"r3", "r4"}),
]


@pytest.fixture
def filled(make_provider: Callable[..., Any]) -> Any:
    provider = make_provider()
    vectors = {"r1": _unit(1, 0, 0, 0), "r2": _unit(1, 1, 0, 0), "r3": _unit(0, 1, 1, 0), "r4": _unit(0, 0, 1, 1)}
    provider.insert([vectors[i] for i in RECORDS], payloads=list(RECORDS.values()), ids=list(RECORDS))
    return provider


@pytest.mark.parametrize(("filters", "expected"), FILTER_CASES, ids=[repr(f) for f, _ in FILTER_CASES])
def test_filter_operators(filled: Any, filters: dict[str, Any], expected: set[str]) -> None:
    filters = {"user_id": "u", **filters}
    assert {r.id for r in filled.list(filters=filters)[0]} == expected
    hits = filled.search("q", _unit(1, 1, 1, 1), top_k=10, filters=filters)
    assert {h.id for h in hits} == expected
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("filters", [
    {"n": {"regex": "x"}},
    {"n": {}},
    {"OR": {"n": 1}},
    {"OR": []},
    {"$where": "1"},
    {"title": {"contains": 5}},
    {"user_id": {"in": ["u", "v"]}},  # a scope field must name one tenant
    {"user_id": "*"},
    {"n": {"in": "not a list"}},  # rejected by the store's own filter check
])
def test_malformed_filters_raise_invalid_filter(filled: Any, filters: dict[str, Any]) -> None:
    with pytest.raises(InvalidFilter):
        filled.list(filters={"user_id": "u", **filters})
    with pytest.raises(InvalidFilter):
        filled.search("q", _unit(1, 0, 0, 0), filters={"user_id": "u", **filters})


def test_substring_post_filter_returns_the_true_top_k(tv: types.ModuleType, make_provider: Callable[..., Any]) -> None:
    provider = make_provider(embedding_model_dims=8)
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    marked = set(rng.choice(300, size=9, replace=False).tolist())
    titles = [f"item {i} {'NeeDle' if i in marked else 'hay'}" for i in range(300)]
    provider.insert(vectors.tolist(), payloads=[{"user_id": "u", "title": t} for t in titles],
                    ids=[f"i{i}" for i in range(300)])
    query = rng.normal(size=8)
    query /= np.linalg.norm(query)

    hits = provider.search("q", query.tolist(), top_k=5, filters={"user_id": "u", "title": {"icontains": "needle"}})
    exact = sorted(marked, key=lambda i: -float(vectors[i] @ query))[:5]
    assert [h.id for h in hits] == [f"i{i}" for i in exact]
    assert [h.score for h in hits] == pytest.approx([max(0.0, float(vectors[i] @ query)) for i in exact], abs=1e-5)

    tenant = provider.store.tenant("mem0:user_id:u")
    plan = tv._FilterPlan({"title": {"icontains": "needle"}})
    in_order = [f"i{i}" for i in sorted(marked)]
    assert [r.id for r in tv._matching(tenant, plan, None, page=7)] == in_order  # paged
    assert [r.id for r in tv._matching(tenant, plan, 4, page=7)] == in_order[:4]
    listed = provider.list(filters={"user_id": "u", "title": {"contains": "NeeDle"}}, top_k=3)[0]
    assert [r.id for r in listed] == in_order[:3]


@pytest.mark.parametrize(("metric", "score"), [
    ("cosine", lambda cos: max(0.0, cos)),
    ("ip", lambda cos: max(0.0, cos)),  # unit vectors: the dot product is the cosine
    ("l2", lambda cos: 1.0 / (1.0 + (2.0 - 2.0 * cos))),  # squared distance between unit vectors
])
def test_scores_are_similarities_in_0_1(make_provider: Callable[..., Any], metric: str,
                                        score: Callable[[float], float]) -> None:
    provider = make_provider(metric=metric)
    vectors = {"same": _unit(1, 0, 0, 0), "near": _unit(1, 1, 0, 0), "orthogonal": _unit(0, 1, 0, 0),
               "opposite": _unit(-1, 0, 0, 0)}
    provider.insert(list(vectors.values()), payloads=[{"user_id": "u"}] * 4, ids=list(vectors))
    hits = {h.id: h.score for h in provider.search("q", _unit(1, 0, 0, 0), top_k=4, filters={"user_id": "u"})}
    cosines = {"same": 1.0, "near": 2 ** -0.5, "orthogonal": 0.0, "opposite": -1.0}
    assert hits == pytest.approx({k: score(c) for k, c in cosines.items()}, abs=1e-5)
    assert all(0.0 <= s <= 1.0 for s in hits.values())


def test_search_and_list_check_their_arguments(filled: Any) -> None:
    with pytest.raises(InvalidVector):
        filled.search("q", [_unit(1, 0, 0, 0)] * 2, filters={"user_id": "u"})
    with pytest.raises(InvalidArgument):
        filled.search("q", _unit(1, 0, 0, 0), top_k=-1, filters={"user_id": "u"})
    with pytest.raises(InvalidArgument):
        filled.list(filters={"user_id": "u"}, top_k=True)
    assert filled.search("q", _unit(1, 0, 0, 0), top_k=0, filters={"user_id": "u"}) == []
    assert filled.search("q", _unit(1, 0, 0, 0), filters={"user_id": "nobody"}) == []
    assert filled.list(filters={"user_id": "nobody"}) == [[]]


def test_insert_checks_its_arguments(make_provider: Callable[..., Any]) -> None:
    provider = make_provider()
    v = _unit(1, 0, 0, 0)
    provider.insert([v, v])  # no ids, no payloads: new uuids, in the unscoped tenant
    generated = provider.list()[0]
    assert [(len(r.id), r.payload) for r in generated] == [(36, {}), (36, {})]
    with pytest.raises(InvalidArgument, match="2 vectors, 1 payloads and 2 ids"):
        provider.insert([v, v], payloads=[{"user_id": "u"}], ids=["a", "b"])
    with pytest.raises(InvalidArgument, match="must be a dict"):
        provider.insert([v], payloads=["not a dict"], ids=["a"])
    with pytest.raises(InvalidArgument, match="not a str"):
        provider.insert([v], payloads=[{1: "x"}], ids=["a"])
    assert provider.get("a") is None


def test_payloads_round_trip_exactly(make_provider: Callable[..., Any]) -> None:
    provider = make_provider()
    payload = {"user_id": "u", "data": "text", "created_at": "2024-01-01T00:00:00+00:00", "updated_at": "x",
               "": "empty key", "$dollar": 1, "~tilde": 2, "~~two": 3, "nested": {"a": [1, 2.5, None, True]}}
    provider.insert([_unit(1, 2, 3, 4)], payloads=[payload], ids=["p"])
    assert provider.get("p").payload == payload
    assert provider.list(filters={"user_id": "u"})[0][0].payload == payload
    assert provider.search("q", _unit(1, 2, 3, 4), filters={"user_id": "u"})[0].payload == payload
    assert provider.list(filters={"user_id": "u", "~tilde": 2})[0][0].id == "p"
    assert provider.store.tenant("mem0:user_id:u").get(ids=["p"])[0].document == "text"  # data is the document


def test_the_id_directory_never_lets_an_id_cross_tenants(make_provider: Callable[..., Any]) -> None:
    provider = make_provider()
    v = _unit(1, 0, 0, 0)
    provider.insert([v], payloads=[{"user_id": "alice", "data": "a"}], ids=["x"])
    with pytest.raises(TenantMismatch, match="another scope"):
        provider.insert([v, v], payloads=[{"user_id": "bob", "data": "b"}, {"user_id": "bob"}], ids=["new", "x"])
    assert provider.list(filters={"user_id": "bob"}) == [[]]  # nothing of the refused call was written
    assert provider.get("new") is None
    assert provider.get("x").payload == {"user_id": "alice", "data": "a"}

    provider.insert([v], payloads=[{"user_id": "alice", "data": "a2"}], ids=["x"])  # same tenant: replaced
    assert [r.payload["data"] for r in provider.list(filters={"user_id": "alice"})[0]] == ["a2"]
    with pytest.raises(TenantMismatch, match="cannot move"):
        provider.update("x", payload={"user_id": "bob", "data": "moved"})
    provider.update("x", vector=_unit(0, 1, 0, 0))  # the payload is kept
    assert provider.get("x").payload["data"] == "a2"
    assert provider.search("q", _unit(0, 1, 0, 0), filters={"user_id": "alice"})[0].score == pytest.approx(1.0)
    provider.update("x", payload={"user_id": "alice", "data": "a3"})  # the vector is kept
    assert provider.search("q", _unit(0, 1, 0, 0), filters={"user_id": "alice"})[0].payload["data"] == "a3"

    provider.delete("x")  # releases the id
    assert provider.get("x") is None
    provider.insert([v], payloads=[{"user_id": "bob"}], ids=["x"])
    assert provider.get("x").payload == {"user_id": "bob"}
    assert provider.list(filters={"user_id": "alice"}) == [[]]

    with pytest.raises(MemoryNotFound):
        provider.delete("never")
    with pytest.raises(MemoryNotFound):
        provider.update("never", payload={"user_id": "bob"})
    with pytest.raises(DuplicateId):
        provider.insert([v, v], payloads=[{"user_id": "carol"}] * 2, ids=["d", "d"])
    assert provider.get("d") is None


def test_a_failed_write_releases_its_claims(make_provider: Callable[..., Any]) -> None:
    provider = make_provider()
    with pytest.raises(DimensionMismatch):
        provider.insert([[1.0, 0.0]], payloads=[{"user_id": "alice"}], ids=["y"])
    with pytest.raises(InvalidArgument):  # msgpack cannot hold a set
        provider.insert([_unit(1, 0, 0, 0)], payloads=[{"user_id": "alice", "bad": {1}}], ids=["y"])
    provider.insert([_unit(1, 0, 0, 0)], payloads=[{"user_id": "bob"}], ids=["y"])  # the id is free
    assert provider.get("y").payload == {"user_id": "bob"}


def test_a_claim_without_a_record_reads_as_absent(make_provider: Callable[..., Any]) -> None:
    """What a crash between claiming an id and writing the record leaves behind."""
    provider = make_provider()
    provider.store.tenant("mem0").add([[1.0]], ids=["z"], metadata=[{"tenant": "mem0:user_id:carol"}])
    assert provider.get("z") is None
    with pytest.raises(TenantMismatch):  # claimed for carol: no other tenant may take it
        provider.insert([_unit(1, 0, 0, 0)], payloads=[{"user_id": "alice"}], ids=["z"])
    provider.insert([_unit(1, 0, 0, 0)], payloads=[{"user_id": "carol"}], ids=["z"])  # carol's may
    assert provider.get("z").payload == {"user_id": "carol"}

    provider.store.tenant("mem0").add([[1.0]], ids=["w"], metadata=[{"tenant": "mem0:user_id:carol"}])
    with pytest.raises(MemoryNotFound):
        provider.delete("w")  # nothing to delete, but the stray claim is removed
    assert provider.store.tenant("mem0").get(ids=["w"]) == []


def test_one_tenant_per_scope(make_provider: Callable[..., Any]) -> None:
    provider = make_provider()
    v = _unit(1, 0, 0, 0)
    provider.insert([v] * 5, ids=["u", "a", "both", "none", "odd"], payloads=[
        {"user_id": "x"}, {"agent_id": "x"}, {"user_id": "x", "agent_id": "y", "run_id": "z"}, {"data": "unscoped"},
        {"user_id": "org/alice smith%"},
    ])
    assert provider.store.tenants() == ["mem0", "mem0:_unscoped", "mem0:agent_id:x", "mem0:user_id:org%2Falice%20smith%25",
                                        "mem0:user_id:x"]
    assert {r.id for r in provider.list(filters={"user_id": "x"})[0]} == {"u", "both"}
    assert {r.id for r in provider.list(filters={"user_id": "x", "agent_id": "y"})[0]} == {"both"}
    assert {r.id for r in provider.list(filters={"agent_id": "x"})[0]} == {"a"}
    assert {r.id for r in provider.list(filters={"user_id": {"eq": "org/alice smith%"}})[0]} == {"odd"}
    assert {r.id for r in provider.list()[0]} == {"none"}  # no scope: the unscoped tenant

    by_agent = make_provider(collection_name="c2", scope_fields=["agent_id", "user_id"], unscoped_tenant="shared")
    by_agent.insert([v, v], ids=["both", "none"], payloads=[{"user_id": "x", "agent_id": "y"}, {}])
    assert [t for t in by_agent.store.tenants() if t.startswith("c2")] == ["c2", "c2:agent_id:y", "c2:shared"]
    with pytest.raises(InvalidFilter):
        provider.insert([v], payloads=[{"user_id": 7}])


def test_a_bound_provider_reads_and_writes_one_tenant(make_provider: Callable[..., Any]) -> None:
    routed = make_provider()
    v = _unit(1, 0, 0, 0)
    routed.insert([v, v, v], ids=["a1", "a2", "b1"], payloads=[{"user_id": "alice"}] * 2 + [{"user_id": "bob"}])
    alice = make_provider(bind={"user_id": "alice"})

    assert {r.id for r in alice.list()[0]} == {"a1", "a2"}  # no scope named: the bound one
    assert {h.id for h in alice.search("q", v, filters={"user_id": "alice"})} == {"a1", "a2"}
    assert alice.get("b1") is None
    with pytest.raises(TenantMismatch):
        alice.list(filters={"user_id": "bob"})
    with pytest.raises(TenantMismatch):
        alice.search("q", v, filters={"agent_id": "alice"})
    with pytest.raises(TenantMismatch):
        alice.insert([v], payloads=[{"user_id": "bob"}])
    with pytest.raises(TenantMismatch):
        alice.insert([v], payloads=[{}])  # would be unscoped
    with pytest.raises(MemoryNotFound):
        alice.update("b1", payload={"user_id": "bob", "data": "changed"})
    with pytest.raises(MemoryNotFound):
        alice.delete("b1")
    assert routed.get("b1").payload == {"user_id": "bob"}
    assert (alice.col_info()["count"], routed.col_info()["count"]) == (2, 3)

    alice.reset()  # the bound tenant and its ids only
    assert alice.list() == [[]]
    assert routed.get("a1") is None
    assert routed.get("b1").payload == {"user_id": "bob"}
    routed.insert([v], payloads=[{"user_id": "bob"}], ids=["a1"])  # alice's ids were released
    assert routed.get("a1").payload == {"user_id": "bob"}


def test_collections(make_provider: Callable[..., Any]) -> None:
    main = make_provider()
    entities = make_provider(collection_name="mem0_entities")
    v = _unit(1, 0, 0, 0)
    main.insert([v, v], ids=["m1", "m2"], payloads=[{"user_id": "a"}, {"user_id": "b"}])
    entities.insert([v], ids=["m1"], payloads=[{"user_id": "a"}])  # collections are separate id spaces
    assert main.list_cols() == ["mem0", "mem0_entities"]
    info = main.col_info()
    assert (info["name"], info["dim"], info["metric"], info["tenants"], info["count"]) == ("mem0", 4, "cosine", 2, 2)

    main.delete_col()
    assert main.list_cols() == ["mem0_entities"]
    assert entities.get("m1").payload == {"user_id": "a"}
    main.reset()
    assert main.list_cols() == ["mem0", "mem0_entities"]
    assert main.col_info()["count"] == 0
    main.create_col("other", 4, "cosine")
    assert "other" in main.list_cols()
    with pytest.raises(DimensionMismatch):
        main.create_col("mem0", 8, "cosine")
    with pytest.raises(InvalidArgument):
        main.create_col("mem0", 4, "l2")
    with pytest.raises(InvalidArgument):
        main.create_col("a:b", 4, "cosine")


@pytest.mark.parametrize("config", [
    {"collection_name": "a:b"},
    {"collection_name": ""},
    {"unscoped_tenant": "x y"},
    {"scope_fields": []},
    {"scope_fields": ["user_id", "user_id"]},
    {"bind": {"team": "x"}},
    {"bind": {"user_id": "x", "agent_id": "y"}},
    {"bind": {"user_id": ""}},
    {"metric": "manhattan"},
    {"embedding_model_dims": 0},
    {"host": "localhost"},
])
def test_config_validation(tv: types.ModuleType, tmp_path: Path, config: dict[str, Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        tv.TenantvecConfig(path=str(tmp_path), **config)


def test_providers_share_one_open_store_per_path(make_provider: Callable[..., Any]) -> None:
    first = make_provider()
    second = make_provider(collection_name="other")
    assert first.store is second.store
    first.close()
    first.close()  # idempotent
    second.insert([_unit(1, 0, 0, 0)], payloads=[{"user_id": "a"}], ids=["s"])  # still open
    store = second.store
    second.close()
    with pytest.raises(StoreClosed):
        store.tenants()
    third = make_provider(collection_name="other")  # opens it again
    assert third.get("s").payload == {"user_id": "a"}


class _QueryAwareEmbedder:
    """Embeds queries and documents differently, to see which one the adapter calls."""

    name = "query-aware"
    dim = 2

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.tile(np.asarray([1.0, 0.0], dtype=np.float32), (len(texts), 1))

    def embed_query(self, _text: str) -> np.ndarray:
        return np.asarray([0.0, 1.0], dtype=np.float32)


def test_the_embedder_adapter(tv: types.ModuleType) -> None:
    from mem0.utils.factory import EmbedderFactory

    config = tv.embedder_config(_QueryAwareEmbedder())
    assert config.provider == "tenantvec"
    embedding = EmbedderFactory.create(config.provider, config.config, None)
    assert isinstance(embedding, tv.TenantvecEmbedding)
    assert embedding.config.embedding_dims == 2
    assert embedding.embed("x", "add") == [1.0, 0.0]
    assert embedding.embed("x", "search") == [0.0, 1.0]
    assert embedding.embed_batch(["x", "y"]) == [[1.0, 0.0], [1.0, 0.0]]
    assert embedding.embed_batch(["x"], "search") == [[0.0, 1.0]]
    with pytest.raises(EmbedderError):
        tv.embedder_config(object())
    with pytest.raises(DimensionMismatch):
        EmbedderFactory.create("tenantvec", {"model": _QueryAwareEmbedder(), "embedding_dims": 3}, None)


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's Mem0 example runs and prints what its comments say."""
    import tempfile

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    code = readme.split("### Mem0", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the example's mkdtemp() lands here
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    try:
        exec(compile(code, "README.md (### Mem0)", "exec"), namespace)
    finally:
        for memory in (namespace.get("m"), namespace.get("bob")):
            if memory is not None:
                memory.close()
                memory.vector_store.close()
    assert capsys.readouterr().out.splitlines() == [
        "['Alice wants invoices by email']",
        "['mem0', 'mem0:user_id:alice', 'mem0:user_id:bob']",
        "None",
    ]
