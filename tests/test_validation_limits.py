"""Validation limits (issue 10, "Validation gaps"): inputs nested too deep, too large,
not encodable, absurd option values and bad export paths raise a clear TenantVecError
naming the value, before anything is written, and leave the store exactly as it was.

Limits under test: MAX_FILTER_DEPTH (64) in _filters, MAX_METADATA_DEPTH (32),
MAX_DOCUMENT_BYTES and MAX_METADATA_BYTES (32 MiB) in _codec, MAX_SIZE (2**62) and
MAX_HNSW_EF in _options, MAX_TIMESTAMP and the export path checks in _export.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import threading
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import tenantvec
from tenantvec import CorruptExport, InvalidArgument, InvalidFilter, TenantVecError
from tenantvec.cli import main

DIM = 4
BASE = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 1]], dtype=np.float32)
GOOD = np.array([1, 2, 3, 4], dtype=np.float32)
FILTER_LIMIT = 64
META_LIMIT = 32
HYPO = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _make_store(root: Path, hnsw_threshold: int = 2048) -> tenantvec.Store:
    store = tenantvec.Store(root, dim=DIM, durability="process", hnsw_threshold=hnsw_threshold, flush_interval=0)
    store.create_tenant("acme").add(
        BASE, ids=[f"r{i}" for i in range(5)], documents=["zero", None, "two", "three", "four"],
        metadata=[{"kind": "fact", "n": i, "tags": ["a", str(i)]} for i in range(5)])
    store.create_tenant("other").add(BASE[:2], ids=["o0", "o1"])
    return store


@pytest.fixture(params=["exact", "hnsw"])
def env(request, tmp_path):
    store = _make_store(tmp_path / "s", 2048 if request.param == "exact" else 3)
    t = store.tenant("acme")
    assert t.info().index_kind == request.param
    yield store, t
    store.close()


@pytest.fixture
def exact_env(tmp_path):
    store = _make_store(tmp_path / "s")
    yield store, store.tenant("acme")
    store.close()


def snapshot(t: Any) -> tuple:
    recs = t.get(where={}, include_vectors=True)
    info = t.info()
    return (
        t.count(),
        [(r.id, r.metadata, r.document, r.created_at, r.updated_at, r.vector.tobytes()) for r in recs],
        [h.id for h in t.query(GOOD, k=10)],
        info.seq,
        info.index_kind,
        info.deleted,
    )


def store_snapshot(store: Any) -> tuple:
    return store.tenants(), sorted(os.listdir(store.path / "tenants")), snapshot(store.tenant("other"))


def raises(exc_type: type[Exception], call: Any, *fragments: str) -> str:
    """Run ``call``; it must raise ``exc_type`` (a TenantVecError) whose message holds every fragment."""
    with pytest.raises(TenantVecError) as ei:
        call()
    assert isinstance(ei.value, exc_type), type(ei.value)
    msg = str(ei.value)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg[:500]!r}"
    return msg


# ---------------------------------------------------------------------------- where: depth
def nested_filter(ops: list[str], leaf: dict | None = None) -> dict:
    """``ops[0]`` outermost; the filter has ``len(ops) + 1`` levels."""
    w: dict = leaf if leaf is not None else {"n": {"$gte": 2}}
    for op in reversed(ops):
        w = {op: w} if op == "$not" else {op: [w]}
    return w


def filter_path(ops: list[str]) -> str:
    """The path :func:`nested_filter` gives the node below ``ops``."""
    return "where" + "".join(".$not" if op == "$not" else f".{op}[0]" for op in ops)


def filter_calls(t: Any, where: Any) -> dict[str, Any]:
    return {
        "query": lambda: t.query(GOOD, k=3, where=where),
        "get": lambda: t.get(where=where),
        "count": lambda: t.count(where=where),
        "delete": lambda: t.delete(where=where),
    }


def _self_ref_not() -> dict:
    w: dict = {}
    w["$not"] = w
    return w


def _self_ref_list(op: str) -> dict:
    parts: list = []
    parts.append({op: parts})
    return {op: parts}


DEEP_FILTERS = {
    "$not x 64 (65 levels)": (lambda: nested_filter(["$not"] * FILTER_LIMIT), filter_path(["$not"] * FILTER_LIMIT)),
    "$and x 64 (65 levels)": (lambda: nested_filter(["$and"] * FILTER_LIMIT), filter_path(["$and"] * FILTER_LIMIT)),
    "$not x 1200": (lambda: nested_filter(["$not"] * 1200), filter_path(["$not"] * FILTER_LIMIT)),
    "$and x 1200": (lambda: nested_filter(["$and"] * 1200), filter_path(["$and"] * FILTER_LIMIT)),
    "$or x 1200": (lambda: nested_filter(["$or"] * 1200), filter_path(["$or"] * FILTER_LIMIT)),
    "mixed x 1200": (lambda: nested_filter(["$not", "$and", "$or"] * 400),
                     filter_path((["$not", "$and", "$or"] * 400)[:FILTER_LIMIT])),
    "self-referencing $not": (_self_ref_not, filter_path(["$not"] * FILTER_LIMIT)),
    "self-referencing $and": (lambda: _self_ref_list("$and"), filter_path(["$and"] * FILTER_LIMIT)),
    "self-referencing $or": (lambda: _self_ref_list("$or"), filter_path(["$or"] * FILTER_LIMIT)),
}


@pytest.mark.parametrize("call", ["query", "get", "count", "delete"])
@pytest.mark.parametrize("case", list(DEEP_FILTERS))
def test_deep_or_self_referencing_filter_is_invalid_filter(env, case, call):
    store, t = env
    before, around = snapshot(t), store_snapshot(store)
    make, path = DEEP_FILTERS[case]
    raises(InvalidFilter, filter_calls(t, make())[call], path + ":", f"deeper than {FILTER_LIMIT} levels")
    assert snapshot(t) == before
    assert store_snapshot(store) == around


@HYPO
@given(ops=st.lists(st.sampled_from(["$not", "$and", "$or"]), max_size=2 * FILTER_LIMIT))
@example(ops=["$not"] * (FILTER_LIMIT - 1))
@example(ops=["$not"] * FILTER_LIMIT)
@example(ops=["$and"] * (FILTER_LIMIT - 1))
@example(ops=["$or"] * FILTER_LIMIT)
def test_filter_depth_limit_is_exact(env, ops):
    """A filter of up to 64 levels works with its usual meaning; one level more is refused."""
    _store, t = env
    where = nested_filter(ops)
    before = snapshot(t)
    if len(ops) + 1 > FILTER_LIMIT:
        for name, call in filter_calls(t, where).items():
            raises(InvalidFilter, call, f"deeper than {FILTER_LIMIT} levels")
            assert snapshot(t) == before, name
        return
    negated = ops.count("$not") % 2 == 1  # single-element $and/$or are the identity
    want = {"r0", "r1"} if negated else {"r2", "r3", "r4"}
    assert {r.id for r in t.get(where=where)} == want
    assert t.count(where=where) == len(want)
    assert {h.id for h in t.query(GOOD, k=5, where=where)} == want


# ---------------------------------------------------------------------------- metadata: depth and size
def nested_value(depth: int, kinds: list[str] | None = None) -> Any:
    """A value with ``depth`` levels of lists/dicts around the scalar 1."""
    v: Any = 1
    for i in range(depth):
        kind = kinds[i % len(kinds)] if kinds else "dict"
        v = {"a": v} if kind == "dict" else [v]
    return v


def _self_ref_meta_dict() -> dict:
    m: dict = {"kind": "x"}
    m["a"] = m
    return m


def _self_ref_meta_list() -> dict:
    v: list = [1]
    v.append(v)
    return {"a": v}


DEEP_METADATA = {
    "33 levels of dicts": lambda: {"a": nested_value(META_LIMIT + 1)},
    "33 levels of lists": lambda: {"a": nested_value(META_LIMIT + 1, ["list"])},
    "1100 levels": lambda: {"a": nested_value(1100, ["dict", "list"])},
    "self-referencing dict": _self_ref_meta_dict,
    "self-referencing list": _self_ref_meta_list,
}


def write_calls(t: Any, metadata: Any = None, documents: Any = None) -> dict[str, Any]:
    one = GOOD[None, :]
    return {
        "add": lambda: t.add(one, ids=["new"], documents=documents, metadata=metadata),
        "add-no-ids": lambda: t.add(one, documents=documents, metadata=metadata),
        "upsert-new": lambda: t.upsert(one, ids=["new"], documents=documents, metadata=metadata),
        "upsert-existing": lambda: t.upsert(one, ids=["r1"], documents=documents, metadata=metadata),
    }


@pytest.mark.parametrize("call", ["add", "add-no-ids", "upsert-new", "upsert-existing"])
@pytest.mark.parametrize("case", list(DEEP_METADATA))
def test_deep_or_self_referencing_metadata_is_invalid_argument(env, case, call):
    store, t = env
    before, around = snapshot(t), store_snapshot(store)
    meta = DEEP_METADATA[case]()
    raises(InvalidArgument, write_calls(t, metadata=[meta])[call],
           "tenant 'acme': metadata 0 key 'a'", f"more than {META_LIMIT} levels", "...")
    assert snapshot(t) == before
    assert store_snapshot(store) == around
    assert t.add(GOOD[None, :], ids=["after"]) == ["after"]  # not wedged


@HYPO
@given(depth=st.integers(0, 2 * META_LIMIT), kinds=st.lists(st.sampled_from(["dict", "list"]), min_size=1, max_size=4),
       position=st.integers(0, 2))
@example(depth=META_LIMIT, kinds=["list"], position=0)
@example(depth=META_LIMIT + 1, kinds=["dict"], position=2)
def test_metadata_depth_limit_is_exact(exact_env, depth, kinds, position):
    """Values nested up to 32 levels are stored and read back; 33 levels are refused
    (also in the second record of a batch), and nothing is written."""
    _store, t = exact_env
    value = nested_value(depth, kinds)
    ids = [f"d{depth}-{position}-{'.'.join(kinds)}-{i}" for i in range(3)]
    metas: list[dict] = [{"k": 1}, {"k": 2}, {"k": 3}]
    metas[position] = {"k": 0, "deep": value}
    before = snapshot(t)
    if depth > META_LIMIT:
        raises(InvalidArgument, lambda: t.add(np.stack([GOOD] * 3), ids=ids, metadata=metas),
               f"metadata {position} key 'deep'", f"more than {META_LIMIT} levels")
        assert snapshot(t) == before
    else:
        t.upsert(np.stack([GOOD] * 3), ids=ids, metadata=metas)
        assert t.get(ids=[ids[position]])[0].metadata == metas[position]


@pytest.mark.parametrize("call", ["add", "upsert-existing"])
def test_metadata_too_large_to_pack(exact_env, call):
    _store, t = exact_env
    before = snapshot(t)
    big = {"blob": "x" * (32 * 1024**2)}  # packs to 32 MiB plus a few header bytes
    raises(InvalidArgument, write_calls(t, metadata=[big])[call],
           "tenant 'acme': metadata 0 packs to", str(32 * 1024**2), "'blob'")
    assert snapshot(t) == before


def test_metadata_size_limit_is_exact(exact_env, monkeypatch):
    _store, t = exact_env
    monkeypatch.setattr("tenantvec._validate.MAX_METADATA_BYTES", 100)
    fits = {"s": "é" * 47 + "x"}  # 1 (map) + 2 (key) + 2 (str8 header) + 95 bytes = 100
    assert len(msgpack.packb(fits, use_bin_type=True)) == 100
    t.add(GOOD[None, :], ids=["fits"], metadata=fits)
    before = snapshot(t)
    over = {"s": "é" * 47 + "xx"}
    raises(InvalidArgument, lambda: t.add(GOOD[None, :], ids=["over"], metadata=over), "packs to 101 bytes", "100")
    assert snapshot(t) == before


# ---------------------------------------------------------------------------- documents: size
@pytest.mark.parametrize("call", ["add", "upsert-existing"])
def test_document_too_large(exact_env, call):
    _store, t = exact_env
    before = snapshot(t)
    doc = "ab" * (16 * 1024**2) + "c"  # 32 MiB + 1 byte
    raises(InvalidArgument, write_calls(t, documents=[doc])[call],
           "tenant 'acme': document 0 has", str(32 * 1024**2 + 1), "'ababab")
    assert snapshot(t) == before


def test_document_size_limit_counts_utf8_bytes(exact_env, monkeypatch):
    _store, t = exact_env
    monkeypatch.setattr("tenantvec._validate.MAX_DOCUMENT_BYTES", 12)
    t.add(np.stack([GOOD] * 3), ids=["a12", "e12", "mix"], documents=["a" * 12, "é" * 6, "🙂🙂é" + "ab"])
    before = snapshot(t)
    for doc in ("a" * 13, "é" * 6 + "a", "🙂" * 4):  # 13, 13 and 16 bytes
        n = len(doc.encode("utf-8"))
        raises(InvalidArgument, lambda d=doc: t.add(np.stack([GOOD] * 2), ids=["x", "y"], documents=[None, d]),
               f"document 1 has {n} bytes", "at most 12")
        assert snapshot(t) == before


# ---------------------------------------------------------------------------- strings: Unicode
VALID_TEXT = st.text(st.characters(blacklist_categories=()), max_size=12)
SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@HYPO
@given(text=VALID_TEXT, lone=SURROGATE, cut=st.integers(0, 12))
@example(text="", lone="\ud800", cut=0)
@example(text="héllo 🙂", lone="\udfff", cut=3)
def test_lone_surrogates_rejected_in_every_string(exact_env, text, lone, cut):
    """A string with a lone surrogate cannot be stored (UTF-8 has no encoding for it):
    in a document, a record id, a metadata key or value, nested or not, via add or
    upsert, it raises InvalidArgument naming it, and nothing is written. Any other
    string (any code point but surrogates) is stored and read back."""
    _store, t = exact_env
    bad = text[:cut] + lone + text[cut:]
    before = snapshot(t)
    shown = repr(bad)[:30]
    one = GOOD[None, :]
    cases = {
        "document": (lambda: t.add(one, ids=["n"], documents=[bad]), "document 0 is not valid Unicode"),
        "document upsert": (lambda: t.upsert(one, ids=["r2"], documents=[bad]), "document 0 is not valid Unicode"),
        "document in batch": (lambda: t.add(np.stack([GOOD] * 2), documents=["ok", bad]), "document 1"),
        "id": (lambda: t.add(one, ids=[bad]), "id 0 is not valid Unicode"),
        "metadata key": (lambda: t.add(one, ids=["n"], metadata={bad: 1}), "metadata 0"),
        "metadata value": (lambda: t.add(one, ids=["n"], metadata={"k": bad}), "metadata 0"),
        "nested metadata value": (lambda: t.upsert(one, ids=["r1"], metadata={"k": [{"x": bad}]}), "metadata 0"),
    }
    for name, (call, fragment) in cases.items():
        raises(InvalidArgument, call, "tenant 'acme'", fragment, shown)
        assert snapshot(t) == before, name
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return  # the drawn text has a surrogate of its own
    rid = "id:" + text
    key = "k:" + text
    t.upsert(one, ids=[rid], documents=[text], metadata={key: text, "list": [text]})
    (rec,) = t.get(ids=[rid])
    assert (rec.id, rec.document, rec.metadata) == (rid, text, {key: text, "list": [text]})
    assert t.count(where={key: text}) == 1


# ---------------------------------------------------------------------------- Store options
BAD_OPTIONS = [
    ("memory_budget", "1" + "0" * 400, "memory_budget: '1000000000"),
    ("memory_budget", "5000000000 TiB", "'5000000000 TiB'"),
    ("memory_budget", 2**62 + 1, str(2**62 + 1)),
    ("memory_budget", 10**400, "an integer of 1329 bits"),
    ("memory_budget", 10**5000, "an integer of"),
    ("max_hot", 2**62 + 1, str(2**62 + 1)),
    ("max_hot", 10**5000, "an integer of"),
    ("hnsw_threshold", 10**400, "an integer of 1329 bits"),
    ("flush_interval", 1e300, "1e+300"),
    ("flush_interval", 10**400, "an integer of 1329 bits"),
    ("flush_interval", threading.TIMEOUT_MAX * 2, repr(threading.TIMEOUT_MAX * 2)),
    ("compact_threshold", 10**5000, "an integer of"),
    ("dim", 10**5000, "an integer of"),
    ("hnsw", {"ef": 2**31}, str(2**31)),
    ("hnsw", {"ef_construction": 10**30}, str(10**30)),
    ("hnsw", {"ef": 10**5000}, "an integer of"),
    ("hnsw", {"m": 10**5000}, "an integer of"),
]


@pytest.mark.parametrize(("name", "value", "shown"), BAD_OPTIONS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(BAD_OPTIONS)])
def test_absurd_store_options_are_invalid_argument(tmp_path, name, value, shown):
    root = tmp_path / "store"

    def call() -> None:
        kwargs = {"hnsw": tenantvec.HnswParams(**value)} if name == "hnsw" else {name: value}
        store = tenantvec.Store(root, **kwargs)
        store.close()  # only reached if the option was (wrongly) accepted

    label = "hnsw " + next(iter(value)) if name == "hnsw" else name
    raises(InvalidArgument, call, label, shown)
    assert not root.exists(), "a rejected Store(...) must not create anything"


def test_size_and_interval_limits_are_exact(tmp_path):
    from tenantvec._options import MAX_HNSW_EF, MAX_SIZE, parse_size

    assert MAX_SIZE == 2**62
    assert parse_size(2**62) == 2**62
    assert parse_size("4194304 TiB") == 2**62
    raises(InvalidArgument, lambda: parse_size("4194304.001 TiB"), "'4194304.001 TiB'")
    raises(InvalidArgument, lambda: parse_size(2**62 + 1), str(2**62 + 1))
    assert tenantvec.HnswParams(ef=MAX_HNSW_EF, ef_construction=MAX_HNSW_EF).ef == 2**31 - 1
    with tenantvec.Store(tmp_path / "s", dim=DIM, memory_budget=2**62, max_hot=2**62, hnsw_threshold=2**62,
                         flush_interval=threading.TIMEOUT_MAX) as store:
        store.create_tenant("t").add(BASE)
        assert store.tenant("t").count() == 5


# ---------------------------------------------------------------------------- export / import paths
def _export_paths(tmp: Path) -> dict[str, tuple[Any, str]]:
    return {
        "None": (None, "NoneType None"),
        "int": (5, "int 5"),
        "bytes": (os.fsencode(str(tmp / "x.tvx")), "bytes b'"),
        "list": ([str(tmp / "x.tvx")], "list ["),
        "empty": ("", "'' is empty"),
        "NUL": (str(tmp / "a\0b.tvx"), "a\\x00b.tvx' contains a NUL"),
        "directory": (str(tmp / "adir"), f"{str(tmp / 'adir')!r} is a directory"),
        "directory as Path": (tmp / "adir", f"{str(tmp / 'adir')!r} is a directory"),
        "missing parent": (str(tmp / "nope" / "x.tvx"), f"{str(tmp / 'nope')!r} does not exist"),
        "missing parent as Path": (tmp / "nope" / "x.tvx", f"{str(tmp / 'nope' / 'x.tvx')!r}"),
    }


@pytest.mark.parametrize("case", list(_export_paths(Path("/nonexistent"))))
def test_export_with_bad_path_is_invalid_argument(exact_env, tmp_path, case):
    store, t = exact_env
    (tmp_path / "adir").mkdir()
    path, shown = _export_paths(tmp_path)[case]
    before, listing = snapshot(t), sorted(os.listdir(tmp_path))
    raises(InvalidArgument, lambda: store.export_tenant("acme", path), "export file", shown)
    assert snapshot(t) == before
    assert sorted(os.listdir(tmp_path)) == listing, "no .partial file or anything else left behind"
    assert os.listdir(tmp_path / "adir") == []


def _import_paths(tmp: Path) -> dict[str, tuple[Any, str]]:
    return {
        "None": (None, "NoneType None"),
        "int": (3, "int 3"),
        "bytes": (os.fsencode(str(tmp / "x.tvx")), "bytes b'"),
        "empty": ("", "'' is empty"),
        "NUL": (str(tmp / "a\0b.tvx"), "a\\x00b.tvx' contains a NUL"),
        "directory": (str(tmp / "adir"), f"{str(tmp / 'adir')!r} is a directory"),
        "directory as Path": (tmp / "adir", f"{str(tmp / 'adir')!r} is a directory"),
        "missing": (str(tmp / "missing.tvx"), f"{str(tmp / 'missing.tvx')!r} does not exist"),
        "missing as Path": (tmp / "missing.tvx", f"{str(tmp / 'missing.tvx')!r} does not exist"),
    }


@pytest.mark.parametrize("case", list(_import_paths(Path("/nonexistent"))))
def test_import_with_bad_path_is_invalid_argument(exact_env, tmp_path, case):
    store, _t = exact_env
    (tmp_path / "adir").mkdir()
    path, shown = _import_paths(tmp_path)[case]
    around = store_snapshot(store)
    raises(InvalidArgument, lambda: store.import_tenant("dst", path), "export file", shown)
    assert store_snapshot(store) == around
    assert not store.has_tenant("dst")
    assert sorted(os.listdir(store.path / "tenants")) == sorted(around[1]), "no temporary directory left"


# ---------------------------------------------------------------------------- import: records validated like new ones
def rewrite_export(src: Path, dst: Path, edit: Any) -> None:
    """Copy an export file, letting ``edit(records)`` change its records, with a valid checksum."""
    data = src.read_bytes()
    assert data[:8] == b"TVEXPORT"
    assert data[-40:-32] == b"TVSHA256"
    unpacker = msgpack.Unpacker(io.BytesIO(data[8:-40]), raw=False, strict_map_key=False)
    header = next(unpacker)
    records = [next(unpacker) for _ in range(header["count"])]
    rest = list(unpacker)
    edit(records)
    body = b"TVEXPORT" + b"".join(msgpack.packb(x, use_bin_type=True) for x in [header, *records, *rest])
    dst.write_bytes(body + b"TVSHA256" + hashlib.sha256(body).digest())


BAD_TIMESTAMPS = [
    (3, math.nan, "created_at nan"),
    (3, math.inf, "created_at inf"),
    (4, -math.inf, "updated_at -inf"),
    (4, math.nan, "updated_at nan"),
    (3, -1.0, "created_at -1.0"),
    (4, -1, "updated_at -1"),
    (3, 1e300, "created_at 1e+300"),
    (4, 2**63, f"updated_at {2**63}"),
]


@pytest.mark.parametrize(("field", "value", "shown"), BAD_TIMESTAMPS, ids=[s for _, _, s in BAD_TIMESTAMPS])
def test_import_refuses_bad_timestamps(exact_env, tmp_path, field, value, shown):
    store, _t = exact_env
    store.export_tenant("acme", tmp_path / "acme.tvx")
    # the rewriting itself yields an importable file
    rewrite_export(tmp_path / "acme.tvx", tmp_path / "same.tvx", lambda _recs: None)
    assert store.import_tenant("same", tmp_path / "same.tvx").count() == 5

    def edit(recs: list) -> None:
        recs[3][field] = value

    rewrite_export(tmp_path / "acme.tvx", tmp_path / "bad.tvx", edit)
    around = store_snapshot(store)
    raises(CorruptExport, lambda: store.import_tenant("dst", tmp_path / "bad.tvx"), "record 3 has a bad", shown)
    assert store_snapshot(store) == around
    assert not store.has_tenant("dst")


def test_import_refuses_too_deep_metadata(exact_env, tmp_path):
    store, _t = exact_env
    store.export_tenant("acme", tmp_path / "acme.tvx")

    def edit(recs: list) -> None:
        recs[1][1] = {"deep": nested_value(META_LIMIT + 1)}

    rewrite_export(tmp_path / "acme.tvx", tmp_path / "bad.tvx", edit)
    around = store_snapshot(store)
    raises(CorruptExport, lambda: store.import_tenant("dst", tmp_path / "bad.tvx"),
           "metadata 1 key 'deep'", f"more than {META_LIMIT} levels")
    assert store_snapshot(store) == around


# ---------------------------------------------------------------------------- CLI
def run_cli(root: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--root", str(root), *args], catch_exceptions=False)


def test_cli_filters_too_deep(tmp_path):
    root = tmp_path / "s"
    _make_store(root).close()
    deep = json.dumps(nested_filter(["$not"] * FILTER_LIMIT))
    for args in (["get", "acme", "--where", deep], ["search", "acme", "--vector", "[1, 2, 3, 4]", "--where", deep]):
        r = run_cli(root, *args)
        assert r.exit_code == 1, r.output
        assert f"deeper than {FILTER_LIMIT} levels" in r.output
        assert "where.$not.$not" in r.output
    # nested too deep for the JSON decoder itself: a usage error, not a traceback
    deeper = '{"$not": ' * 5000 + '{"n": 1}' + "}" * 5000
    r = run_cli(root, "get", "acme", "--where", deeper)
    assert r.exit_code == 2, r.output
    assert "--where" in r.output, r.output
    assert "not valid JSON" in r.output, r.output
    with tenantvec.Store(root, readonly=True) as store:
        assert store.tenant("acme").count() == 5


def test_cli_export_to_missing_directory(tmp_path):
    root = tmp_path / "s"
    _make_store(root).close()
    target = tmp_path / "nope" / "acme.tvx"
    r = run_cli(root, "export", "acme", str(target))
    assert r.exit_code == 1
    assert f"{str(tmp_path / 'nope')!r} does not exist" in r.output, r.output
    assert sorted(os.listdir(tmp_path)) == ["s"]
