"""How LangGraph items live in a tenant's shard, and how LangGraph filters become ``where``.

Storage layout (all records of the tenant's own shard; nothing outside it):

* an **item** ``(namespace, key)`` is one *primary* record, id ``lg:<h>`` where ``<h>`` is
  the hex of a 128-bit BLAKE2b hash of ``[namespace, key]`` (record ids are bounded, items
  are not; the record stores the namespace and key, and a read checks them, so a
  hash collision could never serve another item), plus one record ``lg:<h>:<i>`` per
  further indexed vector. The primary record holds the item's first vector, or, for an
  item with no vector (no ``index`` config, ``index=False``, no text at the paths), a
  deterministic pseudo-random unit vector that no search ever scores (it has no
  ``lg.vec`` flag);
* every record of an item carries the same metadata: the value's top-level fields as
  ``v:<field>`` (so filters run inside the engine), ``lg.ns`` (labels), ``lg.key``,
  ``lg.nsk`` (labels joined by ``.``, which a label cannot contain), ``lg.pre`` (every
  prefix of the namespace joined the same way: segment-wise prefix search is one
  ``$contains``, so ``("foo",)`` never matches ``("foobar",)``), ``lg.c``/``lg.u``
  (creation and update times, epoch seconds), ``lg.ttl`` (minutes or None) and ``lg.exp``
  (expiry, only when there is a TTL). The primary record also has ``lg.item`` and
  ``lg.nv`` (its number of vectors); records with a real vector have ``lg.vec``;
* a **namespace** with at least one item has a directory record ``lgns:<h>`` (flag
  ``lg.dir``), which ``list_namespaces`` reads instead of scanning items.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import numpy as np
from langgraph.store.base import Item, MatchCondition, SearchItem

from tenantvec.errors import InvalidArgument

Namespace = tuple[str, ...]
Where = dict[str, Any]
Predicate = Callable[[Mapping[str, Any]], bool]

VALUE = "v:"  # prefix of the value's fields in record metadata
NS, KEY, NSK, PRE = "lg.ns", "lg.key", "lg.nsk", "lg.pre"
CREATED, UPDATED, TTL, EXPIRES = "lg.c", "lg.u", "lg.ttl", "lg.exp"
IS_ITEM, HAS_VECTOR, N_VECTORS, IS_DIR = "lg.item", "lg.vec", "lg.nv", "lg.dir"


# --------------------------------------------------------------------------- ids and vectors
def _digest(parts: object) -> bytes:
    return hashlib.blake2b(json.dumps(parts, ensure_ascii=False).encode("utf-8", "surrogatepass"),
                           digest_size=16).digest()


def item_digest(namespace: Namespace, key: str) -> bytes:
    """The 128-bit hash that names an item's records."""
    return _digest([list(namespace), key])


def record_ids(digest: bytes, n_vectors: int) -> list[str]:
    """Ids of an item's records: the primary one, then one per vector after the first."""
    base = "lg:" + digest.hex()
    return [base] + [f"{base}:{i}" for i in range(1, n_vectors)]


def dir_id(nsk: str) -> str:
    """Id of a namespace's directory record."""
    return "lgns:" + _digest(nsk).hex()


def placeholder(digest: bytes, dim: int) -> np.ndarray:
    """A deterministic pseudo-random unit vector for a record no search scores (spread out
    so that it does not crowd the HNSW graph the way identical vectors would)."""
    v = np.random.default_rng(int.from_bytes(digest[:8], "little")).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


# --------------------------------------------------------------------------- namespaces
def ns_key(namespace: Namespace) -> str:
    """Labels joined by ``.`` (injective: LangGraph labels never contain a period)."""
    return ".".join(namespace)


def prefixes(namespace: Namespace) -> list[str]:
    """Every non-empty prefix of ``namespace`` as :func:`ns_key` writes it."""
    return [ns_key(namespace[:i]) for i in range(1, len(namespace) + 1)]


def matches(condition: MatchCondition, namespace: Namespace) -> bool:
    """Whether ``namespace`` satisfies a ``list_namespaces`` condition (``*`` matches any one
    label), exactly as LangGraph's ``InMemoryStore``.

    :raises InvalidArgument: an unknown match type.
    """
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path))
    else:
        raise InvalidArgument(f"list_namespaces: unsupported match type {condition.match_type!r} "
                              "(use 'prefix' or 'suffix')")
    return all(p == "*" or label == p for label, p in pairs)


def concrete_prefix(path: tuple[str, ...]) -> Namespace:
    """The labels of a prefix pattern before its first ``*``."""
    out: list[str] = []
    for label in path:
        if label == "*":
            break
        out.append(label)
    return tuple(out)


# --------------------------------------------------------------------------- items <-> metadata
def item_metadata(namespace: Namespace, key: str, value: Mapping[str, Any], *, created: float, now: float,
                  ttl: float | None) -> dict[str, Any]:
    """The metadata every record of an item carries.

    :raises InvalidArgument: a value field name is not a string.
    """
    md: dict[str, Any] = {NS: list(namespace), KEY: key, NSK: ns_key(namespace), PRE: prefixes(namespace),
                          CREATED: created, UPDATED: now, TTL: ttl}
    if ttl is not None:
        md[EXPIRES] = now + ttl * 60.0
    for field, v in value.items():
        if not isinstance(field, str):
            raise InvalidArgument(f"item {namespace!r}/{key!r}: value field names must be strings, got {field!r}")
        md[VALUE + field] = v
    return md


def dir_metadata(namespace: Namespace) -> dict[str, Any]:
    """The metadata of a namespace's directory record."""
    return {IS_DIR: True, NS: list(namespace), NSK: ns_key(namespace), PRE: prefixes(namespace)}


def value_of(md: Mapping[str, Any]) -> dict[str, Any]:
    """The item value a record's metadata holds."""
    n = len(VALUE)
    return {k[n:]: v for k, v in md.items() if k.startswith(VALUE)}


def identity(md: Mapping[str, Any]) -> tuple[Namespace, str]:
    """``(namespace, key)`` of the item a record belongs to."""
    return tuple(md[NS]), md[KEY]


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def to_item(md: Mapping[str, Any]) -> Item:
    """The LangGraph :class:`Item` a record's metadata describes."""
    ns, key = identity(md)
    return Item(value=value_of(md), key=key, namespace=ns, created_at=_when(md[CREATED]), updated_at=_when(md[UPDATED]))


def to_search_item(md: Mapping[str, Any], score: float | None) -> SearchItem:
    """The LangGraph :class:`SearchItem` a record's metadata describes, with ``score``."""
    ns, key = identity(md)
    return SearchItem(namespace=ns, key=key, value=value_of(md), created_at=_when(md[CREATED]),
                      updated_at=_when(md[UPDATED]), score=score)


def expired(md: Mapping[str, Any], now: float) -> bool:
    """Whether the item's TTL ran out at ``now``."""
    exp = md.get(EXPIRES)
    return exp is not None and exp <= now


# --------------------------------------------------------------------------- filters
_RANGE = ("$gt", "$gte", "$lt", "$lte")
_LANGGRAPH_OPS = ("$eq", "$ne", *_RANGE)


def _scalar(v: object) -> bool:
    return v is None or isinstance(v, (str, bool, int)) or (isinstance(v, float) and not math.isnan(v))


def _number_or_str(v: object) -> bool:
    return isinstance(v, str) or (isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v))


def _compare(item_value: Any, filter_value: Any) -> bool:
    """LangGraph's JSONB-like comparison (``InMemoryStore``): nested objects by field,
    lists element-wise, operators in ``{"$op": ...}``."""
    if isinstance(filter_value, dict):
        if any(k.startswith("$") for k in filter_value):
            return all(_apply(item_value, op, v) for op, v in filter_value.items())
        if not isinstance(item_value, dict):
            return False
        return all(_compare(item_value.get(k), v) for k, v in filter_value.items())
    if isinstance(filter_value, (list, tuple)):
        return (isinstance(item_value, (list, tuple)) and len(item_value) == len(filter_value)
                and all(_compare(a, b) for a, b in zip(item_value, filter_value)))
    return bool(item_value == filter_value)


def _apply(value: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return bool(value == operand)
    if op == "$ne":
        return bool(value != operand)
    try:  # ranges compare as numbers, as LangGraph's stores do; a non-number matches nothing
        a, b = float(value), float(operand)
    except (TypeError, ValueError):
        return False
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def _translate(node: Any) -> Any:
    """A filter in our ``where`` language with field names moved to ``v:<field>`` (for
    ``$and``/``$or``/``$not`` and operators LangGraph does not define)."""
    if not isinstance(node, dict):
        return node
    out: dict[Any, Any] = {}
    for k, v in node.items():
        if k in ("$and", "$or") and isinstance(v, list):
            out[k] = [_translate(x) for x in v]
        elif k == "$not":
            out[k] = _translate(v)
        elif isinstance(k, str) and not k.startswith("$"):
            out[VALUE + k] = v
        else:
            out[k] = v
    return out


def _eq_where(field: str, v: Any, negate: bool) -> Where:
    f = VALUE + field
    if v is None:  # a missing field reads as None in LangGraph's comparison
        return {f: {"$ne": None, "$exists": True}} if negate else {"$or": [{f: None}, {f: {"$exists": False}}]}
    return {f: {"$ne" if negate else "$eq": v}}


def split_filter(flt: Mapping[str, Any] | None) -> tuple[Where | None, Predicate | None]:
    """Split a LangGraph ``filter`` into a ``where`` the engine evaluates and a predicate
    over item values for what it cannot (nested-object and list equality, ranges with a
    bool operand). Equality and ``$eq $ne $gt $gte $lt $lte`` on scalars, ``$in $nin
    $exists $contains`` and ``$and $or $not`` (tenantvec's richer operators) run in the
    engine with tenantvec's semantics: JSON types, so ``True`` does not equal ``1``, and
    ranges compare numbers with numbers and strings with strings.

    :raises InvalidArgument: ``flt`` is not a dict.
    """
    if not flt:
        return None, None
    if not isinstance(flt, Mapping):
        raise InvalidArgument(f"search: filter must be a dict, got {type(flt).__name__} {flt!r:.80}")
    where: list[Where] = []
    local: dict[str, Any] = {}
    for field, fv in flt.items():
        if not isinstance(field, str):
            raise InvalidArgument(f"search: filter field names must be strings, got {field!r}")
        if field.startswith("$"):
            where.append(_translate({field: fv}))
        elif isinstance(fv, dict) and any(isinstance(k, str) and k.startswith("$") for k in fv):
            rest: dict[str, Any] = {}
            for op, v in fv.items():
                if op in ("$eq", "$ne") and _scalar(v):
                    where.append(_eq_where(field, v, op == "$ne"))
                elif (op in _RANGE and _number_or_str(v)) or op not in _LANGGRAPH_OPS:
                    where.append({VALUE + field: {op: list(v) if isinstance(v, tuple) else v}})
                else:
                    rest[op] = v
            if rest:
                local[field] = rest
        elif _scalar(fv):
            where.append(_eq_where(field, fv, False))
        else:
            local[field] = fv
    pushed: Where | None = None if not where else where[0] if len(where) == 1 else {"$and": where}
    if not local:
        return pushed, None
    return pushed, lambda value: all(_compare(value.get(k), v) for k, v in local.items())
