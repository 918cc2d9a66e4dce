"""Section ``cold``: a fresh process opens a store and answers its first query.

Each measurement is a new Python process (``cold_child.py``) that imports its library
first (timed separately), then times open + tenant handle + first query. The OS page
cache is warm (the files were just written); dropping caches would need root and would
disturb other work on the machine, so "cold" means cold process, warm disk cache.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np

import tenantvec
from benchmarks.common import (
    BENCH_DIR,
    K,
    Section,
    Target,
    child_env,
    du_bytes,
    exact_topk,
    log,
    md_table,
    mib,
    ms,
    p50,
    ratio,
    rx,
)
from benchmarks.context import Context, ingest_tenant, raw_hnsw

SYSTEMS = ("tenantvec", "tenantvec-ro", "hnswlib", "numpy")
LABELS = {
    "tenantvec": "tenantvec Store(path)",
    "tenantvec-ro": "tenantvec Store(path, readonly=True)",
    "hnswlib": "hnswlib Index.load_index",
    "numpy": "numpy np.load(.npy)",
}


def _child(system: str, path: str, tenant: str, qpath: str) -> dict[str, Any]:
    cmd = [sys.executable, str(BENCH_DIR / "cold_child.py"), system, path, tenant, qpath]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"cold child {system} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> Section:
    cfg, data = ctx.cfg, ctx.data
    sec = Section("cold", "cold: fresh process, open + first query")
    d = ctx.workdir / "cold"
    d.mkdir(parents=True, exist_ok=True)

    # small tenant: its own store, plus raw baselines on the same rows
    n_small = cfg.cold_small_n
    X_small = data.matrix(n_small)
    small_store = d / "store"
    with tenantvec.Store(small_store) as store:
        t = store.create_tenant("small")
        ingest_tenant(t, data, n_small, cfg.bulk_batch)
        small_kind = t.info().index_kind
    raw = raw_hnsw(n_small)
    raw.add_items(X_small, np.arange(n_small))
    raw.save_index(str(d / "raw.hnsw"))
    np.save(d / "matrix.npy", X_small)
    del raw

    big = ctx.big()
    q = data.queries[0]
    qpath = d / "q.npy"
    np.save(qpath, q)
    cases = [
        (n_small, small_kind, cfg.cold_runs_small, {
            "tenantvec": (str(small_store), "small"), "tenantvec-ro": (str(small_store), "small"),
            "hnswlib": (str(d / "raw.hnsw"), ""), "numpy": (str(d / "matrix.npy"), ""),
        }, X_small, du_bytes(small_store)[1]),
        (big.n, big.index_kind, cfg.cold_runs_big, {
            "tenantvec": (str(big.store_path), big.tenant_id), "tenantvec-ro": (str(big.store_path), big.tenant_id),
            "hnswlib": (str(big.raw_index_path), ""), "numpy": (str(big.npy_path), ""),
        }, data.matrix(big.n), du_bytes(big.store_path)[1]),
    ]
    rows, imports, res = [], {s: [] for s in SYSTEMS}, {}
    for n, kind, runs, paths, X, disk in cases:
        truth = exact_topk(X, q[None, :])
        log(f"cold: {n:,} records ({kind}), {runs} fresh processes per system")
        samples: dict[str, list[dict[str, Any]]] = {s: [] for s in SYSTEMS}
        for _ in range(runs):
            for s in SYSTEMS:  # interleaved so that machine noise spreads over all systems
                r = _child(s, paths[s][0], paths[s][1], str(qpath))
                samples[s].append(r)
                imports[s].append(r["import_s"])
        res[n] = {}
        for s in SYSTEMS:
            rs = samples[s]
            tot = [r["total_s"] for r in rs]
            rec = len(set(rs[0]["ids"]) & set(truth[0].tolist())) / K
            res[n][s] = {
                "total_p50": p50(tot), "total_min": min(tot), "total_max": max(tot),
                "open_p50": p50([r["open_s"] for r in rs]), "tenant_p50": p50([r["tenant_s"] for r in rs]),
                "query_p50": p50([r["query_s"] for r in rs]), "recall": rec, "runs": len(rs),
            }
        base = res[n]["hnswlib"]["total_p50"] if kind == "hnsw" else res[n]["numpy"]["total_p50"]
        for s in SYSTEMS:
            r = res[n][s]
            rows.append([
                f"{n:,} ({kind})" if s == "tenantvec" else "", LABELS[s], r["runs"], ms(r["open_p50"]),
                ms(r["tenant_p50"]) if s.startswith("tenantvec") else "-", ms(r["query_p50"]),
                f"**{ms(r['total_p50'])}**", f"{ms(r['total_min'])} / {ms(r['total_max'])}",
                rx(ratio(r["total_p50"], base)), f"{r['recall']:.1f}",
            ])
        res[n]["disk"] = disk
    sec.raw = {"cases": {str(k): v for k, v in res.items()}, "imports": imports}
    sec.data_note = (
        f"the first {n_small:,} and {big.n:,} rows of {data.describe_short(big.n)}; "
        "one query (a held-out row). tenantvec stores were written with default settings and closed "
        "(the HNSW tenant has an index snapshot); hnswlib loads an index saved by `save_index`, numpy a `.npy` "
        "of the normalised matrix."
    )
    sec.tables.append((
        "Fresh process: milliseconds for open + tenant handle + first query (p50 over the runs; min / max), "
        "after the import. `open` is `Store(path)` / `load_index` / `np.load`; the tenantvec shard itself is "
        "loaded lazily by the first query. Ratio is against the raw baseline of the same index kind "
        "(numpy for an exact tenant, hnswlib for an HNSW tenant).",
        md_table(["tenant", "system", "runs", "open", "tenant()", "first query", "total p50", "min / max",
                  "vs baseline", "recall@10"], rows),
    ))
    imp_label = {"tenantvec": "import tenantvec", "hnswlib": "import hnswlib, numpy", "numpy": "import numpy"}
    imp_rows = [[imp_label[s], len(v), ms(p50(v)), ms(min(v)), ms(max(v))]
                for s, v in imports.items() if s in imp_label]
    sec.tables.append((
        "Import time in the fresh process (information only; `import tenantvec` includes numpy, hnswlib, "
        "lmdb and msgpack).",
        md_table(["import", "runs", "p50 ms", "min ms", "max ms"], imp_rows),
    ))
    small, bigr = res[n_small], res[big.n]
    sec.targets.append(Target(
        f"cold: {n_small:,}-record tenant, fresh process", "open + first query well under 20 ms",
        f"{ms(small['tenantvec']['total_p50'])} ms p50 (readonly {ms(small['tenantvec-ro']['total_p50'])} ms)",
        small["tenantvec"]["total_p50"] < 0.020,
    ))
    for n, r in ((n_small, small), (big.n, bigr)):
        base = "hnswlib" if r is bigr and big.index_kind == "hnsw" else "numpy"
        sec.shows.append(
            f"{n:,} records: tenantvec open+first query p50 {ms(r['tenantvec']['total_p50'])} ms = "
            f"{rx(ratio(r['tenantvec']['total_p50'], r[base]['total_p50']))} {base} "
            f"({ms(r[base]['total_p50'])} ms); readonly open {ms(r['tenantvec-ro']['total_p50'])} ms; "
            f"store on disk {mib(r['disk'])} MiB."
        )
    sec.shows.append(
        f"import tenantvec p50 {ms(p50(imports['tenantvec']))} ms vs import numpy+hnswlib "
        f"{ms(p50(imports['hnswlib']))} ms."
    )
    return sec
