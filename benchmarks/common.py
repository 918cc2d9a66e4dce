"""Shared pieces of the benchmark runner: configuration, data, timing, tables, machine info."""

from __future__ import annotations

import gc
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
DATA_PATH = Path(os.environ.get("TENANTVEC_BENCH_DATA", REPO.parent / "shared" / "data" / "pydocs-minilm.npz"))

K = 10
DIM = 384
# Raw hnswlib gets exactly tenantvec's default HNSW parameters.
HNSW_M, HNSW_EFC, HNSW_EF = 16, 200, 96
HNSW_SEED = 100  # tenantvec seeds its hnswlib indexes with 100 as well
HNSW_THRESHOLD = 2048  # tenantvec's default: exact search up to this many records, HNSW above
QUERY_SIGMA = 0.005  # per-component gaussian noise on held-out query rows (norm ~0.1)
TILE_SIGMA = 0.01  # per-component gaussian noise on tiled copies (norm ~0.2, cos ~0.98)

now = time.perf_counter
now_ns = time.perf_counter_ns


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class Config:
    name: str
    # query
    query_sizes: tuple[int, ...]
    hnsw_target_n: int  # the "20k HNSW tenant" target size
    exact_target_n: int  # the "500-record tenant" target size
    n_queries: int
    n_queries_big: int
    passes: int
    bulk_batch: int
    # cold
    cold_small_n: int
    cold_runs_small: int
    cold_runs_big: int
    # ingest
    ingest_tenants: int
    ingest_batches: int
    ingest_batch: int
    ingest_reps: int
    # scale
    scale_tenants: int
    scale_records: int
    scale_ops: int
    scale_budget: str
    scale_max_hot: int
    scale_centers: int = 50

    @property
    def big_n(self) -> int:
        return max(self.query_sizes)


FULL = Config(
    name="full",
    query_sizes=(100, 500, 1000, 10_000, 20_000, 100_000),
    hnsw_target_n=20_000, exact_target_n=500,
    n_queries=200, n_queries_big=200, passes=7, bulk_batch=5000,
    cold_small_n=1000, cold_runs_small=15, cold_runs_big=5,
    ingest_tenants=20, ingest_batches=10, ingest_batch=32, ingest_reps=7,
    scale_tenants=10_000, scale_records=100, scale_ops=20_000, scale_budget="256MiB", scale_max_hot=256,
)

QUICK = Config(
    name="quick",
    query_sizes=(100, 500, 1000, 5000),
    hnsw_target_n=5000, exact_target_n=500,
    n_queries=100, n_queries_big=100, passes=3, bulk_batch=1000,
    cold_small_n=1000, cold_runs_small=7, cold_runs_big=3,
    ingest_tenants=10, ingest_batches=10, ingest_batch=32, ingest_reps=2,
    scale_tenants=1000, scale_records=100, scale_ops=5000, scale_budget="256MiB", scale_max_hot=128,
)


# --------------------------------------------------------------------------- results
@dataclass
class Target:
    name: str
    goal: str
    measured: str
    ok: bool | None  # None: not measurable in this run


@dataclass
class Section:
    name: str
    title: str
    data_note: str = ""
    tables: list[tuple[str, str]] = field(default_factory=list)  # (caption, markdown)
    shows: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def markdown(self) -> str:
        out = [f"## {self.title}", ""]
        if self.data_note:
            out += [f"**Data.** {self.data_note}", ""]
        for caption, table in self.tables:
            if caption:
                out += [f"*{caption}*", ""]
            out += [table, ""]
        if self.shows:
            out += ["**What this shows.**", ""]
            out += [f"- {line}" for line in self.shows]
            out.append("")
        if self.notes:
            out += ["**Notes.**", ""]
            out += [f"- {line}" for line in self.notes]
            out.append("")
        out += [f"_Section time: {self.seconds:.0f} s._", ""]
        return "\n".join(out)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A markdown table; ``align`` is one letter per column (l/r), default: first l, rest r."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or ("l" + "r" * (len(headers) - 1))

    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align)) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else (":" + "-" * (w + 1)) for w, a in zip(widths, align)) + "|"
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


# --------------------------------------------------------------------------- formatting
def us(ns: float) -> str:
    return f"{ns / 1e3:.1f}" if ns < 1e7 else f"{ns / 1e3:.0f}"


def ms(seconds: float) -> str:
    v = seconds * 1e3
    return f"{v:.2f}" if v < 10 else (f"{v:.1f}" if v < 1000 else f"{v:.0f}")


def rate(x: float) -> str:
    return f"{x:,.0f}"


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def rx(x: float) -> str:
    return f"{x:.2f}x"


def mib(b: float) -> str:
    return f"{b / 2**20:,.1f}"


def pct(samples: Sequence[float] | np.ndarray, p: float) -> float:
    return float(np.percentile(np.asarray(samples, dtype=np.float64), p))


def p50(samples: Sequence[float] | np.ndarray) -> float:
    return pct(samples, 50)


def p99(samples: Sequence[float] | np.ndarray) -> float:
    return pct(samples, 99)


def verdict(ok: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "n/a"}[ok]


# --------------------------------------------------------------------------- process / disk
def _status_field(name: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_bytes() -> int:
    """VmRSS of this process (bytes)."""
    return _status_field("VmRSS")


def hwm_bytes() -> int:
    """VmHWM (peak RSS) of this process (bytes)."""
    return _status_field("VmHWM")


def du_bytes(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(apparent bytes, allocated bytes as du reports them) of a directory tree."""
    apparent = allocated = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


def fsync_file(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def machine_info() -> dict[str, str]:
    def ver(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = _meminfo_total()
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "tenantvec"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        if commit and dirty:
            commit += " (+ uncommitted changes in tenantvec/)"
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    import tenantvec

    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem / 2**30:.1f} GiB" if mem else "?",
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "hnswlib": ver("hnswlib"),
        "lmdb": ver("lmdb"),
        "msgpack": ver("msgpack"),
        "tenantvec": getattr(tenantvec, "__version__", "?"),
        "commit": commit or "?",
    }


def _meminfo_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# --------------------------------------------------------------------------- data
def normalize(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


class PyDocs:
    """The real MiniLM embeddings, split into held-out queries and an insert pool.

    ``matrix(n)`` returns ``n`` L2-normalised float32 rows: the pool rows (in a fixed
    random order) first, then, past the pool size, copies of the pool with gaussian noise
    (``TILE_SIGMA`` per component) renormalised. Every size is a prefix of every larger
    size. Queries are held-out rows (never inserted, nor tiled) with ``QUERY_SIGMA`` noise.
    """

    def __init__(self, n_held: int, seed: int = 1234) -> None:
        if not DATA_PATH.is_file():
            raise SystemExit(f"benchmark data not found: {DATA_PATH} (set TENANTVEC_BENCH_DATA)")
        d = np.load(DATA_PATH)
        vectors = normalize(d["vectors"].astype(np.float32))
        self.text = [str(s) for s in d["text"]]
        self.package = [str(s) for s in d["tenant"]]
        self.total = len(vectors)
        rng = np.random.default_rng(seed)
        perm = rng.permutation(self.total)
        held, self.pool = perm[:n_held], perm[n_held:]
        self.vectors = vectors
        qrng = np.random.default_rng(seed + 1)
        self.queries = normalize(vectors[held] + qrng.normal(0, QUERY_SIGMA, (n_held, DIM)).astype(np.float32))
        self.seed = seed
        self._mat = vectors[self.pool]

    @property
    def pool_size(self) -> int:
        return len(self.pool)

    def matrix(self, n: int) -> np.ndarray:
        P = self.pool_size
        while len(self._mat) < n:
            copy = len(self._mat) // P  # >= 1
            rng = np.random.default_rng((self.seed, copy))
            noisy = self.vectors[self.pool] + rng.normal(0, TILE_SIGMA, (P, DIM)).astype(np.float32)
            self._mat = np.concatenate([self._mat, normalize(noisy)])
        return self._mat[:n]

    def source_row(self, i: int) -> int:
        return int(self.pool[i % self.pool_size])

    def payload(self, start: int, stop: int) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        """ids, documents and metadata for matrix rows ``start:stop``."""
        ids, docs, metas = [], [], []
        for i in range(start, stop):
            src = self.source_row(i)
            ids.append(str(i))
            docs.append(self.text[src])
            metas.append({"package": self.package[src], "row": i})
        return ids, docs, metas

    def describe_short(self, n_max: int) -> str:
        s = "the real pydocs-minilm embeddings (384-d) in the `query` section's fixed order"
        if n_max > self.pool_size:
            s += f", tiled with N(0, {TILE_SIGMA}) noise past {self.pool_size:,} rows"
        return s + ", with documents and metadata"

    def describe(self, n_max: int) -> str:
        P = self.pool_size
        s = (
            f"real sentence embeddings `{DATA_PATH.name}` (all-MiniLM-L6-v2, 384-d, L2-normalised, "
            f"{self.total:,} rows stored as float16, loaded as float32); {self.total - P} rows held out as "
            f"queries (perturbed with N(0, {QUERY_SIGMA}) per component, renormalised), the other {P:,} "
            "inserted in a fixed random order"
        )
        if n_max > P:
            s += (
                f"; sizes above {P:,} are **tiled**: further copies of those rows with N(0, {TILE_SIGMA}) "
                "noise per component, renormalised (cosine ~0.98 to the original)"
            )
        return s + ". Records carry their paragraph as `document` and `{package, row}` metadata."


def exact_topk(X: np.ndarray, Q: np.ndarray, k: int = K, chunk: int = 64) -> np.ndarray:
    """Exact cosine top-k row indices for each (normalised) query row."""
    out = np.empty((len(Q), k), dtype=np.int64)
    for s in range(0, len(Q), chunk):
        sims = Q[s : s + chunk] @ X.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        out[s : s + chunk] = np.take_along_axis(part, order, axis=1)
    return out


def recall(found: Sequence[Sequence[int]], truth: np.ndarray) -> float:
    k = truth.shape[1]
    hits = sum(len(set(map(int, f)) & set(t.tolist())) for f, t in zip(found, truth))
    return hits / (k * len(truth))


class Clustered:
    """Clustered synthetic 384-d data: ``n_centers`` random unit centers; each tenant draws
    a mix of 3 centers with Dirichlet(1,1,1) weights; a record is its center plus N(0, 0.05)
    per component (noise norm ~1), renormalised."""

    SIGMA = 0.05

    def __init__(self, n_centers: int = 50, dim: int = DIM, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.centers = normalize(rng.normal(size=(n_centers, dim)).astype(np.float32))
        self.dim, self.seed = dim, seed

    def _mix(self, tenant: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng((self.seed, tenant, 0))
        centers = rng.choice(len(self.centers), size=3, replace=False)
        return centers, rng.dirichlet(np.ones(3))

    def tenant_vectors(self, tenant: int, n: int, salt: int = 1) -> np.ndarray:
        centers, weights = self._mix(tenant)
        rng = np.random.default_rng((self.seed, tenant, salt))
        which = rng.choice(centers, size=n, p=weights)
        return normalize(self.centers[which] + rng.normal(0, self.SIGMA, (n, self.dim)).astype(np.float32))

    def queries(self, tenants: np.ndarray) -> np.ndarray:
        out = np.empty((len(tenants), self.dim), dtype=np.float32)
        for j, t in enumerate(tenants.tolist()):
            out[j] = self.tenant_vectors(int(t), 1, salt=1000 + j)[0]
        return out

    @staticmethod
    def describe() -> str:
        return (
            "clustered synthetic 384-d data: 50 random unit gaussian cluster centers; each tenant "
            "draws 3 of them with Dirichlet(1,1,1) mixing weights; a record is its center plus "
            "N(0, 0.05) noise per component, renormalised; queries are fresh draws from the queried "
            "tenant's own mix"
        )


# --------------------------------------------------------------------------- timing
def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = now()
    out = fn()
    return now() - t0, out


def collect() -> None:
    gc.collect()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
