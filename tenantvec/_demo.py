"""``tenantvec demo``: the front-door tour: three tenants' memories, queries, isolation,
hot/cold eviction and store stats, in a few seconds and a screenful of output.

Vectors are deterministic hashed bag-of-words embeddings (dim 64: texts sharing words are
near), or real all-MiniLM-L6-v2 embeddings when ``../shared/data/pydocs-minilm.npz`` sits
next to the repository (then each tenant holds docstring paragraphs of one package and
queries are held-out paragraphs).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._store import Store
from .errors import TenantExists

DIM = 64
MAX_HOT = 2
_STOP = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "has", "have", "in", "is",
    "it", "its", "of", "on", "or", "our", "the", "to", "we", "what", "which", "who", "with",
))

MEMORIES = {
    "acme": [
        ("fact", "Acme stores billing data in a PostgreSQL database"),
        ("preference", "The Acme admin prefers email over phone calls"),
        ("episodic", "Acme reported a failed invoice export on Monday"),
        ("procedural", "Restart the export worker before retrying a failed invoice export"),
        ("fact", "Acme has 40 seats on the enterprise plan"),
    ],
    "globex": [
        ("fact", "Globex keeps billing data in a MySQL database"),
        ("preference", "Globex wants every reply written in German"),
        ("episodic", "Globex asked for a refund of the March invoice"),
        ("procedural", "Send Globex refund requests to the finance team"),
        ("fact", "Globex runs on the starter plan with 5 seats"),
    ],
    "initech": [
        ("fact", "Initech tracks billing data in shared spreadsheets"),
        ("preference", "Initech prefers phone calls in the morning"),
        ("episodic", "Initech lost a TPS report during the office move"),
        ("procedural", "Attach the new cover sheet to every TPS report"),
        ("fact", "Initech is evaluating the enterprise plan"),
    ],
}
QUERY = "which database stores our billing data?"
FILTER_TENANT, FILTER = "initech", {"kind": "preference"}
_MINILM_TENANTS = ("json", "csv", "sqlite3")


def embed(text: str, dim: int = DIM) -> np.ndarray:
    """Hashed bag-of-words: each content word adds +-1 to one of ``dim`` components."""
    v = np.zeros(dim, dtype=np.float32)
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in _STOP:
            continue
        h = hashlib.blake2b(word.encode(), digest_size=8).digest()
        v[int.from_bytes(h[:4], "little") % dim] += 1.0 if h[4] & 1 else -1.0
    if not v.any():
        v[0] = 1.0
    return v / np.linalg.norm(v)


def minilm_path() -> Path:
    """Where the shared MiniLM data file is expected (beside the repository)."""
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "pydocs-minilm.npz"


def _hashed_dataset() -> tuple[dict, list[tuple[str, np.ndarray]], str]:
    data = {}
    for tid, mems in MEMORIES.items():
        texts = [t for _, t in mems]
        data[tid] = {
            "ids": [f"m{i + 1}" for i in range(len(mems))],
            "texts": texts,
            "vectors": np.stack([embed(t) for t in texts]),
            "metadata": [{"kind": k} for k, _ in mems],
        }
    return data, [(QUERY, embed(QUERY))], f"dim {DIM}, hashed bag-of-words vectors"


def _minilm_dataset(path: Path) -> tuple[dict, list[tuple[str, np.ndarray]], str]:
    d = np.load(path)
    tenant, text, vecs = d["tenant"], d["text"], d["vectors"].astype(np.float32)
    data, queries = {}, []
    for tid in _MINILM_TENANTS:
        rows = [r for r in np.flatnonzero(tenant == tid) if 30 <= len(text[r]) <= 160][:9]
        held, kept = rows[0], rows[1:]
        data[tid] = {
            "ids": [f"m{i + 1}" for i in range(len(kept))],
            "texts": [str(text[r]) for r in kept],
            "vectors": vecs[kept],
            "metadata": [{"kind": "semantic" if i % 2 else "episodic", "package": tid} for i in range(len(kept))],
        }
        if tid == _MINILM_TENANTS[-1]:
            queries.append((str(text[held]), vecs[held]))
    return data, queries, "dim 384, all-MiniLM-L6-v2 vectors of Python docstrings"


def _clip(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def run_demo(directory: str | None, *, embeddings: str = "auto", echo: Callable[[str], None]) -> str:
    """Run the tour, writing its lines through ``echo``; returns the store directory."""
    npz = minilm_path()
    use_minilm = embeddings == "minilm" or (embeddings == "auto" and npz.is_file())
    if use_minilm and not npz.is_file():
        raise FileNotFoundError(2, "MiniLM data file not found", str(npz))
    data, queries, how = _minilm_dataset(npz) if use_minilm else _hashed_dataset()
    dim = next(iter(data.values()))["vectors"].shape[1]
    if directory is None:
        directory = tempfile.mkdtemp(prefix="tenantvec-demo-")
    elif os.path.exists(os.path.join(directory, "tenantvec.json")):
        raise TenantExists(f"{directory!r} already holds a tenantvec store; give the demo a new directory")
    tids = list(data)
    owner = {(tid, rid): tid for tid in tids for rid in data[tid]["ids"]}

    with Store(directory, dim=dim, metric="cosine", max_hot=MAX_HOT) as store:
        echo(f"tenantvec demo: store at {directory} ({how}, max_hot={MAX_HOT})")
        for tid in tids:
            d = data[tid]
            store.tenant(tid, create=True).add(d["vectors"], ids=d["ids"], documents=d["texts"], metadata=d["metadata"])
        echo(f"wrote {len(tids)} tenants: " + ", ".join(f"{tid} {len(data[tid]['ids'])} memories" for tid in tids))

        text, qvec = queries[0]
        asked = tids[:2] if not use_minilm else [tids[-1], tids[0]]
        echo(f'\nquery "{_clip(text, 64)}" (k=5 on each tenant, best hit shown)')
        hits_seen, foreign = 0, 0
        for tid in asked:
            hits = store.tenant(tid).query(qvec, k=5)
            best = hits[0]
            echo(f"  {tid:<8} {best.distance:6.3f}  {best.id:<3}  {_clip(best.document or '')}")
            for h in hits:
                hits_seen += 1
                foreign += owner.get((tid, h.id)) != tid or h.document not in data[tid]["texts"]
        echo(f"isolation: {hits_seen - foreign} of {hits_seen} hits came from the tenant queried ({foreign} from "
             "another);\n  the same id 'm1' is a different memory in each tenant:")
        for tid in tids:
            doc = store.tenant(tid).get(["m1"])[0].document or ""
            echo(f"  {tid:<8} m1  {_clip(doc)}")

        if use_minilm:
            ftid, fvec, fwhere, ftext = tids[-1], qvec, {"kind": "semantic"}, _clip(text, 40)
        else:
            ftid, fvec, fwhere, ftext = FILTER_TENANT, embed("phone calls"), FILTER, "phone calls"
        hits = store.tenant(ftid).query(fvec, k=3, where=fwhere)
        echo(f'\nfilter: "{ftext}" on {ftid} where {json.dumps(fwhere)}')
        for h in hits:
            echo(f"  {ftid:<8} {h.distance:6.3f}  {h.id:<3}  {h.metadata.get('kind', ''):<9} {_clip(h.document or '')}")

        for tid in tids:  # touch every tenant in order: the least recently used goes cold
            store.tenant(tid).count()
        states = {s.tenant: s.state for s in store.tenant_summaries()}
        st = store.stats()
        echo(f"\nhot/cold (LRU, max_hot={MAX_HOT}): " + ", ".join(f"{t} {states[t]}" for t in tids)
             + f" (loads {st.loads}, evictions {st.evictions})")
        echo(f"stats: {st.tenants} tenants, {st.hot} hot, {st.cold} cold, hit rate {st.hit_rate:.2f}, "
             f"hot memory {st.memory_bytes / 1024:.0f} KiB of a {st.memory_budget / 2**30:.0f} GiB budget")
    echo(f"\nnext: tenantvec --root {directory} ls")
    return directory
