"""Growing a tenant's LMDB map while an export or a compaction reads it.

``Environment.set_mapsize`` invalidates every open transaction of the environment; an
export and compaction's first phase read from one long transaction without the shard
lock, so a writer that needs a bigger map must wait for them. Each test starts the
writer from inside the long read (a patched point), checks the growth is waiting, then
lets the read go on: it must finish with what its snapshot held.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

import tenantvec
from tenantvec._engine import compact as _compact

DIM = 8
N = 1500


def small_map_store(root: Path) -> tenantvec.Store:
    store = tenantvec.Store(root, dim=DIM, metric="l2", flush_interval=0, hnsw_threshold=100_000)
    object.__setattr__(store.options, "map_size", 256 << 10)  # grows after a few hundred kB
    return store


def fill(t: tenantvec.Tenant, n: int, prefix: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t.add(rng.random((n, DIM), dtype=np.float32), ids=[f"{prefix}{i}" for i in range(n)],
          documents=["d" * 200] * n)


def start_growing_writer(t: tenantvec.Tenant, errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            for b in range(40):
                fill(t, 200, f"w{b}-", 100 + b)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    th = threading.Thread(target=run)
    th.start()
    return th


def wait_for_growth_request(shard: object, timeout: float = 10.0) -> bool:
    gate = shard.long_reads  # type: ignore[attr-defined]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if gate._waiting:  # a writer waits to grow the map
            return True
        time.sleep(0.01)
    return False


def test_map_growth_waits_for_a_running_export(tmp_path: Path) -> None:
    store = small_map_store(tmp_path / "s")
    t = store.create_tenant("a")
    fill(t, N, "r", 0)
    shard = store._manager.hot()["a"]
    size0 = shard._env.info()["map_size"]
    errors: list[BaseException] = []
    state: dict[str, object] = {}

    def progress(done: int, total: int) -> None:
        if "writer" not in state and done < total:
            state["writer"] = start_growing_writer(t, errors)
            state["waiting"] = wait_for_growth_request(shard)

    report = store.export_tenant("a", tmp_path / "a.tvx", progress=progress)
    writer = state["writer"]
    assert isinstance(writer, threading.Thread)
    writer.join(60)
    assert state["waiting"], "the writer never asked to grow the map during the export"
    assert not errors, errors
    assert shard._env.info()["map_size"] > size0
    assert report.records == N
    copy = store.import_tenant("copy", tmp_path / "a.tvx")
    assert sorted(r.id for r in copy.get()) == sorted(f"r{i}" for i in range(N))
    assert t.count() == N + 40 * 200
    assert store.verify("a").ok
    store.close()


def test_map_growth_waits_for_compactions_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = small_map_store(tmp_path / "s")
    t = store.create_tenant("a")
    fill(t, N, "r", 0)
    t.delete(ids=[f"r{i}" for i in range(0, N, 2)])
    shard = store._manager.hot()["a"]
    errors: list[BaseException] = []
    state: dict[str, object] = {}
    real_new_env = _compact._new_env

    def new_env(*args: object, **kwargs: object) -> object:
        state["writer"] = start_growing_writer(t, errors)
        state["waiting"] = wait_for_growth_request(shard)
        return real_new_env(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_compact, "_new_env", new_env)
    report = t.compact()
    writer = state["writer"]
    assert isinstance(writer, threading.Thread)
    writer.join(60)
    assert state["waiting"], "the writer never asked to grow the map during compaction"
    assert not errors, errors
    want = {f"r{i}" for i in range(1, N, 2)} | {f"w{b}-{i}" for b in range(40) for i in range(200)}
    assert {r.id for r in t.get()} == want
    assert report.count <= len(want)
    assert store.verify("a").ok
    store.close()
