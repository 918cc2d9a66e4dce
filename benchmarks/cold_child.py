"""Child process for the ``cold`` section: time import (with the storage engine), then
open + first query, once.

Usage: python cold_child.py SYSTEM PATH TENANT QUERY_NPY
SYSTEM is tenantvec | tenantvec-ro | hnswlib | numpy. Prints one JSON object.
Only the standard library is imported before the timed import.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    system, path, tenant_id, qpath = sys.argv[1:5]
    now = time.perf_counter
    out: dict[str, object] = {"system": system}
    t0 = now()
    if system.startswith("tenantvec"):
        import importlib

        import tenantvec

        # ``import tenantvec`` defers the facade's classes and the storage engine (lmdb,
        # hnswlib) to first use; load them here so that ``open`` measures opening a store
        # and a tenant, as for hnswlib, whose import is also outside the timed open
        _ = tenantvec.Store
        importlib.import_module("tenantvec._engine.manager")
        mod = tenantvec
    elif system == "hnswlib":
        import hnswlib

        mod = hnswlib
    else:
        mod = None
    import numpy as np

    t1 = now()
    out["import_s"] = t1 - t0
    q = np.load(qpath)
    k = 10
    if system.startswith("tenantvec"):
        t2 = now()
        store = mod.Store(path, readonly=system == "tenantvec-ro")
        t3 = now()
        t = store.tenant(tenant_id)
        t4 = now()
        hits = t.query(q, k=k)
        t5 = now()
        ids = [int(h.id) for h in hits]
        store.close()
        t6 = now()
        out.update(open_s=t3 - t2, tenant_s=t4 - t3, query_s=t5 - t4, total_s=t5 - t2, close_s=t6 - t5)
    elif system == "hnswlib":
        t2 = now()
        idx = mod.Index(space="cosine", dim=q.shape[0])
        idx.load_index(path)
        idx.set_ef(96)
        t3 = now()
        labels, _ = idx.knn_query(q, k=k, num_threads=1)
        t4 = now()
        ids = labels[0].tolist()
        out.update(open_s=t3 - t2, tenant_s=0.0, query_s=t4 - t3, total_s=t4 - t2)
    else:
        t2 = now()
        X = np.load(path)
        t3 = now()
        s = X @ (q / np.linalg.norm(q))
        top = np.argpartition(s, -k)[-k:]
        top = top[np.argsort(-s[top])]
        t4 = now()
        ids = top.tolist()
        out.update(open_s=t3 - t2, tenant_s=0.0, query_s=t4 - t3, total_s=t4 - t2)
    out["ids"] = [int(i) for i in ids]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
