"""Per-query plan: unfiltered ANN, exact scoring of a small matching set, or HNSW with
the filter applied to an oversampled result.

A filtered query returns the true top-k among matching records: never fewer than
``min(k, matching)`` hits and never a non-matching record. The filter is first turned
into a label mask by the payload index, so the plan is chosen on the exact size of the
matching set:

* ``exact``          the tenant is small: the exact index scores the matching rows;
* ``exact-filtered`` ``m`` records match, ``m <= exact_filter_max(live)``: their int8
                     copies are scored with numpy and the best ``max(2k, k + 24)``
                     re-scored exactly;
* ``hnsw-post``      more match: HNSW is asked for ``k * live / m * 2`` neighbours and
                     the matching ones kept; a query left short is re-run with hnswlib
                     testing the mask inside its search (widening its beam until ``k``
                     matching hits survive, or scoring exactly when it cannot).

Costs measured on a 100k-record tenant (384-d, 2 cores): exact-filtered ~0.13 us per
matching record; hnsw-post ~50 us / selectivity; the in-search filter 3-4x slower than
hnsw-post at every selectivity. They cross at ``m ~ 20 * sqrt(live)``
(``python -m benchmarks --only filtered`` reports the resulting table).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .._types import QueryPlan
from .index import ExactIndex, HnswIndex, prepare_query
from .index.exact import direct_distances, top_k
from .payload import PayloadIndex

_EXACT_FILTER_MIN = 2048
_EXACT_FILTER_SQRT_FACTOR = 20.0


def _rescored(k: int) -> int:
    """int8-scored candidates re-scored exactly for ``k`` wanted hits (int8 near-ties)."""
    return max(2 * k, k + 24)


def exact_filter_max(live: int) -> int:
    """Largest matching set scored exactly on a tenant of ``live`` records."""
    return max(_EXACT_FILTER_MIN, int(_EXACT_FILTER_SQRT_FACTOR * live**0.5))


Result = list[tuple[np.ndarray, np.ndarray]]


class Matching(NamedTuple):
    """What a filtered query needs of the shard: the mask of matching labels (live
    records only, longer than every label), the payload columns it came from, and
    ``read_vectors(labels)``: stored vectors, checked, from the query's read transaction."""

    mask: np.ndarray
    payload: PayloadIndex
    read_vectors: Callable[[np.ndarray], np.ndarray]


def _exact_subset(metric: str, matching: Matching, labels: np.ndarray, qs: np.ndarray, k: int) -> Result:
    """Score ``labels``: int8 copies first, then the best candidates exactly from LMDB."""
    pq = prepare_query(metric, qs)
    out = []
    for i in range(len(pq)):
        idx, _ = top_k(matching.payload.approx_scores(labels, pq[i]), min(len(labels), _rescored(k)))
        cand = labels[idx]
        mat = prepare_query(metric, matching.read_vectors(cand))  # checked against their CRC32
        exact = direct_distances(metric, mat, pq[i])
        best, d = top_k(exact, min(k, len(cand)))
        out.append((cand[best], d))
    return out


def plan_query(
    index: ExactIndex | HnswIndex,
    qs: np.ndarray,
    k: int,
    matching: Matching | None,
    explain: bool = True,
) -> tuple[QueryPlan | None, Result]:
    """Choose and run a plan for the query rows ``qs`` on ``index``: unfiltered when
    ``matching`` is None, else among the records its mask holds. The plan is returned
    with ``explain`` (always for filtered queries)."""
    if matching is None:
        results = index.search(qs, k)
        if not explain:
            return None, results
        return QueryPlan(index.kind, None, len(index), ef=getattr(index, "ef", None), reason="no filter"), results
    live = len(index)
    mask = matching.mask
    count = int(np.count_nonzero(mask))
    if count == 0:
        empty = (np.empty(0, np.int64), np.empty(0, np.float32))
        return QueryPlan("empty", 0, live, reason="no record matches"), [empty for _ in qs]
    if isinstance(index, ExactIndex):
        plan = QueryPlan("exact", count, live, reason="small tenant: exact index")
        return plan, index.search(qs, k, mask)
    limit = exact_filter_max(live)
    if count <= limit:
        plan = QueryPlan("exact-filtered", count, live, reason=f"{count} matching <= {limit}")
        return plan, _exact_subset(index.metric, matching, np.flatnonzero(mask), qs, k)
    plan = QueryPlan("hnsw-post", count, live, ef=index.ef,
                     reason=f"{count} matching > {limit}: selectivity {count / max(live, 1):.3f}")
    return plan, index.search(qs, k, mask, matching=count, oversample=True)
