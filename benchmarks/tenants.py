"""Section ``tenants``: hundreds of small tenants of real embeddings, written in small
round-robin batches and queried shortly after, each query on its own tenant; then cold opens
with the page cache warm and with the tenant's files dropped from it. tenantvec, numpy exact
search over per-tenant matrices and one raw hnswlib index per tenant each run in their own
fresh processes (``tenants_child.py``) on the same workload.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.common import (
    DIM,
    QUERY_SIGMA,
    REPO,
    TILE_SIGMA,
    Section,
    Target,
    child_env,
    log,
    md_table,
    mib,
    ms,
    normalize,
    p50,
    ratio,
    rx,
    us,
)
from benchmarks.context import Context

SYSTEMS = ("tenantvec", "numpy", "hnswlib")
MIN_N, MAX_N = 19, 647  # tenant sizes, log-uniform, as in issue 14
BATCH = 32
KIND_P = (0.6, 0.3, 0.1)  # episodic / semantic / procedural; the filter selects "semantic"
SIZES = {"full": {"tenants": 400, "queries": 2400, "cold": 100},
         "quick": {"tenants": 60, "queries": 400, "cold": 20}}
PROFILE_ENV = "TENANTVEC_BENCH_PROFILE"  # path: cProfile the tenantvec first pass into it


def split_tenants(vectors: np.ndarray, package: Sequence[str], n_tenants: int,
                  seed: int = 14) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Cut the packages into tenants of ``MIN_N..MAX_N`` records (sizes log-uniform; a
    package's shuffled rows are cut in order, a remainder under ``MIN_N`` joins the previous
    chunk when that stays under ``MAX_N`` and is dropped otherwise; packages under ``MIN_N``
    are skipped). Repeat over tiled copies of the data (``TILE_SIGMA`` noise, renormalised)
    until ``n_tenants`` tenants exist. Returns each tenant's vectors and their source row numbers."""
    rng = np.random.default_rng(seed)
    by_pkg: dict[str, list[int]] = {}
    for i, p in enumerate(package):
        by_pkg.setdefault(p, []).append(i)
    rows: list[np.ndarray] = []
    sources: list[np.ndarray] = []
    copy = 0
    while len(rows) < n_tenants:
        src = vectors if copy == 0 else normalize(
            vectors + np.random.default_rng((seed, copy)).normal(0, TILE_SIGMA, vectors.shape).astype(np.float32))
        for pkg in sorted(by_pkg):
            idx = rng.permutation(by_pkg[pkg])
            chunks: list[np.ndarray] = []
            pos = 0
            while len(idx) - pos >= MIN_N:
                size = int(np.exp(rng.uniform(np.log(MIN_N), np.log(MAX_N + 1))))
                chunks.append(idx[pos : pos + size])
                pos += size
            rest = idx[pos:]
            if len(rest) and chunks and len(chunks[-1]) + len(rest) <= MAX_N:
                chunks[-1] = np.concatenate([chunks[-1], rest])
            for c in chunks:
                rows.append(src[c])
                sources.append(c)
        copy += 1
    return rows[:n_tenants], sources[:n_tenants]


def _child(args: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.tenants_child", json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(REPO), timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"tenants child {args['system']} {args['phase']} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _recall(found: list[list[int]], truth: list[list[int]]) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth))
    return hits / max(1, sum(len(t) for t in truth))


def run(ctx: Context) -> Section:
    sz = SIZES[ctx.cfg.name]
    data = ctx.data
    sec = Section("tenants", "tenants: hundreds of small tenants, first touches, cold disks")
    d = ctx.workdir / "tenants"
    d.mkdir(parents=True, exist_ok=True)

    rows, sources = split_tenants(data.vectors, data.package, sz["tenants"])
    T = len(rows)
    counts = np.array([len(r) for r in rows])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    rng = np.random.default_rng(15)
    kind = rng.choice(3, size=int(offsets[-1]), p=KIND_P).astype(np.int8)
    docs = [data.text[i] for i in np.concatenate(sources).tolist()]  # tiled copies reuse their source's text
    q_tenant = rng.integers(0, T, size=sz["queries"])
    pick = [int(offsets[t] + rng.integers(0, counts[t])) for t in q_tenant.tolist()]
    X = np.concatenate(rows)
    Q = normalize(X[pick] + rng.normal(0, QUERY_SIGMA, (len(pick), DIM)).astype(np.float32))
    wpath = d / "workload.npz"
    np.savez(wpath, X=X, offsets=offsets, kind=kind, docs=np.array(docs), q_tenant=q_tenant, Q=Q)
    n_rec = int(offsets[-1])
    log(f"tenants: {T} tenants ({counts.min()}-{counts.max()} records, {n_rec:,} in all), {len(Q):,} queries")

    env = child_env()
    hot: dict[str, dict[str, Any]] = {}
    for s in SYSTEMS:
        log(f"tenants: {s}: round-robin ingest ({BATCH} per call), two query passes, filtered pass")
        args: dict[str, Any] = {"phase": "hot", "system": s, "workload": str(wpath), "root": str(d / s),
                                "batch": BATCH}
        if s == "tenantvec" and os.environ.get(PROFILE_ENV):
            args["profile"] = os.environ[PROFILE_ENV]
        hot[s] = _child(args, env)

    # cold opens: a sample of tenants, one child per (system, page cache state)
    crng = np.random.default_rng(16)
    sample = crng.choice(T, size=min(T, sz["cold"] + 1), replace=False).tolist()  # first: warm-up
    cq = np.stack([X[int(offsets[t])] for t in sample])
    cq_path = d / "cold_q.npy"
    np.save(cq_path, normalize(cq + crng.normal(0, QUERY_SIGMA, cq.shape).astype(np.float32)))
    cold: dict[tuple[str, bool], list[int]] = {}
    for drop in (False, True):
        for s in SYSTEMS:
            log(f"tenants: cold open + first query, {s}, {'files dropped from' if drop else 'warm'} page cache")
            cold[(s, drop)] = _child({"phase": "cold", "system": s, "root": str(d / s), "tenants": sample,
                                      "queries": str(cq_path), "drop": drop}, env)["ns"]

    truth, ftruth = hot["numpy"]["ids"], hot["numpy"]["filtered_ids"]
    m: dict[str, dict[str, float]] = {}
    for s in SYSTEMS:
        h = hot[s]
        m[s] = {"first": p50(h["first_ns"]), "second": p50(h["second_ns"]), "filtered": p50(h["filtered_ns"]),
                "cold_warm": p50(cold[(s, False)]), "cold_drop": p50(cold[(s, True)]),
                "disk": h["du"][1] / n_rec, "rss": h["rss_hot"] - h["rss0"], "add": p50(h["add_ns"]),
                "recall": _recall(h["ids"], truth), "frecall": _recall(h["filtered_ids"], ftruth)}
    tv, npy, hn = m["tenantvec"], m["numpy"], m["hnswlib"]

    def row(label: str, key: str, fmt: Any) -> list[str]:
        return [label] + [fmt(m[s][key]) for s in SYSTEMS] + [rx(ratio(tv[key], npy[key])), rx(ratio(tv[key], hn[key]))]

    def ms_ns(v: float) -> str:
        return ms(v / 1e9)

    table = [
        row("hot query p50 (µs), first pass after ingest", "first", us),
        row("same queries, second pass (steady state) (µs)", "second", us),
        row("filtered query p50 (µs), `{kind: semantic}` (~30%)", "filtered", us),
        row("cold open + first query p50 (ms), page cache warm", "cold_warm", ms_ns),
        row("cold open + first query p50 (ms), files dropped from page cache", "cold_drop", ms_ns),
        row("disk bytes per record (du)", "disk", lambda v: f"{v:,.0f}"),
        row("resident memory over baseline, all tenants hot (MiB)", "rss", mib),
        row(f"ingest call p50 (ms), {BATCH} records", "add", ms_ns),
        row("recall@10 vs numpy exact, first pass", "recall", lambda v: f"{v:.3f}"),
        row("recall@10 vs numpy exact, filtered", "frecall", lambda v: f"{v:.3f}"),
    ]
    sec.data_note = (
        f"{T} tenants cut from the packages of the real pydocs-minilm embeddings (384-d, all {data.total:,} rows): "
        f"each package's rows shuffled and cut into chunks of log-uniform size {MIN_N}-{MAX_N} (a remainder under "
        f"{MIN_N} joins the previous chunk if that stays <= {MAX_N}, else is dropped; packages under {MIN_N} rows "
        f"skipped), repeated over tiled copies of all rows (N(0, {TILE_SIGMA}) noise, renormalised) until {T} "
        f"tenants exist; {counts.min()}-{counts.max()} records per tenant (median {int(np.median(counts))}), "
        f"{n_rec:,} in all. Records carry a paragraph as document (tenantvec only) and `{{kind, row}}` metadata "
        f"(kind episodic/semantic/procedural at {KIND_P}). {len(Q):,} queries, each a random record of a "
        f"uniformly drawn tenant plus N(0, {QUERY_SIGMA}) noise, asked of that tenant only, in random order."
    )
    sec.tables.append((
        f"{T} tenants, {n_rec:,} records. Each system runs in its own fresh process: round-robin ingest of "
        f"{BATCH} records per call over the tenants ({hot['tenantvec']['calls']:,} calls; tenantvec `add()` with "
        "durability=\"full\", memory_budget=8GiB and max_hot above the tenant count so every tenant stays hot; "
        "numpy appends to a per-tenant matrix; hnswlib `add_items` into a per-tenant index sized to the tenant), "
        "then the first query pass, the same queries again, and a filtered pass (numpy: mask then top-k; hnswlib: "
        "`knn_query(filter=...)`). Resident memory: VmRSS after the passes minus VmRSS before ingest (the "
        "workload arrays are loaded before). Then files are written (tenantvec `close()`, `np.save`, "
        "`save_index`, fsynced). Cold rows: a fresh process per system and cache state opens "
        f"{len(sample) - 1} sampled tenants one after another (one untimed warm-up tenant first) and times "
        "open + first query of each (tenantvec: `store.tenant(id).query` in an open Store; numpy: `np.load` + "
        "matvec; hnswlib: `load_index` + `knn_query`); 'dropped' = every file of that tenant fsynced and "
        "`posix_fadvise(DONTNEED)` just before (untimed). Disk: du-allocated bytes of the store / all files "
        "over all records; tenantvec also holds documents and metadata, the baselines only vectors.",
        md_table(["what", "tenantvec", "numpy", "hnswlib", "tv / numpy", "tv / hnswlib"], table, align="lrrrrr"),
    ))
    sec.shows.append(
        f"First touch: the first query pass after ingest runs at {rx(ratio(tv['first'], npy['first']))} numpy's "
        f"p50, the second pass at {rx(ratio(tv['second'], npy['second']))}.")
    sec.shows.append(
        f"Cold from a dropped page cache: {ms(tv['cold_drop'] / 1e9)} ms vs hnswlib {ms(hn['cold_drop'] / 1e9)} ms "
        f"({rx(ratio(tv['cold_drop'], hn['cold_drop']))}); warm {ms(tv['cold_warm'] / 1e9)} ms.")
    sec.targets += [
        Target("tenants: hot p50, first pass", "<= 1.2x numpy", rx(ratio(tv["first"], npy["first"])),
               ratio(tv["first"], npy["first"]) <= 1.2),
        Target("tenants: hot p50, steady state", "<= 1.1x numpy", rx(ratio(tv["second"], npy["second"])),
               ratio(tv["second"], npy["second"]) <= 1.1),
        Target("tenants: cold open + query, page cache dropped", "<= 1.2x hnswlib",
               rx(ratio(tv["cold_drop"], hn["cold_drop"])), ratio(tv["cold_drop"], hn["cold_drop"]) <= 1.2),
        Target("tenants: cold open + query, page cache warm", "<= 3 ms p50", f"{ms(tv['cold_warm'] / 1e9)} ms",
               tv["cold_warm"] <= 3e6),
        Target("tenants: disk bytes per record", "<= 1.2x hnswlib index file (no metadata file here)",
               rx(ratio(tv["disk"], hn["disk"])), ratio(tv["disk"], hn["disk"]) <= 1.2),
        Target("tenants: memory, all tenants hot", "<= 1.5x numpy", rx(ratio(tv["rss"], npy["rss"])),
               ratio(tv["rss"], npy["rss"]) <= 1.5),
    ]
    sec.raw = {"tenants": T, "records": n_rec, "queries": len(Q), "cold_sample": len(sample) - 1,
               "sizes": counts.tolist(), "p50": m}
    return sec
