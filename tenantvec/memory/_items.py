"""What a memory is: the result types, the checks on every field, and how a memory maps
onto a record of the tenant's shard (reserved ``mem:`` metadata keys beside the user's).
"""

from __future__ import annotations

import dataclasses
import math
import time as _time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np

from .._types import Hit, Record
from .._validate import check_metadata
from ..errors import InvalidArgument

KINDS: Final = ("episodic", "semantic", "procedural")
"""Long-term memory kinds: what happened, facts, and learned ways of working."""

SOURCES: Final = ("user", "agent", "tool", "system")
"""Where a memory came from: ``user`` = stated or confirmed by a user, ``agent`` =
inferred by the agent, ``tool`` = a tool's output, ``system`` = the platform."""

PREFIX: Final = "mem:"
"""Metadata keys the memory layer reserves on its records (a user key may not start so)."""

KIND, SOURCE, CONFIDENCE, CREATED = "mem:kind", "mem:source", "mem:confidence", "mem:created"
SESSION, VALID_FROM, VALID_UNTIL, EXPIRES = "mem:session", "mem:valid_from", "mem:valid_until", "mem:expires"
SUPERSEDES, SUPERSEDED_BY = "mem:supersedes", "mem:superseded_by"
REINFORCED, LAST_SEEN = "mem:reinforced", "mem:last_seen"

MAX_TEXT_CHARS: Final = 32_768
ITEM_KEYS: Final = frozenset({"text", "kind", "source", "confidence", "metadata", "session", "valid_from",
                              "valid_until", "ttl"})
"""The keys of a memory given as a mapping (``remember_many``, a ``distill`` output item)."""

Clock = Any  # a zero-argument callable returning unix seconds (``time.time``)
TimeLike = float | int | datetime


@dataclass(frozen=True, slots=True)
class MemoryHit:
    """One long-term memory, as ``recall`` ranks it or ``get``/``history`` return it.

    ``similarity`` is cosine similarity to the query (``None`` outside ``recall``);
    ``score`` is what the hits were ranked by (the similarity under ``rank="similarity"``);
    ``explain`` holds the rank's components when ``recall(..., explain=True)``.
    """

    id: str
    text: str
    kind: str
    source: str
    confidence: float
    created_at: float
    session: str | None
    metadata: dict[str, Any]
    valid_from: float
    valid_until: float | None = None
    expires_at: float | None = None
    supersedes: str | None = None
    superseded_by: str | None = None
    reinforced: int = 0
    last_seen: float | None = None
    similarity: float | None = None
    score: float | None = None
    explain: dict[str, float] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Note:
    """A candidate memory staged in a session's working memory (``WorkingMemory.note``), or
    an item a ``distill`` callable returns. ``tenant`` and ``session`` are the stamps it was
    staged under; consolidation refuses an item whose stamps are not its own."""

    text: str
    kind: str = "semantic"
    source: str = "agent"
    confidence: float = 1.0
    metadata: dict[str, Any] = field(default_factory=dict)
    tenant: str | None = None
    session: str | None = None
    id: str | None = None
    at: float | None = None


@dataclass(frozen=True, slots=True)
class ConsolidationReport:
    """What ``consolidate`` did for one session: ``ids`` lists the resulting memory of every
    item in order (a new one, or the one it reinforced); ``replayed`` is True when the call
    found the session already consolidated and returned the earlier report; ``error`` is set
    only in ``Memory.consolidate_many`` reports, for an item that failed."""

    tenant: str
    session: str
    added: tuple[str, ...] = ()
    reinforced: tuple[str, ...] = ()
    skipped: int = 0
    ids: tuple[str, ...] = ()
    audit_seq: int | None = None
    replayed: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What ``Memory.offboard`` removed. The tenant id is kept only as a SHA-256 digest."""

    tenant_digest: str
    time: float
    reason: str
    bytes_removed: int
    files_removed: int
    exported_to: str | None = None


# ---------------------------------------------------------------------------- checks
def check_text(text: object, tenant: str, what: str = "text") -> str:
    if not isinstance(text, str):
        raise InvalidArgument(f"tenant {tenant!r}: {what} must be a str, got {type(text).__name__} {text!r:.60}",
                              tenant=tenant)
    if not text.strip():
        raise InvalidArgument(f"tenant {tenant!r}: {what} is empty: {text!r}", tenant=tenant)
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidArgument(f"tenant {tenant!r}: {what} has {len(text)} characters, at most {MAX_TEXT_CHARS}",
                              tenant=tenant)
    return text


def check_choice(value: object, allowed: Sequence[str], what: str, tenant: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidArgument(f"tenant {tenant!r}: {what} must be one of {', '.join(allowed)}; got {value!r}",
                              tenant=tenant)
    return value


def check_choices(values: object, allowed: Sequence[str], what: str, tenant: str) -> list[str]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, Sequence) or not values:
        raise InvalidArgument(f"tenant {tenant!r}: {what} must be a non-empty list of {', '.join(allowed)}; "
                              f"got {values!r}", tenant=tenant)
    return [check_choice(v, allowed, what, tenant) for v in values]


def check_confidence(value: object, tenant: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise InvalidArgument(f"tenant {tenant!r}: confidence must be a number in [0, 1], got {value!r}",
                              tenant=tenant)
    return float(value)


def check_positive(value: object, what: str, tenant: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < float(value) < math.inf):
        raise InvalidArgument(f"tenant {tenant!r}: {what} must be a positive number of seconds, got {value!r}",
                              tenant=tenant)
    return float(value)


def to_time(value: object, what: str, tenant: str, now: float) -> float:
    """Unix seconds from a number, a ``datetime`` (naive = local time) or a ``timedelta``
    (meaning that long before ``now``: ``since=timedelta(days=90)``)."""
    if isinstance(value, timedelta):
        return now - value.total_seconds()
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"tenant {tenant!r}: {what} must be unix seconds, a datetime or a timedelta; "
                              f"got {value!r}", tenant=tenant)
    return float(value)


def check_user_metadata(metadata: object, tenant: str) -> dict[str, Any]:
    """The user's metadata dict (checked as record metadata is), refusing reserved keys."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidArgument(f"tenant {tenant!r}: metadata must be a dict, got {type(metadata).__name__} "
                              f"{metadata!r:.60}", tenant=tenant)
    for key in metadata:
        if isinstance(key, str) and key.startswith(PREFIX):
            raise InvalidArgument(f"tenant {tenant!r}: metadata key {key!r} is reserved (keys starting with "
                                  f"{PREFIX!r} belong to the memory layer)", tenant=tenant)
    return check_metadata(dict(metadata), 1, tenant)[0]


@dataclass(frozen=True, slots=True)
class Fields:
    """One checked memory to write: everything but its vector and id."""

    text: str
    kind: str
    source: str
    confidence: float
    metadata: dict[str, Any]
    session: str | None
    valid_from: float
    valid_until: float | None
    expires: float | None

    def record_metadata(self, created: float) -> dict[str, Any]:
        """The record's metadata: the user's keys plus the reserved ``mem:`` ones."""
        md = dict(self.metadata)
        md[KIND], md[SOURCE], md[CONFIDENCE], md[CREATED] = self.kind, self.source, self.confidence, created
        md[VALID_FROM] = self.valid_from
        if self.session is not None:
            md[SESSION] = self.session
        if self.valid_until is not None:
            md[VALID_UNTIL] = self.valid_until
        if self.expires is not None:
            md[EXPIRES] = self.expires
        return md


def check_fields(tenant: str, now: float, text: object, kind: object, source: object, confidence: object,
                 metadata: object, session: object, valid_from: object, valid_until: object,
                 ttl: object) -> Fields:
    """Check one memory's fields (see ``TenantMemory.remember``).

    :raises InvalidArgument: naming the field and the value.
    """
    if session is not None and (not isinstance(session, str) or not session):
        raise InvalidArgument(f"tenant {tenant!r}: session must be a non-empty str or None, got {session!r}",
                              tenant=tenant)
    start = now if valid_from is None else to_time(valid_from, "valid_from", tenant, now)
    until = None if valid_until is None else to_time(valid_until, "valid_until", tenant, now)
    if until is not None and until <= start:
        raise InvalidArgument(f"tenant {tenant!r}: valid_until ({until}) must be after valid_from ({start})",
                              tenant=tenant)
    expires = None if ttl is None else now + check_positive(ttl, "ttl", tenant)
    return Fields(check_text(text, tenant), check_choice(kind, KINDS, "kind", tenant),
                  check_choice(source, SOURCES, "source", tenant), check_confidence(confidence, tenant),
                  check_user_metadata(metadata, tenant), session, start, until, expires)


# ---------------------------------------------------------------------------- records <-> memories
def is_memory(metadata: Mapping[str, Any]) -> bool:
    return KIND in metadata


# A frozen dataclass's __init__ sets each of its 18 fields through object.__setattr__;
# recall builds its hits through the slot descriptors instead (same object, 30% less time).
_SETTERS = tuple(getattr(MemoryHit, f.name).__set__ for f in dataclasses.fields(MemoryHit))
_new = object.__new__


def to_hit(rec: Record | Hit, similarity: float | None = None, score: float | None = None,
           explain: dict[str, float] | None = None) -> MemoryHit:
    """A record (or query hit) of the shard as the memory it stores."""
    md = rec.metadata
    get = md.get
    values = (rec.id, rec.document or "", md[KIND], md[SOURCE], md[CONFIDENCE], md[CREATED], get(SESSION),
              {k: v for k, v in md.items() if k[:4] != PREFIX}, md[VALID_FROM], get(VALID_UNTIL), get(EXPIRES),
              get(SUPERSEDES), get(SUPERSEDED_BY), get(REINFORCED, 0), get(LAST_SEEN), similarity, score, explain)
    hit: MemoryHit = _new(MemoryHit)
    for put, value in zip(_SETTERS, values, strict=True):
        put(hit, value)
    return hit


def visible(at: float, now: float, *, include_superseded: bool, as_of: bool) -> list[dict[str, Any]]:
    """The clauses that keep what recall/count show: memories valid at ``at`` (not yet
    superseded or ended, unless ``include_superseded``), created by then when ``as_of``,
    and not expired by their TTL at ``now``."""
    clauses: list[dict[str, Any]] = [
        {VALID_FROM: {"$lte": at}},
        {"$not": {EXPIRES: {"$lte": now}}},
    ]
    if not include_superseded:
        clauses.append({"$not": {VALID_UNTIL: {"$lte": at}}})
    if as_of:
        clauses.append({CREATED: {"$lte": at}})
    return clauses


def now_of(clock: Clock) -> float:
    t = clock()
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise InvalidArgument(f"the memory clock must return unix seconds, returned {t!r}")
    return float(t)


def row_vector(rec: Record) -> np.ndarray:
    """A record's vector as a one-row matrix (read with ``include_vectors=True``)."""
    assert rec.vector is not None, "records read without their vectors"
    return rec.vector[None, :]


def new_id() -> str:
    """A new memory id (uuid4 hex, as record ids are)."""
    return uuid.uuid4().hex


def default_clock() -> float:
    return _time.time()
