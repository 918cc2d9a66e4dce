"""``TenantMemory``: one tenant's agent memory, on that tenant's shard only.

Long-term memories are records of the shard (text as the document, the embedder's vector,
the ``mem:`` metadata of ``_items``); working memory is the shard's ``wm`` side table
(``_working``); every change appends an audit entry (``tenantvec._audit``) in the same
transaction. Embeddings are computed before a transaction opens, never inside one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from .. import _audit
from .._aio import twin
from .._audit import AuditEntry
from .._validate import check_k
from ..embedders import check_fingerprint, fingerprint
from ..errors import (
    DimensionMismatch,
    EmbedderMismatch,
    InvalidArgument,
    MemoryNotFound,
    SessionExpired,
    SessionNotFound,
    TenantMismatch,
)
from . import _working
from ._items import (
    CONFIDENCE,
    CREATED,
    EXPIRES,
    ITEM_KEYS,
    KIND,
    KINDS,
    LAST_SEEN,
    SOURCE,
    SOURCES,
    SUPERSEDED_BY,
    SUPERSEDES,
    VALID_UNTIL,
    ConsolidationReport,
    Fields,
    MemoryHit,
    Note,
    check_choice,
    check_choices,
    check_confidence,
    check_fields,
    check_positive,
    check_text,
    is_memory,
    new_id,
    now_of,
    row_vector,
    to_hit,
    to_time,
    visible,
)
from ._working import WorkingMemory

if TYPE_CHECKING:
    from .. import CompactReport
    from .._tenant import Tenant
    from .._types import Record
    from ..embedders import Embedder

log = logging.getLogger("tenantvec")

RANKS: Final = ("similarity", "weighted")
DEFAULT_HALF_LIFE: Final = 30 * 86400.0
DEFAULT_WEIGHTS: Final = {"similarity": 0.7, "recency": 0.2, "confidence": 0.1}


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live working-memory session (``TenantMemory.sessions()``)."""

    id: str
    created_at: float
    expires_at: float | None
    staged: int  # notes waiting for consolidation
    rounds: int  # consolidations done


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What ``TenantMemory.sweep`` removed: expired sessions and TTL-expired memories."""

    sessions: int
    memories: int


class TenantMemory:
    """Agent memory of exactly one tenant (``Memory.tenant(id)``): long-term memories,
    working-memory sessions, consolidation and the audit log, all in that tenant's shard.

    ``actor`` is written into every audit entry this handle appends.
    """

    __slots__ = ("_clock", "_emb", "_fp", "_fp_raw", "_t", "actor", "id")

    def __init__(self, tenant: Tenant, embedder: Embedder, clock: Callable[[], float], actor: str,
                 *, writable: bool) -> None:
        self._t = tenant
        self.id = tenant.id
        self._emb = embedder
        self._clock = clock
        self.actor = actor
        self._fp = fingerprint(embedder)
        self._fp_raw = _working.pack(list(self._fp))
        stored = stored_fingerprint(tenant)
        if stored is not None:
            check_fingerprint(stored, embedder, tenant=self.id)
            return
        dim = tenant.info().dim
        if dim != self._fp[1]:
            raise DimensionMismatch(f"tenant {self.id!r} holds {dim}-d vectors; embedder {self._fp[0]!r} makes "
                                    f"{self._fp[1]}-d ones", tenant=self.id)
        if writable:
            with tenant.transaction() as tx:
                side = tx.side("wm")
                if side.get(_working.FINGERPRINT_KEY) is None:
                    side.put(_working.FINGERPRINT_KEY, self._fp_raw)

    def __repr__(self) -> str:
        return f"TenantMemory({self.id!r}, embedder={self._fp[0]!r})"

    @property
    def tenant(self) -> Tenant:
        """The underlying ``Tenant`` handle (records, queries, transactions)."""
        return self._t

    @property
    def embedder(self) -> Embedder:
        return self._emb

    def _now(self) -> float:
        return now_of(self._clock)

    def _check_embedder(self) -> None:
        raw = self._t.wm_get(_working.FINGERPRINT_KEY)
        if raw is not None and raw != self._fp_raw:
            check_fingerprint(_working.unpack(raw), self._emb, tenant=self.id)

    def _embed(self, texts: list[str]) -> np.ndarray:
        self._check_embedder()
        return self._emb.embed_documents(texts)

    def _audit(self, tx: Any, op: str, *, ids: Sequence[str] = (), counts: Mapping[str, int] | None = None,
               session: str | None = None, reason: str | None = None) -> AuditEntry:
        return _audit.append(tx.side("audit"), op=op, time=self._now(), actor=self.actor, session=session,
                             ids=tuple(ids), counts=dict(counts or {}), reason=reason)

    # ------------------------------------------------------------------ long-term memory
    def remember(self, text: str, *, kind: str = "semantic", source: str = "agent", confidence: float = 1.0,
                 metadata: Mapping[str, Any] | None = None, session: str | None = None,
                 valid_from: Any = None, valid_until: Any = None, ttl: float | None = None) -> MemoryHit:
        """Store one long-term memory and return it.

        ``kind``: episodic | semantic | procedural. ``source``: user (stated or confirmed by a
        user) | agent (inferred) | tool | system. ``confidence`` in [0, 1]. ``session``: the
        session it came from. ``valid_from``/``valid_until``: when the fact holds (unix
        seconds or datetime). ``ttl``: seconds until it expires and is hidden, then swept.

        :raises InvalidArgument: a field is unusable (nothing is written).
        :raises EmbedderMismatch: the tenant was embedded with another embedder.
        """
        return self.remember_many([{"text": text, "kind": kind, "source": source, "confidence": confidence,
                                    "metadata": metadata, "session": session, "valid_from": valid_from,
                                    "valid_until": valid_until, "ttl": ttl}])[0]

    def remember_many(self, items: Iterable[Mapping[str, Any] | Note]) -> list[MemoryHit]:
        """Store several memories in one transaction (one embedding call, one audit entry).

        Each item is a :class:`Note` or a mapping with ``text`` and any of ``remember``'s
        keywords. All are checked before anything is written.

        :raises InvalidArgument: an item is unusable (nothing is written).
        :raises TenantMismatch: a Note is stamped with another tenant (nothing is written).
        """
        now = self._now()
        fields = [self._fields(item, i, now) for i, item in enumerate(_listed(items, self.id))]
        if not fields:
            return []
        vectors = self._embed([f.text for f in fields])
        ids = [new_id() for _ in fields]
        metadata = [f.record_metadata(now) for f in fields]
        with self._t.transaction() as tx:
            tx.add(vectors, ids=ids, documents=[f.text for f in fields], metadata=metadata)
            self._audit(tx, "remember", ids=ids, counts={"added": len(ids)},
                        session=_one_session(fields))
        return [self._hit_of(i, f, md) for i, f, md in zip(ids, fields, metadata, strict=True)]

    def _fields(self, item: Mapping[str, Any] | Note, i: int, now: float) -> Fields:
        if isinstance(item, Note):
            if item.tenant is not None and item.tenant != self.id:
                raise TenantMismatch(f"tenant {self.id!r}: memory {i} is a note stamped with tenant "
                                     f"{item.tenant!r}; nothing was written", tenant=self.id)
            d: dict[str, Any] = {"text": item.text, "kind": item.kind, "source": item.source,
                                 "confidence": item.confidence, "metadata": item.metadata, "session": item.session}
        elif isinstance(item, Mapping):
            d = dict(item)
            unknown = set(d) - ITEM_KEYS
            if unknown or "text" not in d:
                raise InvalidArgument(f"tenant {self.id!r}: memory {i} needs 'text' and may have "
                                      f"{sorted(ITEM_KEYS - {'text'})}; got keys {sorted(d)}", tenant=self.id)
        else:
            raise InvalidArgument(f"tenant {self.id!r}: memory {i} must be a Note or a mapping, got "
                                  f"{type(item).__name__}", tenant=self.id)
        return check_fields(self.id, now, d["text"], _default(d.get("kind"), "semantic"),
                            _default(d.get("source"), "agent"), _default(d.get("confidence"), 1.0),
                            d.get("metadata"), d.get("session"), d.get("valid_from"), d.get("valid_until"),
                            d.get("ttl"))

    def _hit_of(self, mem_id: str, f: Fields, md: dict[str, Any], supersedes: str | None = None) -> MemoryHit:
        return MemoryHit(id=mem_id, text=f.text, kind=f.kind, source=f.source, confidence=f.confidence,
                         created_at=md[CREATED], session=f.session, metadata=dict(f.metadata),
                         valid_from=f.valid_from, valid_until=f.valid_until, expires_at=f.expires,
                         supersedes=supersedes)

    def get(self, memory_id: str) -> MemoryHit | None:
        """The memory with this id (superseded ones too), or None (unknown, forgotten or expired)."""
        recs = self._t.get([_check_id(memory_id, self.id)])
        if not recs or not is_memory(recs[0].metadata):
            return None
        exp = recs[0].metadata.get(EXPIRES)
        return None if exp is not None and exp <= self._now() else to_hit(recs[0])

    def count(self, kind: str | None = None, *, include_superseded: bool = False) -> int:
        """Current memories (of ``kind`` when given): not superseded unless asked, not expired."""
        kinds = list(KINDS) if kind is None else [check_choice(kind, KINDS, "kind", self.id)]
        return _count(self._t, kinds, self._now(), include_superseded)

    def recall(self, query: str, k: int = 5, *, kinds: Sequence[str] | None = None,
               sources: Sequence[str] | None = None, min_confidence: float | None = None,
               since: Any = None, until: Any = None, as_of: Any = None, where: Mapping[str, Any] | None = None,
               include_superseded: bool = False, rank: str = "similarity", half_life: float = DEFAULT_HALF_LIFE,
               weights: Mapping[str, float] | None = None, explain: bool = False) -> list[MemoryHit]:
        """The ``k`` memories most relevant to ``query``, best first.

        Filters (all ANDed): ``kinds``, ``sources``, ``min_confidence``, ``since``/``until``
        (creation time; unix seconds, datetime, or a timedelta meaning "that long ago"),
        ``where`` (the usual filter over the memories' own metadata). Superseded or ended
        memories are hidden unless ``include_superseded``; ``as_of=t`` answers as memory
        stood at t. ``rank="similarity"`` orders by cosine similarity; ``rank="weighted"``
        by ``weights`` (default 0.7 similarity, 0.2 recency, 0.1 confidence) where recency
        halves every ``half_life`` seconds since the memory was made or last reinforced;
        ``explain=True`` puts the components in each hit's ``explain``.

        The seed's one call — the five memories most similar to this query, only from the
        last 90 days, only user-confirmed facts, not inferred context::

            tm.recall(q, k=5, kinds=["semantic"], sources=["user"], since=timedelta(days=90))

        :raises InvalidArgument: a bad argument (nothing is searched).
        :raises InvalidFilter: a malformed ``where``.
        """
        text = check_text(query, self.id, "query")
        k = check_k(k)
        rank = check_choice(rank, RANKS, "rank", self.id)
        w = _weights(weights, self.id) if rank == "weighted" else None
        hl = check_positive(half_life, "half_life", self.id)
        flt = self.recall_filter(kinds=kinds, sources=sources, min_confidence=min_confidence, since=since,
                                 until=until, as_of=as_of, where=where, include_superseded=include_superseded)
        self._check_embedder()
        vec = self._emb.embed_query(text)
        if w is None:
            out = []
            for h in self._t.query(vec, k=k, where=flt):
                sim = 1.0 - h.distance
                out.append(to_hit(h, sim, sim, {"similarity": sim} if explain else None))
            return out
        return self._weighted(vec, k, flt, w, hl, explain)

    def _weighted(self, vec: np.ndarray, k: int, flt: dict[str, Any], w: dict[str, float], half_life: float,
                  explain: bool) -> list[MemoryHit]:
        """Rank by the weighted score. Candidates come in by similarity; the pool widens
        until no memory outside it could outscore the k-th best (its score is at most
        ``w_sim * similarity of the last candidate + w_recency + w_confidence``)."""
        now = self._now()
        n = max(4 * k, 50)
        while True:
            hits = self._t.query(vec, k=n, where=flt)
            ranked = []
            for h in hits:
                sim = 1.0 - h.distance
                md = h.metadata
                age = max(0.0, now - (md.get(LAST_SEEN) or md[CREATED]))
                parts = {"similarity": sim, "recency": 0.5 ** (age / half_life), "confidence": float(md[CONFIDENCE])}
                ranked.append((sum(w[name] * v for name, v in parts.items()), h, parts))
            ranked.sort(key=lambda r: -r[0])
            if len(hits) < n:
                break  # every matching memory is in the pool
            ceiling = w["similarity"] * (1.0 - hits[-1].distance) + w["recency"] + w["confidence"]
            if len(ranked) >= k and ranked[k - 1][0] >= ceiling:
                break
            n *= 4
        return [to_hit(h, p["similarity"], s, {**p, "score": s} if explain else None) for s, h, p in ranked[:k]]

    def recall_filter(self, *, kinds: Sequence[str] | None = None, sources: Sequence[str] | None = None,
                      min_confidence: float | None = None, since: Any = None, until: Any = None,
                      as_of: Any = None, where: Mapping[str, Any] | None = None,
                      include_superseded: bool = False) -> dict[str, Any]:
        """The ``where`` filter ``recall`` runs with these arguments (for ``Tenant.query``)."""
        t, now = self.id, self._now()
        clauses: list[Any] = [{KIND: {"$in": check_choices(kinds, KINDS, "kinds", t) if kinds is not None
                                      else list(KINDS)}}]
        if sources is not None:
            clauses.append({SOURCE: {"$in": check_choices(sources, SOURCES, "sources", t)}})
        if min_confidence is not None:
            clauses.append({CONFIDENCE: {"$gte": check_confidence(min_confidence, t)}})
        if since is not None:
            clauses.append({CREATED: {"$gte": to_time(since, "since", t, now)}})
        if until is not None:
            clauses.append({CREATED: {"$lt": to_time(until, "until", t, now)}})
        at = now if as_of is None else to_time(as_of, "as_of", t, now)
        clauses.extend(visible(at, now, include_superseded=include_superseded, as_of=as_of is not None))
        if where is not None:
            if not isinstance(where, Mapping):
                raise InvalidArgument(f"tenant {t!r}: where must be a dict, got {type(where).__name__}", tenant=t)
            clauses.append(dict(where))
        return {"$and": clauses}

    def supersede(self, memory_id: str, text: str, *, kind: str | None = None, source: str | None = None,
                  confidence: float | None = None, metadata: Mapping[str, Any] | None = None,
                  session: str | None = None, reason: str | None = None) -> MemoryHit:
        """Replace a memory by a new one, keeping both linked: the old one gets
        ``valid_until`` = now and ``superseded_by`` (hidden from recall unless asked), the
        new one ``supersedes``. Unset fields are taken from the old memory. Returns the new one.

        :raises MemoryNotFound: no memory has this id.
        :raises InvalidArgument: it is superseded already (supersede its successor), or a field is unusable.
        """
        old = self._current(memory_id)
        now = self._now()
        f = check_fields(self.id, now, text, kind or old.kind, source or old.source,
                         old.confidence if confidence is None else confidence,
                         old.metadata if metadata is None else metadata, session, None, None, None)
        reason = _reason(reason, self.id)
        vec = self._embed([f.text])
        nid = new_id()
        md = f.record_metadata(now)
        md[SUPERSEDES] = old.id
        with self._t.transaction() as tx:
            recs = tx.get([old.id], include_vectors=True)
            rec = self._live(recs, old.id)
            omd = dict(rec.metadata)
            omd[SUPERSEDED_BY] = nid
            omd[VALID_UNTIL] = min(now, omd.get(VALID_UNTIL, now))
            tx.add(vec, ids=[nid], documents=[f.text], metadata=[md])
            tx.upsert(row_vector(rec), ids=[old.id], documents=[rec.document], metadata=[omd])
            self._audit(tx, "supersede", ids=[old.id, nid], session=session, reason=reason)
        return self._hit_of(nid, f, md, supersedes=old.id)

    def _current(self, memory_id: str) -> MemoryHit:
        hit = self.get(memory_id)
        if hit is None:
            raise MemoryNotFound(f"tenant {self.id!r} has no memory {memory_id!r}", tenant=self.id)
        if hit.superseded_by is not None:
            raise InvalidArgument(f"tenant {self.id!r}: memory {memory_id!r} is already superseded by "
                                  f"{hit.superseded_by!r}; supersede that one", tenant=self.id)
        return hit

    def _live(self, recs: list[Record], memory_id: str) -> Record:
        if not recs or not is_memory(recs[0].metadata):
            raise MemoryNotFound(f"tenant {self.id!r} has no memory {memory_id!r}", tenant=self.id)
        if recs[0].metadata.get(SUPERSEDED_BY) is not None:
            raise InvalidArgument(f"tenant {self.id!r}: memory {memory_id!r} was superseded meanwhile by "
                                  f"{recs[0].metadata[SUPERSEDED_BY]!r}", tenant=self.id)
        return recs[0]

    def history(self, memory_id: str) -> list[MemoryHit]:
        """The supersession chain through this memory, oldest first (forgotten links end it).

        :raises MemoryNotFound: no memory has this id.
        """
        mid = _check_id(memory_id, self.id)
        with self._t.reading() as view:
            def one(i: str | None) -> MemoryHit | None:
                recs = view.get([i]) if i is not None else []
                return to_hit(recs[0]) if recs and is_memory(recs[0].metadata) else None

            start = one(mid)
            if start is None:
                raise MemoryNotFound(f"tenant {self.id!r} has no memory {memory_id!r}", tenant=self.id)
            chain = [start]
            seen = {start.id}
            while (prev := one(chain[0].supersedes)) is not None and prev.id not in seen:
                chain.insert(0, prev)
                seen.add(prev.id)
            while (nxt := one(chain[-1].superseded_by)) is not None and nxt.id not in seen:
                chain.append(nxt)
                seen.add(nxt.id)
        return chain

    def forget(self, ids: Sequence[str] | None = None, where: Mapping[str, Any] | None = None, *,
               reason: str | None = None) -> int:
        """Delete memories for real (by ``ids`` and/or ``where`` over their metadata; ``where={}``
        is every memory) and append an audit entry naming the ids and the reason, never the
        content. Compaction then purges them from the files. Returns how many were forgotten.

        :raises MemoryNotFound: an id is unknown (nothing is forgotten).
        :raises InvalidArgument: neither ``ids`` nor ``where`` given.
        """
        if ids is None and where is None:
            raise InvalidArgument(f"tenant {self.id!r}: forget needs ids= or where= (where={{}} forgets all)",
                                  tenant=self.id)
        reason = _reason(reason, self.id)
        wanted = None if ids is None else [_check_id(i, self.id) for i in _listed(ids, self.id)]
        flt: dict[str, Any] | None = None
        if where is not None:
            if not isinstance(where, Mapping):
                raise InvalidArgument(f"tenant {self.id!r}: where must be a dict, got {type(where).__name__}",
                                      tenant=self.id)
            flt = {"$and": [{KIND: {"$exists": True}}, dict(where)]}
        with self._t.transaction() as tx:
            doomed: list[str] = []
            if wanted is not None:
                found = {r.id for r in tx.get(wanted) if is_memory(r.metadata)}
                missing = [i for i in wanted if i not in found]
                if missing:
                    raise MemoryNotFound(f"tenant {self.id!r} has no memory {missing[0]!r} "
                                         f"({len(missing)} unknown id(s)); nothing was forgotten", tenant=self.id)
                doomed = list(dict.fromkeys(wanted))
            if flt is not None:
                matched = tx.matching_ids(flt)
                doomed = matched if wanted is None else [i for i in doomed if i in set(matched)]
            if not doomed:
                return 0
            n = tx.delete(ids=doomed)
            self._audit(tx, "forget", ids=doomed, counts={"forgotten": n}, reason=reason)
        return n

    # ------------------------------------------------------------------ audit
    def audit(self, *, since: Any = None, until: Any = None, ops: Sequence[str] | None = None,
              limit: int | None = None) -> list[AuditEntry]:
        """The tenant's audit entries, oldest first (filtered by time, ops; at most ``limit``)."""
        now = self._now()
        lo = None if since is None else to_time(since, "since", self.id, now)
        hi = None if until is None else to_time(until, "until", self.id, now)
        return read_audit(self._t, since=lo, until=hi, ops=ops, limit=limit)

    # ------------------------------------------------------------------ working memory
    def session(self, session_id: str, *, ttl: float | None = None, create: bool = True) -> WorkingMemory:
        """The working memory of session ``session_id`` (opened now when absent and ``create``).

        ``ttl`` (seconds) makes the session expire that long after it was opened (or, for an
        existing session, restarts its clock with this TTL). An expired session is swept and,
        with ``create``, opened afresh; without, it is left to the next sweep (nothing written).

        :raises SessionNotFound: absent and ``create`` is False.
        :raises SessionExpired: expired and ``create`` is False.
        """
        sid = _working.check_session_id(session_id, self.id)
        if ttl is not None:
            ttl = _working.check_ttl(ttl, self.id)
        wm = WorkingMemory(self._t, sid, self._clock)
        raw = self._t.wm_get(_working.meta_key(sid))
        now = self._now()
        if raw is not None:
            meta = _working.unpack(raw)
            if meta.get("e") is None or now < meta["e"]:
                if ttl is not None:
                    wm.touch(ttl)
                return wm
            if not create:
                raise SessionExpired(f"tenant {self.id!r}: session {sid!r} expired at {meta['e']}", tenant=self.id)
            self._drop_sessions([sid])
        if not create:
            raise SessionNotFound(f"tenant {self.id!r} has no live session {sid!r}", tenant=self.id)
        self._t.wm_write([(_working.meta_key(sid), _working.new_meta(now, ttl))])
        return wm

    def sessions(self) -> list[SessionInfo]:
        """The live (unexpired) sessions, by id."""
        return live_sessions(self._t, self._now())

    def _drop_sessions(self, sids: Sequence[str]) -> int:
        doomed = [k for sid in sids for k, _ in self._t.wm_items(_working.session_prefix(sid))]
        if doomed:
            self._t.wm_write([(k, None) for k in doomed])
        return len(sids)

    def sweep(self) -> SweepReport:
        """Remove expired sessions and memories whose TTL ran out (audited as ``expire``)."""
        now = self._now()
        rows = self._t.wm_items(_working.SESSIONS)
        dead = [sid for sid, m in _working.session_metas(rows) if m.get("e") is not None and now >= m["e"]]
        self._drop_sessions(dead)
        flt = {EXPIRES: {"$lte": now}}
        n = 0
        if self._t.count(flt):
            with self._t.transaction() as tx:
                doomed = tx.matching_ids({"$and": [{KIND: {"$exists": True}}, flt]})
                if doomed:
                    n = tx.delete(ids=doomed)
                    self._audit(tx, "expire", ids=doomed, counts={"expired": n})
        if dead or n:
            log.info("tenant %r: swept %d expired session(s) and %d expired memories", self.id, len(dead), n)
        return SweepReport(len(dead), n)

    def compact(self) -> CompactReport:
        """Sweep expired sessions and memories, then compact the tenant's files
        (``Tenant.compact``): forgotten memories are purged from disk."""
        self.sweep()
        return self._t.compact()

    def consolidate(self, session_id: str, distill: Callable[[list[Note]], Iterable[Any]] | None = None, *,
                    dedupe: float | None = 0.05) -> ConsolidationReport:
        """Turn a session's staged notes into long-term memories, exactly once.

        ``distill`` (optional, e.g. an LLM summariser) maps the notes to the memories to
        write (Notes or mappings with ``text`` and ``remember``'s keywords, ``tenant`` and
        ``session`` stamps default to this tenant and session). It and the embedder run
        before the transaction; then ONE transaction adds the memories (with the session as
        provenance), reinforces near-duplicates (cosine distance below ``dedupe`` to a current
        memory of the same kind: its reinforcement count, last-seen time and confidence go
        up instead of a copy being added), removes the notes and appends the audit entry. A
        crash leaves all or nothing; calling it again returns the same report (``replayed``).

        :raises SessionNotFound, SessionExpired: no such live session.
        :raises TenantMismatch: a distilled item carries another tenant's or session's stamp.
        :raises ConsolidationError: ``distill`` raised or returned something unusable.
        :raises InvalidArgument: a bad session id, ``dedupe``, or a ``distill`` that is not callable.
        """
        from ._consolidate import Steps, consolidate

        return consolidate(self, Steps(self._now(), self._embed, self._audit), session_id, distill, dedupe)

    def reembed(self, embedder: Embedder, *, batch: int = 256) -> int:
        """Re-embed every stored memory with ``embedder`` and switch the tenant to it
        atomically: texts are embedded while the tenant keeps serving with the old vectors,
        then one transaction writes the new vectors (memories written meanwhile are embedded
        in it) and the new fingerprint. Returns how many memories were re-embedded. This
        handle uses the new embedder afterwards; other handles raise ``EmbedderMismatch``.

        :raises DimensionMismatch: the new embedder's dim differs (a tenant's dim is fixed).
        """
        fp = fingerprint(embedder)
        dim = self._t.info().dim
        if fp[1] != dim:
            raise DimensionMismatch(f"tenant {self.id!r} holds {dim}-d vectors; {fp[0]!r} makes {fp[1]}-d ones: "
                                    "export the memories and remember them into a new tenant instead",
                                    tenant=self.id)
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise InvalidArgument(f"batch must be a positive int, got {batch!r}")
        snap = self._t.get(where={KIND: {"$exists": True}})
        seen = {r.id: r.updated_at for r in snap}
        vecs = {}
        for i in range(0, len(snap), batch):
            part = snap[i:i + batch]
            for r, v in zip(part, embedder.embed_documents([r.document or "" for r in part]), strict=True):
                vecs[r.id] = v
        raw = _working.pack(list(fp))
        with self._t.transaction() as tx:
            stored = tx.side("wm").get(_working.FINGERPRINT_KEY)
            if stored is not None and stored != self._fp_raw:
                raise EmbedderMismatch(f"tenant {self.id!r} was re-embedded meanwhile by another handle",
                                       tenant=self.id)
            recs = tx.get(tx.matching_ids({KIND: {"$exists": True}}))
            late = [r for r in recs if seen.get(r.id) != r.updated_at]
            if late:
                for r, v in zip(late, embedder.embed_documents([r.document or "" for r in late]), strict=True):
                    vecs[r.id] = v
            if recs:
                tx.upsert(np.stack([vecs[r.id] for r in recs]), ids=[r.id for r in recs],
                          documents=[r.document for r in recs], metadata=[r.metadata for r in recs])
            tx.side("wm").put(_working.FINGERPRINT_KEY, raw)
            self._audit(tx, "reembed", counts={"memories": len(recs)}, reason=f"{self._fp[0]} -> {fp[0]}")
        self._emb, self._fp, self._fp_raw = embedder, fp, raw
        return len(recs)

    # Async twins (``await tm.arecall(q)``): each runs its sync call, embedder included, in a
    # worker thread of the event loop's default executor (see tenantvec._aio).
    aremember = twin(remember)
    aremember_many = twin(remember_many)
    aget = twin(get)
    acount = twin(count)
    arecall = twin(recall)
    asupersede = twin(supersede)
    ahistory = twin(history)
    aforget = twin(forget)
    aaudit = twin(audit)
    asession = twin(session)
    asessions = twin(sessions)
    asweep = twin(sweep)
    acompact = twin(compact)
    aconsolidate = twin(consolidate)
    areembed = twin(reembed)


# ---------------------------------------------------------------------------- reads without an embedder
# What the CLI's ls, info, sessions and audit show: they read a tenant's memory through its
# Tenant handle (a read-only store will do) and need no embedder.
def stored_fingerprint(tenant: Tenant) -> tuple[str, int] | None:
    """The embedder fingerprint ``(name, dim)`` stored with ``tenant``'s memory, or None when
    the memory layer has not used the tenant."""
    raw = tenant.wm_get(_working.FINGERPRINT_KEY)
    if raw is None:
        return None
    name, dim = _working.unpack(raw)
    return name, dim


def memory_counts(tenant: Tenant, now: float) -> dict[str, int]:
    """``tenant``'s current memories by kind at ``now`` (what ``TenantMemory.count(kind)`` counts)."""
    return {kind: _count(tenant, [kind], now, False) for kind in KINDS}


def live_sessions(tenant: Tenant, now: float) -> list[SessionInfo]:
    """The sessions of ``tenant``'s working memory live at ``now``, by id."""
    rows = tenant.wm_items(_working.SESSIONS)
    staged: dict[str, int] = {}
    for k, _ in rows:
        sid, _, part = k[len(_working.SESSIONS):].partition(b"\x00")
        if part.startswith(b"n\x00"):
            staged[sid.decode()] = staged.get(sid.decode(), 0) + 1
    return [SessionInfo(sid, m["c"], m.get("e"), staged.get(sid, 0), m.get("r", 0))
            for sid, m in _working.session_metas(rows) if m.get("e") is None or now < m["e"]]


def read_audit(tenant: Tenant, *, since: float | None = None, until: float | None = None,
               ops: Sequence[str] | None = None, limit: int | None = None) -> list[AuditEntry]:
    """``tenant``'s audit entries with ``since <= time < until`` (unix seconds), oldest first
    (see ``tenantvec._audit.read``).

    :raises InvalidArgument: a bad bound, ``ops`` or ``limit``.
    """
    with tenant.reading() as view:
        return _audit.read(view.side("audit"), since=since, until=until, ops=ops, limit=limit)


def _count(tenant: Tenant, kinds: list[str], now: float, include_superseded: bool) -> int:
    return tenant.count({"$and": [{KIND: {"$in": kinds}},
                                  *visible(now, now, include_superseded=include_superseded, as_of=False)]})


def _default(value: Any, default: Any) -> Any:
    return default if value is None else value


def _listed(items: Any, tenant: str) -> list[Any]:
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise InvalidArgument(f"tenant {tenant!r}: expected a list, got {type(items).__name__} {items!r:.60}",
                              tenant=tenant)
    return list(items)


def _check_id(memory_id: object, tenant: str) -> str:
    if not isinstance(memory_id, str) or not memory_id:
        raise InvalidArgument(f"tenant {tenant!r}: a memory id is a non-empty str, got {memory_id!r:.60}",
                              tenant=tenant)
    return memory_id


def _reason(reason: object, tenant: str) -> str | None:
    if reason is not None and not isinstance(reason, str):
        raise InvalidArgument(f"tenant {tenant!r}: reason must be a str, got {reason!r:.60}", tenant=tenant)
    return reason


def _one_session(fields: Sequence[Fields]) -> str | None:
    sessions = {f.session for f in fields}
    return sessions.pop() if len(sessions) == 1 else None


def _weights(weights: Mapping[str, float] | None, tenant: str) -> dict[str, float]:
    if weights is None:
        return dict(DEFAULT_WEIGHTS)
    if not isinstance(weights, Mapping) or set(weights) - set(DEFAULT_WEIGHTS):
        raise InvalidArgument(f"tenant {tenant!r}: weights are a dict over {sorted(DEFAULT_WEIGHTS)}, "
                              f"got {weights!r}", tenant=tenant)
    out = {name: float(weights.get(name, 0.0)) for name in DEFAULT_WEIGHTS}
    if any(v < 0 for v in out.values()) or not sum(out.values()) > 0:
        raise InvalidArgument(f"tenant {tenant!r}: weights must be non-negative with a positive sum, "
                              f"got {weights!r}", tenant=tenant)
    return out

