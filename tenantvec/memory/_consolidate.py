"""Consolidation: a session's staged notes become long-term memories, exactly once.

Everything that can be slow or fail runs first, on a snapshot of the staged notes: the
``distill`` callable, the checks of what it returned (an item stamped with another tenant
or session is refused), the embeddings and the near-duplicate search. Then ONE write
transaction re-reads the notes (a concurrent consolidation that took them wins and its
report is returned), adds the new memories, reinforces the duplicates, deletes the notes,
advances the session's round and stores the round's report with its audit entry. A crash
before the commit leaves the notes staged and nothing added; after it, a retry finds no
notes and returns the stored report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from ..errors import ConsolidationError, InvalidArgument, SessionExpired, SessionNotFound, TenantMismatch
from . import _working
from ._items import (
    CONFIDENCE,
    ITEM_KEYS,
    KIND,
    LAST_SEEN,
    REINFORCED,
    SUPERSEDED_BY,
    ConsolidationReport,
    Fields,
    Note,
    check_fields,
    new_id,
    row_vector,
    visible,
)

if TYPE_CHECKING:
    from ._tenant import TenantMemory

MAX_ATTEMPTS: Final = 5


class _NotesChanged(Exception):
    """The staged notes changed between the snapshot and the transaction: start again."""


@dataclass(slots=True)
class _Plan:
    """Where each item goes: a new memory (``target`` None) or an existing one it reinforces."""

    fields: list[Fields]
    vectors: np.ndarray
    target: list[str | None]  # existing memory id each item reinforces, or None to add it
    twin: list[int | None]  # an earlier item of the batch this one duplicates


@dataclass(frozen=True, slots=True)
class Steps:
    """What consolidation needs from its ``TenantMemory``: the time, the embedder and the
    audit step (bound methods, so that nothing here reaches into the handle)."""

    now: float
    embed: Callable[[list[str]], np.ndarray]
    audit: Callable[..., Any]


def consolidate(tm: TenantMemory, steps: Steps, session_id: str,
                distill: Callable[[list[Note]], Iterable[Any]] | None, dedupe: float | None) -> ConsolidationReport:
    """See ``TenantMemory.consolidate``."""
    tid = tm.id
    sid = _working.check_session_id(session_id, tid)
    if distill is not None and not callable(distill):
        raise InvalidArgument(f"tenant {tid!r}: distill must be callable, got {distill!r:.60}", tenant=tid)
    if dedupe is not None and (isinstance(dedupe, bool) or not isinstance(dedupe, (int, float))
                               or not 0 <= dedupe < 2):
        raise InvalidArgument(f"tenant {tid!r}: dedupe must be a cosine distance in [0, 2) or None, got {dedupe!r}",
                              tenant=tid)
    for _ in range(MAX_ATTEMPTS):
        try:
            return _attempt(tm, steps, sid, distill, dedupe)
        except _NotesChanged:
            continue
    raise ConsolidationError(f"tenant {tid!r}: session {sid!r}'s notes kept changing during {MAX_ATTEMPTS} "
                             "consolidation attempts", tenant=tid)


def _live_meta(tm: TenantMemory, sid: str, raw: bytes | None, now: float) -> dict[str, Any]:
    if raw is None:
        raise SessionNotFound(f"tenant {tm.id!r} has no session {sid!r}", tenant=tm.id)
    meta: dict[str, Any] = _working.unpack(raw)
    if meta.get("e") is not None and now >= meta["e"]:
        raise SessionExpired(f"tenant {tm.id!r}: session {sid!r} expired at {meta['e']}", tenant=tm.id)
    return meta


def _replay(tm: TenantMemory, sid: str, meta: dict[str, Any], get: Callable[[bytes], bytes | None]
            ) -> ConsolidationReport:
    """The last round's report (``replayed``), or an empty one when nothing was ever staged."""
    last = meta.get("r", 0)
    raw = get(_working.report_key(sid, last)) if last else None
    if raw is None:
        return ConsolidationReport(tm.id, sid)
    d = _working.unpack(raw)
    return ConsolidationReport(tm.id, sid, tuple(d["added"]), tuple(d["reinforced"]), d["skipped"],
                               tuple(d["ids"]), d["audit_seq"], replayed=True)


def _attempt(tm: TenantMemory, steps: Steps, sid: str, distill: Callable[[list[Note]], Iterable[Any]] | None,
             dedupe: float | None) -> ConsolidationReport:
    t, now = tm.tenant, steps.now
    meta = _live_meta(tm, sid, t.wm_get(_working.meta_key(sid)), now)
    rows = t.wm_items(_working.notes_prefix(sid))
    if not rows:
        return _replay(tm, sid, meta, t.wm_get)
    notes = [_working.note_of(v) for _, v in rows]
    fields = _distilled(tm, sid, notes, distill, now)
    plan = _plan(tm, steps, fields, dedupe, now)
    keys = [k for k, _ in rows]
    with t.transaction() as tx:
        side = tx.side("wm")
        meta = _live_meta(tm, sid, side.get(_working.meta_key(sid)), now)
        present = [k for k, _ in side.items(_working.notes_prefix(sid))]
        if not set(keys) <= set(present):
            if not set(keys) & set(present):
                return _replay(tm, sid, meta, side.get)  # another consolidation took them
            raise _NotesChanged
        report = _write(tm, steps, tx, sid, plan, now, len(notes))
        for k in keys:
            side.delete(k)
        meta["r"] = meta.get("r", 0) + 1
        side.put(_working.meta_key(sid), _working.pack(meta))
        side.put(_working.report_key(sid, meta["r"]), _working.pack(
            {"added": report.added, "reinforced": report.reinforced, "skipped": report.skipped,
             "ids": report.ids, "audit_seq": report.audit_seq}))
    return report


def _distilled(tm: TenantMemory, sid: str, notes: list[Note], distill: Callable[[list[Note]], Iterable[Any]] | None,
               now: float) -> list[Fields]:
    """The checked items to write: the notes themselves, or what ``distill`` made of them."""
    tid = tm.id
    if distill is None:
        items: list[Any] = list(notes)
    else:
        try:
            out = distill(list(notes))
            items = list(out) if not isinstance(out, (str, bytes, Mapping)) else [out]
        except Exception as exc:
            raise ConsolidationError(f"tenant {tid!r}: distill for session {sid!r} raised {exc!r}",
                                     tenant=tid) from exc
    fields = []
    for i, item in enumerate(items):
        if isinstance(item, Note):
            d: dict[str, Any] = {"text": item.text, "kind": item.kind, "source": item.source,
                                 "confidence": item.confidence, "metadata": item.metadata,
                                 "tenant": item.tenant, "session": item.session}
        elif isinstance(item, Mapping):
            d = dict(item)
        else:
            raise ConsolidationError(f"tenant {tid!r}: distill item {i} is a {type(item).__name__} "
                                     f"({item!r:.60}), not a Note or a mapping", tenant=tid)
        stamp_tenant, stamp_session = d.pop("tenant", None), d.pop("session", None)
        if stamp_tenant is not None and stamp_tenant != tid:
            raise TenantMismatch(f"tenant {tid!r}: consolidation item {i} is stamped with tenant "
                                 f"{stamp_tenant!r}; nothing was written", tenant=tid)
        if stamp_session is not None and stamp_session != sid:
            raise TenantMismatch(f"tenant {tid!r}: consolidation item {i} of session {sid!r} is stamped with "
                                 f"session {stamp_session!r}; nothing was written", tenant=tid)
        unknown = set(d) - _ITEM_KEYS
        if unknown or "text" not in d:
            raise ConsolidationError(f"tenant {tid!r}: consolidation item {i} needs 'text' and may have "
                                     f"{sorted(_ITEM_KEYS - {'text'})}; got keys {sorted(d)}", tenant=tid)
        try:
            fields.append(check_fields(tid, now, d["text"], d.get("kind", "semantic"), d.get("source", "agent"),
                                       d.get("confidence", 1.0), d.get("metadata"), sid, d.get("valid_from"),
                                       d.get("valid_until"), d.get("ttl")))
        except InvalidArgument as exc:
            raise ConsolidationError(f"tenant {tid!r}: consolidation item {i}: {exc}", tenant=tid) from exc
    return fields


_ITEM_KEYS: Final = ITEM_KEYS - {"session"}  # the session is the stamp, popped before this check


def _plan(tm: TenantMemory, steps: Steps, fields: list[Fields], dedupe: float | None, now: float) -> _Plan:
    """Embed the items and find, per item, an existing memory or an earlier item it duplicates."""
    n = len(fields)
    vectors = steps.embed([f.text for f in fields]) if fields else np.empty((0, 0), np.float32)
    plan = _Plan(fields, vectors, [None] * n, [None] * n)
    if dedupe is None or not n:
        return plan
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    for i in range(n):
        for j in range(i):
            if plan.twin[j] is None and fields[j].kind == fields[i].kind and 1.0 - float(unit[i] @ unit[j]) < dedupe:
                plan.twin[i] = j
                break
    by_kind: dict[str, list[int]] = {}
    for i in range(n):
        if plan.twin[i] is None:
            by_kind.setdefault(fields[i].kind, []).append(i)
    for kind, idx in by_kind.items():
        flt = {"$and": [{KIND: kind}, *visible(now, now, include_superseded=False, as_of=False)]}
        hits = tm.tenant.query(vectors[idx], k=1, where=flt)
        for i, found in zip(idx, hits, strict=True):
            if found and found[0].distance < dedupe:
                plan.target[i] = found[0].id
    return plan


def _write(tm: TenantMemory, steps: Steps, tx: Any, sid: str, plan: _Plan, now: float,
           notes: int) -> ConsolidationReport:
    """Inside the transaction: add, reinforce, audit. Returns the round's report."""
    fields = plan.fields
    live = {r.id: r for r in tx.get(sorted({x for x in plan.target if x is not None}), include_vectors=True)
            if r.metadata.get(SUPERSEDED_BY) is None}
    result: list[str] = [""] * len(fields)
    added: list[int] = []
    bumps: dict[str, list[int]] = {}
    repeats: dict[int, list[int]] = {}  # an added item -> its later copies in the batch
    skipped = 0
    for i in range(len(fields)):
        j = plan.twin[i]
        if j is not None:  # the batch's earlier copy decides
            skipped += 1
            result[i] = result[j]
            target = plan.target[j] if plan.target[j] in live else None
            if target is not None:
                bumps.setdefault(target, []).append(i)
            else:
                repeats.setdefault(j, []).append(i)
            continue
        target = plan.target[i] if plan.target[i] in live else None
        if target is None:
            result[i] = new_id()
            added.append(i)
        else:
            result[i] = target
            bumps.setdefault(target, []).append(i)
    if added:
        metadata = [fields[i].record_metadata(now) for i in added]
        for i, md in zip(added, metadata, strict=True):
            if i in repeats:  # repeated within the batch: a new memory, reinforced as often
                _reinforce(md, [fields[r].confidence for r in repeats[i]], now)
        tx.add(plan.vectors[added], ids=[result[i] for i in added], documents=[fields[i].text for i in added],
               metadata=metadata)
    for target, items in bumps.items():
        rec = live[target]
        md = dict(rec.metadata)
        _reinforce(md, [fields[i].confidence for i in items], now)
        tx.upsert(row_vector(rec), ids=[target], documents=[rec.document], metadata=[md])
    ids = tuple(dict.fromkeys(result))
    new = tuple(result[i] for i in added)
    entry = steps.audit(tx, "consolidate", ids=ids, session=sid,
                      counts={"notes": notes, "added": len(new), "reinforced": len(bumps), "skipped": skipped})
    return ConsolidationReport(tm.id, sid, added=new, reinforced=tuple(bumps), skipped=skipped, ids=tuple(result),
                               audit_seq=entry.seq)


def _reinforce(md: dict[str, Any], confidences: list[float], now: float) -> None:
    """Count ``len(confidences)`` more sightings of a memory (record metadata ``md``): its
    reinforcement count, last-seen time and the highest confidence seen."""
    md[REINFORCED] = md.get(REINFORCED, 0) + len(confidences)
    md[LAST_SEEN] = now
    md[CONFIDENCE] = max([md[CONFIDENCE], *confidences])
