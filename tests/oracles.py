"""Reference answers for the tests, written without tenantvec's code so they catch its bugs.

Exact search, with hnswlib's distances (cosine = 1 - cosine similarity, l2 = squared
Euclidean, ip = 1 - dot), computed in float64:

- ``distances(metric, mat, q)``: the distance from ``q`` to every row of ``mat``;
- ``nearest(dist, k, allowed)``: the rows of the ``k`` smallest distances, nearest first,
  ties in row order, optionally only among the rows an ``allowed`` mask keeps;
- ``search(metric, vectors, q, k)``: the same over a mapping id -> vector (the test's model).

Filters: ``ref_match(where, fields)``, a pure-Python evaluator of DESIGN.md's "Metadata
filters" section (it does not use tenantvec._filters).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

K = TypeVar("K")


# ------------------------------------------------------------------ exact search
def distances(metric: str, mat: Any, q: Any) -> np.ndarray:
    """hnswlib's distances from query ``q`` to every row of ``mat``, in float64.

    :raises ValueError: for a metric other than cosine, l2 and ip.
    """
    mat = np.asarray(mat, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if metric == "cosine":
        return 1.0 - (mat / np.linalg.norm(mat, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    if metric == "l2":
        return ((mat - q) ** 2).sum(axis=1)
    if metric == "ip":
        return 1.0 - mat @ q
    raise ValueError(f"unknown metric {metric!r}")


def nearest(dist: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Row indices of the ``k`` smallest of ``dist``, nearest first; equal distances keep
    row order (a stable sort). With a boolean mask ``allowed``, only its rows compete."""
    rows = np.arange(len(dist)) if allowed is None else np.flatnonzero(allowed)
    return rows[np.argsort(dist[rows], kind="stable")[:k]]


def search(metric: str, vectors: Mapping[K, Any], q: Any, k: int) -> tuple[list[K], np.ndarray]:
    """Exact top-``k`` over a model's ``id -> vector`` mapping: ``(ids, distances)``, nearest
    first, equal distances in the mapping's order; empty for an empty mapping."""
    if not vectors:
        return [], np.empty(0)
    ids = list(vectors)
    dist = distances(metric, np.stack([vectors[i] for i in ids]), q)
    order = nearest(dist, k)
    return [ids[i] for i in order], dist[order]


# ------------------------------------------------------------------ filter evaluator
_MISSING = object()


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def ref_eq(a: Any, b: Any) -> bool:
    """Scalar equality: bool only equals bool, None only None, numbers across int/float."""
    if a is _MISSING or isinstance(a, (list, dict)):
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if a is None or b is None:
        return a is None and b is None
    if _num(a) and _num(b):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def ref_range(op: str, a: Any, b: Any) -> bool:
    """``$gt``/``$gte``/``$lt``/``$lte``: strings compare with strings, numbers with numbers."""
    if isinstance(b, str):
        if not isinstance(a, str):
            return False
    elif not (_num(a) and _num(b)):
        return False
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def ref_op(op: str, a: Any, v: Any) -> bool:
    """One field operator applied to the field's value ``a`` (``_MISSING`` when absent)."""
    if op == "$eq":
        return ref_eq(a, v)
    if op == "$ne":
        return not ref_eq(a, v)
    if op == "$in":
        return any(ref_eq(a, x) for x in v)
    if op == "$nin":
        return not any(ref_eq(a, x) for x in v)
    if op == "$exists":
        return (a is not _MISSING) == v
    if op == "$contains":
        return isinstance(a, list) and any(ref_eq(e, v) for e in a)
    return ref_range(op, a, v)


def ref_match(flt: dict, fields: dict) -> bool:
    """Whether a record matches the ``where`` filter ``flt``; ``fields``: the record's
    metadata (plus created_at/updated_at where the filter may name them)."""
    for key, v in flt.items():
        if key == "$and":
            ok = all(ref_match(sub, fields) for sub in v)
        elif key == "$or":
            ok = any(ref_match(sub, fields) for sub in v)
        elif key == "$not":
            ok = not ref_match(v, fields)
        elif isinstance(v, dict):
            a = fields.get(key, _MISSING)
            ok = all(ref_op(op, a, x) for op, x in v.items())
        else:
            ok = ref_eq(fields.get(key, _MISSING), v)
        if not ok:
            return False
    return True
