"""Working memory: one agent session's scratchpad inside its tenant's shard.

A session lives in the shard's ``wm`` side table under keys ``s/<session>\\0<part>``:

    m              the session's meta (created, expires, counters, consolidation round)
    k\\0<key>       a value set with ``set``
    l\\0<log>\\0<n>  item n of an ordered log (``append``)
    c\\0<log>       the log's next position (8 bytes, big-endian)
    n\\0<n>         staged note n (``note``), until consolidation turns it into memory
    r\\0<round>     the report of a consolidation round (what a retry returns)

Writes go through ``Tenant.wm_write``: one journal record each, not fsynced (they
survive a process kill, not a power loss), folded into LMDB by the tenant's next
transaction. Values are msgpack of JSON-able data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import msgpack

from ..errors import InvalidArgument, SessionExpired, SessionNotFound
from ._items import KINDS, SOURCES, Note, check_choice, check_confidence, check_text, check_user_metadata

if TYPE_CHECKING:
    from .._tenant import Tenant

FINGERPRINT_KEY: Final = b"\x00embedder"
SESSIONS: Final = b"s/"
MAX_SESSION_BYTES: Final = 128  # with a 200-byte name, every key of a session fits the 511 bytes of a wm key
MAX_NAME_BYTES: Final = 200
MAX_DEPTH: Final = 32

_pack = msgpack.packb  # a fresh packer per call: handles are shared across threads
Op = tuple[bytes, bytes | None]


def unpack(raw: bytes) -> Any:
    return msgpack.unpackb(raw, raw=False, strict_map_key=False)


def check_session_id(session_id: object, tenant: str) -> str:
    if (not isinstance(session_id, str) or not session_id
            or len(session_id.encode("utf-8", "surrogatepass")) > MAX_SESSION_BYTES
            or "\x00" in session_id or session_id != session_id.strip()):
        raise InvalidArgument(f"tenant {tenant!r}: a session id is a non-empty str of at most {MAX_SESSION_BYTES} "
                              f"bytes in UTF-8, without NUL or surrounding whitespace; got {session_id!r:.80}",
                              tenant=tenant)
    _utf8(session_id, "session id", tenant)
    return session_id


def session_prefix(session_id: str) -> bytes:
    return SESSIONS + session_id.encode() + b"\x00"


def meta_key(session_id: str) -> bytes:
    return session_prefix(session_id) + b"m"


def notes_prefix(session_id: str) -> bytes:
    return session_prefix(session_id) + b"n\x00"


def report_key(session_id: str, round_no: int) -> bytes:
    return session_prefix(session_id) + b"r\x00" + round_no.to_bytes(8, "big")


def reports_prefix(session_id: str) -> bytes:
    return session_prefix(session_id) + b"r\x00"


def _name(name: object, what: str, tenant: str) -> bytes:
    if not isinstance(name, str) or not name or "\x00" in name:
        raise InvalidArgument(f"tenant {tenant!r}: a {what} is a non-empty str without NUL, got {name!r:.80}",
                              tenant=tenant)
    raw = _utf8(name, what, tenant)
    if len(raw) > MAX_NAME_BYTES:
        raise InvalidArgument(f"tenant {tenant!r}: {what} {name[:40]!r}... is {len(raw)} bytes, at most "
                              f"{MAX_NAME_BYTES}", tenant=tenant)
    return raw


def _utf8(text: str, what: str, tenant: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise InvalidArgument(f"tenant {tenant!r}: {what} {text!r:.60} is not valid Unicode", tenant=tenant) from None


_LEAVES = frozenset({str, int, bool, type(None)})
Label = str | Callable[[], str]  # what a value is, for error messages: a callable is called only then


def _said(what: Label) -> str:
    return what if isinstance(what, str) else what()


def check_jsonable(value: object, what: Label, tenant: str, depth: int = 0) -> None:
    """Refuse what JSON cannot hold (bytes, sets, NaN, non-str keys, deep nesting); strings
    that are not valid Unicode and integers beyond 64 bits are refused by :func:`pack_json`.

    :raises InvalidArgument: naming ``what`` and the offending part.
    """
    t = type(value)
    if t is str or t is int or t is bool or value is None:  # the common cases first, by exact type
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"tenant {tenant!r}: {_said(what)} holds {value!r}, which JSON cannot",
                                  tenant=tenant)
        return
    if isinstance(value, (str, int)):  # subclasses: an IntEnum, a str subclass
        return
    if depth >= MAX_DEPTH:
        raise InvalidArgument(f"tenant {tenant!r}: {_said(what)} nests more than {MAX_DEPTH} levels "
                              "(or refers to itself)",
                              tenant=tenant)
    if isinstance(value, (list, tuple)):
        for item in value:
            if type(item) not in _LEAVES:  # leaves are checked here, not by a call each
                check_jsonable(item, what, tenant, depth + 1)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidArgument(f"tenant {tenant!r}: {_said(what)} has a non-str key {k!r}", tenant=tenant)
            if type(v) not in _LEAVES:
                check_jsonable(v, what, tenant, depth + 1)
        return
    raise InvalidArgument(f"tenant {tenant!r}: {_said(what)} holds a {type(value).__name__} ({value!r:.60}), "
                          "which is not JSON-able", tenant=tenant)


def pack_json(value: object, what: Label, tenant: str) -> bytes:
    """``value`` checked (:func:`check_jsonable`) and packed.

    :raises InvalidArgument: it is not JSON-able, holds a string that is not valid Unicode
        (a lone surrogate) or an integer beyond 64 bits (the message names it).
    """
    check_jsonable(value, what, tenant)
    try:
        return _pack(value)
    except (UnicodeEncodeError, OverflowError):  # rare: find the culprit to name it
        bad = _unpackable(value)
    raise InvalidArgument(f"tenant {tenant!r}: {_said(what)} holds {bad!r:.80}, which working memory cannot store "
                          "(a string that is not valid Unicode, or an integer beyond 64 bits)", tenant=tenant)


def _unpackable(value: Any) -> Any:
    """The first string or integer inside ``value`` that msgpack refuses (or ``value``)."""
    if isinstance(value, Mapping):
        parts: list[Any] = [x for kv in value.items() for x in kv]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        return value
    for part in parts:
        try:
            _pack(part)
        except (UnicodeEncodeError, OverflowError):
            return _unpackable(part)
    return value


class WorkingMemory:
    """One session's working memory in its tenant's shard (``TenantMemory.session``).

    Keys with JSON-able values (``set``/``get``/``delete``), ordered logs (``append``/
    ``log``) and staged notes (``note``/``staged``) that ``TenantMemory.consolidate`` turns
    into long-term memory. Every call checks the session's TTL: after ``expires_at`` the
    session is gone from every read and each call raises ``SessionExpired``.
    """

    __slots__ = ("_cache", "_clock", "_logs", "_meta_key", "_prefix", "_t", "id", "tenant")

    def __init__(self, tenant: Tenant, session_id: str, clock: Any) -> None:
        self._t = tenant
        self.tenant = tenant.id
        self.id = session_id
        self._clock = clock
        self._prefix = session_prefix(session_id)
        self._meta_key = self._prefix + b"m"
        self._cache: tuple[bytes, dict[str, Any]] = (b"", {})  # the meta last decoded, by its bytes
        self._logs: dict[str, tuple[bytes, bytes]] = {}  # log name -> (its items' prefix, its counter's key)

    def __repr__(self) -> str:
        return f"WorkingMemory(tenant={self.tenant!r}, session={self.id!r})"

    # -- meta
    def _live(self, view: Any) -> dict[str, Any]:
        """The session's meta as ``view`` (a ``Tenant.wm_read``/``wm_update`` view) shows it.

        Callers that change the meta change a copy.

        :raises SessionNotFound, SessionExpired: the session is gone.
        """
        raw = view.get(self._meta_key)
        if raw is None:
            raise SessionNotFound(f"tenant {self.tenant!r} has no session {self.id!r}", tenant=self.tenant)
        cached, meta = self._cache
        if raw is not cached:  # the mirror hands out the same bytes until the meta is rewritten
            meta = unpack(raw)
            self._cache = (raw, meta)
        expires = meta.get("e")
        if expires is not None and self._clock() >= expires:
            raise SessionExpired(f"tenant {self.tenant!r}: session {self.id!r} expired at {expires}",
                                 tenant=self.tenant)
        return meta

    @property
    def expires_at(self) -> float | None:
        """When the session expires (unix seconds), or None for no TTL.

        :raises SessionNotFound, SessionExpired: the session is gone.
        """
        expires: float | None = self._t.wm_read(self._live).get("e")
        return expires

    @property
    def created_at(self) -> float:
        """When the session was opened (unix seconds)."""
        created: float = self._t.wm_read(self._live)["c"]
        return created

    def touch(self, ttl: float | None = None) -> float | None:
        """Restart the session's TTL from now (``ttl`` replaces it when given; a session
        without a TTL keeps none unless given one); returns the new ``expires_at``."""
        new_ttl = None if ttl is None else check_ttl(ttl, self.tenant)

        def update(view: Any) -> tuple[list[Op], float | None]:
            meta = dict(self._live(view))
            if new_ttl is not None:
                meta["t"] = new_ttl
            meta["e"] = None if meta.get("t") is None else self._clock() + meta["t"]
            return [(self._meta_key, _pack(meta))], meta["e"]

        return self._t.wm_update(update)

    # -- keys
    def set(self, key: str, value: Any) -> None:
        """Set ``key`` to a JSON-able ``value``.

        :raises InvalidArgument: ``key`` or ``value`` unusable (nothing is written).
        """
        k = self._prefix + b"k\x00" + _name(key, "key", self.tenant)
        ops: list[Op] = [(k, pack_json(value, lambda: f"session {self.id!r} key {key!r}", self.tenant))]

        def update(view: Any) -> tuple[list[Op], None]:
            self._live(view)
            return ops, None

        self._t.wm_update(update)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        k = self._prefix + b"k\x00" + _name(key, "key", self.tenant)

        def read(view: Any) -> bytes | None:
            self._live(view)
            value: bytes | None = view.get(k)
            return value

        raw = self._t.wm_read(read)
        return default if raw is None else unpack(raw)

    def delete(self, key: str) -> bool:
        """Remove ``key``; returns whether it was set."""
        k = self._prefix + b"k\x00" + _name(key, "key", self.tenant)

        def update(view: Any) -> tuple[list[Op], bool]:
            self._live(view)
            return ([(k, None)], True) if view.get(k) is not None else ([], False)

        return self._t.wm_update(update)

    def items(self) -> dict[str, Any]:
        """Every key's value, by key."""
        p = self._prefix + b"k\x00"

        def read(view: Any) -> list[tuple[bytes, bytes]]:
            self._live(view)
            rows: list[tuple[bytes, bytes]] = view.items(p)
            return rows

        return {k[len(p):].decode(): unpack(v) for k, v in self._t.wm_read(read)}

    # -- logs
    def _log_keys(self, log: str) -> tuple[bytes, bytes]:
        keys = self._logs.get(log)
        if keys is None:
            name = _name(log, "log name", self.tenant)
            keys = self._logs[log] = (self._prefix + b"l\x00" + name + b"\x00", self._prefix + b"c\x00" + name)
        return keys

    def append(self, log: str, item: Any) -> int:
        """Append a JSON-able ``item`` to the ordered log ``log``; returns its position (0, 1, ...).
        Appends to one log from several threads get distinct positions."""
        prefix, counter = self._log_keys(log)
        data = pack_json(item, lambda: f"session {self.id!r} log {log!r}", self.tenant)

        def update(view: Any) -> tuple[list[Op], int]:
            self._live(view)
            raw = view.get(counter)
            n = 0 if raw is None else int.from_bytes(raw, "big")
            return [(prefix + n.to_bytes(8, "big"), data), (counter, (n + 1).to_bytes(8, "big"))], n

        return self._t.wm_update(update)

    def log(self, name: str, last: int | None = None) -> list[Any]:
        """The items of log ``name`` in order (the ``last`` n only, when given)."""
        p, counter = self._log_keys(name)
        if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 0):
            raise InvalidArgument(f"tenant {self.tenant!r}: last must be a non-negative int, got {last!r}",
                                  tenant=self.tenant)

        def read(view: Any) -> list[tuple[bytes, bytes]]:
            self._live(view)
            if last is None:
                rows: list[tuple[bytes, bytes]] = view.items(p)
                return rows
            raw = view.get(counter)
            return _tail(view, p, 0 if raw is None else int.from_bytes(raw, "big"), last)

        return [unpack(v) for _, v in self._t.wm_read(read)]

    # -- notes
    def note(self, text: str, *, kind: str = "semantic", source: str = "agent", confidence: float = 1.0,
             metadata: Mapping[str, Any] | None = None) -> str:
        """Stage a candidate long-term memory; ``consolidate`` writes it. Returns the note's id.

        :raises InvalidArgument: a field is unusable (nothing is staged).
        """
        t = self.tenant
        fields = {"text": check_text(text, t), "kind": check_choice(kind, KINDS, "kind", t),
                  "source": check_choice(source, SOURCES, "source", t),
                  "confidence": check_confidence(confidence, t), "metadata": check_user_metadata(metadata, t)}

        def update(view: Any) -> tuple[list[Op], str]:
            meta = dict(self._live(view))
            n = meta.get("n", 0)
            meta["n"] = n + 1
            note_id = f"{self.id}#{n}"
            fields.update(tenant=t, session=self.id, id=note_id, at=self._clock())
            key = self._prefix + b"n\x00" + n.to_bytes(8, "big")
            return [(key, _pack(fields)), (self._meta_key, _pack(meta))], note_id

        return self._t.wm_update(update)

    def staged(self) -> list[Note]:
        """The notes waiting for consolidation, in the order staged."""
        p = self._prefix + b"n\x00"

        def read(view: Any) -> list[tuple[bytes, bytes]]:
            self._live(view)
            rows: list[tuple[bytes, bytes]] = view.items(p)
            return rows

        return [note_of(v) for _, v in self._t.wm_read(read)]

    def clear(self) -> int:
        """Remove every key, log and staged note of the session (it stays open; its logs start
        again at position 0); returns how many."""
        p = self._prefix

        def update(view: Any) -> tuple[list[Op], int]:
            self._live(view)
            rows = [k for k, _ in view.items(p) if k[len(p):][:1] in (b"k", b"l", b"n", b"c")]
            items = sum(1 for k in rows if k[len(p):][:1] != b"c")  # log counters go too, not counted
            return [(k, None) for k in rows], items

        return self._t.wm_update(update)


def _tail(view: Any, prefix: bytes, end: int, last: int) -> list[tuple[bytes, bytes]]:
    """The rows of the log under ``prefix`` at positions ``end - last`` to ``end - 1``
    (``end``: its next position), read as one key range of the mirror."""
    start = max(0, end - last)
    if start >= end:
        return []
    rows: list[tuple[bytes, bytes]] = view.between(prefix + start.to_bytes(8, "big"), prefix + end.to_bytes(8, "big"))
    return rows


def note_of(raw: bytes) -> Note:
    d = unpack(raw)
    return Note(text=d["text"], kind=d["kind"], source=d["source"], confidence=d["confidence"],
                metadata=d["metadata"], tenant=d["tenant"], session=d["session"], id=d["id"], at=d["at"])


def check_ttl(ttl: object, tenant: str) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl < math.inf:
        raise InvalidArgument(f"tenant {tenant!r}: ttl must be a positive number of seconds, got {ttl!r}",
                              tenant=tenant)
    return float(ttl)


def new_meta(now: float, ttl: float | None) -> bytes:
    return _pack({"c": now, "t": ttl, "e": None if ttl is None else now + ttl, "n": 0, "r": 0})


def pack(value: Any) -> bytes:
    return _pack(value)


def session_metas(rows: list[tuple[bytes, bytes]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(session id, meta) of every session among the ``wm`` rows given (key order)."""
    for k, v in rows:
        sid, _, part = k[len(SESSIONS):].partition(b"\x00")  # a session id holds no NUL
        if k.startswith(SESSIONS) and part == b"m":
            yield sid.decode(), unpack(v)
