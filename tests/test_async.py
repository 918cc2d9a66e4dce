"""The async twins of ``Tenant`` and ``TenantMemory`` (``aadd``, ``arecall``, ...).

Each twin must return what its sync call returns, run that call off the event loop's
thread, raise the very ``TenantVecError`` the sync call raises, and stay correct when many
twins run at once across tenants. The twin list itself is pinned: every public call has
one, with the sync call's signature, except the hooks named in ``NOT_TWINNED``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from tenantvec import Store, Tenant
from tenantvec.embedders import HashingEmbedder
from tenantvec.errors import (
    DimensionMismatch,
    DuplicateId,
    InvalidArgument,
    InvalidFilter,
    MemoryNotFound,
    SessionNotFound,
    TenantNotFound,
    TenantVecError,
)
from tenantvec.memory import Memory, TenantMemory

DIM = 16
T0 = 1_700_000_000.0
STORE_OPTIONS: dict[str, Any] = {"durability": "process", "flush_interval": 0}
R = TypeVar("R")
OffLoop = Callable[[Awaitable[Any]], Awaitable[Any]]

# Calls without a twin: context managers for blocks of sync calls, the working-memory
# hooks (microseconds; the memory layer's plumbing) and pure computations.
NOT_TWINNED = {
    Tenant: {"transaction", "reading", "wm_write", "wm_update", "wm_read", "wm_get", "wm_items"},
    TenantMemory: {"recall_filter"},
}


def vecs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "s", dim=DIM, **STORE_OPTIONS) as s:
        yield s


@pytest.fixture
def mem(store: Store) -> Iterator[Memory]:
    with Memory(store, embedder=HashingEmbedder(dim=DIM), clock=lambda: T0) as m:
        yield m


@pytest.fixture
def off_loop(monkeypatch: pytest.MonkeyPatch) -> OffLoop:
    """``await off_loop(twin(...))`` awaits a twin and checks that every tenant call it made
    (``Tenant._call`` pins the shard for each) ran on a thread other than the loop's."""
    threads: list[int] = []
    call = Tenant._call

    def recording(self: Tenant, **kw: Any) -> Any:
        threads.append(threading.get_ident())
        return call(self, **kw)

    monkeypatch.setattr(Tenant, "_call", recording)

    async def check(aw: Awaitable[R]) -> R:
        threads.clear()
        out = await aw
        assert threads
        assert threading.get_ident() not in threads
        return out

    return check


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


def public_calls(cls: type) -> set[str]:
    return {name for name, v in vars(cls).items()
            if not name.startswith("_") and inspect.isfunction(v) and not inspect.iscoroutinefunction(v)}


@pytest.mark.parametrize("cls", [Tenant, TenantMemory])
def test_every_call_has_its_twin(cls: type):
    calls = public_calls(cls) - NOT_TWINNED[cls]
    twins = {name for name, v in vars(cls).items() if inspect.iscoroutinefunction(v)}
    assert twins == {f"a{name}" for name in calls}
    for name in calls:
        sync, twin = getattr(cls, name), getattr(cls, f"a{name}")
        assert inspect.iscoroutinefunction(twin), name
        assert inspect.signature(twin).parameters == inspect.signature(sync).parameters, name
        assert twin.__name__ == f"a{name}"
        assert twin.__qualname__ == f"{cls.__name__}.a{name}"
        assert f":meth:`{cls.__name__}.{name}`" in twin.__doc__


def test_tenant_twins_return_what_the_sync_calls_return(store: Store, off_loop: OffLoop):
    a, b = store.tenant("a", create=True), store.tenant("b", create=True)
    v = vecs(6, 1)
    ids = [f"r{i}" for i in range(6)]
    md = [{"n": i, "even": i % 2 == 0} for i in range(6)]
    docs = [f"doc {i}" for i in range(6)]
    up = {"ids": ids[:2], "metadata": md[:2]}

    async def twins() -> None:
        o = off_loop
        assert await o(a.aadd(v, ids=ids, documents=docs, metadata=md)) == b.add(v, ids=ids, documents=docs, metadata=md)
        assert await o(a.aupsert(v[:2] * 2, **up)) == b.upsert(v[:2] * 2, **up)
        assert await o(a.acount()) == a.count() == 6
        assert await o(a.acount({"even": True})) == a.count({"even": True}) == 3
        assert await o(a.aquery(v[3], k=3)) == a.query(v[3], k=3)
        assert await o(a.aquery(v[:2], 2, {"n": {"$gte": 2}})) == a.query(v[:2], 2, {"n": {"$gte": 2}})
        assert await o(a.aquery(v[0], k=2, explain=True)) == a.query(v[0], k=2, explain=True)
        got = await o(a.aget(where={"even": False}, limit=2, offset=1, include_vectors=True))
        want = a.get(where={"even": False}, limit=2, offset=1, include_vectors=True)
        assert [(r.id, r.metadata, r.document) for r in got] == [(r.id, r.metadata, r.document) for r in want]
        assert all(np.array_equal(g.vector, w.vector) for g, w in zip(got, want))
        assert await o(a.adelete(ids=["r0", "nope"])) == b.delete(ids=["r0", "nope"]) == 1
        assert await o(a.ainfo()) == a.info()
        assert await o(a.aflush()) == b.flush()  # same history, same answer
        assert await o(a.aflush()) is a.flush() is False  # nothing left to write
        report = await o(a.acompact())
        assert (report.tenant, report.count, report.dry_run) == ("a", 5, False)

    asyncio.run(twins())
    assert a.count() == b.count() == 5


def test_memory_twins_return_what_the_sync_calls_return(mem: Memory, off_loop: OffLoop):
    tm = mem.tenant("acme", create=True)
    embedded: list[int] = []

    class Recording(HashingEmbedder):
        def _embed(self, texts: list[str]) -> np.ndarray:
            embedded.append(threading.get_ident())
            return super()._embed(texts)

    async def twins() -> None:
        o = off_loop
        m = await o(tm.aremember("Acme bills through PostgreSQL", source="user", metadata={"topic": "billing"}))
        assert await o(tm.aget(m.id)) == tm.get(m.id) == m
        many = await o(tm.aremember_many([{"text": "Acme ships on Fridays"}, {"text": "Acme likes email"}]))
        assert [tm.get(h.id) for h in many] == many
        assert await o(tm.acount()) == tm.count() == 3
        assert await o(tm.arecall("billing database", k=2)) == tm.recall("billing database", k=2)
        new = await o(tm.asupersede(m.id, "Acme bills through MySQL"))
        assert new.supersedes == m.id
        assert await o(tm.ahistory(m.id)) == tm.history(new.id) == [tm.get(m.id), tm.get(new.id)]
        s = await o(tm.asession("sess-1", ttl=60))
        s.note("Prefers invoices by email", kind="procedural", source="user")
        assert await o(tm.asessions()) == tm.sessions()
        report = await o(tm.aconsolidate("sess-1"))
        assert report.added
        assert not report.replayed
        assert dataclasses.replace(report, replayed=True) == tm.consolidate("sess-1")  # a retry replays it
        assert await o(tm.aforget(ids=[many[0].id], reason="user request")) == 1
        assert await o(tm.aaudit(ops=["forget"])) == tm.audit(ops=["forget"])
        assert await o(tm.asweep()) == tm.sweep()
        assert (await o(tm.acompact())).count == tm.tenant.count()
        assert await o(tm.areembed(Recording(dim=DIM, name="recording"))) == tm.count(include_superseded=True)
        assert tm.embedder.name == "recording"
        assert embedded
        assert threading.get_ident() not in embedded

    asyncio.run(twins())


def test_errors_propagate_as_the_sync_call_raises_them(store: Store, mem: Memory):
    t = store.tenant("t", create=True)
    t.add(vecs(1, 2), ids=["dup"])
    tm = mem.tenant("m", create=True)
    gone = store.tenant("gone", create=True)
    store.drop_tenant("gone")
    cases: list[tuple[type[TenantVecError], Callable[[], Any], Callable[[], Awaitable[Any]]]] = [
        (DuplicateId, lambda: t.add(vecs(1, 3), ids=["dup"]), lambda: t.aadd(vecs(1, 3), ids=["dup"])),
        (InvalidFilter, lambda: t.query(vecs(1, 4)[0], where={"$nope": 1}),
         lambda: t.aquery(vecs(1, 4)[0], where={"$nope": 1})),
        (DimensionMismatch, lambda: t.query([1.0, 2.0]), lambda: t.aquery([1.0, 2.0])),
        (InvalidArgument, t.delete, t.adelete),
        (TenantNotFound, gone.count, gone.acount),
        (MemoryNotFound, lambda: tm.forget(ids=["nope"]), lambda: tm.aforget(ids=["nope"])),
        (SessionNotFound, lambda: tm.session("s", create=False), lambda: tm.asession("s", create=False)),
        (InvalidArgument, lambda: tm.recall("q", k=0), lambda: tm.arecall("q", k=0)),
    ]
    for cls, sync, twin in cases:
        with pytest.raises(cls) as sync_err:
            sync()
        with pytest.raises(cls) as async_err:
            run(twin())
        assert type(async_err.value) is type(sync_err.value)
        assert str(async_err.value) == str(sync_err.value)
    assert t.count() == 1
    assert tm.count() == 0


def test_concurrent_twins_across_tenants(store: Store, mem: Memory):
    n_tenants, per = 12, 20
    tenants = [store.tenant(f"t{i}", create=True) for i in range(n_tenants)]
    data = {t.id: vecs(per, i) for i, t in enumerate(tenants)}

    async def writes() -> list[Any]:
        calls = [t.aadd(data[t.id][j:j + 1], ids=[f"{t.id}-{j}"], metadata=[{"owner": t.id, "j": j}])
                 for j in range(per) for t in tenants]
        calls += [t.aquery(data[t.id][0], k=5) for t in tenants]  # reads interleaved with the writes
        return await asyncio.gather(*calls)

    results = asyncio.run(writes())
    assert sorted(i for r in results[:n_tenants * per] for i in r) == sorted(
        f"{t.id}-{j}" for t in tenants for j in range(per))
    for t, hits in zip(tenants, results[n_tenants * per:]):
        assert all(h.metadata["owner"] == t.id for h in hits)

    async def reads() -> list[Any]:
        return await asyncio.gather(*(c for t in tenants for c in (t.acount(), t.aquery(data[t.id], k=3), t.aget())))

    out = asyncio.run(reads())
    for i, t in enumerate(tenants):
        count, hits, recs = out[3 * i:3 * i + 3]
        assert count == per
        assert [row[0].id for row in hits] == [f"{t.id}-{j}" for j in range(per)]  # each vector finds itself
        assert {r.id for r in recs} == {f"{t.id}-{j}" for j in range(per)}

    handles = [mem.tenant(f"m{i}", create=True) for i in range(6)]

    async def memories() -> list[Any]:
        await asyncio.gather(*(tm.aremember(f"tenant {tm.id} fact {j} about invoices") for tm in handles
                               for j in range(8)))
        return await asyncio.gather(*(tm.arecall("invoices fact", k=20) for tm in handles))

    for tm, hits in zip(handles, asyncio.run(memories())):
        assert len(hits) == 8
        assert all(h.text.startswith(f"tenant {tm.id} ") for h in hits)
