"""The ``where`` filter language: validation up front, then a compiled predicate.

Mongo-style dicts (``{"kind": "fact", "ts": {"$gte": 1700000000}}``). A filter is
validated once, completely, before any work: a malformed one raises
:class:`~tenantvec.errors.InvalidFilter` naming the path to the offending node.

Semantics (kept identical for every backend and for the payload indexes):

* ranges compare numbers with numbers and strings with strings; across types nothing
  matches; ``bool`` is not a number (``True`` does not equal ``1``);
* ``$eq``/``$in`` compare scalars; a list-valued field is queried with ``$contains``;
* a record without the field matches ``$ne``, ``$nin``, ``$exists: false`` and a
  ``$not`` around a condition on it, and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import InvalidFilter

SYSTEM_FIELDS = ("created_at", "updated_at")
SCALAR_TYPES = (str, int, float, bool, type(None))
RANGE_OPS = ("$gt", "$gte", "$lt", "$lte")
FIELD_OPS = ("$eq", "$ne", "$in", "$nin", "$exists", "$contains", *RANGE_OPS)
LOGIC_OPS = ("$and", "$or", "$not")
#: Most filters a ``where`` may nest through ``$and``/``$or``/``$not`` (the top level is
#: 1). Deeper filters, and self-referencing ones, raise :class:`InvalidFilter` instead of
#: exhausting the interpreter's stack.
MAX_FILTER_DEPTH = 64

MISSING: Any = object()


@dataclass(frozen=True)
class Cond:
    """One condition on one field."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


Node = Cond | And | Or | Not


def _tname(v: object) -> str:
    return {list: "list", dict: "object", str: "string", bool: "bool", type(None): "null"}.get(
        type(v), type(v).__name__
    )


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_scalar(path: str, op: str, v: object) -> None:
    if not isinstance(v, SCALAR_TYPES):
        raise InvalidFilter(f"{path}: {op} needs a str, number, bool or null, got {_tname(v)}")
    if isinstance(v, float) and math.isnan(v):
        raise InvalidFilter(f"{path}: {op} value is NaN, which matches nothing")


def _parse_ops(path: str, field: str, ops: dict) -> Node:
    if not ops:
        raise InvalidFilter(f"{path}: empty operator object for field {field!r}")
    conds: list[Node] = []
    for op, v in ops.items():
        opath = f"{path}.{op}" if isinstance(op, str) else path
        if op not in FIELD_OPS:
            if isinstance(op, str) and not op.startswith("$"):
                raise InvalidFilter(
                    f"{path}: nested objects are not equality values; "
                    f"use an operator such as $eq (found key {op!r})"
                )
            raise InvalidFilter(f"{path}: unknown operator {op!r} (known: {', '.join(FIELD_OPS)})")
        if op in ("$eq", "$ne", "$contains"):
            _check_scalar(path, op, v)
        elif op in RANGE_OPS:
            if not (_is_number(v) or isinstance(v, str)):
                raise InvalidFilter(f"{path}: {op} needs a number or string, got {_tname(v)}")
            if isinstance(v, float) and math.isnan(v):
                raise InvalidFilter(f"{path}: {op} value is NaN, which matches nothing")
        elif op in ("$in", "$nin"):
            if not isinstance(v, list):
                raise InvalidFilter(f"{path}: {op} needs a list, got {_tname(v)}")
            for i, item in enumerate(v):
                _check_scalar(f"{opath}[{i}]", op, item)
        elif op == "$exists":
            if not isinstance(v, bool):
                raise InvalidFilter(f"{path}: $exists needs true or false, got {_tname(v)}")
        conds.append(Cond(field, op, tuple(v) if isinstance(v, list) else v))
    return conds[0] if len(conds) == 1 else And(tuple(conds))


def parse_filter(where: object, path: str = "where", depth: int = 1) -> Node:
    """Validate ``where`` and return its syntax tree.

    :raises InvalidFilter: naming the path of the first malformed node, also for a
        filter nested deeper than :data:`MAX_FILTER_DEPTH` (or referencing itself).
    """
    if not isinstance(where, dict):
        raise InvalidFilter(f"{path}: a filter must be an object (dict), got {_tname(where)}")
    if depth > MAX_FILTER_DEPTH:
        raise InvalidFilter(f"{path}: filters nest deeper than {MAX_FILTER_DEPTH} levels (or refer to themselves)")
    parts: list[Node] = []
    for key, v in where.items():
        if not isinstance(key, str):
            raise InvalidFilter(f"{path}: field names must be strings, got {key!r}")
        kpath = f"{path}.{key}"
        if key in ("$and", "$or"):
            if not isinstance(v, list) or not v:
                got = "an empty list" if isinstance(v, list) else _tname(v)
                raise InvalidFilter(f"{kpath}: {key} needs a non-empty list of filters, got {got}")
            subs = tuple(parse_filter(sub, f"{kpath}[{i}]", depth + 1) for i, sub in enumerate(v))
            parts.append(And(subs) if key == "$and" else Or(subs))
        elif key == "$not":
            parts.append(Not(parse_filter(v, kpath, depth + 1)))
        elif key.startswith("$"):
            raise InvalidFilter(f"{path}: unknown operator {key!r} at filter level (known: {', '.join(LOGIC_OPS)})")
        elif not key:
            raise InvalidFilter(f"{path}: empty field name")
        elif isinstance(v, dict):
            parts.append(_parse_ops(kpath, key, v))
        elif isinstance(v, list):
            raise InvalidFilter(
                f"{kpath}: equality needs a scalar, got list; use $in for any-of or $contains for list fields"
            )
        else:
            _check_scalar(kpath, "equality", v)
            parts.append(Cond(key, "$eq", v))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


# -- evaluation --------------------------------------------------------------------------
def scalar_eq(a: object, b: object) -> bool:
    """Type-aware equality: bool only equals bool, numbers compare across int/float."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if a is None or b is None:
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    return False


def range_match(op: str, a: object, b: object) -> bool:
    """``a <op> b`` for a range operator, False across types (numbers vs strings)."""
    if isinstance(b, str):
        if not isinstance(a, str):
            return False
    elif not _is_number(a):
        return False
    if op == "$gt":
        return a > b  # type: ignore[operator]
    if op == "$gte":
        return a >= b  # type: ignore[operator]
    if op == "$lt":
        return a < b  # type: ignore[operator]
    return a <= b  # type: ignore[operator]


Getter = Callable[[Any, str], Any]
Predicate = Callable[[Any], bool]


def _compile_cond(c: Cond, get: Getter) -> Predicate:
    f, op, v = c.field, c.op, c.value
    if op == "$eq":
        return lambda r: scalar_eq(get(r, f), v)
    if op == "$ne":
        return lambda r: not scalar_eq(get(r, f), v)
    if op == "$in":
        return lambda r: any(scalar_eq(get(r, f), x) for x in v)
    if op == "$nin":
        return lambda r: not any(scalar_eq(get(r, f), x) for x in v)
    if op == "$exists":
        return lambda r: (get(r, f) is not MISSING) is v
    if op == "$contains":

        def contains(r: Any) -> bool:
            x = get(r, f)
            return isinstance(x, list) and any(scalar_eq(e, v) for e in x)

        return contains
    return lambda r: range_match(op, get(r, f), v)


def compile_predicate(node: Node, get: Getter) -> Predicate:
    """Compile a parsed filter to ``predicate(record) -> bool``.

    ``get(record, field)`` returns the field's value or :data:`MISSING`.
    """
    if isinstance(node, Cond):
        return _compile_cond(node, get)
    if isinstance(node, Not):
        inner = compile_predicate(node.part, get)
        return lambda r: not inner(r)
    preds = [compile_predicate(p, get) for p in node.parts]
    if isinstance(node, And):
        return lambda r: all(p(r) for p in preds)
    return lambda r: any(p(r) for p in preds)
