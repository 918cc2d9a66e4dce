"""Size parsing and Store option validation (tenantvec._options, Store(...))."""

from __future__ import annotations

import pytest

import tenantvec
from tenantvec._options import HnswParams, StoreOptions, parse_size
from tenantvec.errors import DimensionMismatch, InvalidArgument, TenantVecError


# ------------------------------------------------------------------ parse_size
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1GiB", 1024**3),
        ("512MB", 512 * 1000**2),
        ("2.5 GiB", int(2.5 * 1024**3)),
        ("2.5GiB", int(2.5 * 1024**3)),
        ("1gib", 1024**3),
        ("1 KiB", 1024),
        ("3MiB", 3 * 1024**2),
        ("1TiB", 1024**4),
        ("10kb", 10_000),
        ("4096", 4096),
        ("  64 MiB  ", 64 * 1024**2),
        (1, 1),
        (4096, 4096),
        (2**40, 2**40),
    ],
)
def test_parse_size_good(value, expected):
    assert parse_size(value) == expected
    assert isinstance(parse_size(value), int)


@pytest.mark.parametrize(
    "value",
    ["", "   ", "1XB", "abc", "GiB", "-1GiB", "0GiB", "0", "1 G iB", "1e9", "1,000", "0.1B", "nan", "inf",
     -1, 0, True, False, None, 1.5, [1024], b"1GiB"],
    ids=repr,
)
def test_parse_size_bad(value):
    with pytest.raises(InvalidArgument) as ei:
        parse_size(value)
    assert isinstance(ei.value, TenantVecError)
    assert isinstance(ei.value, ValueError)
    assert repr(value) in str(ei.value)
    assert "memory_budget" in str(ei.value)


def test_parse_size_names_the_option():
    with pytest.raises(InvalidArgument, match="map_size"):
        parse_size("huge", "map_size")


# ------------------------------------------------------------------ StoreOptions defaults
def test_defaults():
    opts = StoreOptions()
    assert opts.dim is None
    assert opts.metric is None
    assert opts.memory_budget == 1024**3
    assert opts.max_hot == 256
    assert opts.readonly is False
    assert opts.durability == "full"
    assert opts.hnsw == HnswParams()


def test_options_are_frozen():
    opts = StoreOptions(memory_budget="2GiB")
    assert opts.memory_budget == 2 * 1024**3
    with pytest.raises(AttributeError):
        opts.max_hot = 3  # type: ignore[misc]


# ------------------------------------------------------------------ Store(...) validation
BAD_OPTIONS = [
    ("metric", "euclidean"),
    ("metric", ""),
    ("metric", "dot"),
    ("metric", 3),
    ("dim", 0),
    ("dim", -4),
    ("dim", 1.5),
    ("dim", "384"),
    ("dim", True),
    ("dim", 65537),
    ("max_hot", 0),
    ("max_hot", -1),
    ("max_hot", 2.5),
    ("max_hot", True),
    ("max_hot", "10"),
    ("max_hot", None),
    ("durability", "none"),
    ("durability", ""),
    ("durability", None),
    ("durability", "sync"),
    ("memory_budget", "lots"),
    ("memory_budget", 0),
    ("memory_budget", -5),
    ("readonly", "yes"),
    ("readonly", 1),
    ("hnsw_threshold", -1),
    ("hnsw_threshold", 1.5),
    ("compact_threshold", 0),
    ("compact_threshold", 1.5),
    ("compact_threshold", True),
    ("hnsw", {"m": 16}),
]


@pytest.mark.parametrize(("name", "value"), BAD_OPTIONS, ids=lambda v: repr(v))
def test_bad_store_option(tmp_path, name, value):
    root = tmp_path / "store"
    with pytest.raises(InvalidArgument) as ei:
        tenantvec.Store(root, **{name: value})
    msg = str(ei.value)
    assert repr(value) in msg
    assert name.split("_")[0] in msg
    assert not root.exists(), "a rejected Store(...) must not create anything"


@pytest.mark.parametrize(("name", "value"), BAD_OPTIONS[:10], ids=lambda v: repr(v))
def test_bad_option_through_open(tmp_path, name, value):
    with pytest.raises(InvalidArgument):
        tenantvec.open(tmp_path / "store", **{name: value})


@pytest.mark.parametrize(
    "kwargs",
    [{"m": 3}, {"m": 2}, {"m": 0}, {"m": 257}, {"m": 4.0}, {"ef_construction": 0}, {"ef": 0}, {"ef": True}],
    ids=repr,
)
def test_bad_hnsw_params(kwargs):
    with pytest.raises(InvalidArgument) as ei:
        HnswParams(**kwargs)
    assert repr(next(iter(kwargs.values()))) in str(ei.value)


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_good_metrics(tmp_path, metric):
    with tenantvec.Store(tmp_path / "s", dim=3, metric=metric) as store:
        t = store.create_tenant("t")
        assert t.info().metric == metric
        assert store.metric == metric


@pytest.mark.parametrize("dim", [1, 3, 65536])
def test_good_dims(tmp_path, dim):
    with tenantvec.Store(tmp_path / "s", dim=dim) as store:
        assert store.create_tenant("t").info().dim == dim


def test_good_options_are_accepted(tmp_path):
    store = tenantvec.Store(
        tmp_path / "s", dim=4, metric="l2", memory_budget="64MiB", max_hot=1, durability="process",
        hnsw_threshold=0, hnsw=HnswParams(m=8, ef_construction=32, ef=16), compact_threshold=1.0,
    )
    with store:
        assert store.stats().memory_budget == 64 * 1024**2
        assert store.stats().max_hot == 1


def test_defaults_are_persisted(tmp_path):
    root = tmp_path / "s"
    with tenantvec.Store(root, dim=7, metric="ip"):
        pass
    with tenantvec.Store(root) as store:
        assert (store.dim, store.metric) == (7, "ip")
        assert store.create_tenant("t").info().dim == 7
    with tenantvec.Store(root, dim=7, metric="ip") as store:  # same explicit values are fine
        assert store.dim == 7


def test_new_store_defaults(tmp_path):
    with tenantvec.Store(tmp_path / "s") as store:
        assert (store.dim, store.metric) == (384, "cosine")


def test_explicit_dim_mismatch(tmp_path):
    root = tmp_path / "s"
    with tenantvec.Store(root, dim=8):
        pass
    with pytest.raises(DimensionMismatch) as ei:
        tenantvec.Store(root, dim=16)
    assert "8" in str(ei.value)
    assert "16" in str(ei.value)
    with tenantvec.Store(root) as store:  # the failed open released the lock
        assert store.dim == 8


def test_explicit_metric_mismatch(tmp_path):
    root = tmp_path / "s"
    with tenantvec.Store(root, dim=8, metric="cosine"):
        pass
    with pytest.raises(TenantVecError) as ei:
        tenantvec.Store(root, metric="l2")
    assert "'l2'" in str(ei.value)
    assert "'cosine'" in str(ei.value)
    with tenantvec.Store(root) as store:
        assert store.metric == "cosine"
