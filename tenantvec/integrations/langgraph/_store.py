"""``TenantvecStore`` and ``AsyncTenantvecStore``: LangGraph long-term memory stores whose
namespaces live in tenantvec tenants (see :mod:`._codec` for the record layout).

A batch runs in phases, as LangGraph's ``InMemoryStore`` does: every op is validated and
routed to its tenant before any op runs; texts are embedded (outside any lock); the reads
(get, search, list) run against the state before the batch; then the puts, deduplicated
(the last put of a ``(namespace, key)`` wins), commit in one transaction per tenant.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    InvalidNamespaceError,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    get_text_at_path,
    validate_op_namespace,
)
from langgraph.store.base.batch import AsyncBatchedBaseStore

import tenantvec
from tenantvec.errors import DimensionMismatch, EmbedderError, InvalidArgument, TenantVecError

from . import _codec as c

logger = logging.getLogger("tenantvec")

Namespace = tuple[str, ...]
TenantFrom = Callable[[Namespace], "str | None"]
Scored = tuple["float | None", dict[str, Any]]  # (score, record metadata)
Identity = tuple[Namespace, str]


def first_label(namespace: Namespace) -> str | None:
    """The default ``tenant_from``: a namespace's first label names its tenant
    (``("acme", "memories")`` lives in tenant ``"acme"``); an empty prefix names none."""
    return namespace[0] if namespace else None


@dataclass
class _Put:
    tenant: str
    namespace: Namespace
    key: str
    value: dict[str, Any] | None
    ttl: float | None
    texts: dict[str, str] = field(default_factory=dict)  # indexed path -> text


@dataclass
class _Plan:
    ops: list[Op]
    routes: list[str | None]  # per op: its tenant, or None to fan out over every tenant
    puts: dict[Identity, _Put]
    queries: list[str]  # distinct search queries to embed (none without an index)

    def texts(self) -> list[str]:
        return list(dict.fromkeys(t for p in self.puts.values() for t in p.texts.values()))


def _check_count(v: object, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise InvalidArgument(f"search: {what} must be a non-negative integer, got {v!r}")
    return v


class TenantvecStore(BaseStore):
    """A LangGraph ``BaseStore`` on tenantvec: every namespace lives in a tenant's shard.

    Two modes:

    - **bound** (``tenant="acme"``): every namespace lives in that tenant; nothing the store
      does can reach another tenant;
    - **routed** (no ``tenant``): ``tenant_from(namespace)`` names the tenant of each op
      (default :func:`first_label`). It must be prefix-stable: when it names a tenant for a
      prefix, it names the same one for every namespace under it, and it returns None for
      a prefix too short to tell. An op whose prefix names no tenant (``search(())``,
      ``list_namespaces()``) raises :class:`InvalidArgument` unless ``cross_tenant=True``,
      which fans it out over every tenant of the store and merges the results.

    Semantics are those of LangGraph's ``InMemoryStore`` (its test suite runs against this
    class in CI), plus: ``created_at`` is kept across updates; TTLs (minutes) with
    ``refresh_on_read``, expired items hidden from every read until :meth:`sweep_ttl`
    deletes them; filters also take tenantvec's ``$in $nin $exists $contains $and $or
    $not``. Scores are cosine similarities (the best over an item's vectors); items
    without a vector come after every scored item, with score None.

    >>> store = TenantvecStore("/var/lib/agent-memory", tenant="acme",      # doctest: +SKIP
    ...                        index={"dims": 384, "embed": embed_texts, "fields": ["text"]})
    >>> store.put(("memories", "u1"), "k1", {"text": "prefers tea"})        # doctest: +SKIP
    >>> store.search(("memories",), query="what drinks?", limit=3)          # doctest: +SKIP

    :param store_or_path: a :class:`tenantvec.Store` (not closed by :meth:`close`) or a path
        to open one at (closed by :meth:`close`).
    :param tenant: bound mode: the one tenant (created if absent).
    :param tenant_from: routed mode: namespace -> tenant id (or None).
    :param cross_tenant: routed mode: allow ops that span tenants.
    :param index: LangGraph ``IndexConfig``: ``dims``, ``embed`` (LangChain ``Embeddings``,
        a sync or async callable, or a provider string) and ``fields`` (default ``["$"]``).
        New tenants get ``dims`` and metric cosine; an existing one must have both.
    :param ttl: LangGraph ``TTLConfig``: ``default_ttl`` (minutes), ``refresh_on_read``
        (default True), ``sweep_interval_minutes``.
    :param clock: seconds since the epoch (injectable for tests).
    :raises InvalidArgument: both ``tenant`` and ``tenant_from``, or a bad ``index``.
    :raises DimensionMismatch: the bound tenant exists with another dimension.
    """

    supports_ttl: bool = True

    def __init__(
        self,
        store_or_path: tenantvec.Store | str | os.PathLike[str],
        *,
        tenant: str | None = None,
        tenant_from: TenantFrom | None = None,
        cross_tenant: bool = False,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if tenant is not None and tenant_from is not None:
            raise InvalidArgument("TenantvecStore: give tenant= (bound mode) or tenant_from= (routed mode), not both")
        self._owned = not isinstance(store_or_path, tenantvec.Store)
        self._store = store_or_path if isinstance(store_or_path, tenantvec.Store) else tenantvec.Store(store_or_path)
        self._bound = tenant
        self._tenant_from: TenantFrom = tenant_from or first_label
        self._cross = bool(cross_tenant) and tenant is None
        self._clock = clock
        self._handles: dict[str, tenantvec.Tenant] = {}
        self._dim_cache: dict[str, int] = {}
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None
        self._sweeper_stop = threading.Event()
        self.ttl_config = ttl
        self.index_config: IndexConfig | None = None
        self._embeddings: Embeddings | None = None
        self._fields: list[str] = ["$"]
        self._dims: int | None = None
        try:
            if index:
                self._configure_index(index)
            if tenant is not None:
                self._handle(tenant, create=not self._store.readonly)
        except BaseException:
            self.close()
            raise

    def _configure_index(self, index: IndexConfig) -> None:
        dims = index.get("dims")
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise InvalidArgument(f"TenantvecStore: index['dims'] must be a positive integer, got {dims!r}")
        if index.get("embed") is None:
            raise InvalidArgument("TenantvecStore: index['embed'] is required (Embeddings, a callable or a provider string)")
        fields = index.get("fields") or ["$"]
        if isinstance(fields, str) or not all(isinstance(f, str) for f in fields):
            raise InvalidArgument(f"TenantvecStore: index['fields'] must be a list of paths, got {fields!r}")
        self.index_config = index.copy()
        self._embeddings = ensure_embeddings(index["embed"])
        self._fields = list(fields)
        self._dims = dims

    @property
    def store(self) -> tenantvec.Store:
        """The tenantvec store underneath."""
        return self._store

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop the TTL sweeper and close the tenantvec store if this object opened it
        (idempotent)."""
        self.stop_ttl_sweeper()
        if self._owned:
            self._store.close()

    def __enter__(self) -> TenantvecStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = f"tenant={self._bound!r}" if self._bound is not None else f"routed, cross_tenant={self._cross}"
        return f"<TenantvecStore {str(self._store.path)!r} {mode}>"

    # ------------------------------------------------------------------ batches
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` (see the class docstring for the phases) and return their results.

        :raises InvalidNamespaceError: a malformed namespace (before any op runs).
        :raises InvalidArgument: a routed op without one tenant, a bad ``limit``/``offset``,
            ``ttl`` or ``index`` (before any op runs).
        """
        plan = self._plan(ops)
        queries = {q: self._embedder().embed_query(q) for q in plan.queries}
        texts = plan.texts()
        vectors = self._embedder().embed_documents(texts) if texts else []
        return self._execute(plan, queries, self._by_text(texts, vectors))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` for asyncio: embeddings through the embedder's async methods,
        storage calls in a worker thread (LMDB is blocking)."""
        plan = self._plan(ops)
        queries: dict[str, Any] = {}
        if qs := plan.queries:
            emb = self._embedder()
            queries = dict(zip(qs, await asyncio.gather(*(emb.aembed_query(q) for q in qs)), strict=True))
        texts = plan.texts()
        vectors = await self._embedder().aembed_documents(texts) if texts else []
        return await asyncio.to_thread(self._execute, plan, queries, self._by_text(texts, vectors))

    def _embedder(self) -> Embeddings:
        assert self._embeddings is not None  # plans hold queries and texts only with an index
        return self._embeddings

    @staticmethod
    def _by_text(texts: list[str], vectors: list[Any]) -> dict[str, Any]:
        """``{text: vector}``. :raises EmbedderError: not one vector per text."""
        if len(vectors) != len(texts):
            raise EmbedderError(f"the index's embed returned {len(vectors)} vectors for {len(texts)} texts")
        return dict(zip(texts, vectors))

    # ------------------------------------------------------------------ planning
    def _plan(self, ops: Iterable[Op]) -> _Plan:
        """Validate and route every op (nothing runs yet); deduplicate the puts."""
        todo = [self._normalized(op) for op in ops]
        for op in todo:
            validate_op_namespace(op)
        routes: list[str | None] = []
        puts: dict[Identity, _Put] = {}
        for op in todo:
            if isinstance(op, GetOp):
                routes.append(self._route(op.namespace, "get", whole=True))
            elif isinstance(op, SearchOp):
                _check_count(op.limit, "limit")
                _check_count(op.offset, "offset")
                routes.append(self._route(op.namespace_prefix, "search", whole=False))
            elif isinstance(op, ListNamespacesOp):
                routes.append(self._route(self._listing_prefix(op), "list_namespaces", whole=False))
            else:
                tid = self._route(op.namespace, "put", whole=True)
                assert tid is not None
                routes.append(tid)
                puts[(op.namespace, op.key)] = self._put(op, tid)
        queries = sorted({op.query for op in todo if isinstance(op, SearchOp) and op.query}) if self._embeddings else []
        return _Plan(todo, routes, puts, queries)

    @staticmethod
    def _normalized(op: Op) -> Op:
        """``op`` with its namespace as a tuple (LangGraph accepts lists) and its key a str.

        :raises InvalidArgument: not a LangGraph op.
        """
        if isinstance(op, (GetOp, PutOp)):
            return op._replace(namespace=tuple(op.namespace), key=str(op.key))
        if isinstance(op, SearchOp):
            return op._replace(namespace_prefix=tuple(op.namespace_prefix))
        if isinstance(op, ListNamespacesOp):
            return op
        raise InvalidArgument(f"TenantvecStore: unknown operation type {type(op).__name__}: {op!r:.120}")

    @staticmethod
    def _listing_prefix(op: ListNamespacesOp) -> Namespace:
        """The longest run of concrete labels that a ``list_namespaces`` prefix pins."""
        pins = [c.concrete_prefix(tuple(m.path)) for m in op.match_conditions or () if m.match_type == "prefix"]
        return max(pins, key=len, default=())

    def _route(self, namespace: Namespace, what: str, *, whole: bool) -> str | None:
        """The tenant of an op on ``namespace`` (a full namespace when ``whole``, else a
        prefix); None: fan out over every tenant.

        :raises InvalidArgument: routed mode names no tenant (and the op may not fan out).
        :raises InvalidTenantId: ``tenant_from`` returned a malformed tenant id.
        """
        if self._bound is not None:
            return self._bound
        tid = self._tenant_from(namespace)
        if tid is None:
            if whole:
                raise InvalidArgument(f"{what}: tenant_from named no tenant for namespace {namespace!r}")
            if not self._cross:
                raise InvalidArgument(
                    f"{what}: namespace prefix {namespace!r} does not determine one tenant (this routed store takes "
                    "the tenant from tenant_from(namespace), by default its first label); give a prefix that names "
                    "the tenant, or build TenantvecStore(..., cross_tenant=True) to fan out over every tenant")
            return None
        if not isinstance(tid, str):
            raise InvalidArgument(f"{what}: tenant_from must return a tenant id (str) or None, got {tid!r} "
                                  f"for namespace {namespace!r}")
        self._store.has_tenant(tid)  # raises InvalidTenantId for a malformed id
        return tid

    def _put(self, op: PutOp, tenant: str) -> _Put:
        """A validated put with the texts it indexes.

        :raises InvalidNamespaceError: an empty namespace.
        :raises InvalidArgument: a value that is not a mapping, a bad ``ttl`` or ``index``.
        """
        if not op.namespace:
            raise InvalidNamespaceError("Namespace cannot be empty.")
        if op.value is not None and not isinstance(op.value, Mapping):
            raise InvalidArgument(f"put {op.namespace!r}/{op.key!r}: value must be a mapping or None, "
                                  f"got {type(op.value).__name__}")
        ttl = op.ttl
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl >= 0):
            raise InvalidArgument(f"put {op.namespace!r}/{op.key!r}: ttl must be minutes >= 0 or None, got {ttl!r}")
        index = op.index
        if index is not None and index is not False and (
                isinstance(index, str) or not isinstance(index, (list, tuple)) or not all(isinstance(p, str) for p in index)):
            raise InvalidArgument(f"put {op.namespace!r}/{op.key!r}: index must be False, None or a list of paths, "
                                  f"got {index!r}")
        value = None if op.value is None else dict(op.value)
        put = _Put(tenant, op.namespace, op.key, value, None if ttl is None else float(ttl))
        if value is not None and index is not False and self._embeddings is not None:
            for path in self._fields if index is None else index:
                texts = get_text_at_path(value, path)
                if len(texts) > 1:
                    put.texts.update((f"{path}.{i}", text) for i, text in enumerate(texts))
                elif texts:
                    put.texts[path] = texts[0]
        return put

    # ------------------------------------------------------------------ tenants
    def _handle(self, tid: str, *, create: bool) -> tenantvec.Tenant | None:
        """This store's handle on tenant ``tid`` (None if it does not exist and not
        ``create``), checked once for the index's dimension and cosine metric.

        :raises DimensionMismatch, InvalidArgument: the tenant has another dim or metric.
        """
        with self._lock:
            t = self._handles.get(tid)
        if t is None:
            if not create and not self._store.has_tenant(tid):
                return None
            t = self._store.tenant(tid, create=create, dim=self._dims, metric="cosine" if self._dims else None)
            with self._lock:
                t = self._handles.setdefault(tid, t)
        return t

    def _dim_of(self, tid: str, t: tenantvec.Tenant) -> int:
        """Tenant ``tid``'s dimension (for the vectors of unindexed items), asked once."""
        with self._lock:
            dim = self._dim_cache.get(tid)
        if dim is None:
            dim = t.info().dim
            with self._lock:
                self._dim_cache[tid] = dim
        return dim

    def _tenants(self, route: str | None) -> list[tuple[str, tenantvec.Tenant]]:
        """``(id, handle)`` of the tenant an op reads: its route, or every tenant of the
        store (a fan-out reads tenants of another dimension too, for their unscored items)."""
        if route is not None:
            t = self._handle(route, create=False)
            return [] if t is None else [(route, t)]
        return [(tid, self._handles.get(tid) or self._store.tenant(tid)) for tid in self._store.tenants()]

    # ------------------------------------------------------------------ execution
    def _execute(self, plan: _Plan, queries: Mapping[str, Any], vectors: Mapping[str, Any]) -> list[Result]:
        now = self._clock()
        results: list[Result] = [None] * len(plan.ops)
        refresh: dict[str, dict[Identity, dict[str, Any]]] = defaultdict(dict)
        gets: dict[str, list[int]] = defaultdict(list)
        for i, (op, route) in enumerate(zip(plan.ops, plan.routes, strict=True)):
            if isinstance(op, GetOp):
                assert route is not None  # a get names its tenant
                gets[route].append(i)
            elif isinstance(op, SearchOp):
                qvec = queries.get(op.query) if op.query else None
                results[i] = self._search(op, route, qvec, now, refresh)
            elif isinstance(op, ListNamespacesOp):
                results[i] = self._list(op, route)
        for tid, idx in gets.items():
            self._get(tid, [plan.ops[i] for i in idx], idx, now, results, refresh)
        self._refresh(refresh, now)
        by_tenant: dict[str, list[_Put]] = defaultdict(list)
        for put in plan.puts.values():
            by_tenant[put.tenant].append(put)
        for tid, group in by_tenant.items():
            self._write(tid, group, vectors, now)
        return results

    def _get(self, tid: str, ops: list[Any], idx: list[int], now: float, results: list[Result],
             refresh: dict[str, dict[Identity, dict[str, Any]]]) -> None:
        t = self._handle(tid, create=False)
        if t is None:
            return
        pids = [c.record_ids(c.item_digest(op.namespace, op.key), 1)[0] for op in ops]
        found = {r.id: r.metadata for r in t.get(list(dict.fromkeys(pids)))}
        for op, i, pid in zip(ops, idx, pids, strict=True):
            md = found.get(pid)
            if md is None or c.identity(md) != (op.namespace, op.key) or c.expired(md, now):
                continue
            results[i] = c.to_item(md)
            if op.refresh_ttl and md.get(c.TTL) is not None:
                refresh[tid][(op.namespace, op.key)] = md

    def _search(self, op: SearchOp, route: str | None, qvec: Any, now: float,
                refresh: dict[str, dict[Identity, dict[str, Any]]]) -> list[SearchItem]:
        pushed, local = c.split_filter(op.filter)
        scope: list[dict[str, Any]] = [{"$not": {c.EXPIRES: {"$lte": now}}}]
        if op.namespace_prefix:
            scope.append({c.PRE: {"$contains": c.ns_key(op.namespace_prefix)}})
        if pushed:
            scope.append(pushed)
        query = None if qvec is None else np.asarray(qvec, dtype=np.float32)
        stop = op.offset + op.limit
        if route is not None:
            window = [(route, e) for _, t in self._tenants(route)
                      for e in self._ranked(t, scope, local, query, op.offset, stop)]
        else:  # fan out: every tenant's first `stop`, merged; scored before unscored
            merged = [(tid, e) for tid, t in self._tenants(None) for e in self._ranked(t, scope, local, query, 0, stop)]
            if query is not None:
                merged.sort(key=lambda te: (te[1][0] is None, -(te[1][0] or 0.0)))
            window = merged[op.offset:stop]
        if op.refresh_ttl:
            for tid, (_, md) in window:
                if md.get(c.TTL) is not None:
                    refresh[tid][c.identity(md)] = md
        return [c.to_search_item(md, score) for _, (score, md) in window]

    def _ranked(self, t: tenantvec.Tenant, scope: list[dict[str, Any]], local: c.Predicate | None,
                query: np.ndarray | None, start: int, stop: int) -> list[Scored]:
        """Items ``[start:stop]`` of one tenant's ranking: scored items by score (the best
        of their vectors), then items without a vector in insertion order."""
        if stop <= start:
            return []
        scored: list[Scored] = []
        if query is not None:
            scored = self._scored(t, scope, local, query, stop)
            if len(scored) >= stop:
                return scored[start:stop]
            rest = {c.IS_ITEM: True, c.HAS_VECTOR: {"$exists": False}}
        else:
            rest = {c.IS_ITEM: True}
        n = len(scored)
        where = {"$and": [*scope, rest]}
        lo, hi = max(start - n, 0), stop - n
        if local is None:
            recs = t.get(where=where, limit=hi - lo, offset=lo)
        else:
            recs = [r for r in t.get(where=where) if local(c.value_of(r.metadata))][lo:hi]
        return scored[start:] + [(None, r.metadata) for r in recs]

    @staticmethod
    def _scored(t: tenantvec.Tenant, scope: list[dict[str, Any]], local: c.Predicate | None, query: np.ndarray,
                need: int) -> list[Scored]:
        """The best ``need`` scored items (all of them if fewer), widening the vector
        search until enough distinct items pass (an item may own several vectors)."""
        where = {"$and": [*scope, {c.HAS_VECTOR: True}]}
        k = need
        while True:
            try:
                hits = t.query(query, k=k, where=where)
            except DimensionMismatch:  # a fan-out reached a tenant of another dimension: no vector here
                return []
            seen: set[Identity] = set()
            out: list[Scored] = []
            for h in hits:
                ident = c.identity(h.metadata)
                if ident in seen:
                    continue
                seen.add(ident)
                if local is None or local(c.value_of(h.metadata)):
                    out.append((1.0 - float(h.distance), h.metadata))
            if len(out) >= need or len(hits) < k:
                return out
            k *= 4

    def _list(self, op: ListNamespacesOp, route: str | None) -> list[Namespace]:
        conds = op.match_conditions or ()
        pin = self._listing_prefix(op)
        where: dict[str, Any] = {c.IS_DIR: True}
        if pin:
            where = {"$and": [where, {c.PRE: {"$contains": c.ns_key(pin)}}]}
        found = {tuple(r.metadata[c.NS]) for _, t in self._tenants(route) for r in t.get(where=where)}
        found = {ns for ns in found if all(c.matches(m, ns) for m in conds)}
        if op.max_depth is not None:
            found = {ns[:op.max_depth] for ns in found}
        return sorted(found)[op.offset:op.offset + op.limit]

    def _refresh(self, refresh: Mapping[str, Mapping[Identity, Mapping[str, Any]]], now: float) -> None:
        """Push the expiry of items read with ``refresh_ttl`` to ``now + ttl``."""
        if self._store.readonly:
            return
        for tid, items in refresh.items():
            t = self._handle(tid, create=False)
            if t is None:
                continue
            ids = [rid for (ns, key), md in items.items() for rid in c.record_ids(c.item_digest(ns, key), md[c.N_VECTORS])]
            with t.transaction() as tx:
                recs = [r for r in tx.get(ids, include_vectors=True) if r.metadata.get(c.TTL) is not None]
                if recs:
                    tx.upsert(np.stack([np.asarray(r.vector) for r in recs]), [r.id for r in recs],
                              metadata=[{**r.metadata, c.EXPIRES: now + r.metadata[c.TTL] * 60.0} for r in recs])

    def _write(self, tid: str, group: list[_Put], vectors: Mapping[str, Any], now: float) -> None:
        """Apply one tenant's puts and deletes in one transaction."""
        writes = any(p.value is not None for p in group)
        t = self._handle(tid, create=writes)
        if t is None:
            return  # deletes from a tenant that does not exist
        digests = [c.item_digest(p.namespace, p.key) for p in group]
        ids: list[str] = []
        vecs: list[np.ndarray] = []
        metas: list[dict[str, Any]] = []
        gone: list[str] = []
        emptied: set[str] = set()
        fresh: dict[str, Namespace] = {}
        dim = (self._dims or self._dim_of(tid, t)) if writes else 0
        with t.transaction() as tx:
            old = {r.id: r.metadata for r in tx.get([c.record_ids(d, 1)[0] for d in digests])}
            for p, d in zip(group, digests, strict=True):
                prev = old.get(c.record_ids(d, 1)[0])
                if prev is not None and c.identity(prev) != (p.namespace, p.key):
                    raise TenantVecError(f"tenant {tid!r}: item {p.namespace!r}/{p.key!r} hashes like "
                                         f"{c.identity(prev)!r}; nothing was written")
                before = c.record_ids(d, prev[c.N_VECTORS]) if prev is not None else []
                if p.value is None:
                    gone += before
                    if prev is not None:
                        emptied.add(c.ns_key(p.namespace))
                    continue
                own = [v for v in (np.asarray(vectors[text], dtype=np.float32) for text in p.texts.values())
                       if v.dot(v) != 0.0]  # an empty text may embed to zero: it has no direction to score
                rids = c.record_ids(d, max(len(own), 1))
                # an expired item is gone, swept or not: a put makes a new one
                created = prev[c.CREATED] if prev is not None and not c.expired(prev, now) else now
                md = c.item_metadata(p.namespace, p.key, p.value, created=created, now=now, ttl=p.ttl)
                md[c.N_VECTORS] = len(rids)
                for i, rid in enumerate(rids):
                    ids.append(rid)
                    vecs.append(own[i] if own else c.placeholder(d, dim))
                    metas.append({**md, c.IS_ITEM: True} if i == 0 else dict(md))
                    if own:
                        metas[-1][c.HAS_VECTOR] = True
                gone += before[len(rids):]
                fresh[c.ns_key(p.namespace)] = p.namespace
            if fresh:
                have = {r.id for r in tx.get([c.dir_id(k) for k in fresh])}
                for k, ns in fresh.items():
                    if c.dir_id(k) not in have:
                        ids.append(c.dir_id(k))
                        vecs.append(c.placeholder(c.item_digest(ns, ""), dim))
                        metas.append(c.dir_metadata(ns))
            if ids:
                tx.upsert(np.stack(vecs), ids, metadata=metas)
            if gone:
                tx.delete(ids=gone)
        self._drop_dirs(t, emptied)

    @staticmethod
    def _drop_dirs(t: tenantvec.Tenant, nsks: set[str]) -> None:
        """Remove the directory records of the namespaces in ``nsks`` left without items
        (re-checked under the tenant's write lock, so a concurrent put keeps its namespace)."""
        empty = [k for k in nsks if t.count(where={c.IS_ITEM: True, c.NSK: k}) == 0]
        if not empty:
            return
        with t.transaction() as tx:
            drop = [c.dir_id(k) for k in empty if not tx.matching_ids({c.IS_ITEM: True, c.NSK: k})]
            if drop:
                tx.delete(ids=drop)

    # ------------------------------------------------------------------ TTL
    def sweep_ttl(self) -> int:
        """Delete every expired item (of the bound tenant, or of every tenant when routed);
        returns how many items were deleted."""
        now = self._clock()
        total = 0
        for _, t in self._tenants(self._bound):
            with t.transaction() as tx:
                ids = tx.matching_ids({c.EXPIRES: {"$lte": now}})
                items = [r.metadata for r in tx.get(ids) if r.metadata.get(c.IS_ITEM)] if ids else []
                if ids:
                    tx.delete(ids=ids)
            total += len(items)
            self._drop_dirs(t, {md[c.NSK] for md in items})
        if total:
            logger.info("LangGraph store %s: TTL sweep deleted %d expired items", self._store.path, total)
        return total

    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> cf.Future[None]:
        """Sweep expired items every ``sweep_interval_minutes`` (default: the TTL config's
        ``sweep_interval_minutes``, else 5) in a daemon thread until :meth:`stop_ttl_sweeper`.
        Returns a future that completes when the sweeper stops (at once without a TTL config).
        """
        done: cf.Future[None] = cf.Future()
        if not self.ttl_config:
            done.set_result(None)
            return done
        if self._sweeper is not None and self._sweeper.is_alive():
            logger.info("LangGraph store %s: TTL sweeper already running", self._store.path)
            done.set_result(None)
            return done
        interval = float(sweep_interval_minutes or self.ttl_config.get("sweep_interval_minutes") or 5) * 60.0
        stop = self._sweeper_stop = threading.Event()

        def loop() -> None:
            try:
                while not stop.wait(interval):
                    try:
                        self.sweep_ttl()
                    except Exception:
                        logger.exception("LangGraph store %s: TTL sweep failed", self._store.path)
            finally:
                done.set_result(None)

        self._sweeper = threading.Thread(target=loop, daemon=True, name="tenantvec-langgraph-ttl")
        self._sweeper.start()
        return done

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the TTL sweeper; returns whether it stopped within ``timeout`` seconds
        (True when none was running)."""
        thread = self._sweeper
        if thread is None:
            return True
        self._sweeper_stop.set()
        if thread is not threading.current_thread():
            thread.join(timeout)
        if thread.is_alive():
            return False
        self._sweeper = None
        return True


class AsyncTenantvecStore(AsyncBatchedBaseStore):
    """:class:`TenantvecStore` for asyncio applications, on LangGraph's
    ``AsyncBatchedBaseStore``: ``a*`` calls made in the same event-loop tick run as one
    ``abatch``. Build it inside a running loop; its sync methods refuse to run on that
    loop (``asyncio.InvalidStateError``) and work from other threads. Arguments as
    :class:`TenantvecStore`.
    """

    supports_ttl: bool = True

    def __init__(
        self,
        store_or_path: tenantvec.Store | str | os.PathLike[str],
        *,
        tenant: str | None = None,
        tenant_from: TenantFrom | None = None,
        cross_tenant: bool = False,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        try:
            self._inner = TenantvecStore(store_or_path, tenant=tenant, tenant_from=tenant_from,
                                         cross_tenant=cross_tenant, index=index, ttl=ttl, clock=clock)
        except BaseException:
            if self._task is not None:
                self._task.cancel()
            raise
        self.index_config = self._inner.index_config
        self.ttl_config = ttl

    @property
    def store(self) -> tenantvec.Store:
        """The tenantvec store underneath."""
        return self._inner.store

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` as :meth:`TenantvecStore.abatch`."""
        return await self._inner.abatch(ops)

    def sweep_ttl(self) -> int:
        """:meth:`TenantvecStore.sweep_ttl`."""
        return self._inner.sweep_ttl()

    async def asweep_ttl(self) -> int:
        """:meth:`sweep_ttl` in a worker thread."""
        return await asyncio.to_thread(self._inner.sweep_ttl)

    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> cf.Future[None]:
        """:meth:`TenantvecStore.start_ttl_sweeper` (a thread: it never blocks the loop)."""
        return self._inner.start_ttl_sweeper(sweep_interval_minutes)

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """:meth:`TenantvecStore.stop_ttl_sweeper`."""
        return self._inner.stop_ttl_sweeper(timeout)

    def close(self) -> None:
        """Stop the background batching task and :meth:`TenantvecStore.close`."""
        if self._task is not None:
            self._task.cancel()
        self._inner.close()

    async def __aenter__(self) -> AsyncTenantvecStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


__all__ = ["AsyncTenantvecStore", "TenantvecStore", "first_label"]
