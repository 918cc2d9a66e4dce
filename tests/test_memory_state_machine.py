"""Stateful property test of the agent-memory layer: random remember / supersede / forget /
session writes / notes / consolidate / clock advances past TTLs / sweep / close and reopen,
checked after every step against a plain-Python model.

Invariants: the count per kind, ``get`` of every memory the model holds, ``recall`` equal
to an exact cosine search over the memories the model says are visible (ties in any
order), the working memory of every live session, the live sessions listed, and an
intact audit chain. Time is a fake clock (no sleeps); consolidation runs with
``dedupe=None`` so that every note becomes exactly one memory.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test
from oracles import distances, nearest

from tenantvec._audit import check_chain
from tenantvec.embedders import HashingEmbedder
from tenantvec.errors import MemoryNotFound, SessionExpired, SessionNotFound
from tenantvec.memory import KINDS, SOURCES, Memory, TenantMemory, WorkingMemory

T0 = 1_700_000_000.0
EMB = HashingEmbedder(dim=32)
WORDS = ["billing", "invoice", "postgres", "email", "deploy", "friday", "refund", "acme", "cache", "support"]
SESSIONS = ["s1", "s2", "s3"]
KEYS = ["goal", "step", "user"]
LOGS = ["turns", "tools"]
OPTIONS: dict[str, Any] = {"durability": "process", "hnsw_threshold": 10_000, "flush_interval": 0}

texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


@dataclass
class Mem:
    """A long-term memory as the model expects it."""

    text: str
    kind: str
    source: str
    confidence: float
    created: float
    session: str | None = None
    expires: float | None = None
    valid_until: float | None = None
    supersedes: str | None = None
    superseded_by: str | None = None


@dataclass
class Sess:
    """A working-memory session as the model expects it."""

    created: float
    ttl: float | None
    expires: float | None
    keys: dict[str, Any] = field(default_factory=dict)
    logs: dict[str, list[Any]] = field(default_factory=dict)
    notes: list[tuple[str, str, str, float]] = field(default_factory=list)
    rounds: int = 0
    last_ids: tuple[str, ...] = ()


class MemoryMachine(RuleBasedStateMachine):
    base_dir: Path
    runs = 0

    def __init__(self) -> None:
        super().__init__()
        MemoryMachine.runs += 1
        self.path = self.base_dir / f"run{MemoryMachine.runs}"
        self.clock = Clock()
        self.mem: Memory | None = None
        self.tm: TenantMemory
        self.mems: dict[str, Mem] = {}
        self.sessions: dict[str, Sess] = {}
        self.other_ids: set[str] = set()
        self.probe = 0

    # -- helpers ----------------------------------------------------------------------
    def _open(self) -> None:
        self.mem = Memory(self.path, embedder=EMB, clock=self.clock, **OPTIONS)
        self.tm = self.mem.tenant("acme")

    def now(self) -> float:
        return self.clock.t

    def expired(self, m: Mem) -> bool:
        return m.expires is not None and m.expires <= self.now()

    def live_sessions(self) -> list[str]:
        return sorted(sid for sid, s in self.sessions.items() if s.expires is None or self.now() < s.expires)

    def current(self) -> list[str]:
        return [i for i, m in self.mems.items() if m.superseded_by is None and not self.expired(m)]

    def model_sweep(self) -> tuple[int, int]:
        dead_s = [sid for sid, s in self.sessions.items() if s.expires is not None and self.now() >= s.expires]
        dead_m = [i for i, m in self.mems.items() if self.expired(m)]
        for sid in dead_s:
            del self.sessions[sid]
        for i in dead_m:
            del self.mems[i]
        return len(dead_s), len(dead_m)

    def visible(self, *, kinds: list[str] | None = None, include_superseded: bool = False,
                as_of: float | None = None) -> list[str]:
        at = self.now() if as_of is None else as_of
        out = []
        for i, m in self.mems.items():
            if self.expired(m) or (kinds is not None and m.kind not in kinds) or m.created > at:
                continue
            if not include_superseded and m.valid_until is not None and m.valid_until <= at:
                continue
            out.append(i)
        return out

    # -- rules ------------------------------------------------------------------------
    @initialize()
    def setup(self) -> None:
        with Memory(self.path, embedder=EMB, clock=self.clock, **OPTIONS) as mem:
            mem.tenant("acme", create=True)
            other = mem.tenant("other", create=True)  # the same words, in another tenant
            self.other_ids = {h.id for h in other.remember_many([{"text": w} for w in WORDS])}
            other.session("s1").note("acme billing postgres")
        self._open()

    @rule(text=texts, kind=st.sampled_from(KINDS), source=st.sampled_from(SOURCES),
          confidence=st.sampled_from([0.2, 0.5, 1.0]), ttl=st.sampled_from([None, None, 40.0, 150.0]))
    def remember(self, text: str, kind: str, source: str, confidence: float, ttl: float | None) -> None:
        hit = self.tm.remember(text, kind=kind, source=source, confidence=confidence, ttl=ttl)
        assert hit.id not in self.mems
        self.mems[hit.id] = Mem(text, kind, source, confidence, self.now(),
                                expires=None if ttl is None else self.now() + ttl)

    @precondition(lambda self: self.current())
    @rule(data=st.data(), text=texts)
    def supersede(self, data: st.DataObject, text: str) -> None:
        old_id = data.draw(st.sampled_from(self.current()))
        old = self.mems[old_id]
        new = self.tm.supersede(old_id, text, reason="changed")
        assert (new.kind, new.source, new.confidence, new.supersedes) == (old.kind, old.source, old.confidence, old_id)
        old.superseded_by, old.valid_until = new.id, self.now()
        self.mems[new.id] = Mem(text, old.kind, old.source, old.confidence, self.now(), supersedes=old_id)

    @precondition(lambda self: self.mems)
    @rule(data=st.data(), unknown=st.booleans())
    def forget(self, data: st.DataObject, unknown: bool) -> None:
        ids = data.draw(st.lists(st.sampled_from(list(self.mems)), min_size=1, max_size=3))
        if unknown:
            with pytest.raises(MemoryNotFound):
                self.tm.forget(ids=[*ids, "no-such-memory"], reason="test")
            return
        assert self.tm.forget(ids=ids, reason="test") == len(set(ids))
        for i in set(ids):
            del self.mems[i]

    def _session(self, sid: str, ttl: float | None = None) -> WorkingMemory:
        """``tm.session(sid, ttl=ttl)``, and the same in the model: a live session is kept (its
        TTL restarted when ``ttl`` is given), an absent or expired one opened afresh."""
        wm = self.tm.session(sid, ttl=ttl)
        s = self.sessions.get(sid)
        if s is not None and (s.expires is None or self.now() < s.expires):
            if ttl is not None:
                s.ttl, s.expires = ttl, self.now() + ttl
        else:
            self.sessions[sid] = Sess(self.now(), ttl, None if ttl is None else self.now() + ttl)
        return wm

    def staged_sessions(self) -> list[str]:
        return [sid for sid in self.live_sessions() if self.sessions[sid].notes]

    @rule(sid=st.sampled_from(SESSIONS), ttl=st.sampled_from([None, 30.0, 100.0]))
    def open_session(self, sid: str, ttl: float | None) -> None:
        self._session(sid, ttl)

    @rule(sid=st.sampled_from(SESSIONS), key=st.sampled_from(KEYS), value=json_values)
    def session_set(self, sid: str, key: str, value: Any) -> None:
        self._session(sid).set(key, value)
        self.sessions[sid].keys[key] = value

    @rule(sid=st.sampled_from(SESSIONS), key=st.sampled_from(KEYS))
    def session_delete(self, sid: str, key: str) -> None:
        wm = self._session(sid)
        was = self.sessions[sid].keys.pop(key, _MISSING) is not _MISSING
        assert wm.delete(key) is was

    @rule(sid=st.sampled_from(SESSIONS), log=st.sampled_from(LOGS), item=json_values)
    def session_append(self, sid: str, log: str, item: Any) -> None:
        wm = self._session(sid)
        items = self.sessions[sid].logs.setdefault(log, [])
        assert wm.append(log, item) == len(items)
        items.append(item)

    @rule(sid=st.sampled_from(SESSIONS), text=texts, kind=st.sampled_from(KINDS), source=st.sampled_from(SOURCES),
          confidence=st.sampled_from([0.3, 1.0]))
    def note(self, sid: str, text: str, kind: str, source: str, confidence: float) -> None:
        self._session(sid).note(text, kind=kind, source=source, confidence=confidence)
        self.sessions[sid].notes.append((text, kind, source, confidence))

    @precondition(lambda self: self.live_sessions())
    @rule(data=st.data())
    def clear(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(self.live_sessions()))
        s = self.sessions[sid]
        n = len(s.keys) + sum(map(len, s.logs.values())) + len(s.notes)
        assert self.tm.session(sid, create=False).clear() == n
        s.keys, s.logs, s.notes = {}, {}, []

    @precondition(lambda self: self.staged_sessions())
    @rule(data=st.data())
    def consolidate_staged(self, data: st.DataObject) -> None:
        self.consolidate(data.draw(st.sampled_from(self.staged_sessions())))

    @rule(sid=st.sampled_from(SESSIONS))
    def consolidate(self, sid: str) -> None:
        s = self.sessions.get(sid)
        if s is None:
            with pytest.raises(SessionNotFound):
                self.tm.consolidate(sid, dedupe=None)
            return
        if s.expires is not None and self.now() >= s.expires:
            with pytest.raises(SessionExpired):
                self.tm.consolidate(sid, dedupe=None)
            return
        report = self.tm.consolidate(sid, dedupe=None)
        if not s.notes:
            assert report.ids == s.last_ids
            assert report.replayed is (s.rounds > 0)
            return
        assert not report.replayed
        assert (report.reinforced, report.skipped) == ((), 0)
        assert len(report.ids) == len(report.added) == len(s.notes) == len(set(report.ids))
        for mid, (text, kind, source, confidence) in zip(report.ids, s.notes):
            assert mid not in self.mems
            self.mems[mid] = Mem(text, kind, source, confidence, self.now(), session=sid)
        s.notes, s.rounds, s.last_ids = [], s.rounds + 1, report.ids

    @rule(seconds=st.sampled_from([1.0, 15.0, 35.0, 60.0, 160.0]))
    def advance(self, seconds: float) -> None:
        self.clock.t += seconds

    @rule()
    def advance_past_every_ttl(self) -> None:
        self.clock.t += 200.0

    @rule()
    def sweep(self) -> None:
        report = self.tm.sweep()
        assert (report.sessions, report.memories) == self.model_sweep()

    @rule()
    def reopen(self) -> None:
        assert self.mem is not None
        self.mem.close()
        self._open()  # the first handle sweeps
        self.model_sweep()

    # -- invariants -------------------------------------------------------------------
    @invariant()
    def counts(self) -> None:
        if self.mem is None:
            return
        for kind in KINDS:
            assert self.tm.count(kind) == len(self.visible(kinds=[kind])), kind
        assert self.tm.count() == len(self.visible())
        assert self.tm.count(include_superseded=True) == len(self.visible(include_superseded=True))
        assert self.tm.tenant.count() == len(self.mems), "records = the model's memories, expired ones until swept"

    @invariant()
    def get_every_memory(self) -> None:
        if self.mem is None:
            return
        for i, m in self.mems.items():
            hit = self.tm.get(i)
            if self.expired(m):
                assert hit is None
                continue
            assert hit is not None, i
            assert (hit.text, hit.kind, hit.source, hit.confidence, hit.session, hit.created_at) == (
                m.text, m.kind, m.source, m.confidence, m.session, m.created)
            assert (hit.expires_at, hit.valid_until, hit.supersedes, hit.superseded_by) == (
                m.expires, m.valid_until, m.supersedes, m.superseded_by)

    @invariant()
    def recall_is_exact(self) -> None:
        if self.mem is None:
            return
        self.probe += 1
        rng = np.random.default_rng(self.probe)
        query = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 4))))
        kind = str(rng.choice(KINDS))
        back = float(rng.choice([0.0, 30.0, 100.0]))
        cases: list[tuple[dict[str, Any], list[str]]] = [
            ({}, self.visible()),
            ({"kinds": [kind], "include_superseded": True}, self.visible(kinds=[kind], include_superseded=True)),
            ({"as_of": self.now() - back}, self.visible(as_of=self.now() - back)),
        ]
        for kwargs, allowed in cases:
            k = 5
            hits = self.tm.recall(query, k=k, **kwargs)
            assert len(hits) == min(k, len(allowed)), (kwargs, len(hits), len(allowed))
            assert not {h.id for h in hits} & self.other_ids, "another tenant's memory"
            if not allowed:
                continue
            dist = distances("cosine", EMB.embed_documents([self.mems[i].text for i in allowed]),
                             EMB.embed_query(query))
            by_id = dict(zip(allowed, dist.tolist()))
            for h in hits:
                assert h.id in by_id, (kwargs, h)
                assert 1.0 - h.similarity == pytest.approx(by_id[h.id], abs=1e-5)
            np.testing.assert_allclose([1.0 - h.similarity for h in hits], dist[nearest(dist, k)], atol=1e-5)

    @invariant()
    def working_memory(self) -> None:
        if self.mem is None:
            return
        live = self.live_sessions()
        infos = self.tm.sessions()
        assert [i.id for i in infos] == live
        for info in infos:
            s = self.sessions[info.id]
            assert (info.created_at, info.expires_at, info.staged, info.rounds) == (
                s.created, s.expires, len(s.notes), s.rounds)
            wm = self.tm.session(info.id, create=False)
            assert wm.items() == s.keys
            for name in LOGS:
                assert wm.log(name) == s.logs.get(name, [])
            assert [(n.text, n.kind, n.source, n.confidence) for n in wm.staged()] == s.notes
        for sid in set(self.sessions) - set(live):  # expired, not yet swept: gone from every read
            with pytest.raises(SessionExpired):
                WorkingMemory(self.tm.tenant, sid, self.clock).items()

    @invariant()
    def audit_chain_intact(self) -> None:
        if self.mem is None:
            return
        with self.tm.tenant.reading() as view:
            assert check_chain(view.side("audit").items()) == []

    def teardown(self) -> None:
        try:
            if self.mem is not None:
                report = self.mem.store.verify("acme")
                assert report.ok, report.problems
        finally:
            if self.mem is not None:
                self.mem.close()
            shutil.rmtree(self.path, ignore_errors=True)


_MISSING = object()


def test_memory_state_machine(tmp_path: Path) -> None:
    MemoryMachine.base_dir = tmp_path
    run_state_machine_as_test(
        MemoryMachine,
        settings=settings(
            max_examples=35,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
