"""Child process for the ``scale`` section (one system per fresh process, so RSS is its own).

Usage: python -m benchmarks.scale_child '<json args>'; prints one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import (
    DIM,
    HNSW_EF,
    HNSW_EFC,
    HNSW_M,
    HNSW_SEED,
    Clustered,
    K,
    du_bytes,
    fsync_file,
    hwm_bytes,
    now,
    p50,
    p99,
    rss_bytes,
)

KINDS = ("episodic", "semantic", "procedural")


def tid(i: int) -> str:
    return f"t{i:05d}"


def workloads(T: int, ops: int, gen: Clustered, seed: int = 11) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    uniform = rng.integers(0, T, size=ops)
    ranks = np.arange(1, T + 1, dtype=np.float64)
    p = 1.0 / ranks
    p /= p.sum()
    zipf = rng.permutation(T)[rng.choice(T, size=ops, p=p)]
    return {"uniform": (uniform, gen.queries(uniform)), "zipf": (zipf, gen.queries(zipf))}


def access(run_one: Callable[[int, np.ndarray], Any], tenants: np.ndarray, queries: np.ndarray) -> dict[str, float]:
    lat = []
    t_all = now()
    for t, q in zip(tenants.tolist(), queries):
        t0 = now()
        run_one(t, q)
        lat.append(now() - t0)
    wall = now() - t_all
    return {"ops": len(lat), "ops_s": len(lat) / wall, "p50": p50(lat), "p99": p99(lat)}


class LRU:
    def __init__(self, cap: int, load: Callable[[int], Any]) -> None:
        self.cap, self.load = cap, load
        self.d: OrderedDict[int, Any] = OrderedDict()
        self.hits = self.misses = self.evictions = 0

    def get(self, key: int) -> Any:
        v = self.d.get(key)
        if v is not None:
            self.d.move_to_end(key)
            self.hits += 1
            return v
        self.misses += 1
        v = self.d[key] = self.load(key)
        if len(self.d) > self.cap:
            self.d.popitem(last=False)
            self.evictions += 1
        return v

    def counters(self) -> tuple[int, int, int]:
        return self.hits, self.misses, self.evictions


def payload(i: int, R: int) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    ids = [f"m{j:04d}" for j in range(R)]
    docs = [f"memory {j} of tenant {i}: the user prefers concise answers about topic {j % 17}" for j in range(R)]
    metas = [{"kind": KINDS[j % 3], "ts": 1_700_000_000 + 60 * j, "session": f"s{j // 20}"} for j in range(R)]
    return ids, docs, metas


def run_tenantvec(a: dict[str, Any], gen: Clustered, loads: dict[str, Any], out: dict[str, Any],
                  create: list[float], add: list[float]) -> None:
    import tenantvec

    T, R, root, max_hot = a["tenants"], a["records"], a["root"], a["max_hot"]
    store = tenantvec.Store(root, memory_budget=a["budget"], max_hot=max_hot)
    out["budget"] = store.stats().memory_budget
    out["max_hot_effective"] = store.stats().max_hot
    max_mem = 0
    for i in range(T):
        X = gen.tenant_vectors(i, R)
        ids, docs, metas = payload(i, R)
        t0 = now()
        t = store.create_tenant(tid(i))
        t1 = now()
        t.add(X, ids=ids, documents=docs, metadata=metas)
        t2 = now()
        create.append(t1 - t0)
        add.append(t2 - t1)
        if i % 64 == 0:
            max_mem = max(max_mem, store.stats().memory_bytes)
    st = store.stats()
    out["after_ingest"] = {k: getattr(st, k) for k in ("hot", "loads", "evictions", "memory_bytes", "hit_rate")}
    out["kind"] = store.tenant(tid(0)).info().index_kind
    out["rss_ingest"] = rss_bytes()

    def one(i: int, q: np.ndarray) -> Any:
        return store.tenant(tid(i)).query(q, k=K)

    out["access"] = {}
    for name, (tenants, queries) in loads.items():
        s0 = store.stats()
        r = access(one, tenants, queries)
        s1 = store.stats()
        dh, dm = s1.hits - s0.hits, s1.misses - s0.misses
        r.update(hit_rate=dh / max(dh + dm, 1), loads=s1.loads - s0.loads,
                 evictions=s1.evictions - s0.evictions, memory_bytes=s1.memory_bytes,
                 hot=s1.hot, rss=rss_bytes())
        max_mem = max(max_mem, s1.memory_bytes)
        out["access"][name] = r
    out["max_memory_bytes"] = max_mem
    t0 = now()
    store.close()
    out["close_s"] = now() - t0


def run_baseline(a: dict[str, Any], gen: Clustered, loads: dict[str, Any], out: dict[str, Any],
                 create: list[float]) -> None:
    system, T, R, root, max_hot = a["system"], a["tenants"], a["records"], a["root"], a["max_hot"]
    os.makedirs(root, exist_ok=True)
    ext = ".npy" if system == "numpy" else ".hnsw"

    def path(i: int) -> str:
        return os.path.join(root, tid(i) + ext)

    if system == "numpy":
        def save(i: int, X: np.ndarray) -> None:
            np.save(path(i), X)

        def load(i: int) -> Any:
            return np.load(path(i))

        def query(m: Any, q: np.ndarray) -> Any:
            s = m @ (q / np.linalg.norm(q))
            top = np.argpartition(s, -K)[-K:]
            return top[np.argsort(-s[top])]
    else:
        import hnswlib

        def save(i: int, X: np.ndarray) -> None:
            idx = hnswlib.Index(space="cosine", dim=DIM)
            idx.init_index(max_elements=len(X), ef_construction=HNSW_EFC, M=HNSW_M, random_seed=HNSW_SEED)
            idx.add_items(X, np.arange(len(X)))
            idx.save_index(path(i))

        def load(i: int) -> Any:
            idx = hnswlib.Index(space="cosine", dim=DIM)
            idx.load_index(path(i))
            idx.set_ef(HNSW_EF)
            return idx

        def query(m: Any, q: np.ndarray) -> Any:
            return m.knn_query(q, k=K, num_threads=1)

    for i in range(T):
        X = gen.tenant_vectors(i, R)
        t0 = now()
        save(i, X)
        fsync_file(path(i))
        create.append(now() - t0)
    out["rss_ingest"] = rss_bytes()
    out["access"] = {}
    for name, (tenants, queries) in loads.items():
        lru = LRU(max_hot, load)
        r = access(lambda i, q, lru=lru: query(lru.get(i), q), tenants, queries)
        h, m, e = lru.counters()
        r.update(hit_rate=h / max(h + m, 1), loads=m, evictions=e, hot=len(lru.d), rss=rss_bytes())
        if system == "numpy":
            r["memory_bytes"] = sum(v.nbytes for v in lru.d.values())
        out["access"][name] = r
        del lru


def main() -> None:
    a = json.loads(sys.argv[1])
    system, T, R, ops, root = a["system"], a["tenants"], a["records"], a["ops"], a["root"]
    gen = Clustered(a["centers"])
    loads = workloads(T, ops, gen)
    out: dict[str, Any] = {"system": system, "tenants": T, "records": R, "rss_start": rss_bytes()}
    create: list[float] = []
    add: list[float] = []
    if system == "tenantvec":
        run_tenantvec(a, gen, loads, out, create, add)
    elif system in ("numpy", "hnswlib"):
        run_baseline(a, gen, loads, out, create)
    else:
        raise SystemExit(f"unknown system {system!r}")
    out["create_s"] = create
    out["add_s"] = add
    out["du_apparent"], out["du_allocated"] = du_bytes(root)
    out["rss_end"] = rss_bytes()
    out["hwm"] = hwm_bytes()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
