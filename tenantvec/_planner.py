"""Per-query plan: unfiltered ANN, exact scoring of a small matching set, or filtered HNSW.

A filtered query must return the true top-k among matching records: never fewer than
``min(k, matching)`` hits and never a non-matching record. When the matching set is small,
scoring exactly those vectors with numpy is both exact and cheapest; otherwise HNSW runs
with the filter applied inside the search (hnswlib widens its beam until ``k`` matching
hits survive, and falls back to exact scoring when it cannot).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import lmdb
import numpy as np

from ._codec import pack_label
from ._filters import Node
from ._index import distances, prepare_query
from ._index._exact import top_k
from ._types import QueryPlan

if TYPE_CHECKING:
    from ._shard import Shard

# Matching sets up to this size are scored exactly (see benchmarks/RESULTS.md).
EXACT_FILTER_MAX = 4096

Result = list[tuple[np.ndarray, np.ndarray]]


def _exact_from_lmdb(shard: Shard, txn: lmdb.Transaction, labels: np.ndarray, qs: np.ndarray, k: int) -> Result:
    get, vecs_db = txn.get, shard._vecs
    raw = b"".join(get(pack_label(lab), db=vecs_db) for lab in labels.tolist())
    mat = prepare_query(shard.metric, np.frombuffer(raw, dtype=np.float32).reshape(len(labels), shard.dim))
    sq = np.einsum("ij,ij->i", mat, mat) if shard.metric == "l2" else None
    dist = distances(shard.metric, mat, prepare_query(shard.metric, qs), sq)
    out = []
    for row in dist:
        idx, d = top_k(row, min(k, len(labels)))
        out.append((labels[idx], d))
    return out


def plan_query(
    shard: Shard,
    txn: lmdb.Transaction,
    qs: np.ndarray,
    k: int,
    compiled: tuple[Node, Callable] | None,
) -> tuple[QueryPlan, Result]:
    """Choose and run a plan for ``qs`` on ``shard`` inside read transaction ``txn``."""
    index = shard.index
    live = len(index)
    if compiled is None:
        plan = QueryPlan(strategy=index.kind, matching=None, estimate=None, live=live,
                         ef=getattr(index, "ef", None), reason="no filter")
        return plan, index.search(qs, k)
    labels = np.fromiter(
        (int.from_bytes(lb, "big") for lb, _ in shard._matching(txn, compiled)), dtype=np.int64
    )
    n = len(labels)
    if n == 0:
        empty = (np.empty(0, np.int64), np.empty(0, np.float32))
        return QueryPlan("empty", 0, 0, live, reason="no record matches"), [empty for _ in qs]
    if index.kind == "exact":
        return QueryPlan("exact-filtered", n, n, live, reason="exact index"), index.search(qs, k, labels)
    if n <= EXACT_FILTER_MAX:
        plan = QueryPlan("exact-filtered", n, n, live, reason=f"{n} matching <= {EXACT_FILTER_MAX}")
        return plan, _exact_from_lmdb(shard, txn, labels, qs, k)
    plan = QueryPlan("hnsw-filtered", n, n, live, ef=index.ef, reason=f"{n} matching > {EXACT_FILTER_MAX}")
    return plan, index.search(qs, k, labels)
