"""Child process for the ``tenants`` section: one system per fresh process, so that resident
memory and first-touch costs are its own.

Usage: python -m benchmarks.tenants_child '<json args>'; prints one JSON object.

``phase="hot"``: round-robin ingest of ``batch`` records per call over every tenant, then a
first query pass (each query on its own tenant, in the workload's random order), a second
pass of the same queries (steady state), a filtered pass, resident memory over the baseline
taken before ingest; then the files are written (tenantvec: ``close()``; numpy: ``.npy``;
hnswlib: ``save_index``) and fsynced. ``phase="cold"``: for each listed tenant, optionally
drop its files from the page cache (fsync + ``POSIX_FADV_DONTNEED``, untimed), then time
open + first query.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    DIM,
    HNSW_EF,
    HNSW_EFC,
    HNSW_M,
    HNSW_SEED,
    K,
    du_bytes,
    fsync_file,
    now_ns,
    rss_bytes,
)

KIND_NAMES = ("episodic", "semantic", "procedural")
WHERE = {"kind": "semantic"}


def tid(i: int) -> str:
    return f"t{i:04d}"


def drop_cache(paths: list[Path]) -> None:
    """fsync each file and ask the kernel to drop its pages from the page cache."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _files(d: Path) -> list[Path]:
    return [Path(r) / f for r, _dirs, fs in os.walk(d) for f in fs]


class Workload:
    """The workload file written by the parent: tenant rows, payloads and query plan."""

    def __init__(self, path: str) -> None:
        w = np.load(path)
        self.X = w["X"]
        self.offsets = w["offsets"]
        self.kind = w["kind"]
        self.docs = [str(s) for s in w["docs"]]
        self.q_tenant = w["q_tenant"]
        self.Q = w["Q"]
        self.T = len(self.offsets) - 1

    def rows(self, t: int) -> np.ndarray:
        return self.X[self.offsets[t] : self.offsets[t + 1]]

    def batches(self, batch: int) -> list[tuple[int, int, int]]:
        """(tenant, start, stop) of each ingest call, round-robin over tenants."""
        out, pos, t_left = [], self.offsets[:-1].copy(), True
        while t_left:
            t_left = False
            for t in range(self.T):
                if pos[t] < self.offsets[t + 1]:
                    e = min(pos[t] + batch, self.offsets[t + 1])
                    out.append((t, int(pos[t] - self.offsets[t]), int(e - self.offsets[t])))
                    pos[t] = e
                    t_left = True
        return out


# --------------------------------------------------------------------------- systems
class TenantVec:
    def __init__(self, root: Path, n_tenants: int) -> None:
        import tenantvec

        self.tv = tenantvec
        self.root = root
        # every tenant stays hot: the section measures first touches, not evictions
        self.store = tenantvec.Store(root, memory_budget="8GiB", max_hot=n_tenants + 8)
        self.handles: dict[int, Any] = {}

    def add(self, w: Workload, t: int, s: int, e: int) -> None:
        h = self.handles.get(t)
        if h is None:
            h = self.handles[t] = self.store.create_tenant(tid(t))
        base = int(w.offsets[t])
        self.handles[t].add(
            w.rows(t)[s:e], ids=[str(i) for i in range(s, e)], documents=w.docs[base + s : base + e],
            metadata=[{"kind": KIND_NAMES[w.kind[base + i]], "row": i} for i in range(s, e)],
        )

    def query(self, t: int, q: np.ndarray, where: dict[str, Any] | None = None) -> list[int]:
        return [int(h.id) for h in self.handles[t].query(q, k=K, where=where)]

    def save(self) -> None:
        self.store.close()

    def tenant_dir(self, t: int) -> Path:
        from tenantvec._ids import tenant_dir_name

        return self.root / "tenants" / tenant_dir_name(tid(t))


class NumpyExact:
    """Per-tenant float32 matrices, grown per ingest call; exact search by one matvec."""

    def __init__(self, root: Path, n_tenants: int) -> None:
        self.root = root
        self.mats: list[np.ndarray] = [np.empty((0, DIM), np.float32) for _ in range(n_tenants)]
        self.masks: list[np.ndarray] = [np.empty(0, bool) for _ in range(n_tenants)]

    def add(self, w: Workload, t: int, s: int, e: int) -> None:
        base = int(w.offsets[t])
        self.mats[t] = np.concatenate([self.mats[t], w.rows(t)[s:e]])
        self.masks[t] = np.concatenate([self.masks[t], w.kind[base + s : base + e] == 1])

    def query(self, t: int, q: np.ndarray, where: dict[str, Any] | None = None) -> list[int]:
        X = self.mats[t]
        s = X @ q
        if where is not None:
            s = np.where(self.masks[t], s, -np.inf)
        k = min(K, len(s))
        top = np.argpartition(-s, k - 1)[:k]
        top = top[np.argsort(-s[top])]
        return [int(i) for i in top if s[i] > -np.inf]

    def save(self) -> None:
        for t, X in enumerate(self.mats):
            p = self.root / f"{tid(t)}.npy"
            np.save(p, X)
            fsync_file(p)


class RawHnsw:
    """One hnswlib index per tenant (tenantvec's default HNSW parameters), sized on creation
    to the tenant's final count (a generous baseline: no resizes)."""

    def __init__(self, root: Path, n_tenants: int) -> None:  # noqa: ARG002 (one constructor shape for all systems)
        self.root = root
        self.idx: dict[int, Any] = {}
        self.masks: dict[int, np.ndarray] = {}

    def add(self, w: Workload, t: int, s: int, e: int) -> None:
        import hnswlib

        idx = self.idx.get(t)
        if idx is None:
            n = int(w.offsets[t + 1] - w.offsets[t])
            idx = self.idx[t] = hnswlib.Index(space="cosine", dim=DIM)
            idx.init_index(max_elements=n, ef_construction=HNSW_EFC, M=HNSW_M, random_seed=HNSW_SEED)
            idx.set_ef(HNSW_EF)
            self.masks[t] = w.kind[w.offsets[t] : w.offsets[t + 1]] == 1
        idx.add_items(w.rows(t)[s:e], np.arange(s, e), num_threads=1)

    def query(self, t: int, q: np.ndarray, where: dict[str, Any] | None = None) -> list[int]:
        idx = self.idx[t]
        k = min(K, idx.get_current_count())
        if where is None:
            labels, _ = idx.knn_query(q, k=k, num_threads=1)
        else:
            m = self.masks[t]
            k = min(k, int(m.sum()))
            if k == 0:
                return []
            labels, _ = idx.knn_query(q, k=k, num_threads=1, filter=lambda i: bool(m[i]))
        return [int(i) for i in labels[0]]

    def save(self) -> None:
        for t, idx in self.idx.items():
            p = self.root / f"{tid(t)}.hnsw"
            idx.save_index(str(p))
            fsync_file(p)


SYSTEMS = {"tenantvec": TenantVec, "numpy": NumpyExact, "hnswlib": RawHnsw}


def _pass(sys_: Any, w: Workload, where: dict[str, Any] | None) -> tuple[list[int], list[list[int]]]:
    lat, ids = [], []
    for t, q in zip(w.q_tenant.tolist(), w.Q):
        t0 = now_ns()
        r = sys_.query(t, q, where)
        lat.append(now_ns() - t0)
        ids.append(r)
    return lat, ids


def hot(args: dict[str, Any]) -> dict[str, Any]:
    w = Workload(args["workload"])
    root = Path(args["root"])
    root.mkdir(parents=True, exist_ok=True)
    s = SYSTEMS[args["system"]](root, w.T)
    plan = w.batches(args["batch"])
    rss0 = rss_bytes()
    add_ns = []
    for t, a, b in plan:
        t0 = now_ns()
        s.add(w, t, a, b)
        add_ns.append(now_ns() - t0)
    profile = args.get("profile")
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    first, ids = _pass(s, w, None)
    if profile:
        prof.disable()
        prof.dump_stats(profile)
    second, _ = _pass(s, w, None)
    filt, fids = _pass(s, w, WHERE)
    rss1 = rss_bytes()
    s.save()
    return {"system": args["system"], "calls": len(plan), "add_ns": add_ns, "first_ns": first, "second_ns": second,
            "filtered_ns": filt, "ids": ids, "filtered_ids": fids, "rss0": rss0, "rss_hot": rss1,
            "du": du_bytes(root)}


def cold(args: dict[str, Any]) -> dict[str, Any]:
    system, root, tenants, drop = args["system"], Path(args["root"]), args["tenants"], args["drop"]
    Q = np.load(args["queries"])
    store = None
    if system == "tenantvec":
        import tenantvec
        from tenantvec._ids import tenant_dir_name

        store = tenantvec.Store(root)

        def files(t: int) -> list[Path]:
            return _files(root / "tenants" / tenant_dir_name(tid(t)))

        def open_query(t: int, q: np.ndarray) -> list[int]:
            return [int(h.id) for h in store.tenant(tid(t)).query(q, k=K)]
    elif system == "hnswlib":
        import hnswlib

        def files(t: int) -> list[Path]:
            return [root / f"{tid(t)}.hnsw"]

        def open_query(t: int, q: np.ndarray) -> list[int]:
            idx = hnswlib.Index(space="cosine", dim=DIM)
            idx.load_index(str(root / f"{tid(t)}.hnsw"))
            idx.set_ef(HNSW_EF)
            labels, _ = idx.knn_query(q, k=min(K, idx.get_current_count()), num_threads=1)
            return labels[0].tolist()
    else:
        def files(t: int) -> list[Path]:
            return [root / f"{tid(t)}.npy"]

        def open_query(t: int, q: np.ndarray) -> list[int]:
            X = np.load(root / f"{tid(t)}.npy")
            s = X @ q
            k = min(K, len(s))
            top = np.argpartition(-s, k - 1)[:k]
            return top[np.argsort(-s[top])].tolist()

    out = []
    for j, t in enumerate(tenants):  # the first tenant warms up the code paths, untimed
        if drop:
            drop_cache(files(t))
        t0 = now_ns()
        open_query(t, Q[j])
        if j:
            out.append(now_ns() - t0)
    if store is not None:
        store.close()
    return {"system": system, "drop": drop, "ns": out}


def main() -> None:
    args = json.loads(sys.argv[1])
    res = hot(args) if args["phase"] == "hot" else cold(args)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
