"""Unit tests of the agent-memory layer (``tenantvec.memory``), one feature at a time.

Every test runs on the deterministic ``HashingEmbedder`` and an injected clock
(``Memory(..., clock=clock)``): time moves only when a test advances it, so TTLs,
validity windows and recency are exact and nothing sleeps. Recall is checked against an
exact cosine search over the memories a plain-Python model says are visible
(``tests/oracles.py``); bad input is checked table-driven at the end of the file: a named
``TenantVecError`` whose message names the value, and nothing written.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from oracles import distances, nearest, ref_match

import tenantvec
from tenantvec import Store
from tenantvec._audit import check_chain
from tenantvec.embedders import HashingEmbedder
from tenantvec.errors import (
    ConsolidationError,
    DimensionMismatch,
    EmbedderMismatch,
    InvalidArgument,
    InvalidFilter,
    InvalidTenantId,
    MemoryNotFound,
    ReadOnlyStore,
    SessionExpired,
    SessionNotFound,
    TenantMismatch,
    TenantNotFound,
    TenantVecError,
)
from tenantvec.memory import (
    ERASURE_LOG,
    KINDS,
    SOURCES,
    Memory,
    MemoryHit,
    Note,
    SweepReport,
    TenantMemory,
    WorkingMemory,
)

T0 = 1_700_000_000.0
DAY = 86400.0
DIM = 64
STORE_OPTIONS: dict[str, Any] = {"durability": "process", "hnsw_threshold": 10_000, "flush_interval": 0}
EMB = HashingEmbedder(dim=DIM)


class FakeClock:
    """Unix seconds that move only when the test says so."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


def open_memory(root: Path, clock: FakeClock, embedder: Any = EMB, **kw: Any) -> Memory:
    return Memory(root, embedder=embedder, clock=clock, **{**STORE_OPTIONS, **kw})


@pytest.fixture
def mem(root: Path, clock: FakeClock):
    with open_memory(root, clock) as m:
        yield m


@pytest.fixture
def tm(mem: Memory) -> TenantMemory:
    return mem.tenant("acme", create=True)


def audit_rows(t: tenantvec.Tenant) -> list[tuple[bytes, bytes]]:
    with t.reading() as view:
        return view.side("audit").items()


def state(store: Store) -> dict[str, Any]:
    """Everything a call could have written, per tenant: records, working memory, audit log."""
    out: dict[str, Any] = {}
    for tid in store.tenants():
        t = store.tenant(tid)
        recs = [(r.id, r.metadata, r.document, r.vector.tobytes()) for r in t.get(include_vectors=True)]
        out[tid] = (t.count(), recs, t.wm_items(b""), audit_rows(t))
    return out


def sim(a: str, b: str) -> float:
    return float(1.0 - distances("cosine", EMB.embed_documents([a]), EMB.embed_query(b))[0])


# ---------------------------------------------------------------------------- exact recall
@dataclass
class Model:
    """A memory as the test expects it (kept from what the test asked, not read back)."""

    id: str
    text: str
    kind: str
    source: str
    confidence: float
    created: float
    metadata: dict[str, Any]
    valid_from: float
    valid_until: float | None = None
    superseded_by: str | None = None


def _secs(value: Any, now: float) -> float:
    if isinstance(value, timedelta):
        return now - value.total_seconds()
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def expected_visible(models: list[Model], now: float, *, kinds=None, sources=None, min_confidence=None,
                     since=None, until=None, as_of=None, where=None, include_superseded=False) -> list[Model]:
    """The memories ``recall`` with these filters may return, by the DESIGN's rules."""
    kinds = [kinds] if isinstance(kinds, str) else kinds
    at = now if as_of is None else _secs(as_of, now)
    out = []
    for m in models:
        if kinds is not None and m.kind not in kinds:
            continue
        if sources is not None and m.source not in sources:
            continue
        if min_confidence is not None and m.confidence < min_confidence:
            continue
        if since is not None and m.created < _secs(since, now):
            continue
        if until is not None and m.created >= _secs(until, now):
            continue
        if m.valid_from > at or (as_of is not None and m.created > at):
            continue
        if not include_superseded and m.valid_until is not None and m.valid_until <= at:
            continue
        if where is not None and not ref_match(where, m.metadata):
            continue
        out.append(m)
    return out


def assert_exact(hits: list[MemoryHit], allowed: list[Model], query: str, k: int) -> None:
    """``hits`` are a top-``k`` of ``allowed`` by cosine similarity (equal similarities in any order)."""
    assert len(hits) == min(k, len(allowed)), ([h.text for h in hits], [m.text for m in allowed])
    assert len({h.id for h in hits}) == len(hits), "duplicate hits"
    if not allowed:
        return
    dist = distances("cosine", EMB.embed_documents([m.text for m in allowed]), EMB.embed_query(query))
    by_id = {m.id: (m, d) for m, d in zip(allowed, dist)}
    for h in hits:
        assert h.id in by_id, f"hit {h.text!r} is not allowed by the filters"
        m, d = by_id[h.id]
        assert (h.text, h.kind, h.source) == (m.text, m.kind, m.source)
        assert h.similarity == pytest.approx(1.0 - d, abs=1e-5)
        assert h.score == h.similarity
    want = dist[nearest(dist, k)]
    np.testing.assert_allclose([1.0 - h.similarity for h in hits], want, atol=1e-5)


TOPICS = ["billing", "invoices", "postgres", "email", "deploy", "support"]


@pytest.fixture
def corpus(tm: TenantMemory, clock: FakeClock) -> list[Model]:
    """24 memories over 120 days (kinds, sources, confidences and topics all mixed), two of
    them superseded, one with an ended validity and one valid from a past date."""
    models: list[Model] = []
    for i in range(24):
        clock.advance(5 * DAY)
        topic = TOPICS[i % len(TOPICS)]
        text = f"{topic} memory {i} about {TOPICS[(i * 5 + 1) % len(TOPICS)]} and {TOPICS[(i + 3) % 6]}"
        kind, source = KINDS[i % 3], SOURCES[(i // 3) % 4]
        conf = round((i * 7 % 11) / 10, 1)
        md = {"topic": topic, "n": i}
        kw: dict[str, Any] = {}
        valid_from = clock()
        valid_until = None
        if i == 7:
            valid_until = kw["valid_until"] = clock() + 10 * DAY
        if i == 9:
            valid_from = kw["valid_from"] = datetime.fromtimestamp(clock() - 30 * DAY, tz=timezone.utc)
            valid_from = clock() - 30 * DAY
        hit = tm.remember(text, kind=kind, source=source, confidence=conf, metadata=md, **kw)
        models.append(Model(hit.id, text, kind, source, conf, clock(), md, valid_from, valid_until))
    for j in (3, 14):
        clock.advance(DAY)
        old = models[j]
        new = tm.supersede(old.id, f"{old.text} revised", reason="corrected")
        old.valid_until, old.superseded_by = clock(), new.id
        models.append(Model(new.id, new.text, old.kind, old.source, old.confidence, clock(), old.metadata, clock()))
    clock.advance(DAY)
    return models


RECALL_CASES: list[dict[str, Any]] = [
    {},
    {"kinds": ["semantic"]},
    {"kinds": "procedural"},
    {"kinds": ["episodic", "procedural"]},
    {"sources": ["user"]},
    {"sources": ["agent", "tool"]},
    {"min_confidence": 0.5},
    {"min_confidence": 1.0},
    {"since": timedelta(days=40)},
    {"since": datetime.fromtimestamp(T0 + 60 * DAY, tz=timezone.utc)},
    {"until": T0 + 50 * DAY},
    {"until": datetime.fromtimestamp(T0 + 50 * DAY, tz=timezone.utc), "since": T0 + 20 * DAY},
    {"where": {"topic": "billing"}},
    {"where": {"n": {"$gte": 12}}, "kinds": ["semantic", "episodic"]},
    {"as_of": T0 + 40 * DAY},
    {"as_of": datetime.fromtimestamp(T0 + 80 * DAY, tz=timezone.utc), "include_superseded": True},
    {"as_of": T0 + 121 * DAY},  # the first supersession happened at T0 + 121 days
    {"as_of": timedelta(days=1)},
    {"include_superseded": True},
    {"include_superseded": True, "sources": ["user", "system"], "min_confidence": 0.2},
    {"kinds": ["semantic"], "sources": ["user"], "since": timedelta(days=90)},
]


@pytest.mark.parametrize("query", ["billing invoices", "postgres deploy memory 7", "email"])
def test_recall_filters_match_exact_search(tm: TenantMemory, corpus: list[Model], clock: FakeClock, query: str):
    for case in RECALL_CASES:
        allowed = expected_visible(corpus, clock(), **case)
        for k in (3, 40):
            hits = tm.recall(query, k=k, **case)
            assert_exact(hits, allowed, query, k)
    assert tm.count() == len(expected_visible(corpus, clock()))
    for kind in KINDS:
        assert tm.count(kind) == len(expected_visible(corpus, clock(), kinds=[kind]))
    assert tm.count(include_superseded=True) == len(expected_visible(corpus, clock(), include_superseded=True))


def test_weighted_rank_matches_brute_force(tm: TenantMemory, corpus: list[Model], clock: FakeClock):
    """Under 50 memories every memory is a candidate, so the weighted rank is exact."""
    half_life = 20 * DAY
    for query in ("billing invoices", "deploy support memory 12"):
        for case in ({}, {"kinds": ["semantic", "episodic"]}, {"min_confidence": 0.3, "include_superseded": True}):
            allowed = expected_visible(corpus, clock(), **case)
            score = {m.id: 0.7 * sim(m.text, query) + 0.2 * 0.5 ** ((clock() - m.created) / half_life)
                     + 0.1 * m.confidence for m in allowed}
            hits = tm.recall(query, k=6, rank="weighted", half_life=half_life, **case)
            want = sorted(score.values(), reverse=True)[:6]
            np.testing.assert_allclose([h.score for h in hits], want, atol=1e-5)
            assert all(h.score == pytest.approx(score[h.id], abs=1e-5) for h in hits)


def test_weighted_rank_considers_every_memory(tm: TenantMemory, clock: FakeClock):
    tm.remember_many([{"text": f"billing invoices postgres note {i}", "confidence": 0.1} for i in range(60)])
    clock.advance(365 * DAY)
    fresh = tm.remember("billing invoices email", confidence=1.0)
    q = "billing invoices postgres"
    assert 0.7 * sim(fresh.text, q) + 0.2 + 0.1 > 0.7 * 1.0 + 0.2 * 0.5**12 + 0.1 * 0.1, "the fresh one scores best"
    assert tm.recall(q, k=3, rank="weighted")[0].id == fresh.id


def test_plain_records_are_not_memories(tm: TenantMemory):
    m = tm.remember("a memory about billing")
    tm.tenant.add(EMB.embed_documents(["a record about billing"]), ids=["plain"], documents=["a record about billing"],
                  metadata=[{"topic": "billing"}])
    assert [h.id for h in tm.recall("billing record", k=5)] == [m.id]
    assert tm.get("plain") is None
    assert tm.count() == 1
    with pytest.raises(MemoryNotFound):
        tm.history("plain")
    with pytest.raises(MemoryNotFound):
        tm.forget(ids=["plain"])
    assert tm.forget(where={}, reason="all memories") == 1
    assert tm.tenant.get(ids=["plain"])[0].document == "a record about billing"


def test_remember_get_count(tm: TenantMemory, clock: FakeClock):
    m = tm.remember("Acme bills through PostgreSQL", kind="semantic", source="user", confidence=0.75,
                    metadata={"topic": "billing", "tags": ["db"]}, session="sess-1")
    assert isinstance(m, MemoryHit)
    assert (m.text, m.kind, m.source, m.confidence, m.session) == ("Acme bills through PostgreSQL", "semantic",
                                                                    "user", 0.75, "sess-1")
    assert m.metadata == {"topic": "billing", "tags": ["db"]}, "no mem: key may leak into the user's metadata"
    assert m.created_at == m.valid_from == T0
    assert m.valid_until is m.expires_at is m.supersedes is m.superseded_by is None
    assert tm.get(m.id) == m
    assert tm.get("no-such-id") is None
    with pytest.raises(AttributeError):
        m.text = "changed"  # type: ignore[misc]
    clock.advance(10)
    many = tm.remember_many([{"text": "Deploys happen on Fridays", "kind": "procedural", "source": "tool"},
                             Note("User said hello", kind="episodic", source="user", confidence=0.5),
                             {"text": "A plain fact"}])
    assert [h.kind for h in many] == ["procedural", "episodic", "semantic"]
    assert [h.source for h in many] == ["tool", "user", "agent"]
    assert all(h.created_at == T0 + 10 for h in many)
    assert [tm.get(h.id) for h in many] == many
    assert tm.remember_many([]) == []
    assert tm.count() == 4
    assert [tm.count(k) for k in KINDS] == [1, 2, 1]
    entries = tm.audit(ops=["remember"])
    assert [e.ids for e in entries] == [(m.id,), tuple(h.id for h in many)]
    assert entries[0].session == "sess-1"
    assert entries[1].counts == {"added": 3}
    assert tm.tenant.count() == 4


def test_weighted_rank_and_explain(tm: TenantMemory, clock: FakeClock):
    old = tm.remember("alpha beta gamma delta", confidence=0.2)
    clock.advance(60 * DAY)
    new = tm.remember("alpha beta epsilon zeta", confidence=0.9)
    tm.remember("unrelated words entirely", confidence=1.0)
    clock.advance(DAY)
    q = "alpha beta gamma delta"
    by_sim = tm.recall(q, k=3)
    assert [h.id for h in by_sim[:2]] == [old.id, new.id]
    assert [h.explain for h in by_sim] == [None] * 3
    hl = 30 * DAY
    hits = tm.recall(q, k=3, rank="weighted", explain=True)
    assert len(hits) == 3
    for h in hits:
        assert set(h.explain) == {"similarity", "recency", "confidence", "score"}
        made = tm.get(h.id).created_at
        want = {"similarity": sim(h.text, q), "recency": 0.5 ** ((clock() - made) / hl), "confidence": h.confidence}
        for name, v in want.items():
            assert h.explain[name] == pytest.approx(v, abs=1e-5), name
        score = 0.7 * want["similarity"] + 0.2 * want["recency"] + 0.1 * want["confidence"]
        assert h.score == h.explain["score"] == pytest.approx(score, abs=1e-5)
        assert h.similarity == pytest.approx(want["similarity"], abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    recent_first = tm.recall(q, k=2, rank="weighted", weights={"recency": 1.0}, explain=True)
    assert recent_first[0].id != old.id, "recency alone must put the 60-day-old memory last"
    short = tm.recall(q, k=3, rank="weighted", half_life=DAY, explain=True)
    assert {h.id: h.explain["recency"] for h in short}[old.id] == pytest.approx(0.5**61, rel=1e-6)
    no_explain = tm.recall(q, k=3, rank="weighted")
    assert [h.id for h in no_explain] == [h.id for h in hits]
    assert all(h.explain is None for h in no_explain)


def test_seed_compound_recall(tm: TenantMemory, clock: FakeClock):
    """The seed's one call: the five memories most similar to the query, only from the last
    90 days, only user-confirmed facts, not inferred context."""
    stale = tm.remember("billing runs through postgres database", kind="semantic", source="user")
    clock.advance(100 * DAY)
    want = [tm.remember(f"billing runs through postgres database {i}", kind="semantic", source="user")
            for i in range(6)]
    inferred = tm.remember("billing runs through postgres database", kind="semantic", source="agent")
    episode = tm.remember("billing runs through postgres database", kind="episodic", source="user")
    tool = tm.remember("billing runs through postgres database", kind="semantic", source="tool")
    clock.advance(DAY)
    hits = tm.recall("where does billing run? postgres database", k=5, kinds=["semantic"], sources=["user"],
                     since=timedelta(days=90))
    assert len(hits) == 5
    assert {h.id for h in hits} <= {m.id for m in want}
    assert not {h.id for h in hits} & {stale.id, inferred.id, episode.id, tool.id}
    assert all(h.kind == "semantic" and h.source == "user" and h.created_at >= clock() - 90 * DAY for h in hits)


def test_supersede_history_as_of(tm: TenantMemory, clock: FakeClock):
    m1 = tm.remember("Acme bills through PostgreSQL", kind="semantic", source="user", confidence=0.9,
                     metadata={"topic": "billing"})
    t1 = clock()
    clock.advance(DAY)
    m2 = tm.supersede(m1.id, "Acme moved billing to MySQL", reason="migration", session="s-9")
    t2 = clock()
    assert (m2.supersedes, m2.kind, m2.source, m2.confidence, m2.metadata) == (m1.id, "semantic", "user", 0.9,
                                                                              {"topic": "billing"})
    assert m2.session == "s-9"
    assert m2.created_at == m2.valid_from == t2
    old = tm.get(m1.id)
    assert (old.superseded_by, old.valid_until, old.text) == (m2.id, t2, m1.text)
    assert tm.get(m2.id) == m2
    clock.advance(DAY)
    m3 = tm.supersede(m2.id, "Acme bills through BigQuery", kind="procedural", source="tool", confidence=0.5)
    assert (m3.kind, m3.source, m3.confidence) == ("procedural", "tool", 0.5)
    chain = [h.id for h in tm.history(m1.id)]
    assert chain == [m1.id, m2.id, m3.id]
    assert [h.id for h in tm.history(m2.id)] == chain == [h.id for h in tm.history(m3.id)]
    q = "where does Acme bill"
    assert [h.id for h in tm.recall(q, k=10)] == [m3.id]
    assert {h.id for h in tm.recall(q, k=10, include_superseded=True)} == {m1.id, m2.id, m3.id}
    assert [h.id for h in tm.recall(q, k=10, as_of=t1 + 1)] == [m1.id]
    assert [h.id for h in tm.recall(q, k=10, as_of=t2)] == [m2.id]
    assert [h.id for h in tm.recall(q, k=10, as_of=t1 - 1)] == []
    assert tm.count() == 1
    assert tm.count(include_superseded=True) == 3
    with pytest.raises(InvalidArgument, match=m2.id):
        tm.supersede(m1.id, "again")
    entries = tm.audit(ops=["supersede"])
    assert [e.ids for e in entries] == [(m1.id, m2.id), (m2.id, m3.id)]
    assert (entries[0].reason, entries[0].session) == ("migration", "s-9")
    # Forgetting a link ends the chain there.
    assert tm.forget(ids=[m2.id], reason="test") == 1
    assert [h.id for h in tm.history(m1.id)] == [m1.id]
    assert [h.id for h in tm.history(m3.id)] == [m3.id]


# ---------------------------------------------------------------------------- forget
def tenant_bytes(mem: Memory, tid: str) -> dict[str, bytes]:
    path = mem.store.tenant_path(tid)
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_forget_by_ids_and_where_leaves_no_text(mem: Memory, tm: TenantMemory, clock: FakeClock):
    secret = "Zebracorn passport number 88314-QX"
    keep = tm.remember("Keeperfact the office is in Lyon", metadata={"topic": "office"})
    doomed = tm.remember(secret, kind="episodic", source="user", metadata={"topic": "pii"})
    topic = [tm.remember(f"Quokkaword pii note {i}", metadata={"topic": "pii2"}) for i in range(3)]
    s = tm.session("s1")
    s.note("Noteonly Vombatus secret via working memory", source="user")
    via_note = tm.consolidate("s1").ids[0]
    clock.advance(5)
    assert tm.forget(ids=[doomed.id, doomed.id], reason="user request") == 1
    assert tm.get(doomed.id) is None
    assert tm.forget(where={"topic": "pii2"}, reason="gdpr") == 3
    assert tm.forget(ids=[via_note], reason="user request") == 1
    assert tm.forget(where={"topic": "nothing"}, reason="none") == 0
    assert tm.forget(ids=[keep.id], where={"topic": "pii"}, reason="intersection") == 0
    assert [h.id for h in tm.recall("secret passport number", k=10)] == [keep.id]
    assert tm.count() == 1
    assert tm.get(keep.id) is not None
    entries = tm.audit(ops=["forget"])
    assert [(e.ids, e.reason, e.counts) for e in entries] == [
        ((doomed.id,), "user request", {"forgotten": 1}),
        (tuple(m.id for m in topic), "gdpr", {"forgotten": 3}),
        ((via_note,), "user request", {"forgotten": 1}),
    ]
    assert all(e.time == clock() for e in entries)
    for e in tm.audit():
        for needle in ("Zebracorn", "Quokkaword", "Vombatus"):
            assert needle not in repr(e)
    tm.tenant.compact()
    files = tenant_bytes(mem, "acme")
    assert b"Keeperfact" in files["data.mdb"], "the test must see documents in the file"
    for name, raw in files.items():
        for needle in (b"Zebracorn", b"Quokkaword", b"Vombatus"):
            assert needle not in raw, f"{needle!r} still in {name} after forget + compact"
    assert check_chain(audit_rows(tm.tenant)) == []


def test_ttl_memories_hidden_then_swept(tm: TenantMemory, clock: FakeClock):
    short = tm.remember("ephemeral fact about caching", ttl=60)
    keep = tm.remember("durable fact about caching")
    assert short.expires_at == T0 + 60
    assert {h.id for h in tm.recall("fact about caching", k=5)} == {short.id, keep.id}
    assert tm.sweep() == SweepReport(0, 0)
    clock.advance(59.5)
    assert tm.get(short.id) == short
    clock.advance(0.5)
    assert tm.get(short.id) is None
    assert [h.id for h in tm.recall("fact about caching", k=5)] == [keep.id]
    assert tm.count() == 1
    assert tm.tenant.count() == 2, "hidden, not yet removed"
    assert tm.sweep() == SweepReport(0, 1)
    assert tm.tenant.count() == 1
    assert [(e.op, e.ids) for e in tm.audit(ops=["expire"])] == [("expire", (short.id,))]
    assert tm.sweep() == SweepReport(0, 0)


def test_first_handle_sweeps(root: Path, clock: FakeClock):
    with open_memory(root, clock) as mem:
        tm = mem.tenant("acme", create=True)
        tm.remember("short lived", ttl=10)
        tm.session("gone", ttl=10).set("k", 1)
        tm.session("stays").set("k", 2)
    clock.advance(11)
    with open_memory(root, clock) as mem:
        t = mem.store.tenant("acme")
        assert t.count() == 1
        assert t.wm_items(b"s/gone\x00")
        tm = mem.tenant("acme")
        assert t.count() == 0
        assert t.wm_items(b"s/gone\x00") == []
        assert [s.id for s in tm.sessions()] == ["stays"]


# ---------------------------------------------------------------------------- working memory
def test_working_memory_calls(tm: TenantMemory, clock: FakeClock):
    s = tm.session("sess-42", ttl=3600)
    assert (s.id, s.tenant, s.expires_at, s.created_at) == ("sess-42", "acme", T0 + 3600, T0)
    goal = {"task": "refund", "steps": [1, 2.5, None, True, "x"], "nested": {"a": {"b": []}}}
    s.set("goal", goal)
    assert s.get("goal") == goal
    assert s.get("missing") is None
    assert s.get("missing", 7) == 7
    s.set("goal", "replaced")
    s.set("ünïcode kéy", ["ok"])
    assert s.items() == {"goal": "replaced", "ünïcode kéy": ["ok"]}
    assert s.delete("goal") is True
    assert s.delete("goal") is False
    assert s.items() == {"ünïcode kéy": ["ok"]}
    assert [s.append("turns", {"n": i}) for i in range(4)] == [0, 1, 2, 3]
    assert s.append("other", "x") == 0
    assert s.log("turns") == [{"n": i} for i in range(4)]
    assert s.log("turns", last=2) == [{"n": 2}, {"n": 3}]
    assert s.log("turns", last=0) == []
    assert s.log("turns", last=10) == [{"n": i} for i in range(4)]
    assert s.log("never") == []
    n1 = s.note("Prefers invoices by email", kind="procedural", source="user", confidence=0.8,
                metadata={"channel": "email"})
    clock.advance(1)
    n2 = s.note("Asked about refunds")
    assert n1 != n2
    staged = s.staged()
    assert [(n.text, n.kind, n.source, n.confidence, n.metadata) for n in staged] == [
        ("Prefers invoices by email", "procedural", "user", 0.8, {"channel": "email"}),
        ("Asked about refunds", "semantic", "agent", 1.0, {}),
    ]
    assert [(n.tenant, n.session, n.id, n.at) for n in staged] == [("acme", "sess-42", n1, T0),
                                                                   ("acme", "sess-42", n2, T0 + 1)]
    plain = tm.session("plain")
    assert plain.expires_at is None
    assert plain.items() == {}
    assert [(i.id, i.created_at, i.expires_at, i.staged, i.rounds) for i in tm.sessions()] == [
        ("plain", T0 + 1, None, 0, 0), ("sess-42", T0, T0 + 3600, 2, 0)]
    assert s.clear() == 1 + 5 + 2
    assert (s.items(), s.log("turns"), s.staged()) == ({}, [], [])
    assert s.append("turns", "again") == 0, "a cleared log starts again at position 0"
    assert s.log("turns") == ["again"]
    assert [i.id for i in tm.sessions()] == ["plain", "sess-42"]
    clock.advance(100)
    assert s.touch() == clock() + 3600 == s.expires_at
    assert s.touch(ttl=10) == clock() + 10
    assert plain.touch() is None
    assert tm.session("sess-42", ttl=500).expires_at == clock() + 500
    assert tm.session("sess-42").expires_at == clock() + 500, "opening without ttl keeps the TTL"
    # Two handles on one session see each other's writes at once.
    again = tm.session("sess-42", create=False)
    again.set("shared", 1)
    assert s.get("shared") == 1


def test_session_ttl_expiry(tm: TenantMemory, clock: FakeClock):
    s = tm.session("short", ttl=60)
    s.set("k", 1)
    s.append("log", "a")
    s.note("a staged fact")
    other = tm.session("long", ttl=600)
    other.set("k", 2)
    clock.advance(59)
    assert s.get("k") == 1
    clock.advance(1)
    reads: list[Callable[[], Any]] = [
        lambda: s.get("k"), lambda: s.items(), lambda: s.log("log"), lambda: s.staged(), lambda: s.expires_at,
        lambda: s.created_at, lambda: s.set("k", 3), lambda: s.append("log", "b"), lambda: s.note("x"),
        lambda: s.delete("k"), lambda: s.clear(), lambda: s.touch(), lambda: tm.consolidate("short"),
    ]
    for call in reads:
        with pytest.raises(SessionExpired, match="'short'"):
            call()
    assert [i.id for i in tm.sessions()] == ["long"]
    assert other.get("k") == 2
    t = tm.tenant
    assert len(t.wm_items(b"s/short\x00")) >= 4, "expired, not yet swept"
    assert tm.sweep() == SweepReport(1, 0)
    assert t.wm_items(b"s/short\x00") == []
    assert [i.id for i in tm.sessions()] == ["long"]
    with pytest.raises(SessionNotFound, match="'short'"):
        tm.session("short", create=False)
    fresh = tm.session("short")
    assert (fresh.items(), fresh.staged(), fresh.expires_at) == ({}, [], None)


def test_expired_session_reopened_without_sweep(tm: TenantMemory, clock: FakeClock):
    s = tm.session("s", ttl=5)
    s.set("old", 1)
    clock.advance(5)
    with pytest.raises(SessionExpired, match="'s'"):
        tm.session("s", create=False)
    assert tm.tenant.wm_items(b"s/s\x00"), "left for the sweep"
    again = tm.session("s", ttl=50)
    assert again.items() == {}
    assert again.expires_at == clock() + 50


def test_working_memory_survives_reopen(root: Path, clock: FakeClock):
    with open_memory(root, clock) as mem:
        s = mem.tenant("acme", create=True).session("s1", ttl=3600)
        s.set("goal", {"x": 1})
        s.append("turns", "hi")
        s.append("turns", "there")
        s.note("Prefers email", kind="procedural")
    with open_memory(root, clock) as mem:
        tm = mem.tenant("acme")
        s = tm.session("s1", create=False)
        assert s.items() == {"goal": {"x": 1}}
        assert s.log("turns") == ["hi", "there"]
        assert [n.text for n in s.staged()] == ["Prefers email"]
        assert s.expires_at == T0 + 3600
        assert s.append("turns", "again") == 2
        report = tm.consolidate("s1")
        assert len(report.added) == 1
    with open_memory(root, clock) as mem:
        tm = mem.tenant("acme")
        assert tm.consolidate("s1").replayed
        assert tm.session("s1", create=False).log("turns", last=1) == ["again"]


# ---------------------------------------------------------------------------- consolidation
def test_consolidate_report_and_retry(tm: TenantMemory, clock: FakeClock):
    s = tm.session("s1")
    s.note("Acme bills through PostgreSQL", kind="semantic", source="user", confidence=0.9,
           metadata={"topic": "billing"})
    s.note("User asked about invoices", kind="episodic", source="agent")
    s.set("goal", "keep me")
    clock.advance(10)
    r = tm.consolidate("s1")
    assert (r.tenant, r.session, r.reinforced, r.skipped, r.replayed, r.error) == ("acme", "s1", (), 0, False, None)
    assert len(r.added) == 2
    assert r.ids == r.added
    got = [tm.get(i) for i in r.ids]
    assert [(m.text, m.kind, m.source, m.confidence, m.metadata, m.session, m.created_at) for m in got] == [
        ("Acme bills through PostgreSQL", "semantic", "user", 0.9, {"topic": "billing"}, "s1", T0 + 10),
        ("User asked about invoices", "episodic", "agent", 1.0, {}, "s1", T0 + 10),
    ]
    assert s.staged() == []
    assert s.get("goal") == "keep me", "consolidation takes the notes, not the keys"
    [entry] = tm.audit(ops=["consolidate"])
    assert (entry.seq, entry.ids, entry.session) == (r.audit_seq, r.ids, "s1")
    assert entry.counts == {"notes": 2, "added": 2, "reinforced": 0, "skipped": 0}
    before = state(tm.tenant._store)
    again = tm.consolidate("s1")
    assert again.replayed
    assert (again.ids, again.added, again.audit_seq) == (r.ids, r.added, r.audit_seq)
    assert state(tm.tenant._store) == before, "a retry writes nothing"
    assert [(i.staged, i.rounds) for i in tm.sessions()] == [(0, 1)]
    s.note("a second round")
    r2 = tm.consolidate("s1")
    assert not r2.replayed
    assert len(r2.added) == 1
    assert r2.audit_seq == r.audit_seq + 1
    assert tm.sessions()[0].rounds == 2
    empty = tm.session("empty")
    assert empty.staged() == []
    nothing = tm.consolidate("empty")
    assert (nothing.ids, nothing.replayed, nothing.audit_seq) == ((), False, None)


def test_consolidate_dedupe_reinforces(tm: TenantMemory, clock: FakeClock):
    existing = tm.remember("Acme bills through PostgreSQL", kind="semantic", source="user", confidence=0.5)
    other_kind = tm.remember("Deploys happen on Fridays", kind="episodic")
    clock.advance(100)
    s = tm.session("s2")
    s.note("Acme bills through PostgreSQL.", kind="semantic", confidence=0.8)  # same words: distance 0
    s.note("Deploys happen on Fridays", kind="procedural")  # another kind: a new memory
    s.note("Invoices go out by email")
    s.note("invoices go out by EMAIL", confidence=0.3)  # an in-batch duplicate
    r = tm.consolidate("s2")
    assert r.reinforced == (existing.id,)
    assert r.ids[0] == existing.id
    assert len(r.added) == 2
    assert set(r.added) == {r.ids[1], r.ids[2]}
    assert r.skipped == 1
    assert r.ids[3] == r.ids[2]
    assert other_kind.id not in r.ids
    got = tm.get(existing.id)
    assert (got.reinforced, got.last_seen, got.confidence, got.text) == (1, clock(), 0.8, existing.text)
    assert got.session is None, "reinforcing keeps the memory's provenance"
    assert tm.count() == 4
    repeated = tm.get(r.ids[2])
    assert (repeated.confidence, repeated.reinforced, repeated.last_seen) == (1.0, 1, clock()), \
        "a repeat within the batch reinforces the new memory as a repeat across sessions would"
    # Reinforcement counts and keeps the highest confidence; dedupe=None adds copies.
    clock.advance(100)
    s.note("Acme bills through PostgreSQL", confidence=0.1)
    assert tm.consolidate("s2").reinforced == (existing.id,)
    got = tm.get(existing.id)
    assert (got.reinforced, got.last_seen, got.confidence) == (2, clock(), 0.8)
    s.note("Acme bills through PostgreSQL")
    r3 = tm.consolidate("s2", dedupe=None)
    assert r3.reinforced == ()
    assert len(r3.added) == 1
    assert tm.count("semantic") == 3
    # A reinforced memory is as recent as its last sighting for the weighted rank.
    [h] = [h for h in tm.recall("Acme bills", k=5, rank="weighted", explain=True) if h.id == existing.id]
    assert h.explain["recency"] == pytest.approx(0.5 ** (0 / (30 * DAY)))


def test_consolidate_distill(tm: TenantMemory):
    s = tm.session("s3")
    for text in ("User asked for a refund", "User was angry about the delay", "Refund issued by agent"):
        s.note(text, kind="episodic", source="user")
    seen: list[Note] = []

    def distill(notes: list[Note]) -> list[Any]:
        seen.extend(notes)
        summary = "; ".join(n.text for n in notes)
        return [Note(summary, kind="episodic", source="agent", confidence=0.7),
                {"text": "Refunds take a day", "kind": "procedural", "metadata": {"from": "distill"},
                 "tenant": "acme", "session": "s3"}]

    r = tm.consolidate("s3", distill)
    assert [n.text for n in seen] == ["User asked for a refund", "User was angry about the delay",
                                      "Refund issued by agent"]
    assert all((n.tenant, n.session) == ("acme", "s3") for n in seen)
    assert len(r.added) == 2
    got = [tm.get(i) for i in r.ids]
    assert got[0].text.startswith("User asked for a refund; ")
    assert got[0].kind == "episodic"
    assert (got[1].kind, got[1].metadata, got[1].session) == ("procedural", {"from": "distill"}, "s3")
    assert s.staged() == []
    assert tm.audit(ops=["consolidate"])[0].counts["notes"] == 3
    # A distill that keeps nothing still consumes the notes.
    s.note("noise")
    r2 = tm.consolidate("s3", lambda _notes: [])
    assert (r2.added, r2.ids) == ((), ())
    assert s.staged() == []
    assert tm.count() == 2


def test_consolidate_many_reports_failures_and_does_the_rest(mem: Memory):
    for tid in ("a", "b", "c"):
        tm = mem.tenant(tid, create=True)
        tm.session("s").note(f"{tid} fact one")
    reports = mem.consolidate_many([("a", "s"), ("b", "s"), ("c", "nope"), ("ghost", "s"), ("c", "s")])
    assert list(reports) == ["a", "b", "c", "ghost"]
    assert [len(r.added) for r in reports["a"] + reports["b"]] == [1, 1]
    assert reports["c"][0].error.startswith("SessionNotFound")
    assert "'nope'" in reports["c"][0].error
    assert reports["c"][1].error is None
    assert len(reports["c"][1].added) == 1
    assert reports["ghost"][0].error.startswith("TenantNotFound")
    for tid in ("a", "b", "c"):
        tm = mem.tenant(tid)
        assert [h.text for h in tm.recall("fact one", k=5)] == [f"{tid} fact one"]

    for tid in ("a", "b", "c"):
        mem.tenant(tid).session("s2").note(f"{tid} fact two")

    def distill(notes: list[Note]) -> list[Note]:
        if notes[0].tenant == "b":
            raise RuntimeError("the summariser is down for b")
        return notes

    before_b = state(mem.store)["b"]
    reports = mem.consolidate_many([(t, "s2") for t in ("a", "b", "c")], distill)
    assert reports["b"][0].error.startswith("ConsolidationError")
    assert "down for b" in reports["b"][0].error
    assert reports["a"][0].error is None is reports["c"][0].error
    assert state(mem.store)["b"] == before_b
    assert [n.text for n in mem.tenant("b").session("s2").staged()] == ["b fact two"]
    assert mem.tenant("a").count() == mem.tenant("c").count() == 2


# ---------------------------------------------------------------------------- isolation
def test_distill_emitting_foreign_items_writes_nothing(mem: Memory, tm: TenantMemory):
    other = mem.tenant("other", create=True)
    other.session("s").note("other tenant secret")
    foreign_notes = other.session("s").staged()
    tm.session("s").note("acme fact")
    tm.session("t").note("acme fact in t")
    bad: list[tuple[str, Callable[[list[Note]], Any], str]] = [
        ("another tenant's note", lambda _notes: foreign_notes, "'other'"),
        ("a mapping stamped with another tenant", lambda _notes: [{"text": "x", "tenant": "other"}], "'other'"),
        ("a note stamped with another session", lambda _notes: [Note("x", tenant="acme", session="t")], "'t'"),
        ("another session's mapping", lambda notes: [*notes, {"text": "y", "session": "t"}], "'t'"),
    ]
    for what, distill, needle in bad:
        before = state(mem.store)
        with pytest.raises(TenantMismatch, match=needle):
            tm.consolidate("s", distill)
        assert state(mem.store) == before, what
        assert [n.text for n in tm.session("s").staged()] == ["acme fact"]
        reports = mem.consolidate_many([("acme", "s")], distill)
        assert reports["acme"][0].error.startswith("TenantMismatch"), what
        assert state(mem.store) == before, what
    assert tm.count() == 0
    assert tm.audit(ops=["consolidate"]) == []


def test_recall_never_crosses_tenants(mem: Memory):
    texts = [f"shared text number {i} about billing" for i in range(8)]
    a, b = mem.tenant("a", create=True), mem.tenant("b", create=True)
    ids_a = {h.id for h in a.remember_many([{"text": t} for t in texts])}
    ids_b = {h.id for h in b.remember_many([{"text": t, "source": "user"} for t in texts])}
    assert not ids_a & ids_b
    for q in ("billing", "shared text number 3", texts[5]):
        assert {h.id for h in a.recall(q, k=20)} == ids_a
        assert {h.id for h in b.recall(q, k=20)} == ids_b
        assert a.recall(q, k=20, sources=["user"]) == []
    assert all(a.get(i) is None for i in ids_b)
    with pytest.raises(MemoryNotFound):
        a.forget(ids=[next(iter(ids_b))])
    with pytest.raises(MemoryNotFound):
        a.supersede(next(iter(ids_b)), "hijack")
    assert b.count() == 8


# ---------------------------------------------------------------------------- embedders
class PermutedEmbedder:
    """The hashing embedder's vectors with their coordinates permuted: another vector space."""

    def __init__(self, dim: int = DIM, name: str = "permuted-hashing") -> None:
        self.name, self.dim = name, dim
        self._base = HashingEmbedder(dim=dim)
        self._perm = np.random.default_rng(7).permutation(dim)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self._base.embed_documents(texts)[:, self._perm]

    def embed_query(self, text: str) -> np.ndarray:
        return self._base.embed_query(text)[self._perm]


def test_embedder_fingerprint(root: Path, clock: FakeClock):
    with open_memory(root, clock) as mem:
        mem.tenant("acme", create=True).remember("a fact")
    renamed = HashingEmbedder(dim=DIM, name="my-hashing")
    with open_memory(root, clock, embedder=renamed) as mem:
        with pytest.raises(EmbedderMismatch) as err:
            mem.tenant("acme")
        assert f"hashing-v1-{DIM}" in str(err.value)
        assert "my-hashing" in str(err.value)
        fresh = mem.tenant("fresh", create=True)  # a new tenant takes this embedder
        fresh.remember("b fact")
    with open_memory(root, clock) as mem, pytest.raises(EmbedderMismatch, match="my-hashing"):
        mem.tenant("fresh")
    with open_memory(root, clock, embedder=HashingEmbedder(dim=32)) as mem, \
            pytest.raises((EmbedderMismatch, DimensionMismatch), match="32"):
        mem.tenant("acme")


def test_reembed_switches_atomically(root: Path, clock: FakeClock):
    new_emb = PermutedEmbedder()
    texts = ["Acme bills through PostgreSQL", "Deploys happen on Fridays", "Invoices go out by email"]
    with open_memory(root, clock) as mem:
        tm = mem.tenant("acme", create=True)
        ids = [h.id for h in tm.remember_many([{"text": t} for t in texts])]
        stale = mem.tenant("acme")
        with pytest.raises(DimensionMismatch, match="32"):
            tm.reembed(HashingEmbedder(dim=32))
        assert tm.reembed(new_emb) == 3
        assert tm.embedder is new_emb
        recs = {r.id: r.vector for r in tm.tenant.get(ids=ids, include_vectors=True)}
        for i, t in zip(ids, texts):
            np.testing.assert_allclose(recs[i], new_emb.embed_documents([t])[0], atol=1e-6)
        assert [h.id for h in tm.recall("Deploys happen on Fridays", k=1)] == [ids[1]]
        assert tm.recall("Deploys happen on Fridays", k=1)[0].similarity == pytest.approx(1.0, abs=1e-5)
        for call in (lambda: stale.recall("Deploys", k=1), lambda: stale.remember("x"),
                     lambda: stale.reembed(HashingEmbedder(dim=DIM))):
            with pytest.raises(EmbedderMismatch):
                call()
        [entry] = tm.audit(ops=["reembed"])
        assert entry.counts == {"memories": 3}
        assert "permuted-hashing" in entry.reason
        tm.remember("written after the switch")
    with open_memory(root, clock) as mem, pytest.raises(EmbedderMismatch, match="permuted-hashing"):
        mem.tenant("acme")
    with open_memory(root, clock, embedder=new_emb) as mem:
        assert mem.tenant("acme").recall("written after the switch", k=1)[0].similarity == pytest.approx(1.0, abs=1e-5)


# ---------------------------------------------------------------------------- offboarding, audit
def test_offboard(mem: Memory, tm: TenantMemory, tmp_path: Path, clock: FakeClock):
    tm.remember_many([{"text": f"acme fact {i}"} for i in range(5)])
    tm.session("s").set("k", 1)
    keep = mem.tenant("keep", create=True)
    keep.remember("stays")
    path = mem.store.tenant_path("acme")
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    export = tmp_path / "export.tvx"
    clock.advance(3)
    report = mem.offboard("acme", reason="contract ended", export_to=export)
    assert report.tenant_digest == hashlib.sha256(b"acme").hexdigest()
    assert (report.time, report.reason, report.exported_to) == (clock(), "contract ended", str(export))
    assert report.files_removed >= 1
    assert report.bytes_removed >= size // 2 > 0
    assert not path.exists()
    assert mem.tenants() == ["keep"]
    with pytest.raises(TenantNotFound):
        tm.recall("acme fact", k=1)
    assert mem.erasures() == [report]
    log = (mem.store.path / ERASURE_LOG).read_text()
    assert "acme" not in log.replace(report.tenant_digest, ""), "the erasure log keeps only the digest"
    mem.store.import_tenant("acme-restored", export)
    back = mem.tenant("acme-restored")
    assert back.count() == 5
    assert back.recall("acme fact 3", k=1)[0].text == "acme fact 3"
    assert back.session("s", create=False).get("k") == 1
    entries = back.audit()
    assert [e.op for e in entries][-2:] == ["deactivate", "import"]
    assert (entries[-2].reason, entries[-2].actor) == ("offboard: contract ended", "app")
    assert check_chain(audit_rows(back.tenant)) == []
    r2 = mem.offboard("keep", reason="second")
    assert r2.exported_to is None
    assert [e.reason for e in mem.erasures()] == ["contract ended", "second"]
    with pytest.raises(TenantNotFound):
        mem.offboard("keep", reason="again")


def test_offboard_a_deactivated_tenant(mem: Memory):
    mem.tenant("acme", create=True).remember("x")
    mem.store.deactivate("acme")
    report = mem.offboard("acme", reason="contract ended earlier")
    assert mem.tenants() == []
    assert mem.erasures() == [report]


def test_erasure_log_outlives_the_store_handle(root: Path, clock: FakeClock):
    with open_memory(root, clock) as mem:
        mem.tenant("x", create=True).remember("x")
        report = mem.offboard("x", reason="gone")
    with open_memory(root, clock) as mem:
        assert mem.erasures() == [report]


def test_audit_queries(tm: TenantMemory, clock: FakeClock):
    m = tm.remember("first")
    clock.advance(DAY)
    m2 = tm.supersede(m.id, "second", reason="fix")
    clock.advance(DAY)
    tm.forget(ids=[m2.id], reason="gone")
    clock.advance(DAY)
    s = tm.session("s")
    s.note("third")
    tm.consolidate("s")
    entries = tm.audit()
    ops = ["remember", "supersede", "forget", "consolidate"]  # the engine's lifecycle entries use wall time
    assert [e.op for e in entries if e.op in ops] == ops
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert all(b.prev == a.hash for a, b in itertools.pairwise(entries))
    assert all(e.actor == "app" for e in entries if e.op in ops)
    assert [e.op for e in tm.audit(since=T0 + DAY, ops=ops)] == ["supersede", "forget", "consolidate"]
    assert [e.op for e in tm.audit(since=timedelta(hours=1), ops=ops)] == ["consolidate"]
    assert [e.op for e in tm.audit(until=T0 + DAY, ops=["remember", "supersede"])] == ["remember"]
    assert [e.op for e in tm.audit(since=datetime.fromtimestamp(T0 + DAY, tz=timezone.utc),
                                   until=T0 + 2 * DAY)] == ["supersede"]
    assert [e.op for e in tm.audit(ops=["forget", "consolidate"])] == ["forget", "consolidate"]
    assert tm.audit(limit=2) == entries[:2]
    assert tm.audit(limit=0) == []
    assert tm.audit(ops=["nothing"]) == []
    assert tm.tenant._store.verify("acme").ok


def test_actor_is_recorded(mem: Memory):
    tm = mem.tenant("acme", create=True, actor="agent-7")
    tm.remember("x")
    assert tm.audit(ops=["remember"])[0].actor == "agent-7"


def test_readonly_memory_reads_and_refuses_writes(root: Path, clock: FakeClock):
    with open_memory(root, clock) as mem:
        tm = mem.tenant("acme", create=True)
        m = tm.remember("Acme bills through PostgreSQL", source="user")
        s = tm.session("s1", ttl=3600)
        s.set("goal", "ship")
        s.append("turns", "hi")
        s.note("staged fact")
        tm.session("brief", ttl=10).set("k", 1)
        tm.remember("brief memory", ttl=10)
    clock.advance(10)
    store = Store(root, readonly=True)
    try:
        before = state(store)
        mem = Memory(store, embedder=EMB, clock=clock)
        tm = mem.tenant("acme")
        assert [h.id for h in tm.recall("where is billing", k=3)] == [m.id], "the expired memory is hidden"
        assert tm.get(m.id) == m
        assert tm.count() == 1
        assert [i.id for i in tm.sessions()] == ["s1"]
        s = tm.session("s1", create=False)
        assert (s.get("goal"), s.log("turns"), [n.text for n in s.staged()]) == ("ship", ["hi"], ["staged fact"])
        assert len(tm.audit()) >= 2
        with pytest.raises(SessionExpired):  # expired, not swept: gone from reads all the same
            tm.session("brief", create=False)
        assert tm.recall("brief memory", k=5)[0].id == m.id
        writes: list[Callable[[], Any]] = [
            lambda: tm.remember("nope"), lambda: tm.remember_many([{"text": "nope"}]),
            lambda: tm.supersede(m.id, "nope"), lambda: tm.forget(ids=[m.id]),
            lambda: s.set("goal", "x"), lambda: s.append("turns", "x"), lambda: s.note("x"), lambda: s.delete("goal"),
            lambda: s.clear(), lambda: s.touch(), lambda: tm.session("new"), lambda: tm.consolidate("s1"),
            lambda: tm.reembed(PermutedEmbedder()), lambda: mem.offboard("acme", reason="x"),
            lambda: mem.tenant("fresh", create=True), lambda: tm.sweep(),
        ]
        for call in writes:
            with pytest.raises(ReadOnlyStore):
                call()
        assert state(store) == before
        mem.close()  # a Memory over an open store leaves it open
        assert store.tenant("acme").count() == 2
    finally:
        store.close()


# ---------------------------------------------------------------------------- bad input
@dataclass
class Ctx:
    mem: Memory
    tm: TenantMemory
    clock: FakeClock
    s: WorkingMemory
    m1: MemoryHit
    old: MemoryHit
    extra: dict[str, Any] = field(default_factory=dict)


def _distill(result: Any) -> Callable[[list[Note]], Any]:
    return lambda _notes: result


def _raise(_notes: list[Note]) -> Any:
    raise RuntimeError("summariser exploded")


def _gen(_notes: list[Note]) -> Any:
    yield {"text": "first is fine"}
    raise ValueError("generator broke halfway")


Case = tuple[str, Callable[[Ctx], Any], type[TenantVecError], str | Callable[[Ctx], str]]
BAD: list[Case] = [
    # remember / remember_many: text, kind, source, confidence, validity, ttl, metadata
    ("empty text", lambda c: c.tm.remember(""), InvalidArgument, "''"),
    ("blank text", lambda c: c.tm.remember("  \n"), InvalidArgument, "'  \\n'"),
    ("int text", lambda c: c.tm.remember(42), InvalidArgument, "42"),
    ("None text", lambda c: c.tm.remember(None), InvalidArgument, "None"),
    ("bytes text", lambda c: c.tm.remember(b"raw"), InvalidArgument, "b'raw'"),
    ("huge text", lambda c: c.tm.remember("x" * 40_000), InvalidArgument, "40000"),
    ("unknown kind", lambda c: c.tm.remember("t", kind="fact"), InvalidArgument, "'fact'"),
    ("empty kind", lambda c: c.tm.remember("t", kind=""), InvalidArgument, "''"),
    ("unknown source", lambda c: c.tm.remember("t", source="robot"), InvalidArgument, "'robot'"),
    ("empty source", lambda c: c.tm.remember("t", source=""), InvalidArgument, "''"),
    ("confidence > 1", lambda c: c.tm.remember("t", confidence=1.5), InvalidArgument, "1.5"),
    ("confidence < 0", lambda c: c.tm.remember("t", confidence=-0.1), InvalidArgument, "-0.1"),
    ("confidence bool", lambda c: c.tm.remember("t", confidence=True), InvalidArgument, "True"),
    ("confidence nan", lambda c: c.tm.remember("t", confidence=math.nan), InvalidArgument, "nan"),
    ("confidence str", lambda c: c.tm.remember("t", confidence="high"), InvalidArgument, "'high'"),
    ("valid_until before valid_from", lambda c: c.tm.remember("t", valid_from=T0, valid_until=T0 - 10),
     InvalidArgument, str(T0 - 10)),
    ("valid_until == valid_from", lambda c: c.tm.remember("t", valid_until=c.clock()), InvalidArgument, str(T0)),
    ("valid_from str", lambda c: c.tm.remember("t", valid_from="yesterday"), InvalidArgument, "'yesterday'"),
    ("valid_until inf", lambda c: c.tm.remember("t", valid_until=math.inf), InvalidArgument, "inf"),
    ("ttl zero", lambda c: c.tm.remember("t", ttl=0), InvalidArgument, "ttl"),
    ("ttl negative", lambda c: c.tm.remember("t", ttl=-5), InvalidArgument, "-5"),
    ("ttl str", lambda c: c.tm.remember("t", ttl="1h"), InvalidArgument, "'1h'"),
    ("ttl bool", lambda c: c.tm.remember("t", ttl=True), InvalidArgument, "True"),
    ("ttl inf", lambda c: c.tm.remember("t", ttl=math.inf), InvalidArgument, "inf"),
    ("reserved metadata key", lambda c: c.tm.remember("t", metadata={"mem:kind": "x"}), InvalidArgument, "'mem:kind'"),
    ("reserved key mem:other", lambda c: c.tm.remember("t", metadata={"ok": 1, "mem:x": 2}), InvalidArgument,
     "'mem:x'"),
    ("metadata list", lambda c: c.tm.remember("t", metadata=["a"]), InvalidArgument, "list"),
    ("metadata list of dicts", lambda c: c.tm.remember("t", metadata=[{"a": 1}]), InvalidArgument, "list"),
    ("metadata set value", lambda c: c.tm.remember("t", metadata={"a": {1, 2}}), InvalidArgument, "set"),
    ("session empty", lambda c: c.tm.remember("t", session=""), InvalidArgument, "''"),
    ("session int", lambda c: c.tm.remember("t", session=5), InvalidArgument, "5"),
    ("many: a str", lambda c: c.tm.remember_many("text"), InvalidArgument, "'text'"),
    ("many: bad item in the middle", lambda c: c.tm.remember_many([{"text": "ok"}, {"text": ""}, {"text": "ok2"}]),
     InvalidArgument, "''"),
    ("many: unknown key", lambda c: c.tm.remember_many([{"text": "ok", "colour": "red"}]), InvalidArgument,
     "colour"),
    ("many: no text", lambda c: c.tm.remember_many([{"kind": "semantic"}]), InvalidArgument, "'text'"),
    ("many: int item", lambda c: c.tm.remember_many([7]), InvalidArgument, "int"),
    ("many: bad note", lambda c: c.tm.remember_many([Note("x", kind="fact")]), InvalidArgument, "'fact'"),
    ("many: another tenant's note", lambda c: c.tm.remember_many([Note("ok"), Note("x", tenant="other")]),
     TenantMismatch, "'other'"),
    # get / count / recall
    ("get int id", lambda c: c.tm.get(123), InvalidArgument, "123"),
    ("get empty id", lambda c: c.tm.get(""), InvalidArgument, "''"),
    ("count unknown kind", lambda c: c.tm.count("fact"), InvalidArgument, "'fact'"),
    ("recall empty query", lambda c: c.tm.recall(""), InvalidArgument, "''"),
    ("recall int query", lambda c: c.tm.recall(3), InvalidArgument, "3"),
    ("recall k 0", lambda c: c.tm.recall("q", k=0), InvalidArgument, "0"),
    ("recall k str", lambda c: c.tm.recall("q", k="5"), InvalidArgument, "'5'"),
    ("recall unknown kind", lambda c: c.tm.recall("q", kinds=["fact"]), InvalidArgument, "'fact'"),
    ("recall no kinds", lambda c: c.tm.recall("q", kinds=[]), InvalidArgument, "[]"),
    ("recall unknown source", lambda c: c.tm.recall("q", sources=["bot"]), InvalidArgument, "'bot'"),
    ("recall min_confidence 2", lambda c: c.tm.recall("q", min_confidence=2), InvalidArgument, "2"),
    ("recall since str", lambda c: c.tm.recall("q", since="last week"), InvalidArgument, "'last week'"),
    ("recall until nan", lambda c: c.tm.recall("q", until=math.nan), InvalidArgument, "nan"),
    ("recall as_of bool", lambda c: c.tm.recall("q", as_of=True), InvalidArgument, "True"),
    ("recall where str", lambda c: c.tm.recall("q", where="topic"), InvalidArgument, "str"),
    ("recall where bad op", lambda c: c.tm.recall("q", where={"topic": {"$near": 1}}), InvalidFilter, "$near"),
    ("recall rank", lambda c: c.tm.recall("q", rank="best"), InvalidArgument, "'best'"),
    ("recall weights", lambda c: c.tm.recall("q", rank="weighted", weights={"novelty": 1}), InvalidArgument,
     "novelty"),
    ("recall negative weight", lambda c: c.tm.recall("q", rank="weighted", weights={"recency": -1}),
     InvalidArgument, "-1"),
    ("recall half_life 0", lambda c: c.tm.recall("q", rank="weighted", half_life=0), InvalidArgument, "half_life"),
    # supersede / history / forget
    ("supersede unknown", lambda c: c.tm.supersede("nope", "t"), MemoryNotFound, "'nope'"),
    ("supersede superseded", lambda c: c.tm.supersede(c.old.id, "t"), InvalidArgument, "superseded"),
    ("supersede empty text", lambda c: c.tm.supersede(c.m1.id, ""), InvalidArgument, "''"),
    ("supersede bad kind", lambda c: c.tm.supersede(c.m1.id, "t", kind="fact"), InvalidArgument, "'fact'"),
    ("supersede bad confidence", lambda c: c.tm.supersede(c.m1.id, "t", confidence=3), InvalidArgument, "3"),
    ("supersede reason int", lambda c: c.tm.supersede(c.m1.id, "t", reason=5), InvalidArgument, "5"),
    ("history unknown", lambda c: c.tm.history("nope"), MemoryNotFound, "'nope'"),
    ("forget unknown id", lambda c: c.tm.forget(ids=[c.m1.id, "nope"], reason="x"), MemoryNotFound, "'nope'"),
    ("forget neither", lambda c: c.tm.forget(), InvalidArgument, "ids="),
    ("forget ids str", lambda c: c.tm.forget(ids=c.m1.id), InvalidArgument, "str"),
    ("forget int id", lambda c: c.tm.forget(ids=[5]), InvalidArgument, "5"),
    ("forget where str", lambda c: c.tm.forget(where="all"), InvalidArgument, "str"),
    ("forget where bad", lambda c: c.tm.forget(where={"$bogus": 1}), InvalidFilter, "$bogus"),
    ("forget reason int", lambda c: c.tm.forget(ids=[c.m1.id], reason=7), InvalidArgument, "7"),
    ("forget the other tenant's id", lambda c: c.tm.forget(ids=[c.extra["foreign"]]), MemoryNotFound,
     lambda c: repr(c.extra["foreign"])),
    ("supersede the other tenant's id", lambda c: c.tm.supersede(c.extra["foreign"], "t"), MemoryNotFound,
     lambda c: repr(c.extra["foreign"])),
    # sessions and working memory
    ("session id empty", lambda c: c.tm.session(""), InvalidArgument, "''"),
    ("session id padded", lambda c: c.tm.session(" s1"), InvalidArgument, "' s1'"),
    ("session id NUL", lambda c: c.tm.session("a\x00b"), InvalidArgument, "'a\\x00b'"),
    ("session id int", lambda c: c.tm.session(42), InvalidArgument, "42"),
    ("session id too long", lambda c: c.tm.session("x" * 129), InvalidArgument, "xxxxxxxx"),
    ("session id too many bytes", lambda c: c.tm.session("\U0001f600" * 40), InvalidArgument, "\U0001f600"),
    ("session id lone surrogate", lambda c: c.tm.session("\ud800"), InvalidArgument, "'\\ud800'"),
    ("long session id, long log name", lambda c: c.tm.session("\u4e2d" * 100), InvalidArgument, "\u4e2d"),
    ("session ttl 0", lambda c: c.tm.session("s2", ttl=0), InvalidArgument, "0"),
    ("session ttl str", lambda c: c.tm.session("s2", ttl="1h"), InvalidArgument, "'1h'"),
    ("existing session bad ttl", lambda c: c.tm.session("s1", ttl=-1), InvalidArgument, "-1"),
    ("unknown session", lambda c: c.tm.session("ghost", create=False), SessionNotFound, "'ghost'"),
    ("set bytes", lambda c: c.s.set("k", b"\x00raw"), InvalidArgument, "bytes"),
    ("set set", lambda c: c.s.set("k", {1, 2}), InvalidArgument, "set"),
    ("set nan", lambda c: c.s.set("k", math.nan), InvalidArgument, "nan"),
    ("set inf in list", lambda c: c.s.set("k", [1, math.inf]), InvalidArgument, "inf"),
    ("set non-str key in value", lambda c: c.s.set("k", {1: "a"}), InvalidArgument, "1"),
    ("set object", lambda c: c.s.set("k", object()), InvalidArgument, "object"),
    ("set huge int", lambda c: c.s.set("k", 2**70), InvalidArgument, str(2**70)),
    ("append negative huge int", lambda c: c.s.append("turns", [-(2**64)]), InvalidArgument, str(-(2**64))),
    ("set lone surrogate", lambda c: c.s.set("k", "\ud800"), InvalidArgument, "'\\ud800'"),
    ("set lone surrogate key", lambda c: c.s.set("k", {"\udc00": 1}), InvalidArgument, "'\\udc00'"),
    ("set self-referencing", lambda c: c.s.set("k", c.extra["loop"]), InvalidArgument, "nests"),
    ("set empty key", lambda c: c.s.set("", 1), InvalidArgument, "''"),
    ("set int key", lambda c: c.s.set(5, 1), InvalidArgument, "5"),
    ("set NUL key", lambda c: c.s.set("a\x00", 1), InvalidArgument, "'a\\x00'"),
    ("get int key", lambda c: c.s.get(5), InvalidArgument, "5"),
    ("append bytes", lambda c: c.s.append("turns", b"x"), InvalidArgument, "bytes"),
    ("append empty log", lambda c: c.s.append("", 1), InvalidArgument, "''"),
    ("log last -1", lambda c: c.s.log("turns", last=-1), InvalidArgument, "-1"),
    ("log last str", lambda c: c.s.log("turns", last="2"), InvalidArgument, "'2'"),
    ("note empty", lambda c: c.s.note(""), InvalidArgument, "''"),
    ("note kind", lambda c: c.s.note("t", kind="fact"), InvalidArgument, "'fact'"),
    ("note source", lambda c: c.s.note("t", source="bot"), InvalidArgument, "'bot'"),
    ("note confidence", lambda c: c.s.note("t", confidence=1.01), InvalidArgument, "1.01"),
    ("note reserved metadata", lambda c: c.s.note("t", metadata={"mem:x": 1}), InvalidArgument, "'mem:x'"),
    ("touch ttl 0", lambda c: c.s.touch(ttl=0), InvalidArgument, "0"),
    # consolidation
    ("consolidate unknown session", lambda c: c.tm.consolidate("ghost"), SessionNotFound, "'ghost'"),
    ("consolidate bad session id", lambda c: c.tm.consolidate(""), InvalidArgument, "''"),
    ("consolidate dedupe -1", lambda c: c.tm.consolidate("s1", dedupe=-1), InvalidArgument, "-1"),
    ("consolidate dedupe bool", lambda c: c.tm.consolidate("s1", dedupe=True), InvalidArgument, "True"),
    ("consolidate dedupe 2", lambda c: c.tm.consolidate("s1", dedupe=2), InvalidArgument, "2"),
    ("distill not callable", lambda c: c.tm.consolidate("s1", "summarise"), InvalidArgument, "'summarise'"),
    ("distill raises", lambda c: c.tm.consolidate("s1", _raise), ConsolidationError, "summariser exploded"),
    ("distill generator raises", lambda c: c.tm.consolidate("s1", _gen), ConsolidationError, "broke halfway"),
    ("distill returns None", lambda c: c.tm.consolidate("s1", _distill(None)), ConsolidationError, "None"),
    ("distill returns int", lambda c: c.tm.consolidate("s1", _distill(42)), ConsolidationError, "int"),
    ("distill returns a str", lambda c: c.tm.consolidate("s1", _distill("text")), ConsolidationError, "'text'"),
    ("distill item int", lambda c: c.tm.consolidate("s1", _distill([1])), ConsolidationError, "int"),
    ("distill item without text", lambda c: c.tm.consolidate("s1", _distill([{"kind": "semantic"}])),
     ConsolidationError, "'text'"),
    ("distill item empty text", lambda c: c.tm.consolidate("s1", _distill([{"text": ""}])), ConsolidationError,
     "''"),
    ("distill wrong kind", lambda c: c.tm.consolidate("s1", _distill([{"text": "t", "kind": "fact"}])),
     ConsolidationError, "'fact'"),
    ("distill wrong kind note", lambda c: c.tm.consolidate("s1", _distill([Note("t", kind="fact")])),
     ConsolidationError, "'fact'"),
    ("distill confidence", lambda c: c.tm.consolidate("s1", _distill([{"text": "t", "confidence": 7}])),
     ConsolidationError, "7"),
    ("distill unknown key", lambda c: c.tm.consolidate("s1", _distill([{"text": "t", "colour": 1}])),
     ConsolidationError, "colour"),
    ("distill reserved metadata", lambda c: c.tm.consolidate("s1", _distill([{"text": "t", "metadata": {"mem:a": 1}}])),
     ConsolidationError, "'mem:a'"),
    ("distill foreign tenant", lambda c: c.tm.consolidate("s1", _distill([{"text": "t", "tenant": "other"}])),
     TenantMismatch, "'other'"),
    ("distill foreign session", lambda c: c.tm.consolidate("s1", _distill([Note("t", session="s9")])),
     TenantMismatch, "'s9'"),
    ("distill good then bad", lambda c: c.tm.consolidate("s1", _distill([{"text": "fine"}, {"text": " "}])),
     ConsolidationError, "' '"),
    # expired session: every call on it
    ("expired: set", lambda c: c.s.set("goal", "x"), SessionExpired, "'s1'"),
    ("expired: get", lambda c: c.s.get("goal"), SessionExpired, "'s1'"),
    ("expired: append", lambda c: c.s.append("turns", 1), SessionExpired, "'s1'"),
    ("expired: note", lambda c: c.s.note("x"), SessionExpired, "'s1'"),
    ("expired: staged", lambda c: c.s.staged(), SessionExpired, "'s1'"),
    ("expired: session without create", lambda c: c.tm.session("s1", create=False), SessionExpired, "'s1'"),
    ("expired: consolidate", lambda c: c.tm.consolidate("s1"), SessionExpired, "'s1'"),
    ("expired: consolidate with distill", lambda c: c.tm.consolidate("s1", _raise), SessionExpired, "'s1'"),
    # audit / reembed / Memory-level entry points
    ("audit ops str", lambda c: c.tm.audit(ops="remember"), InvalidArgument, "'remember'"),
    ("audit limit -1", lambda c: c.tm.audit(limit=-1), InvalidArgument, "-1"),
    ("audit since str", lambda c: c.tm.audit(since="yesterday"), InvalidArgument, "'yesterday'"),
    ("reembed not an embedder", lambda c: c.tm.reembed("model"), InvalidArgument, "str"),
    ("reembed other dim", lambda c: c.tm.reembed(HashingEmbedder(dim=8)), DimensionMismatch, "8"),
    ("reembed batch 0", lambda c: c.tm.reembed(PermutedEmbedder(), batch=0), InvalidArgument, "0"),
    ("tenant unknown", lambda c: c.mem.tenant("ghost"), TenantNotFound, "'ghost'"),
    ("tenant bad id", lambda c: c.mem.tenant("a/b", create=True), InvalidTenantId, "a/b"),
    ("tenant bad actor", lambda c: c.mem.tenant("acme", actor=""), InvalidArgument, "''"),
    ("consolidate_many str", lambda c: c.mem.consolidate_many("acme"), InvalidArgument, "'acme'"),
    ("consolidate_many triples", lambda c: c.mem.consolidate_many([("acme", "s1", "x")]), InvalidArgument, "'x'"),
    ("offboard no reason", lambda c: c.mem.offboard("acme", reason=""), InvalidArgument, "''"),
    ("offboard reason None", lambda c: c.mem.offboard("acme", reason=None), InvalidArgument, "None"),
    ("offboard unknown", lambda c: c.mem.offboard("ghost", reason="x"), TenantNotFound, "'ghost'"),
]


@pytest.fixture(scope="module")
def ctx_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A store made once for the bad-input cases (each case runs on a copy of it): tenant
    "acme" with a memory, a superseded one and a session holding a key, a log entry and a
    staged note; tenant "other" with one memory."""
    root = tmp_path_factory.mktemp("bad-input") / "store"
    with open_memory(root, FakeClock()) as mem:
        tm = mem.tenant("acme", create=True)
        m1 = tm.remember("Acme bills through PostgreSQL", kind="semantic", source="user")
        old = tm.remember("Acme used Oracle")
        tm.supersede(old.id, "Acme left Oracle")
        s = tm.session("s1", ttl=3600)
        s.set("goal", "ship")
        s.append("turns", {"u": "hi"})
        s.note("Prefers invoices by email", kind="procedural", source="user")
        foreign = mem.tenant("other", create=True).remember("foreign fact")
    return root, {"m1": m1.id, "old": old.id, "foreign": foreign.id}


@pytest.fixture
def ctx(ctx_template: tuple[Path, dict[str, str]], tmp_path: Path, clock: FakeClock):
    template, ids = ctx_template
    root = tmp_path / "store"
    shutil.copytree(template, root)
    with open_memory(root, clock) as mem:
        tm = mem.tenant("acme")
        loop: list[Any] = []
        loop.append(loop)
        yield Ctx(mem, tm, clock, tm.session("s1", create=False), tm.get(ids["m1"]), tm.get(ids["old"]),
                  {"foreign": ids["foreign"], "loop": loop})


@pytest.mark.parametrize(("what", "call", "exc", "needle"), BAD, ids=[c[0] for c in BAD])
def test_bad_input_raises_and_writes_nothing(ctx: Ctx, what: str, call: Callable[[Ctx], Any],
                                             exc: type[TenantVecError], needle: str | Callable[[Ctx], str]):
    if what.startswith("expired"):
        ctx.clock.advance(3600)  # the session's TTL
    if callable(needle):
        needle = needle(ctx)
    before = state(ctx.mem.store)
    with pytest.raises(exc) as err:
        call(ctx)
    assert isinstance(err.value, TenantVecError)
    assert needle in str(err.value), f"{what}: {str(err.value)!r} does not name {needle!r}"
    assert state(ctx.mem.store) == before, f"{what} wrote something"


def test_bad_memory_arguments_create_nothing(tmp_path: Path, clock: FakeClock):
    path = tmp_path / "never"
    with pytest.raises(InvalidArgument, match="str"):
        Memory(path, embedder="not an embedder", clock=clock)
    with pytest.raises(InvalidArgument, match="''"):
        Memory(path, embedder=EMB, actor="")
    assert not path.exists()
    with Store(tmp_path / "s", dim=DIM) as store, pytest.raises(InvalidArgument, match="dim"):
        Memory(store, embedder=EMB, dim=DIM)
    with open_memory(tmp_path / "c", FakeClock(math.nan)) as mem, pytest.raises(InvalidArgument, match="nan"):
        mem.tenant("acme", create=True).remember("x")


def test_consolidating_twice_writes_nothing_the_second_time(ctx: Ctx):
    first = ctx.tm.consolidate("s1")
    before = state(ctx.mem.store)
    second = ctx.tm.consolidate("s1")
    assert second.replayed
    assert second.ids == first.ids
    assert second.added == first.added
    assert state(ctx.mem.store) == before


def test_memory_module_exports():
    import tenantvec.memory as m

    assert set(m.__all__) >= {"Memory", "TenantMemory", "WorkingMemory", "MemoryHit", "Note", "ConsolidationReport",
                              "ErasureReport", "AuditEntry", "KINDS", "SOURCES"}
    assert m.KINDS == ("episodic", "semantic", "procedural")
    assert m.SOURCES == ("user", "agent", "tool", "system")



def test_compact_sweeps_expired_sessions_and_purges_forgotten_text(mem: Memory, clock: FakeClock):
    tm = mem.tenant("sweeper", create=True)
    tm.session("old", ttl=60).set("k", "v")
    tm.session("live").set("k", "v")
    gone = tm.remember("the secret launch codes are 0000")
    tm.forget(ids=[gone.id], reason="user request")
    clock.advance(61)
    tm.compact()
    assert [s.id for s in tm.sessions()] == ["live"]
    assert tm.tenant.wm_items(b"s/old\x00") == []
    data = b"".join(p.read_bytes() for p in mem.store.tenant_path("sweeper").rglob("*") if p.is_file())
    assert b"launch codes" not in data


def test_concurrent_appends_to_one_log_get_distinct_positions(tm: TenantMemory):
    import threading

    s = tm.session("busy")
    positions: list[int] = []
    lock = threading.Lock()
    go = threading.Barrier(4)

    def worker(w: int) -> None:
        go.wait()
        for i in range(200):
            pos = s.append("turns", {"w": w, "i": i})
            with lock:
                positions.append(pos)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(positions) == list(range(800))
    items = s.log("turns")
    assert len(items) == 800
    assert sorted((d["w"], d["i"]) for d in items) == [(w, i) for w in range(4) for i in range(200)]
    assert s.log("turns", last=3) == items[-3:]


def test_log_last_longer_than_half_the_log(tm: TenantMemory):
    s = tm.session("tail")
    for i in range(8):
        s.append("l", i)
    assert s.log("l", last=10) == list(range(8))
    assert s.log("l", last=5) == [3, 4, 5, 6, 7]
    for i in range(8, 600):
        s.append("l", i)
    assert s.log("l", last=300) == list(range(300, 600))
    assert s.log("l", last=0) == []
