"""Run context: configuration, work directory, lazily loaded data and the one big build
(a ``big_n``-record tenant plus the raw hnswlib index on the same rows) that the
``query``, ``cold`` and ``ingest`` sections share, so it is built once per run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import hnswlib
import numpy as np

import tenantvec
from benchmarks.common import (
    DIM,
    HNSW_EF,
    HNSW_EFC,
    HNSW_M,
    HNSW_SEED,
    Config,
    PyDocs,
    collect,
    log,
    now,
)


def raw_hnsw(n_max: int) -> hnswlib.Index:
    idx = hnswlib.Index(space="cosine", dim=DIM)
    idx.init_index(max_elements=max(n_max, 16), ef_construction=HNSW_EFC, M=HNSW_M, random_seed=HNSW_SEED)
    idx.set_ef(HNSW_EF)
    return idx


@dataclass
class BigBuild:
    n: int
    batch: int
    store_path: Path
    tenant_id: str
    raw_index: hnswlib.Index
    raw_index_path: Path
    npy_path: Path
    raw_build_s: float
    tv_batch_s: list[float] = field(default_factory=list)
    tv_close_s: float = 0.0
    tv_create_s: float = 0.0
    index_kind: str = "?"

    @property
    def tv_add_s(self) -> float:
        return sum(self.tv_batch_s)


def ingest_tenant(t: tenantvec.Tenant, data: PyDocs, n: int, batch: int) -> list[float]:
    """Add rows ``0:n`` of ``data.matrix`` to ``t`` in ``batch``-sized add() calls; seconds per call."""
    X = data.matrix(n)
    out = []
    for s in range(0, n, batch):
        e = min(s + batch, n)
        ids, docs, metas = data.payload(s, e)
        t0 = now()
        t.add(X[s:e], ids=ids, documents=docs, metadata=metas)
        out.append(now() - t0)
    return out


class Context:
    def __init__(self, cfg: Config, workdir: Path) -> None:
        self.cfg = cfg
        self.workdir = workdir
        self._data: PyDocs | None = None
        self._big: BigBuild | None = None

    @property
    def data(self) -> PyDocs:
        if self._data is None:
            self._data = PyDocs(n_held=max(self.cfg.n_queries, self.cfg.n_queries_big))
        return self._data

    def big(self) -> BigBuild:
        """The shared ``big_n``-record build (tenantvec store closed afterwards)."""
        if self._big is not None:
            return self._big
        cfg, data = self.cfg, self.data
        n, batch = cfg.big_n, cfg.bulk_batch
        X = data.matrix(n)
        d = self.workdir / "big"
        d.mkdir(parents=True, exist_ok=True)
        collect()
        log(f"big build: raw hnswlib add_items on {n:,} rows (M={HNSW_M}, ef_construction={HNSW_EFC})")
        raw = raw_hnsw(n)
        t0 = now()
        raw.add_items(X, np.arange(n))
        raw_s = now() - t0
        raw_path = d / "raw.hnsw"
        raw.save_index(str(raw_path))
        npy_path = d / "matrix.npy"
        np.save(npy_path, X)
        log(f"big build: raw hnswlib {raw_s:.1f} s ({n / raw_s:,.0f} rec/s); tenantvec ingest in batches of {batch}")
        build = BigBuild(n, batch, d / "store", "big", raw, raw_path, npy_path, raw_s)
        collect()
        store = tenantvec.Store(build.store_path)
        try:
            t0 = now()
            t = store.create_tenant(build.tenant_id)
            build.tv_create_s = now() - t0
            build.tv_batch_s = ingest_tenant(t, data, n, batch)
            build.index_kind = t.info().index_kind
        finally:
            t0 = now()
            store.close()
            build.tv_close_s = now() - t0
        log(
            f"big build: tenantvec add {build.tv_add_s:.1f} s ({n / build.tv_add_s:,.0f} rec/s), "
            f"close (snapshot) {build.tv_close_s:.1f} s, index {build.index_kind}"
        )
        self._big = build
        return build
