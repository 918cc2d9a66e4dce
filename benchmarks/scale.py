"""Section ``scale``: many small tenants under a memory budget, then random access with
evictions. tenantvec, numpy files and hnswlib files each run in their own fresh process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

from benchmarks.common import (
    DIM,
    REPO,
    Clustered,
    Section,
    child_env,
    log,
    md_table,
    mib,
    ms,
    now,
    p50,
    rate,
    ratio,
    rx,
)
from benchmarks.context import Context

SYSTEMS = ("tenantvec", "numpy", "hnswlib")
LABELS = {
    "tenantvec": "tenantvec Store",
    "numpy": "numpy: one .npy per tenant + LRU",
    "hnswlib": "hnswlib: one index file per tenant + LRU",
}
VECTOR_BYTES = DIM * 4


def _child(args: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.scale_child", json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), cwd=str(REPO), timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"scale child {args['system']} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> Section:
    cfg = ctx.cfg
    sec = Section("scale", "scale: many small tenants, memory budget, random access")
    T, R = cfg.scale_tenants, cfg.scale_records
    res: dict[str, dict[str, Any]] = {}
    for s in SYSTEMS:
        root = ctx.workdir / "scale" / s
        log(f"scale: {s}: {T:,} tenants x {R} records, then {cfg.scale_ops:,} random queries x 2 workloads")
        t0 = now()
        res[s] = _child({
            "system": s, "tenants": T, "records": R, "ops": cfg.scale_ops, "root": str(root),
            "budget": cfg.scale_budget, "max_hot": cfg.scale_max_hot, "centers": cfg.scale_centers,
        })
        res[s]["wall_s"] = now() - t0
        shutil.rmtree(root, ignore_errors=True)
    records = T * R
    tv = res["tenantvec"]
    budget = tv["budget"]
    build_rows = []
    for s in SYSTEMS:
        r = res[s]
        per = [c + a for c, a in zip(r["create_s"], r["add_s"])] if r["add_s"] else r["create_s"]
        total = sum(per)
        r["total_s"], r["per_p50"] = total, p50(per)
        mem = f"{mib(r['after_ingest']['memory_bytes'])} / {mib(budget)}" if s == "tenantvec" else "-"
        build_rows.append([
            LABELS[s], f"{total:.1f}", ms(r["per_p50"]), rate(records / total),
            f"{r['du_allocated'] / records:,.0f}", f"{r['du_allocated'] / records / VECTOR_BYTES:.2f}x",
            mem, mib(r["rss_start"]), mib(r["rss_ingest"]), mib(r["hwm"]),
        ])
    sec.tables.append((
        f"Build and footprint: {T:,} tenants x {R} records (tenantvec: `create_tenant` + one `add()` of {R} records "
        f"with documents and metadata, durability=\"full\", memory_budget={cfg.scale_budget}, max_hot="
        f"{cfg.scale_max_hot}; numpy: `np.save` + fsync per tenant; hnswlib: build + `save_index` + fsync per "
        "tenant; the baselines store vectors only). Disk = allocated bytes (du) after close / records; a raw "
        f"float32 vector is {VECTOR_BYTES} bytes. RSS in MiB.",
        md_table(["system", "create+ingest s", "per tenant p50 ms", "records/s", "disk bytes/record",
                  "vs raw vector", "hot index memory / budget MiB", "RSS start", "RSS after ingest",
                  "peak RSS"], build_rows),
    ))
    acc_rows = []
    for wl in ("uniform", "zipf"):
        base = res["numpy"]["access"][wl]["ops_s"]
        for s in SYSTEMS:
            a = res[s]["access"][wl]
            mem = mib(a["memory_bytes"]) if "memory_bytes" in a else "-"
            acc_rows.append([
                wl if s == "tenantvec" else "", LABELS[s], f"{a['ops']:,}", rate(a["ops_s"]),
                rx(ratio(a["ops_s"], base)), ms(a["p50"]), ms(a["p99"]), f"{a['hit_rate']:.3f}",
                f"{a['loads']:,}", f"{a['evictions']:,}", mem, mib(a["rss"]),
            ])
    sec.tables.append((
        f"Random access: one k=10 query per op on a random tenant (`store.tenant(id).query(q)` for tenantvec), "
        f"uniform over all {T:,} tenants, or Zipf(s=1) over a random ranking of them. At most "
        f"{cfg.scale_max_hot} tenants hot (the baselines use an LRU of the same size). Latency in ms, memory in MiB.",
        md_table(["workload", "system", "ops", "ops/s", "vs numpy", "p50 ms", "p99 ms", "hit rate", "loads",
                  "evictions", "hot memory", "RSS"], acc_rows),
    ))
    sec.raw = {s: {k: v for k, v in r.items() if k not in ("create_s", "add_s")} for s, r in res.items()}
    sec.data_note = Clustered.describe() + (
        f"; {T:,} tenants x {R} records, ids `m0000..`, a ~80-byte document and 3 metadata fields each."
    )
    u = tv["access"]["uniform"]
    z = tv["access"]["zipf"]
    sec.shows.append(
        f"Creating and filling {T:,} tenants took {tv['total_s']:.0f} s ({ms(tv['per_p50'])} ms per tenant p50) = "
        f"{rx(ratio(tv['total_s'], res['numpy']['total_s']))} the numpy-files time and "
        f"{rx(ratio(tv['total_s'], res['hnswlib']['total_s']))} the hnswlib-files time."
    )
    sec.shows.append(
        f"Disk: {tv['du_allocated'] / records:,.0f} bytes per record = {tv['du_allocated'] / records / VECTOR_BYTES:.1f}x "
        f"the raw vector (numpy files {res['numpy']['du_allocated'] / records:,.0f}, hnswlib files "
        f"{res['hnswlib']['du_allocated'] / records:,.0f})."
    )
    sec.shows.append(
        f"Hot index memory peaked at {mib(tv['max_memory_bytes'])} MiB of the {mib(budget)} MiB budget "
        f"(index kind {tv['kind']}, max_hot {tv['max_hot_effective']}); process RSS {mib(tv['rss_ingest'])} MiB after "
        f"ingest vs {mib(res['hnswlib']['access']['uniform']['rss'])} MiB for {cfg.scale_max_hot} hot hnswlib indexes."
    )
    per_hot = (tv["rss_ingest"] - tv["rss_start"]) / max(tv["after_ingest"]["hot"], 1)
    sec.shows.append(
        f"RSS grew by {mib(tv['rss_ingest'] - tv['rss_start'])} MiB during ingest with {tv['after_ingest']['hot']} "
        f"tenants hot: {mib(per_hot)} MiB per hot tenant, against "
        f"{mib(tv['after_ingest']['memory_bytes'] / max(tv['after_ingest']['hot'], 1))} MiB of accounted index "
        "memory per hot tenant (the budget only counts the vector index)."
    )
    sec.shows.append(
        f"Random access with evictions: uniform {rate(u['ops_s'])} ops/s (hit rate {u['hit_rate']:.3f}, "
        f"{u['evictions']:,} evictions) = {rx(ratio(u['ops_s'], res['numpy']['access']['uniform']['ops_s']))} the "
        f"numpy-files LRU and {rx(ratio(u['ops_s'], res['hnswlib']['access']['uniform']['ops_s']))} the hnswlib-files "
        f"LRU; Zipf {rate(z['ops_s'])} ops/s (hit rate {z['hit_rate']:.3f})."
    )
    if tv["max_memory_bytes"] > budget:
        sec.notes.append("tenantvec's accounted hot memory exceeded the budget during the run.")
    return sec
