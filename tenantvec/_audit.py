"""A tenant's audit log: append-only entries chained by SHA-256, kept in a byte table.

Every change to a tenant's memory and every lifecycle step of its shard (create,
deactivate, activate, export, import, compact, a repair by ``verify --fix``) appends
one :class:`AuditEntry` in the same transaction as the change. An entry names what
happened (``op``), who did it (``actor``: a user or agent id; ``"system"`` for lifecycle
entries the engine writes), the session, the ids of the records concerned and counts,
never their content: a forgotten memory's text is not kept here.

The table is any :class:`AuditTable` (byte keys to byte values; a shard's ``"audit"``
side table, ``tx.side("audit")`` in ``Tenant.transaction()``, is one)::

    b"e" + seq (8 bytes big-endian)   one entry: msgpack [1, seq, time, op, actor, session,
                                      ids, counts, reason, prev, hash]
    b"h"                              the head: msgpack [seq, hash] of the last entry

``counts`` is stored as ``[[name, n], ...]`` sorted by name; ``prev`` and ``hash`` as
32 raw bytes. An entry's ``hash`` is ``SHA-256(prev + msgpack([1, seq, time, op, actor,
session, ids, counts, reason]))``, ``prev`` the previous entry's hash (32 zero bytes for
the first), so an entry edited, removed or moved breaks the chain at that point
(:func:`check_chain`), and entries removed from the end disagree with the head. Anyone
able to rewrite every later entry and the head can forge the chain: for evidence against
the store's own operator, copy the head's hash elsewhere now and then. Keys outside the
entry namespace (``b"e"``) and the head are no part of the log and are ignored.

Example::

    with tenant.transaction() as tx:
        entry = append(tx.side("audit"), op="forget", time=now, actor="user-7", ids=("m1",),
                       counts={"forgotten": 1}, reason="user request")
    with tenant.reading() as view:
        recent = read(view.side("audit"), since=now - 3600, ops=["forget"])
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgpack

from .errors import CorruptShard, InvalidArgument

__all__ = ["AuditEntry", "AuditTable", "AuditView", "append", "check_chain", "read"]

#: Key prefix of the entries, and the key of the head.
ENTRY_PREFIX = b"e"
HEAD_KEY = b"h"
#: ``prev`` of the first entry.
ZERO_HASH = "0" * 64
#: The entry encoding's version (the first element of a stored entry).
ENTRY_VERSION = 1
_SEQ = struct.Struct(">Q")
_ZERO = bytes(32)
_INT_RANGE = (-(2**63), 2**64 - 1)  # what msgpack stores
_MAX_SEQ = 2**63


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of a tenant's audit log (oldest first: ``seq`` 1, 2, ...).

    ``time`` is in seconds since the epoch; ``counts`` maps names to integers (a plain
    dict, sorted by name; left out of the entry's ``hash()``, which ``hash`` covers);
    ``prev`` is the hex SHA-256 of the previous entry (64 zeros for the first) and
    ``hash`` this entry's (see the module docstring).
    """

    seq: int
    time: float
    op: str
    actor: str | None
    session: str | None
    ids: tuple[str, ...]
    counts: Mapping[str, int] = field(hash=False)
    reason: str | None
    prev: str
    hash: str


class AuditView(Protocol):
    """What :func:`read` reads: a byte table's lookups (``view.side("audit")`` of
    ``Tenant.reading()``)."""

    def get(self, key: bytes) -> bytes | None: ...
    def items(self, prefix: bytes = b"") -> list[tuple[bytes, bytes]]: ...


class AuditTable(AuditView, Protocol):
    """What :func:`append` writes to: a byte table (``tx.side("audit")`` of ``Tenant.transaction()``)."""

    def put(self, key: bytes, value: bytes) -> None: ...


# ---------------------------------------------------------------------------- encoding
def _packb(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _fields(seq: int, time: float, op: str, actor: str | None, session: str | None, ids: tuple[str, ...],
            counts: Mapping[str, int], reason: str | None) -> list[Any]:
    """The hashed fields of an entry, in their canonical order and form."""
    return [ENTRY_VERSION, seq, time, op, actor, session, list(ids), [[k, counts[k]] for k in sorted(counts)], reason]


def _digest(prev: bytes, fields: list[Any]) -> bytes:
    return hashlib.sha256(prev + _packb(fields)).digest()


def _entry_key(seq: int) -> bytes:
    return ENTRY_PREFIX + _SEQ.pack(seq)


def _key_seq(key: bytes) -> int | None:
    """The sequence number an entry key holds; None for a key that is not one."""
    if len(key) != len(ENTRY_PREFIX) + _SEQ.size or not key.startswith(ENTRY_PREFIX):
        return None
    return int(_SEQ.unpack(key[len(ENTRY_PREFIX):])[0])


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _optional_text(v: object) -> bool:
    return v is None or isinstance(v, str)


def _unpack(value: bytes) -> Any:
    """A stored msgpack value. :raises ValueError: it does not decode."""
    try:
        return msgpack.unpackb(value, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ValueError(f"does not decode ({exc})") from None


def _decode(value: bytes) -> AuditEntry:
    """A stored entry. :raises ValueError: it does not decode or has the wrong shape."""
    row = _unpack(value)
    if not (isinstance(row, list) and len(row) == 11 and row[0] == ENTRY_VERSION):
        raise ValueError("is not an audit entry")
    _, seq, time, op, actor, session, ids, counts, reason, prev, digest = row
    if not (
        _is_int(seq) and seq > 0 and isinstance(time, (int, float)) and not isinstance(time, bool)
        and isinstance(op, str) and _optional_text(actor) and _optional_text(session) and _optional_text(reason)
        and isinstance(ids, list) and all(isinstance(i, str) for i in ids)
        and isinstance(counts, list)
        and all(isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) and _is_int(c[1]) for c in counts)
        and isinstance(prev, bytes) and len(prev) == 32 and isinstance(digest, bytes) and len(digest) == 32
    ):
        raise ValueError("has fields of the wrong type")
    return AuditEntry(seq, float(time), op, actor, session, tuple(ids), dict(counts), reason, prev.hex(), digest.hex())


def _recomputed(entry: AuditEntry) -> str:
    """The hash ``entry``'s fields call for."""
    fields = _fields(entry.seq, entry.time, entry.op, entry.actor, entry.session, entry.ids, entry.counts,
                     entry.reason)
    return _digest(bytes.fromhex(entry.prev), fields).hex()


def _decode_head(value: bytes) -> tuple[int, bytes]:
    """The stored head: (seq, hash). :raises ValueError: it does not decode."""
    row = _unpack(value)
    if not (isinstance(row, list) and len(row) == 2 and _is_int(row[0]) and 0 <= row[0] < _MAX_SEQ
            and isinstance(row[1], bytes) and len(row[1]) == 32):
        raise ValueError("is not an audit log head")
    return row[0], row[1]


# ---------------------------------------------------------------------------- validation
def _check_text(v: object, name: str) -> str:
    """``v`` if it is a non-empty string that can be stored (UTF-8)."""
    if not isinstance(v, str) or not v:
        raise InvalidArgument(f"audit entry: {name} must be a non-empty string, got {type(v).__name__} {v!r:.80}")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"audit entry: {name} {v!r:.80} is not valid Unicode (lone surrogate)") from None
    return v


def _check_optional(v: object, name: str) -> str | None:
    """``v`` if it is None or a non-empty string that can be stored."""
    if v is None:
        return None
    if not isinstance(v, str) or not v:
        raise InvalidArgument(f"audit entry: {name} must be a non-empty string or None, got "
                              f"{type(v).__name__} {v!r:.80}")
    return _check_text(v, name)


def _check_names(values: object, name: str) -> tuple[str, ...]:
    """``values`` as a tuple of non-empty strings (a lone string is refused, not split)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InvalidArgument(f"audit entry: {name} must be a sequence of strings, got "
                              f"{type(values).__name__} {values!r:.80}")
    out = tuple(values)
    for i, v in enumerate(out):
        _check_text(v, f"{name}[{i}]")
    return out


def _check_counts(counts: object) -> dict[str, int]:
    if counts is None:
        return {}
    if not isinstance(counts, Mapping):
        raise InvalidArgument(f"audit entry: counts must be a mapping of names to integers, got "
                              f"{type(counts).__name__} {counts!r:.80}")
    for name, n in counts.items():
        _check_text(name, "a counts key")
        if not _is_int(n) or not _INT_RANGE[0] <= n <= _INT_RANGE[1]:
            raise InvalidArgument(f"audit entry: counts[{name!r}] must be a 64-bit integer, got {n!r:.80}")
    return {k: counts[k] for k in sorted(counts)}


def _check_time(time: object) -> float:
    if isinstance(time, bool) or not isinstance(time, (int, float)) or not math.isfinite(time) or time < 0:
        raise InvalidArgument(f"audit entry: time must be seconds since the epoch (a finite number >= 0), "
                              f"got {time!r:.80}")
    return float(time)


# ---------------------------------------------------------------------------- the log
def _tail(table: AuditView) -> tuple[int, bytes]:
    """(seq, hash) of the last entry, from the head; when the head is missing, does not
    decode or is behind the entries (damage that :func:`check_chain` reports), from the
    last entry stored, so that an append never overwrites one."""
    raw = table.get(HEAD_KEY)
    if raw is not None:
        try:
            seq, digest = _decode_head(raw)
        except ValueError:
            pass
        else:
            if table.get(_entry_key(seq + 1)) is None:
                return seq, digest
    for key, value in reversed(table.items(ENTRY_PREFIX)):
        seq_or_none = _key_seq(key)
        if seq_or_none is None:
            continue
        try:
            return seq_or_none, bytes.fromhex(_decode(value).hash)
        except ValueError:
            return seq_or_none, hashlib.sha256(value).digest()
    return 0, _ZERO


def append(table: AuditTable, *, op: str, time: float, actor: str | None = None, session: str | None = None,
           ids: Iterable[str] = (), counts: Mapping[str, int] | None = None, reason: str | None = None) -> AuditEntry:
    """Append one entry to the log in ``table`` and move the head; returns the entry.

    Call it in the transaction that makes the change, so that both commit or neither
    does. ``time`` is passed in (seconds since the epoch: inject the clock); ``ids`` and
    ``counts`` name what changed, never its content.

    :raises InvalidArgument: ``op`` is not a non-empty string, ``time`` not a finite
        number >= 0, ``actor``/``session``/``reason`` not strings or None, ``ids`` not
        strings, or ``counts`` not names to 64-bit integers; nothing is written.
    """
    op_, when = _check_text(op, "op"), _check_time(time)
    actor, session, reason = (_check_optional(actor, "actor"), _check_optional(session, "session"),
                              _check_optional(reason, "reason"))
    id_tuple, count_map = _check_names(ids, "ids"), _check_counts(counts)
    last, prev = _tail(table)
    seq = last + 1
    fields = _fields(seq, when, op_, actor, session, id_tuple, count_map, reason)
    digest = _digest(prev, fields)
    table.put(_entry_key(seq), _packb([*fields, prev, digest]))
    table.put(HEAD_KEY, _packb([seq, digest]))
    return AuditEntry(seq, when, op_, actor, session, id_tuple, count_map, reason, prev.hex(), digest.hex())


def read(table: AuditView, since: float | None = None, until: float | None = None, ops: Iterable[str] | None = None,
         limit: int | None = None) -> list[AuditEntry]:
    """The entries of the log in ``table``, oldest first (by ``seq``): those with
    ``since <= time < until`` (either bound may be None) and, when ``ops`` is given, an
    ``op`` among them; at most ``limit`` of them, the first ones in ``seq`` order (page
    on with ``since``, or read all and keep the tail for the latest).

    Entries are returned as stored: whether the chain is intact is :func:`check_chain`'s
    question (``Store.verify`` asks it).

    :raises InvalidArgument: a bound that is not a number, ``ops`` not strings,
        ``limit`` not an integer >= 0.
    :raises CorruptShard: an entry does not decode.
    """
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))):
            raise InvalidArgument(f"audit log: {name} must be a number (seconds since the epoch) or None, "
                                  f"got {bound!r:.80}")
    wanted = None if ops is None else frozenset(_check_names(ops, "ops"))
    if limit is not None and (not _is_int(limit) or limit < 0):
        raise InvalidArgument(f"audit log: limit must be an integer >= 0 or None, got {limit!r:.80}")
    out: list[AuditEntry] = []
    for key, value in table.items(ENTRY_PREFIX):
        if limit is not None and len(out) >= limit:
            break
        if _key_seq(key) is None:
            raise CorruptShard(f"audit log: key {key!r:.40} is not an entry key; run `tenantvec verify`")
        try:
            entry = _decode(value)
        except ValueError as exc:
            raise CorruptShard(f"audit log: entry {_key_seq(key)} {exc}; run `tenantvec verify`") from None
        if ((since is None or entry.time >= since) and (until is None or entry.time < until)
                and (wanted is None or entry.op in wanted)):
            out.append(entry)
    return out


def check_chain(items: list[tuple[bytes, bytes]]) -> list[str]:
    """What is wrong with the log whose table holds ``items`` (key, value; any order):
    an entry that does not decode, is edited (its hash does not match its fields), is
    under another entry's key (moved or swapped), does not follow the entry before it
    (its ``prev``), entries missing (a gap), and a head that is missing, does not decode
    or does not match the last entry (entries removed from the end). Empty when intact.
    """
    problems: list[str] = []
    head: bytes | None = None
    last_seq = 0  # the last entry seen, and its hash (None when it did not decode)
    last: str | None = ZERO_HASH
    for key, value in sorted(items):
        if key == HEAD_KEY:
            head = value
            continue
        if not key.startswith(ENTRY_PREFIX):
            continue  # no part of the log
        seq = _key_seq(key)
        if seq is None:
            problems.append(f"key {key!r:.40} is in the entries' namespace but is not an entry key")
            continue
        gap = seq != last_seq + 1
        if gap:
            span = f"entry {last_seq + 1}" if seq == last_seq + 2 else f"entries {last_seq + 1} to {seq - 1}"
            problems.append(f"{span} {'is' if seq == last_seq + 2 else 'are'} missing (removed)")
        try:
            entry = _decode(value)
        except ValueError as exc:
            problems.append(f"entry {seq} {exc}")
            last_seq, last = seq, None
            continue
        if entry.seq != seq:
            problems.append(f"the entry stored as entry {seq} is entry {entry.seq} (moved or swapped)")
        if _recomputed(entry) != entry.hash:
            problems.append(f"entry {seq} was edited: its hash does not match its fields")
        if not gap and last is not None and entry.prev != last:
            what = "the start of the log" if seq == 1 else f"entry {last_seq}"
            problems.append(f"entry {seq} does not follow {what}: its prev hash differs (an entry was replaced)")
        last_seq, last = seq, entry.hash
    problems.extend(_head_problems(head, last_seq, last))
    return problems


def _head_problems(head: bytes | None, last_seq: int, last: str | None) -> list[str]:
    """The head against the last entry (``last_seq`` 0: none; ``last`` None: undecodable)."""
    if head is None:
        return [f"the head is missing (the log has entries up to {last_seq})"] if last_seq else []
    try:
        seq, digest = _decode_head(head)
    except ValueError as exc:
        return [f"the head {exc}"]
    if seq != last_seq:
        return [f"the head names entry {seq} as the last, but the log ends at entry {last_seq}"
                + (" (entries removed from the end)" if seq > last_seq else "")]
    if last is not None and digest.hex() != last:
        return [f"the head's hash is not the hash of entry {seq}"]
    return []
