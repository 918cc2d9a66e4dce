"""Section ``ingest``: durable small-batch ingest across tenants, and bulk ingest."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

import hnswlib
import numpy as np

import tenantvec
from benchmarks.common import (
    DIM,
    HNSW_EFC,
    HNSW_M,
    HNSW_SEED,
    HNSW_THRESHOLD,
    Section,
    Target,
    collect,
    fsync_file,
    log,
    md_table,
    ms,
    now,
    p50,
    p99,
    rate,
    ratio,
    rx,
)
from benchmarks.context import Context, raw_hnsw

SMALL_SYSTEMS = ("tv-full", "tv-process", "hnswlib", "hnswlib-1t", "hnswlib-save", "numpy", "numpy-save")
LABELS = {
    "tv-full": 'tenantvec add(), durability="full" (fsync per commit)',
    "tv-process": 'tenantvec add(), durability="process"',
    "hnswlib": "hnswlib add_items (in memory)",
    "hnswlib-1t": "hnswlib add_items, num_threads=1 (in memory)",
    "hnswlib-save": "hnswlib add_items + save_index + fsync",
    "numpy": "numpy concatenate (in memory)",
    "numpy-save": "numpy concatenate + np.save + fsync",
}


def _small_run(ctx: Context, system: str, rep: int) -> dict[str, Any]:
    cfg, data = ctx.cfg, ctx.data
    T, B, S = cfg.ingest_tenants, cfg.ingest_batches, cfg.ingest_batch
    X = data.matrix(T * B * S)
    payloads = {s: data.payload(s, s + S) for s in range(0, T * B * S, S)}  # built before timing
    root = ctx.workdir / "ingest" / f"{system}-{rep}"
    root.mkdir(parents=True)
    create_s: list[float] = []
    store = None
    adders: list[Callable[[int, int], None]] = []
    if system.startswith("tv"):
        store = tenantvec.Store(root / "store", durability="full" if system == "tv-full" else "process")
        for t in range(T):
            t0 = now()
            ten = store.create_tenant(f"t{t:03d}")
            create_s.append(now() - t0)

            def add(s: int, e: int, ten: tenantvec.Tenant = ten) -> None:
                ids, docs, metas = payloads[s]
                ten.add(X[s:e], ids=ids, documents=docs, metadata=metas)

            adders.append(add)
    elif system.startswith("hnswlib"):
        save = system == "hnswlib-save"
        threads = 1 if system == "hnswlib-1t" else -1
        for t in range(T):
            t0 = now()
            idx = hnswlib.Index(space="cosine", dim=DIM)
            idx.init_index(max_elements=1024, ef_construction=HNSW_EFC, M=HNSW_M, random_seed=HNSW_SEED)
            create_s.append(now() - t0)
            path = str(root / f"t{t:03d}.hnsw")

            def add(s: int, e: int, idx: hnswlib.Index = idx, path: str = path) -> None:
                idx.add_items(X[s:e], np.arange(s, e), num_threads=threads)
                if save:
                    idx.save_index(path)
                    fsync_file(path)

            adders.append(add)
    else:
        save = system == "numpy-save"
        mats = [np.empty((0, DIM), np.float32) for _ in range(T)]
        for t in range(T):
            path = str(root / f"t{t:03d}.npy")

            def add(s: int, e: int, t: int = t, path: str = path) -> None:
                mats[t] = np.concatenate((mats[t], X[s:e]))
                if save:
                    np.save(path, mats[t])
                    fsync_file(path)

            adders.append(add)
    lat: list[float] = []
    collect()
    for b in range(B):
        for t in range(T):
            s = (t * B + b) * S
            t0 = now()
            adders[t](s, s + S)
            lat.append(now() - t0)
    if store is not None:
        store.close()
    shutil.rmtree(root, ignore_errors=True)
    total = T * B * S
    return {"rps": total / sum(lat), "lat_p50": p50(lat), "lat_p99": p99(lat),
            "create_p50": p50(create_s) if create_s else None, "records": total}


def run(ctx: Context) -> Section:
    cfg, data = ctx.cfg, ctx.data
    sec = Section("ingest", "ingest: durable small batches and bulk")
    T, B, S = cfg.ingest_tenants, cfg.ingest_batches, cfg.ingest_batch
    log(f"ingest: {T} tenants x {B} batches of {S}, {cfg.ingest_reps} rep(s) per system")
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in SMALL_SYSTEMS}
    for rep in range(cfg.ingest_reps):
        order = SMALL_SYSTEMS[rep % len(SMALL_SYSTEMS):] + SMALL_SYSTEMS[: rep % len(SMALL_SYSTEMS)]
        for s in order:
            runs[s].append(_small_run(ctx, s, rep))
    agg = {}
    for s, rs in runs.items():
        agg[s] = {
            "rps": p50([r["rps"] for r in rs]), "lat_p50": p50([r["lat_p50"] for r in rs]),
            "lat_p99": p50([r["lat_p99"] for r in rs]),
            "create_p50": p50([r["create_p50"] for r in rs]) if rs[0]["create_p50"] is not None else None,
        }
    base = agg["hnswlib"]["rps"]
    rows = [[LABELS[s], rate(a["rps"]), ms(a["lat_p50"]), ms(a["lat_p99"]), rx(ratio(a["rps"], base)),
             ms(a["create_p50"]) if a["create_p50"] is not None else "-"] for s, a in agg.items()]
    sec.tables.append((
        f"Small batches: {T} tenants each receiving {B} `add()` calls of {S} records (round-robin over the "
        f"tenants, {T * B * S:,} records per run; median of {cfg.ingest_reps} run(s)). Records/s counts only the "
        "add calls; creating the tenant / index is timed separately. hnswlib: a fresh index per tenant "
        f"(max_elements=1024, M={HNSW_M}, ef_construction={HNSW_EFC}), default num_threads.",
        md_table(["system", "records/s", "call p50 ms", "call p99 ms", "vs hnswlib add_items",
                  "create tenant/index p50 ms"], rows),
    ))

    # ---- bulk
    big = ctx.big()
    n, batch = big.n, big.batch
    log(f"ingest: raw hnswlib, {n:,} rows in batches of {batch}, num_threads=1")
    X = data.matrix(n)
    collect()
    raw1 = raw_hnsw(n)
    t0 = now()
    for s in range(0, n, batch):
        raw1.add_items(X[s : s + batch], np.arange(s, min(s + batch, n)), num_threads=1)
    raw1_s = now() - t0
    del raw1
    tv_rps = n / big.tv_add_s
    bulk_rows = [
        [f"tenantvec add(), batches of {batch:,}", f"{big.tv_add_s:.1f}", rate(tv_rps), rx(ratio(tv_rps, n / big.raw_build_s)),
         rx(ratio(tv_rps, n / raw1_s))],
        ["tenantvec add() + close() (index snapshot written)", f"{big.tv_add_s + big.tv_close_s:.1f}",
         rate(n / (big.tv_add_s + big.tv_close_s)), rx(ratio(n / (big.tv_add_s + big.tv_close_s), n / big.raw_build_s)),
         rx(ratio(n / (big.tv_add_s + big.tv_close_s), n / raw1_s))],
        ["hnswlib add_items, one call, num_threads=all cores", f"{big.raw_build_s:.1f}", rate(n / big.raw_build_s),
         "1.00x", rx(ratio(n / big.raw_build_s, n / raw1_s))],
        [f"hnswlib add_items, batches of {batch:,}, num_threads=1", f"{raw1_s:.1f}", rate(n / raw1_s),
         rx(ratio(n / raw1_s, n / big.raw_build_s)), "1.00x"],
    ]
    sec.tables.append((
        f"Bulk: {n:,} records into one tenant / index (durability=\"full\").",
        md_table(["system", "seconds", "records/s", "vs hnswlib all cores", "vs hnswlib 1 thread"], bulk_rows),
    ))
    # which add() call crossed hnsw_threshold (exact -> HNSW rebuild), given the batch sizes
    sizes = [min(batch, n - s) for s in range(0, n, batch)]
    cum = np.cumsum(sizes)
    cross = int(np.argmax(cum > HNSW_THRESHOLD)) if cum[-1] > HNSW_THRESHOLD else None
    groups = [
        ("exact index (before the threshold)", list(range(cross if cross is not None else len(sizes)))),
        ("the call that crossed hnsw_threshold (builds the HNSW index)", [cross] if cross is not None else []),
        ("later calls (insert into the HNSW index)", list(range(cross + 1, len(sizes))) if cross is not None else []),
    ]
    batch_rows = []
    for label, idxs in groups:
        if not idxs:
            continue
        secs = [big.tv_batch_s[i] for i in idxs]
        recs = sum(sizes[i] for i in idxs)
        batch_rows.append([label, len(idxs), ms(p50(secs)), rate(recs / sum(secs))])
    if cross is not None and cross + 1 < len(sizes):
        last = len(sizes) - 1
        batch_rows.append([f"last call ({int(cum[last - 1]):,} records already in the tenant)", 1,
                           ms(big.tv_batch_s[last]), rate(sizes[last] / big.tv_batch_s[last])])
    sec.tables.append((
        f"tenantvec bulk ingest per add() call of {batch:,} records (hnsw_threshold={HNSW_THRESHOLD}).",
        md_table(["calls", "count", "p50 ms per call", "records/s"], batch_rows),
    ))
    sec.raw = {"small": runs, "bulk": {
        "n": n, "batch": batch, "tv_batch_s": big.tv_batch_s, "tv_close_s": big.tv_close_s,
        "raw_all_cores_s": big.raw_build_s, "raw_1thread_s": raw1_s,
    }}
    sec.data_note = (
        f"{data.describe_short(n)}: the small batches use the first {T * B * S:,} rows (each tenant its own), "
        f"bulk the first {n:,}."
    )
    full, proc = agg["tv-full"], agg["tv-process"]
    sec.targets.append(Target(
        f"ingest: {S}-record durable batches", "records/s >= raw hnswlib add_items",
        f"{rate(full['rps'])} vs {rate(base)} records/s = {rx(ratio(full['rps'], base))}",
        full["rps"] >= base,
    ))
    sec.shows.append(
        f"{S}-record batches: durability=full {rate(full['rps'])} records/s = {rx(ratio(full['rps'], base))} raw "
        f"hnswlib add_items; durability=process {rate(proc['rps'])} records/s = {rx(ratio(proc['rps'], base))}; "
        f"hnswlib made durable (save_index+fsync per batch) {rate(agg['hnswlib-save']['rps'])} records/s."
    )
    sec.shows.append(
        f"Bulk {n:,}: tenantvec {rate(tv_rps)} records/s = {rx(ratio(tv_rps, n / big.raw_build_s))} hnswlib on all "
        f"cores and {rx(ratio(tv_rps, n / raw1_s))} hnswlib single-threaded in the same batches."
    )
    sec.notes.append(
        "tenantvec small tenants (below hnsw_threshold=2048 records) use the exact index, so their ingest "
        "cost is LMDB commit + payload encoding, not HNSW insertion."
    )
    if os.cpu_count() and os.cpu_count() > 1:
        sec.notes.append(f"This machine has {os.cpu_count()} cores; hnswlib add_items uses all of them by default.")
    return sec
