"""Measure the per-record costs behind ``tenantvec plan`` (tenantvec/_capacity.py).

Run from the repository root::

    python tools/measure_costs.py            # prints the constants and the raw numbers

What it does: for dims 16, 64, 384 and 768 it fills one HNSW tenant with 20,000 records
shaped like agent memories (id ``mem-00012345``, a 4-key metadata dict, an ~85-character
document: 165 bytes of msgpack), then prints the measured ``data.mdb`` bytes per record
next to the page-level model in ``tenantvec/_capacity.py``, the ``index.hnsw`` bytes per
element next to its formula, the indexes' own memory accounting, and the size of an
empty tenant. Takes about 35 seconds.
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import tenantvec
from tenantvec._engine.capacity import hnsw_file_bytes, lmdb_bytes_per_record
from tenantvec._engine.index import ExactIndex
from tenantvec._engine.index.hnsw import hnsw_memory_estimate
from tenantvec._engine.layout import packb

N = 20_000
DIMS = (16, 64, 384, 768)
_SAMPLE_REC = ["mem-00012345", {"kind": "fact", "session": "s-00246", "ts": 1_700_012_345, "importance": 0.5},
               "user said something memorable number 012345 about the project and its plans.", 1.7e9, 1.7e9]
RECORD_BYTES = len(packb(_SAMPLE_REC))  # 165: the record shape written below


def _fill(root: str, dim: int, n: int, hnsw_threshold: int) -> dict[str, int]:
    rng = np.random.default_rng(0)
    with tenantvec.Store(root, dim=dim, durability="process", hnsw_threshold=hnsw_threshold) as store:
        t = store.create_tenant("t")
        base = os.path.join(store.tenant_path("t"))
        empty_bytes = sum(os.path.getsize(os.path.join(base, f)) for f in ("data.mdb", "lock.mdb"))
        for start in range(0, n, 2000):
            m = min(2000, n - start)
            vecs = rng.standard_normal((m, dim)).astype(np.float32)
            docs = [f"user said something memorable number {start + i:06d} about the project and its plans." for i in range(m)]
            metas = [
                {"kind": "fact", "session": f"s-{(start + i) // 50:05d}", "ts": 1_700_000_000 + start + i, "importance": 0.5}
                for i in range(m)
            ]
            t.add(vecs, ids=[f"mem-{start + i:08d}" for i in range(m)], documents=docs, metadata=metas)
        info = t.info()
        mem = info.memory_bytes
    data = os.path.getsize(os.path.join(base, "data.mdb"))
    try:
        index = os.path.getsize(os.path.join(base, "index.hnsw"))
    except FileNotFoundError:
        index = 0
    return {"data": data, "index": index, "memory": mem, "empty": empty_bytes}


def _fit(xs: list[int], ys: list[float]) -> tuple[float, float]:
    a = np.vstack([np.ones(len(xs)), np.asarray(xs, dtype=float)]).T
    (base, slope), *_ = np.linalg.lstsq(a, np.asarray(ys, dtype=float), rcond=None)
    return float(base), float(slope)


def main() -> None:
    hnsw_file_pr: list[float] = []
    exact_mem_pr: list[float] = []
    empties: list[int] = []
    for dim in DIMS:
        with tempfile.TemporaryDirectory() as d:
            r = _fill(os.path.join(d, "s"), dim, N, hnsw_threshold=N // 4)
        hnsw_file_pr.append(r["index"] / N)
        empties.append(r["empty"])
        ex = ExactIndex(dim, "cosine", capacity=N)  # capacity == N: no growth slack
        ex.add(np.arange(N, dtype=np.int64), np.random.default_rng(1).standard_normal((N, dim)).astype(np.float32))
        exact_mem_pr.append(ex.memory_bytes / N)
        model = lmdb_bytes_per_record(dim, record_bytes=RECORD_BYTES, id_bytes=12, ids_in_order=True)
        print(f"dim {dim:4d}: data.mdb {r['data'] / N:8.1f} B/rec (model {model:7.1f})  "
              f"index.hnsw {r['index'] / N:8.1f} B/elem (model {hnsw_file_bytes(dim, 16, N) / N:7.1f})  "
              f"hnsw mem (accounted) {hnsw_memory_estimate(dim, 16, N) / N:8.1f} B/elem  "
              f"exact mem {ex.memory_bytes / N:7.1f} B/rec  empty tenant {r['empty']} B")
    # data.mdb is page-granular, not linear in dim: compare with the model printed above
    # (tenantvec/_capacity.py: LMDB_* constants) rather than fitting a line.
    b, s = _fit(list(DIMS), hnsw_file_pr)
    print(f"HNSW_FILE_BASE_BYTES = {b:.0f}   HNSW_FILE_BYTES_PER_DIM = {s:.2f}   (m=16)")
    b, s = _fit(list(DIMS), exact_mem_pr)
    print(f"EXACT_MEM_BASE_BYTES = {b:.0f}   EXACT_MEM_BYTES_PER_DIM = {s:.2f}")
    print(f"EMPTY_TENANT_DISK_BYTES = {max(empties)}")


if __name__ == "__main__":
    main()
