"""Working memory: one agent session's scratchpad inside its tenant's shard.

A session lives in the shard's ``wm`` side table under keys ``s/<session>\\0<part>``:

    m              the session's meta (created, expires, counters, consolidation round)
    k\\0<key>       a value set with ``set``
    l\\0<log>\\0<n>  item n of an ordered log (``append``)
    n\\0<n>         staged note n (``note``), until consolidation turns it into memory
    r\\0<round>     the report of a consolidation round (what a retry returns)

Writes go through ``Tenant.wm_write``: one journal record each, not fsynced (they
survive a process kill, not a power loss), folded into LMDB by the tenant's next
transaction. Values are msgpack of JSON-able data.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from operator import itemgetter
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
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # the integers msgpack stores

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


def check_jsonable(value: object, what: str, tenant: str, depth: int = 0) -> None:
    """Refuse what JSON cannot hold (bytes, sets, NaN, non-str keys, deep nesting).

    :raises InvalidArgument: naming ``what`` and the offending part.
    """
    if value is None or isinstance(value, (str, bool, int)):
        if isinstance(value, str):
            _utf8(value, what, tenant)
        elif isinstance(value, int) and not isinstance(value, bool) and not _INT_MIN <= value <= _INT_MAX:
            raise InvalidArgument(f"tenant {tenant!r}: {what} holds the integer {value}, outside the 64-bit range "
                                  "working memory stores", tenant=tenant)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"tenant {tenant!r}: {what} holds {value!r}, which JSON cannot", tenant=tenant)
        return
    if depth >= MAX_DEPTH:
        raise InvalidArgument(f"tenant {tenant!r}: {what} nests more than {MAX_DEPTH} levels (or refers to itself)",
                              tenant=tenant)
    if isinstance(value, (list, tuple)):
        for item in value:
            check_jsonable(item, what, tenant, depth + 1)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidArgument(f"tenant {tenant!r}: {what} has a non-str key {k!r}", tenant=tenant)
            _utf8(k, what, tenant)
            check_jsonable(v, what, tenant, depth + 1)
        return
    raise InvalidArgument(f"tenant {tenant!r}: {what} holds a {type(value).__name__} ({value!r:.60}), "
                          "which is not JSON-able", tenant=tenant)


class WorkingMemory:
    """One session's working memory in its tenant's shard (``TenantMemory.session``).

    Keys with JSON-able values (``set``/``get``/``delete``), ordered logs (``append``/
    ``log``) and staged notes (``note``/``staged``) that ``TenantMemory.consolidate`` turns
    into long-term memory. Every call checks the session's TTL: after ``expires_at`` the
    session is gone from every read and each call raises ``SessionExpired``.
    """

    __slots__ = ("_clock", "_meta_key", "_prefix", "_t", "id", "tenant")

    def __init__(self, tenant: Tenant, session_id: str, clock: Any) -> None:
        self._t = tenant
        self.tenant = tenant.id
        self.id = session_id
        self._clock = clock
        self._prefix = session_prefix(session_id)
        self._meta_key = self._prefix + b"m"

    def __repr__(self) -> str:
        return f"WorkingMemory(tenant={self.tenant!r}, session={self.id!r})"

    # -- meta
    def _live(self, view: Any) -> dict[str, Any]:
        """The session's meta as ``view`` (a ``Tenant.wm_read``/``wm_update`` view) shows it.

        :raises SessionNotFound, SessionExpired: the session is gone.
        """
        raw = view.get(self._meta_key)
        if raw is None:
            raise SessionNotFound(f"tenant {self.tenant!r} has no session {self.id!r}", tenant=self.tenant)
        meta: dict[str, Any] = unpack(raw)
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
            meta = self._live(view)
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
        check_jsonable(value, f"session {self.id!r} key {key!r}", self.tenant)
        op = [(k, _pack(value))]

        def update(view: Any) -> tuple[list[Op], None]:
            self._live(view)
            return op, None

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
    def append(self, log: str, item: Any) -> int:
        """Append a JSON-able ``item`` to the ordered log ``log``; returns its position (0, 1, ...).
        Appends to one log from several threads get distinct positions."""
        name = _name(log, "log name", self.tenant)
        check_jsonable(item, f"session {self.id!r} log {log!r}", self.tenant)
        data = _pack(item)
        prefix = self._prefix + b"l\x00" + name + b"\x00"

        def update(view: Any) -> tuple[list[Op], int]:
            meta = self._live(view)
            logs = meta.setdefault("l", {})
            n: int = logs.get(log, 0)
            logs[log] = n + 1
            return [(prefix + n.to_bytes(8, "big"), data), (self._meta_key, _pack(meta))], n

        return self._t.wm_update(update)

    def log(self, name: str, last: int | None = None) -> list[Any]:
        """The items of log ``name`` in order (the ``last`` n only, when given)."""
        p = self._prefix + b"l\x00" + _name(name, "log name", self.tenant) + b"\x00"
        if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 0):
            raise InvalidArgument(f"tenant {self.tenant!r}: last must be a non-negative int, got {last!r}",
                                  tenant=self.tenant)

        def read(view: Any) -> list[tuple[bytes, bytes]]:
            meta = self._live(view)
            if last is None:
                rows: list[tuple[bytes, bytes]] = view.items(p)
                return rows
            return _tail(view, p, meta.get("l", {}).get(name, 0), last)

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
            meta = self._live(view)
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
            meta = self._live(view)
            doomed: list[Op] = [(k, None) for k, _ in view.items(p) if k[len(p):][:1] in (b"k", b"l", b"n")]
            if not doomed:
                return [], 0
            meta["l"] = {}
            return [*doomed, (self._meta_key, _pack(meta))], len(doomed)

        return self._t.wm_update(update)


def _tail(view: Any, prefix: bytes, end: int, last: int) -> list[tuple[bytes, bytes]]:
    """The rows of the log under ``prefix`` at positions ``end - last`` to ``end - 1``
    (``end``: its next position; ``clear`` leaves no gaps inside that range, only before
    it). A position is 8 big-endian bytes, so a prefix with its first 7 covers 256 of them:
    a short tail reads the one or two such blocks it spans, not the whole log."""
    start = max(0, end - last)
    if start >= end:
        return []
    first, final = start >> 8, (end - 1) >> 8
    if final - first > 1:
        rows: list[tuple[bytes, bytes]] = view.items(prefix)
    else:
        rows = [row for block in range(first, final + 1) for row in view.items(prefix + block.to_bytes(7, "big"))]
    return rows[bisect_left(rows, prefix + start.to_bytes(8, "big"), key=itemgetter(0)):]


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
    return _pack({"c": now, "t": ttl, "e": None if ttl is None else now + ttl, "n": 0, "l": {}, "r": 0})


def pack(value: Any) -> bytes:
    return _pack(value)


def session_metas(rows: list[tuple[bytes, bytes]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(session id, meta) of every session among the ``wm`` rows given (key order)."""
    for k, v in rows:
        sid, _, part = k[len(SESSIONS):].partition(b"\x00")  # a session id holds no NUL
        if k.startswith(SESSIONS) and part == b"m":
            yield sid.decode(), unpack(v)
