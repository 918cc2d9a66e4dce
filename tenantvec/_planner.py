"""Per-query plan: unfiltered ANN, exact scoring of a small matching set, or filtered HNSW.

A filtered query returns the true top-k among matching records: never fewer than
``min(k, matching)`` hits and never a non-matching record. The filter is first turned
into a label mask by the payload index, so the plan is chosen on the exact size of the
matching set:

* ``exact``          the tenant is small: the exact index scores the matching rows;
* ``exact-filtered`` few records match (<= ``EXACT_FILTER_MAX``): their float16 copies
                     are scored with numpy and the best candidates re-scored exactly;
* ``hnsw-post``      a large share matches (>= ``POST_FILTER_MIN_SELECTIVITY``): HNSW is
                     asked for ``3k/selectivity`` neighbours and the matching ones kept;
* ``hnsw-filtered``  otherwise: hnswlib tests the mask inside its search and widens its
                     beam until ``k`` matching hits survive.

Thresholds were chosen with ``python -m benchmarks --only filtered`` (RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import lmdb
import numpy as np

from ._codec import pack_label
from ._filters import Node
from ._index import distances, prepare_query
from ._index._exact import direct_distances, top_k
from ._types import QueryPlan

if TYPE_CHECKING:
    from ._shard import Shard

EXACT_FILTER_MAX = 2048
POST_FILTER_MIN_SELECTIVITY = 0.05
_RESCORE = 4  # float16 candidates re-scored in float32, per wanted hit

Result = list[tuple[np.ndarray, np.ndarray]]


def _sq(metric: str, mat: np.ndarray) -> np.ndarray | None:
    return np.einsum("ij,ij->i", mat, mat) if metric == "l2" else None


def _exact_subset(shard: Shard, txn: lmdb.Transaction, labels: np.ndarray, qs: np.ndarray, k: int) -> Result:
    """Score ``labels`` exactly: float16 copies first, then the best in float32 from LMDB."""
    metric = shard.metric
    pq = prepare_query(metric, qs)
    payload = shard.payload(txn)
    approx = payload.vec16[labels].astype(np.float32)  # unit directions: cosine-ready
    if metric != "cosine":
        approx *= payload.norms[labels][:, None]
    dist = distances(metric, approx, pq, _sq(metric, approx))
    get, vecs_db = txn.get, shard._vecs
    out = []
    for i, row in enumerate(dist):
        idx, _ = top_k(row, min(len(labels), k * _RESCORE))
        cand = labels[idx]
        raw = b"".join(get(pack_label(lab), db=vecs_db) for lab in cand.tolist())
        mat = prepare_query(metric, np.frombuffer(raw, dtype=np.float32).reshape(len(cand), shard.dim))
        exact = direct_distances(metric, mat, pq[i])
        best, d = top_k(exact, min(k, len(cand)))
        out.append((cand[best], d))
    return out


def plan_query(
    shard: Shard,
    txn: lmdb.Transaction,
    qs: np.ndarray,
    k: int,
    compiled: tuple[Node, Callable] | None,
    explain: bool = True,
) -> tuple[QueryPlan | None, Result]:
    """Choose and run a plan for ``qs`` on ``shard`` inside read transaction ``txn``."""
    index = shard.index
    if compiled is None:
        results = index.search(qs, k)
        if not explain:
            return None, results
        return QueryPlan(index.kind, None, None, len(index), ef=getattr(index, "ef", None), reason="no filter"), results
    live = len(index)
    mask = shard.filter_mask(txn, compiled)
    matching = int(np.count_nonzero(mask))
    if matching == 0:
        empty = (np.empty(0, np.int64), np.empty(0, np.float32))
        return QueryPlan("empty", 0, 0, live, reason="no record matches"), [empty for _ in qs]
    if index.kind == "exact":
        plan = QueryPlan("exact", matching, matching, live, reason="small tenant: exact index")
        return plan, index.search(qs, k, mask)
    selectivity = matching / max(live, 1)
    if matching <= EXACT_FILTER_MAX:
        plan = QueryPlan("exact-filtered", matching, matching, live,
                         reason=f"{matching} matching <= {EXACT_FILTER_MAX}")
        return plan, _exact_subset(shard, txn, np.flatnonzero(mask), qs, k)
    oversample = selectivity >= POST_FILTER_MIN_SELECTIVITY
    plan = QueryPlan(
        "hnsw-post" if oversample else "hnsw-filtered", matching, matching, live, ef=index.ef,
        reason=f"selectivity {selectivity:.3f} {'>=' if oversample else '<'} {POST_FILTER_MIN_SELECTIVITY}",
    )
    return plan, index.search(qs, k, mask, matching=matching, oversample=oversample)
