"""The public facade (issue 11): ``open`` is ``Store``, the report types are public, errors
carry ``.tenant``/``.path``, one table of defaults, and ``import tenantvec`` loads no engine."""

from __future__ import annotations

import dataclasses
import inspect
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tenantvec
from tenantvec import _options
from tenantvec.cli import main

DIM = 4
E = np.eye(DIM, dtype=np.float32)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


# ---------------------------------------------------------------------------- names
def test_open_is_store() -> None:
    assert tenantvec.open is tenantvec.Store


def test_every_public_name_imports() -> None:
    namespace: dict[str, object] = {}
    exec("from tenantvec import *", namespace)  # what a star import sees
    for name in tenantvec.__all__:
        assert namespace[name] is getattr(tenantvec, name), name
        assert name in dir(tenantvec), name
    with pytest.raises(AttributeError, match="no_such_name"):
        tenantvec.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_report_types_are_the_frozen_dataclasses_the_methods_return(root: Path, tmp_path: Path) -> None:
    for name in ("StoreStats", "TenantSummary", "VerifyReport", "CompactReport", "ExportReport"):
        cls = getattr(tenantvec, name)
        assert name in tenantvec.__all__
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen, name  # type: ignore[attr-defined]
    with tenantvec.Store(root, dim=DIM) as store:
        t = store.create_tenant("acme")
        t.add(E, ids=list("abcd"))
        assert isinstance(store.stats(), tenantvec.StoreStats)
        assert isinstance(store.tenant_summaries()[0], tenantvec.TenantSummary)
        assert isinstance(store.verify("acme"), tenantvec.VerifyReport)
        assert isinstance(store.compact("acme", dry_run=True), tenantvec.CompactReport)
        exported = store.export_tenant("acme", tmp_path / "acme.tvx")
        assert isinstance(exported, tenantvec.ExportReport)
        imported = store.import_file("copy", tmp_path / "acme.tvx")
        assert isinstance(imported, tenantvec.ExportReport)
        assert (imported.tenant, imported.records, imported.sha256) == ("copy", 4, exported.sha256)
        assert store.tenant("copy").count() == 4


def test_store_stats_fields(root: Path) -> None:
    fields = [f.name for f in dataclasses.fields(tenantvec.StoreStats)]
    assert fields == ["tenants", "hot", "cold", "loads", "evictions", "hits", "misses", "hit_rate",
                      "memory_bytes", "memory_budget", "max_hot"]
    with tenantvec.Store(root, dim=DIM, memory_budget="64MiB", max_hot=3) as store:
        store.create_tenant("a").add(E[:1], ids=["x"])
        store.create_tenant("b")
        st = store.stats()
        assert (st.tenants, st.hot + st.cold, st.memory_budget, st.max_hot) == (2, 2, 64 * 1024**2, 3)
        assert 0.0 <= st.hit_rate <= 1.0
        with pytest.raises(dataclasses.FrozenInstanceError):
            st.hot = 0  # type: ignore[misc]


# ---------------------------------------------------------------------------- errors
def test_readonly_open_of_a_missing_store_raises_store_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(tenantvec.StoreNotFound, match="no tenantvec store") as ei:
        tenantvec.Store(missing, readonly=True)
    assert isinstance(ei.value, FileNotFoundError)
    assert isinstance(ei.value, tenantvec.TenantVecError)
    assert not isinstance(ei.value, tenantvec.TenantNotFound)
    assert ei.value.path == str(missing)
    assert not missing.exists()


def test_errors_name_their_tenant_and_path(root: Path) -> None:
    with tenantvec.Store(root, dim=DIM) as store:
        t = store.create_tenant("acme")
        with pytest.raises(tenantvec.TenantExists) as exists:
            store.create_tenant("acme")
        assert (exists.value.tenant, exists.value.path) == ("acme", str(root))
        with pytest.raises(tenantvec.TenantNotFound) as missing:
            store.tenant("ghost")
        assert (missing.value.tenant, missing.value.path) == ("ghost", str(root))
        with pytest.raises(tenantvec.DimensionMismatch) as dim:
            store.tenant("acme", dim=DIM + 1)
        assert dim.value.tenant == "acme"
        store.drop_tenant("acme")
        with pytest.raises(tenantvec.TenantNotFound) as dropped:
            t.count()
        assert dropped.value.tenant == "acme"
        assert dropped.value.path == str(store.tenant_path("acme"))
        with pytest.raises(tenantvec.StoreLocked) as locked:
            tenantvec.Store(root)
        assert locked.value.path == str(root / "LOCK")
    with tenantvec.Store(root, readonly=True) as reader, pytest.raises(tenantvec.ReadOnlyStore) as ro:
        reader.create_tenant("new")
    assert ro.value.path == str(root)
    assert tenantvec.InvalidVector("plain").tenant is None


def test_errors_keep_their_attributes_through_pickle() -> None:
    full = pickle.loads(pickle.dumps(tenantvec.StorageFull("no room", tenant="acme", path="/data", free=12)))
    assert (str(full), full.tenant, full.path, full.free) == ("no room", "acme", "/data", 12)
    gone = pickle.loads(pickle.dumps(tenantvec.TenantNotFound("tenant 'acme' is gone", tenant="acme")))
    assert (str(gone), gone.tenant, gone.path) == ("tenant 'acme' is gone", "acme", None)


# ---------------------------------------------------------------------------- defaults
def test_one_table_of_defaults() -> None:
    sig = inspect.signature(tenantvec.Store).parameters
    table = {
        "memory_budget": _options.DEFAULT_MEMORY_BUDGET, "max_hot": _options.DEFAULT_MAX_HOT,
        "durability": _options.DEFAULT_DURABILITY, "hnsw_threshold": _options.DEFAULT_HNSW_THRESHOLD,
        "compact_threshold": _options.DEFAULT_COMPACT_THRESHOLD, "flush_interval": _options.DEFAULT_FLUSH_INTERVAL,
    }
    opts = _options.StoreOptions()
    for name, value in table.items():
        assert sig[name].default == value, name
        assert getattr(opts, name) == value, name
    assert opts.map_size == _options.DEFAULT_MAP_SIZE
    assert tenantvec.HnswParams() == tenantvec.HnswParams(
        m=_options.DEFAULT_HNSW_M, ef_construction=_options.DEFAULT_HNSW_EF_CONSTRUCTION, ef=_options.DEFAULT_HNSW_EF)
    plan = {p.name: p.default for p in main.commands["plan"].params}
    assert plan["metric"] == _options.DEFAULT_METRIC
    assert plan["m"] == _options.DEFAULT_HNSW_M
    assert plan["hnsw_threshold"] == _options.DEFAULT_HNSW_THRESHOLD
    assert plan["hot_fraction"] == _options.DEFAULT_PLAN_HOT_FRACTION
    assert plan["fields"] == _options.DEFAULT_PLAN_FIELDS


def test_a_new_store_gets_the_default_dim_and_metric(root: Path) -> None:
    with tenantvec.Store(root) as store:
        assert (store.dim, store.metric) == (_options.DEFAULT_DIM, _options.DEFAULT_METRIC)


# ---------------------------------------------------------------------------- import cost
HEAVY = ["lmdb", "hnswlib", "msgpack", "click", "tenantvec._engine.shard", "tenantvec._engine.manager",
         "tenantvec._engine.verify", "tenantvec._engine.compact", "tenantvec._engine.transfer",
         "tenantvec._engine.listing"]
LOADED = r"""
import json, sys
exec(sys.argv[1])
print(json.dumps(sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)))
"""


def _loaded_after(code: str, env: dict[str, str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", LOADED, code, json.dumps(HEAVY)], capture_output=True, text=True,
                         env=env, check=True).stdout
    return json.loads(out)


def test_import_tenantvec_loads_no_engine(subprocess_env: dict[str, str]) -> None:
    """What is imported, not how long it takes: the storage engine, its libraries, the
    maintenance modules and click wait until something needs them."""
    assert _loaded_after("import tenantvec", subprocess_env) == []
    assert "tenantvec._engine.verify" in _loaded_after("import tenantvec; tenantvec.VerifyReport", subprocess_env)
    assert _loaded_after("import tenantvec.cli", subprocess_env) == ["click"], "commands load the engine"
