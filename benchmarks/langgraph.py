"""Section ``langgraph``: LangGraph ``store.search(prefix, query=..., limit=10)`` through
``TenantvecStore`` against LangGraph's own ``InMemoryStore`` and ``SqliteStore``
(langgraph-checkpoint-sqlite, vector search through sqlite-vec) on the same items.

Each store holds one namespace of N items (``{"text": ...}`` indexed on ``text``); the
``embed`` function every store gets looks the text up in the real pydocs-minilm vectors,
so no model runs and all stores pay the same embedding cost. Reported: p50 and p99 of the
whole ``search`` call, the ratio to TenantvecStore, and recall@10 against
``InMemoryStore`` (exact brute force).
"""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.common import Section, Target, collect, log, md_table, now_ns, p50, p99, ratio, rx, us
from benchmarks.context import Context

SIZES = (1000, 10_000)
LIMIT = 10
NAMESPACE = ("docs", "pydocs")
LOAD_BATCH = 500


def _timed(search: Callable[[str], list[Any]], queries: Sequence[str]) -> tuple[list[float], list[list[str]]]:
    ns, keys = [], []
    for q in queries[:5]:  # warm-up
        search(q)
    for q in queries:
        t0 = now_ns()
        res = search(q)
        ns.append(now_ns() - t0)
        keys.append([r.key for r in res])
    return ns, keys


def _sqlite_connect() -> tuple[Callable[..., Any] | None, str]:
    """A ``connect`` whose connections can load sqlite-vec (SqliteStore's vector search
    needs it), and what it is: the standard library's when this Python was built with
    loadable extensions (pyenv builds are not), else pysqlite3 (``pip install
    pysqlite3-binary``); None when neither can."""
    if importlib.util.find_spec("sqlite_vec") is None:
        return None, "sqlite-vec is not installed"
    if hasattr(sqlite3.connect(":memory:"), "enable_load_extension"):
        return sqlite3.connect, f"sqlite3 {sqlite3.sqlite_version} (standard library)"
    if importlib.util.find_spec("pysqlite3") is not None:
        import pysqlite3.dbapi2 as pysqlite3  # type: ignore[import-not-found]

        return pysqlite3.connect, f"sqlite3 {pysqlite3.sqlite_version} (pysqlite3: this Python's sqlite3 cannot load extensions)"
    return None, "this Python's sqlite3 cannot load extensions and pysqlite3 is not installed (pip install pysqlite3-binary)"


def run(ctx: Context) -> Section:
    from langgraph.store.base import PutOp
    from langgraph.store.memory import InMemoryStore
    from langgraph.store.sqlite import SqliteStore

    import tenantvec
    from tenantvec.integrations.langgraph import TenantvecStore

    cfg, data = ctx.cfg, ctx.data
    nq = 200 if cfg.name == "full" else 50
    sec = Section("langgraph", "langgraph: LangGraph store search with a query (TenantvecStore vs InMemoryStore, SqliteStore)")
    X = data.matrix(max(SIZES))
    texts = [f"[{i}] {data.text[data.source_row(i)]}" for i in range(max(SIZES))]
    queries = [f"held-out query {j}" for j in range(nq)]
    lookup = {t: X[i].tolist() for i, t in enumerate(texts)}
    lookup.update({q: data.queries[j].tolist() for j, q in enumerate(queries)})

    def embed(batch: Sequence[str]) -> list[list[float]]:
        return [lookup[t] for t in batch]

    index: Any = {"dims": X.shape[1], "embed": embed, "fields": ["text"]}
    connect, sqlite_how = _sqlite_connect()
    rows, raw = [], []
    for n in SIZES:
        ops = [PutOp(NAMESPACE, str(i), {"text": texts[i], "row": i}) for i in range(n)]
        tv_root = tenantvec.Store(ctx.workdir / f"langgraph_{n}", durability="process")
        conn = None if connect is None else connect(str(ctx.workdir / f"langgraph_{n}.sqlite"), check_same_thread=False,
                                                    isolation_level=None)
        try:
            stores: dict[str, Any] = {
                "TenantvecStore": TenantvecStore(tv_root, tenant="bench", index=index),
                "InMemoryStore": InMemoryStore(index=index),
            }
            if conn is not None:
                # SqliteStore names the indexed paths `text_fields`, not `fields`
                stores["SqliteStore"] = SqliteStore(conn, index={**index, "text_fields": index["fields"]})
                stores["SqliteStore"].setup()
            for name, store in stores.items():
                log(f"langgraph: loading {n:,} items into {name}")
                for s in range(0, n, LOAD_BATCH):
                    store.batch(ops[s:s + LOAD_BATCH])
            results: dict[str, tuple[list[float], list[list[str]]]] = {}
            for name, store in stores.items():
                collect()
                results[name] = _timed(lambda q, st=store: st.search(NAMESPACE, query=q, limit=LIMIT), queries)
                log(f"langgraph: {n:,} items, {name}: p50 {us(p50(results[name][0]))} us")
            truth = results["InMemoryStore"][1]
            tv_p50 = p50(results["TenantvecStore"][0])
            for name, (ns, found) in results.items():
                rec = sum(len(set(f) & set(t)) for f, t in zip(found, truth)) / sum(len(t) for t in truth)
                r = {"items": n, "store": name, "p50": p50(ns), "p99": p99(ns), "ratio": ratio(p50(ns), tv_p50),
                     "recall": rec}
                raw.append(r)
                rows.append([f"{n:,}", name, us(r["p50"]), us(r["p99"]), rx(r["ratio"]), f"{rec:.3f}"])
            stores["TenantvecStore"].close()
        finally:
            tv_root.close()
            if conn is not None:
                conn.close()
    sec.data_note = (f"{data.describe_short(max(SIZES))}; one namespace of N items per store, each "
                     f"`{{\"text\": ..., \"row\": i}}` indexed on `text`; {nq} held-out query rows. `embed` looks "
                     "texts up in the vectors (no model runs), the same function for every store.")
    sec.tables.append((f"`store.search({NAMESPACE!r}, query=..., limit={LIMIT})`, whole call (us); ratio = that "
                       "store's p50 / TenantvecStore's; recall@10 against InMemoryStore's exact ranking",
                       md_table(["items", "store", "p50 us", "p99 us", "p50 vs TenantvecStore", "recall@10"], rows)))
    big = {r["store"]: r for r in raw if r["items"] == max(SIZES)}
    others = [s for s in ("InMemoryStore", "SqliteStore") if s in big]
    sec.shows.append(
        f"At {max(SIZES):,} items TenantvecStore answers a LangGraph search with a query in "
        f"{us(big['TenantvecStore']['p50'])} us (p50); "
        + " and ".join(f"{s} takes {rx(big[s]['ratio'])} as long" for s in others)
        + ", scanning every vector of the namespace.")
    sec.notes.append("InMemoryStore and SqliteStore score by brute force (numpy over Python lists; sqlite-vec's "
                     "`vec_distance_cosine` over every row); TenantvecStore searches exactly up to 2,048 records and "
                     "with HNSW above, hence recall < 1 at 10k. SqliteStore fetches 2 x limit vector rows before "
                     "deduplicating items.")
    sec.notes.append(f"SqliteStore ran on {sqlite_how}." if connect is not None else
                     f"SqliteStore was NOT measured: {sqlite_how}.")
    sec.targets.append(Target(f"LangGraph search, {max(SIZES):,} items",
                              "TenantvecStore p50 below " + " and ".join(others),
                              " / ".join(rx(big[s]["ratio"]) for s in others),
                              all(big[s]["ratio"] > 1 for s in others)))
    sec.raw["langgraph"] = raw
    return sec
