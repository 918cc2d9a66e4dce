"""TenantvecStore / AsyncTenantvecStore (tenantvec.integrations.langgraph) beyond LangGraph's
own suite (tests/test_upstream_langgraph.py): tenant routing and isolation, namespace
fuzzing against a model, scores, filters, TTL with an injected clock, the async store."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("langgraph.store.base", reason="needs the [langgraph] extra (langgraph-checkpoint)")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.base import GetOp, InvalidNamespaceError, ListNamespacesOp, PutOp, SearchOp

import tenantvec
from tenantvec.embedders import HashingEmbedder
from tenantvec.errors import DimensionMismatch, InvalidArgument, InvalidTenantId, TenantVecError
from tenantvec.integrations.langgraph import AsyncTenantvecStore, TenantvecStore

DIM = 32
_EMB = HashingEmbedder(dim=DIM)


def embed(texts: Sequence[str]) -> list[list[float]]:
    return _EMB.embed_documents(list(texts)).tolist()


async def aembed(texts: Sequence[str]) -> list[list[float]]:
    return embed(texts)


INDEX: Any = {"dims": DIM, "embed": embed, "fields": ["text"]}


class Clock:
    """A settable clock (seconds since the epoch)."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, minutes: float) -> None:
        self.t += minutes * 60.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tenantvec.Store]:
    with tenantvec.Store(tmp_path / "store", dim=DIM, durability="process") as s:
        yield s


def keys(items: Sequence[Any]) -> list[tuple[tuple[str, ...], str]]:
    return [(it.namespace, it.key) for it in items]


# --------------------------------------------------------------------------- basics
def test_put_get_update_keeps_created_at_and_delete(store: tenantvec.Store) -> None:
    clock = Clock()
    lg = TenantvecStore(store, tenant="acme", clock=clock)
    lg.put(("users", "u1"), "prefs", {"theme": "dark", "nested": {"a": [1, 2]}})
    first = lg.get(("users", "u1"), "prefs")
    assert first is not None
    assert first.value == {"theme": "dark", "nested": {"a": [1, 2]}}
    clock.advance(5)
    lg.put(("users", "u1"), "prefs", {"theme": "light"})
    second = lg.get(("users", "u1"), "prefs")
    assert second is not None
    assert second.value == {"theme": "light"}
    assert second.created_at == first.created_at
    assert (second.updated_at - first.updated_at).total_seconds() == pytest.approx(300)
    lg.delete(("users", "u1"), "prefs")
    assert lg.get(("users", "u1"), "prefs") is None
    assert lg.list_namespaces() == []
    assert store.tenant("acme").count() == 0  # the namespace's directory record went with its last item


def test_lists_are_accepted_as_namespaces(store: tenantvec.Store) -> None:
    lg = TenantvecStore(store, tenant="acme")
    lg.batch([PutOp(["a", "b"], "k", {"v": 1})])  # type: ignore[arg-type]
    got = lg.batch([GetOp(["a", "b"], "k"), SearchOp(["a"])])  # type: ignore[arg-type]
    assert got[0] is not None
    assert got[0].namespace == ("a", "b")
    assert keys(got[1]) == [(("a", "b"), "k")]


def test_prefixes_match_whole_labels(store: tenantvec.Store) -> None:
    lg = TenantvecStore(store, tenant="acme")
    for ns in [("foo",), ("foobar",), ("foo", "bar"), ("fo", "o"), ("foo%",), ("f_o",)]:
        lg.put(ns, "k", {"ns": list(ns)})
    assert sorted(ns for ns, _ in keys(lg.search(("foo",)))) == [("foo",), ("foo", "bar")]
    assert sorted(lg.list_namespaces(prefix=("foo",))) == [("foo",), ("foo", "bar")]
    assert keys(lg.search(("f_o",))) == [(("f_o",), "k")]
    assert lg.list_namespaces(prefix=("fo",)) == [("fo", "o")]
    assert lg.list_namespaces(suffix=("o",)) == [("fo", "o")]


def test_batch_validates_every_namespace_before_running_any_op(store: tenantvec.Store) -> None:
    lg = TenantvecStore(store, tenant="acme")
    with pytest.raises(InvalidNamespaceError):
        lg.batch([PutOp(("ok",), "k", {"v": 1}), GetOp(("bad.label",), "k")])
    with pytest.raises(InvalidNamespaceError):
        lg.batch([PutOp(("ok",), "k", {"v": 1}), PutOp((), "k", {"v": 1})])
    with pytest.raises(InvalidArgument, match="limit"):
        lg.batch([PutOp(("ok",), "k", {"v": 1}), SearchOp(("ok",), limit=-1)])
    assert lg.get(("ok",), "k") is None


def test_reads_see_the_state_before_the_batch_and_the_last_put_wins(store: tenantvec.Store) -> None:
    lg = TenantvecStore(store, tenant="acme")
    out = lg.batch([PutOp(("n",), "k", {"v": 1}), GetOp(("n",), "k"), PutOp(("n",), "k", {"v": 2}),
                    ListNamespacesOp()])
    assert out == [None, None, None, []]
    item = lg.get(("n",), "k")
    assert item is not None
    assert item.value == {"v": 2}


# --------------------------------------------------------------------------- search and scores
def test_scores_are_cosine_similarity_max_over_vectors_and_unscored_come_last(store: tenantvec.Store) -> None:
    lg = TenantvecStore(store, tenant="acme", index=INDEX)
    lg.put(("d",), "one", {"text": "red apple pie"})
    lg.put(("d",), "many", {"text": "zzz", "notes": ["blue car", "red apple pie"]}, index=["text", "notes[*]"])
    lg.put(("d",), "plain", {"text": "red apple pie"}, index=False)
    lg.put(("d",), "other", {"text": "green house"})
    res = lg.search(("d",), query="red apple pie", limit=10)
    assert [r.key for r in res][-1] == "plain"
    assert res[-1].score is None
    q = np.asarray(embed(["red apple pie"])[0])
    by_key = {r.key: r.score for r in res}
    assert by_key["one"] == pytest.approx(1.0, abs=1e-5)
    assert by_key["many"] == pytest.approx(1.0, abs=1e-5)  # its best vector, not the first
    other = np.asarray(embed(["green house"])[0])
    assert by_key["other"] == pytest.approx(float(q @ other / np.linalg.norm(q) / np.linalg.norm(other)), abs=1e-5)
    # pages of the ranking (scored first, then unscored) concatenate to the whole ranking
    pages = [r.key for off in range(0, 4) for r in lg.search(("d",), query="red apple pie", limit=1, offset=off)]
    assert pages == [r.key for r in res]
    # without a query: insertion order, no scores
    assert all(r.score is None for r in lg.search(("d",)))


def test_reindexing_an_item_with_fewer_vectors_removes_the_old_ones(store: tenantvec.Store) -> None:
    lg = TenantvecStore(store, tenant="acme", index={**INDEX, "fields": ["notes[*]"]})
    lg.put(("d",), "k", {"notes": ["alpha beta", "gamma delta", "epsilon"]})
    assert store.tenant("acme").count() == 4  # three vectors + the namespace directory
    lg.put(("d",), "k", {"notes": ["gamma delta"]})
    assert store.tenant("acme").count() == 2
    assert lg.search(("d",), query="alpha beta")[0].score == pytest.approx(
        float(np.dot(embed(["alpha beta"])[0], embed(["gamma delta"])[0])), abs=1e-5)


def test_filters(store: tenantvec.Store) -> None:
    lg = TenantvecStore(store, tenant="acme", index=INDEX)
    docs = {
        "a": {"text": "x", "color": "red", "n": 1, "tags": ["t1", "t2"], "meta": {"lang": "en"}},
        "b": {"text": "y", "color": "blue", "n": 5, "tags": ["t2"], "meta": {"lang": "fr"}},
        "c": {"text": "z", "color": "red", "n": 9, "flag": True},
    }
    for k, v in docs.items():
        lg.put(("f",), k, v)

    def found(flt: dict[str, Any], query: str | None = None) -> list[str]:
        return sorted(r.key for r in lg.search(("f",), filter=flt, query=query))

    assert found({"color": "red"}) == ["a", "c"]
    assert found({"color": {"$ne": "red"}}) == ["b"]
    assert found({"n": {"$gt": 1, "$lte": 9}}) == ["b", "c"]
    assert found({"n": {"$gte": 5}, "color": "red"}, query="x") == ["c"]
    assert found({"meta": {"lang": "en"}}) == ["a"]  # nested-object equality
    assert found({"tags": ["t1", "t2"]}) == ["a"]  # list equality
    assert found({"flag": None}) == ["a", "b"]  # a missing field equals None, as in LangGraph
    assert found({"n": {"$in": [1, 9]}}) == ["a", "c"]  # tenantvec's richer operators pass through
    assert found({"tags": {"$contains": "t2"}}) == ["a", "b"]
    assert found({"$or": [{"color": "blue"}, {"n": 9}]}) == ["b", "c"]
    assert found({"flag": True}, query="z") == ["c"]
    assert found({"flag": 1}) == []  # JSON types: true is not 1
    assert [r.key for r in lg.search(("f",), filter={"color": "red"}, limit=1, offset=1)] == ["c"]


def test_zero_embedding_is_left_unscored(store: tenantvec.Store) -> None:
    def zero_for_empty(texts: Sequence[str]) -> list[list[float]]:
        return [[0.0] * DIM if not t else embed([t])[0] for t in texts]

    lg = TenantvecStore(store, tenant="acme", index={**INDEX, "embed": zero_for_empty})
    lg.put(("d",), "empty", {"text": ""})
    lg.put(("d",), "full", {"text": "hello"})
    assert [(r.key, r.score is None) for r in lg.search(("d",), query="hello")] == [("full", False), ("empty", True)]


# --------------------------------------------------------------------------- tenants
def test_bound_mode_keeps_every_namespace_in_its_tenant(store: tenantvec.Store) -> None:
    lg = TenantvecStore(store, tenant="acme")
    lg.put(("globex", "memories"), "k", {"v": 1})
    assert store.tenants() == ["acme"]
    assert lg.list_namespaces() == [("globex", "memories")]
    assert TenantvecStore(store, tenant="globex").list_namespaces() == []


def test_routed_mode_puts_each_namespace_in_its_first_labels_tenant(store: tenantvec.Store) -> None:
    lg = TenantvecStore(store, index=INDEX)
    lg.put(("acme", "mem"), "k", {"text": "acme secret"})
    lg.put(("globex", "mem"), "k", {"text": "globex secret"})
    lg.put(("globex", "acme"), "k2", {"text": "acme look-alike"})
    assert store.tenants() == ["acme", "globex"]
    assert [r.namespace for r in lg.search(("acme",), query="acme secret")] == [("acme", "mem")]
    assert lg.list_namespaces(prefix=("acme",)) == [("acme", "mem")]
    assert lg.get(("acme", "mem"), "k") is not None
    assert lg.get(("nobody", "mem"), "k") is None
    assert store.tenants() == ["acme", "globex"]  # reads never create tenants
    for call in (lambda: lg.search(()), lambda: lg.list_namespaces(), lambda: lg.list_namespaces(prefix=("*", "mem")),
                 lambda: lg.list_namespaces(suffix=("mem",))):
        with pytest.raises(InvalidArgument, match="does not determine one tenant"):
            call()


def test_cross_tenant_fans_out_and_merges(store: tenantvec.Store) -> None:
    lg = TenantvecStore(store, cross_tenant=True, index=INDEX)
    lg.put(("acme", "mem"), "a", {"text": "red apple"})
    lg.put(("globex", "mem"), "g", {"text": "red apple pie"})
    lg.put(("initech", "mem"), "i", {"text": "blue car"}, index=False)
    res = lg.search((), query="red apple")
    assert [r.key for r in res] == ["a", "g", "i"]
    assert res[-1].score is None
    assert [r.key for r in lg.search((), query="red apple", limit=1, offset=1)] == ["g"]
    assert lg.list_namespaces(suffix=("mem",)) == [("acme", "mem"), ("globex", "mem"), ("initech", "mem")]
    assert lg.list_namespaces(max_depth=1, limit=2) == [("acme",), ("globex",)]


def test_custom_tenant_from_and_its_errors(store: tenantvec.Store) -> None:
    lg = TenantvecStore(store, tenant_from=lambda ns: ns[1] if len(ns) > 1 else None)
    lg.put(("users", "acme", "prefs"), "k", {"v": 1})
    lg.put(("users", "globex", "prefs"), "k", {"v": 2})
    assert store.tenants() == ["acme", "globex"]
    assert [r.value for r in lg.search(("users", "acme"))] == [{"v": 1}]
    with pytest.raises(InvalidArgument, match="does not determine one tenant"):
        lg.search(("users",))
    with pytest.raises(InvalidArgument, match="named no tenant"):
        lg.put(("users",), "k", {"v": 3})
    with pytest.raises(InvalidTenantId):
        lg.batch([GetOp(("users", "acme", "prefs"), "k"), PutOp(("users", "bad/id"), "k", {"v": 1})])
    with pytest.raises(InvalidArgument, match="not both"):
        TenantvecStore(store, tenant="acme", tenant_from=lambda _ns: "acme")


def test_a_tenant_of_another_dimension_is_refused(store: tenantvec.Store) -> None:
    store.tenant("acme", create=True, dim=8)
    with pytest.raises(DimensionMismatch):
        TenantvecStore(store, tenant="acme", index=INDEX)


# --------------------------------------------------------------------------- namespace fuzzing
LABEL = st.text(st.sampled_from("ab%_*/ \x01é-"), min_size=1, max_size=3)
FIRST = st.sampled_from(["t1", "t2", "t3"])


def _check_against_model(lg: TenantvecStore, model: dict[tuple[tuple[str, ...], str], int],
                         probes: list[tuple[str, ...]]) -> None:
    for (ns, key), v in model.items():
        got = lg.get(ns, key)
        assert got is not None
        assert got.value == {"v": v}
        assert got.namespace == ns
    namespaces = {ns for ns, _ in model}
    for prefix in probes:
        want = sorted((ns, key) for ns, key in model if ns[:len(prefix)] == prefix)
        assert sorted(keys(lg.search(prefix, limit=1000))) == want, prefix
        listed = sorted(ns for ns in namespaces if len(ns) >= len(prefix)
                        and all(p in ("*", label) for p, label in zip(prefix, ns)))  # "*" is a wildcard here
        assert lg.list_namespaces(prefix=prefix, limit=1000) == listed, prefix


def _fuzz(lg: TenantvecStore, ops: list[tuple[tuple[str, ...], str, int | None]]) -> None:
    model: dict[tuple[tuple[str, ...], str], int] = {}
    for i, (ns, key, v) in enumerate(ops):
        if v is None:
            lg.delete(ns, key)
            model.pop((ns, key), None)
        else:
            lg.put(ns, key, {"v": v + i})
            model[(ns, key)] = v + i
    probes = {ns[:d] for ns, _, _ in ops for d in range(1, len(ns) + 1)}
    probes |= {(*p[:-1], p[-1] + "a") for p in probes} | {(*p[:-1], p[-1][:-1]) for p in probes if len(p[-1]) > 1}
    _check_against_model(lg, model, sorted(probes))
    for ns, key, _ in ops:  # absent items stay absent, also under near-miss namespaces
        if (ns, key) not in model:
            assert lg.get(ns, key) is None


OPS = st.lists(st.tuples(st.lists(LABEL, min_size=1, max_size=3).map(tuple), st.sampled_from(["k", "K", "k.1", ""]),
                         st.none() | st.integers(0, 9)), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_fuzz_bound_namespaces_never_collide_or_leak(tmp_path: Path, ops: list[Any]) -> None:
    with tenantvec.Store(tmp_path / "fz", durability="process", dim=4) as s:
        tid = f"t{len(s.tenants())}"
        _fuzz(TenantvecStore(s, tenant=tid), ops)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, firsts=st.lists(FIRST, min_size=12, max_size=12))
def test_fuzz_routed_namespaces_stay_in_their_tenants(tmp_path: Path, ops: list[Any], firsts: list[str]) -> None:
    routed = [((f, *ns), key, v) for f, (ns, key, v) in zip(firsts, ops)]
    with tenantvec.Store(tmp_path / "fzr", durability="process", dim=4) as s:
        for tid in s.tenants():
            s.drop_tenant(tid)
        _fuzz(TenantvecStore(s), routed)
        for tid in s.tenants():  # every record of a tenant's shard belongs to a namespace routed there
            assert all(r.metadata["lg.ns"][0] == tid for r in s.tenant(tid).get(where={}))


# --------------------------------------------------------------------------- TTL
def test_ttl_expiry_refresh_on_read_and_sweep(store: tenantvec.Store) -> None:
    clock = Clock()
    lg = TenantvecStore(store, tenant="acme", index=INDEX, ttl={"default_ttl": 10, "refresh_on_read": True},
                        clock=clock)
    lg.put(("s",), "short", {"text": "a"}, ttl=1)
    lg.put(("s",), "default", {"text": "b"})
    lg.put(("s",), "forever", {"text": "c"}, ttl=None)
    lg.put(("t",), "gone", {"text": "d"}, ttl=1)
    clock.advance(0.75)
    assert lg.get(("s",), "short") is not None  # refreshes: now expires at 1.75
    assert lg.get(("t",), "gone", refresh_ttl=False) is not None  # does not refresh
    clock.advance(0.5)  # 1.25
    assert lg.get(("s",), "short", refresh_ttl=False) is not None
    assert lg.get(("t",), "gone") is None
    assert sorted(r.key for r in lg.search(("s",), query="a")) == ["default", "forever", "short"]  # refreshes to 2.25
    clock.advance(1.5)  # 2.75
    assert sorted(r.key for r in lg.search(("s",), refresh_ttl=False)) == ["default", "forever"]
    assert lg.list_namespaces() == [("s",), ("t",)]  # until the sweep
    lg.put(("s",), "short", {"text": "a"}, ttl=1)  # expired but not swept: this is a new item
    again = lg.get(("s",), "short")
    assert again is not None
    assert again.created_at.timestamp() == pytest.approx(clock.t)
    assert lg.sweep_ttl() == 1
    assert lg.list_namespaces() == [("s",)]
    clock.advance(20)
    assert lg.sweep_ttl() == 2
    assert [r.key for r in lg.search(("s",))] == ["forever"]
    assert lg.sweep_ttl() == 0


def test_ttl_sweeper_starts_sweeps_and_stops(store: tenantvec.Store) -> None:
    lg = TenantvecStore(store, tenant="acme", ttl={"default_ttl": 1, "sweep_interval_minutes": 1})
    swept = threading.Event()

    def sweep() -> int:
        swept.set()
        return 0

    lg.sweep_ttl = sweep  # type: ignore[method-assign]
    done = lg.start_ttl_sweeper(sweep_interval_minutes=1e-4)
    assert swept.wait(30)
    assert lg.stop_ttl_sweeper(timeout=30)
    assert done.result(timeout=30) is None
    assert TenantvecStore(store, tenant="acme").start_ttl_sweeper().done()  # no TTL config: nothing to run


# --------------------------------------------------------------------------- async
def test_async_store_batches_same_tick_calls_and_guards_its_loop(store: tenantvec.Store) -> None:
    calls: list[int] = []

    async def main() -> None:
        lg = AsyncTenantvecStore(store, tenant="acme", index={**INDEX, "embed": aembed})
        inner_abatch = lg._inner.abatch

        async def counting(ops: Any) -> Any:
            ops = list(ops)
            calls.append(len(ops))
            return await inner_abatch(ops)

        lg._inner.abatch = counting  # type: ignore[method-assign]
        await asyncio.gather(*(lg.aput(("d",), f"k{i}", {"text": f"word{i}"}) for i in range(5)))
        assert calls == [5]
        res = await lg.asearch(("d",), query="word3", limit=1)
        assert [r.key for r in res] == ["k3"]
        with pytest.raises(asyncio.InvalidStateError):
            lg.get(("d",), "k1")
        item = await asyncio.to_thread(lg.get, ("d",), "k1")  # sync calls from another thread work
        assert item is not None
        assert item.value == {"text": "word1"}
        lg.close()

    asyncio.run(main())


def test_plain_store_built_in_a_running_loop_works_synchronously(store: tenantvec.Store) -> None:
    async def main() -> None:
        lg = TenantvecStore(store, tenant="acme", index=INDEX)
        lg.put(("d",), "k", {"text": "hello"})
        assert [r.key for r in lg.search(("d",), query="hello")] == ["k"]
        assert [r.key for r in await lg.asearch(("d",), query="hello")] == ["k"]

    asyncio.run(main())


def test_owned_store_is_closed_by_close(tmp_path: Path) -> None:
    with TenantvecStore(tmp_path / "own", tenant="acme") as lg:
        lg.put(("a",), "k", {"v": 1})
        inner = lg.store
    with pytest.raises(tenantvec.StoreClosed):
        inner.tenants()
    with TenantvecStore(tmp_path / "own", tenant="acme") as again:  # the lock was released
        got = again.get(("a",), "k")
        assert got is not None
        assert got.value == {"v": 1}


def test_readme_example_runs_and_prints_what_it_says(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(tenantvec.__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### LangGraph\n", 1)[1].split("\n### ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md (### LangGraph)", "exec"), {"__name__": "readme_example"})
    printed = capsys.readouterr().out.splitlines()
    promised = [line.split("# ", 1)[1].split(":")[0] for line in code.splitlines() if line.startswith("    print(")]
    assert printed == promised


def test_a_hash_collision_never_serves_or_overwrites_another_item(store: tenantvec.Store,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from tenantvec.integrations.langgraph import _codec

    monkeypatch.setattr(_codec, "item_digest", lambda _ns, _key: b"\0" * 16)  # every item on one record id
    lg = TenantvecStore(store, tenant="acme")
    lg.put(("a",), "k1", {"v": 1})
    assert lg.get(("a",), "k2") is None
    assert lg.get(("b",), "k1") is None
    with pytest.raises(TenantVecError, match="hashes like"):
        lg.put(("a",), "k2", {"v": 2})
    first = lg.get(("a",), "k1")
    assert first is not None
    assert first.value == {"v": 1}
