"""The pytest plugin ``tenantvec.testing``, tested as its users meet it: small test files
run by pytest's ``pytester`` in a new pytest process that loads the plugin through its
``pytest11`` entry point (installed by ``pip install -e '.[dev]'``), with sockets disabled
where pytest-socket is installed (no server, no network). A subprocess, not pytester's
in-process run: that one unloads the modules the inner session imported (numpy among
them), which cannot be loaded twice in one process."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from tenantvec.testing import FakeClock, _require

pytest_plugins = ["pytester"]

NO_NETWORK = ["--disable-socket", "--allow-unix-socket"] if importlib.util.find_spec("pytest_socket") else []

CORE_TESTS = '''
import pytest
from tenantvec.errors import InvalidArgument, StoreClosed
from tenantvec.testing import FakeClock

opened = []


def test_store(tenantvec_store, tmp_path):
    assert tenantvec_store.path.parent == tmp_path
    assert not tenantvec_store.readonly
    t = tenantvec_store.tenant("acme", create=True)
    dim = t.info().dim
    t.add([[1.0] + [0.0] * (dim - 1), [0.0, 1.0] + [0.0] * (dim - 2)], ids=["x", "y"])
    assert [h.id for h in t.query([0.1, 1.0] + [0.0] * (dim - 2), k=1)] == ["y"]
    opened.append(tenantvec_store)


def test_each_test_gets_a_fresh_store_and_the_last_one_was_closed(tenantvec_store):
    assert tenantvec_store.tenants() == []
    with pytest.raises(StoreClosed):
        opened[0].check_open()


def test_memory_runs_on_the_fake_clock(tenantvec_memory, tenantvec_clock):
    acme = tenantvec_memory.tenant("acme", create=True)
    m = acme.remember("Acme bills through PostgreSQL", source="user", ttl=3600)
    acme.remember("Acme ships on Fridays")
    assert m.created_at == FakeClock.START == tenantvec_clock()
    assert acme.recall("billing database PostgreSQL", k=1)[0].id == m.id
    assert tenantvec_clock.advance(3600) == FakeClock.START + 3600
    assert [h.text for h in acme.recall("billing database PostgreSQL", k=5)] == ["Acme ships on Fridays"]
    assert tenantvec_memory.tenant("globex", create=True).recall("Acme", k=5) == []


def test_clock_only_moves_forward(tenantvec_clock):
    with pytest.raises(InvalidArgument, match="-1"):
        tenantvec_clock.advance(-1)
    assert tenantvec_clock() == FakeClock.START
'''

FRAMEWORK_TESTS = '''
def test_langchain_vectorstore(tenantvec_langchain_vectorstore):
    vs = tenantvec_langchain_vectorstore
    vs.add_texts(["Acme bills through PostgreSQL", "Globex ships on Fridays"],
                 metadatas=[{"topic": "billing"}, {"topic": "shipping"}], ids=["a", "b"])
    docs = vs.as_retriever(search_kwargs={"k": 1}).invoke("where does Acme keep its bills")
    assert [(d.id, d.metadata) for d in docs] == [("a", {"topic": "billing"})]
    assert [d.id for d in vs.similarity_search("billing", k=2, filter={"topic": "shipping"})] == ["b"]


def test_langgraph_store(tenantvec_langgraph_store):
    store = tenantvec_langgraph_store
    store.put(("users", "u1", "memories"), "m1", {"text": "prefers invoices by email"})
    store.put(("users", "u1", "memories"), "m2", {"text": "lives in Berlin"})
    store.put(("users", "u2", "memories"), "m3", {"text": "prefers invoices by fax"})
    hits = store.search(("users", "u1"), query="how to send invoices", limit=2)
    assert [h.key for h in hits] == ["m1", "m2"]
    assert hits[0].score > hits[1].score
    assert store.get(("users", "u2", "memories"), "m3").value == {"text": "prefers invoices by fax"}


def test_langgraph_ttl_runs_on_the_fake_clock(tenantvec_langgraph_store, tenantvec_clock):
    store = tenantvec_langgraph_store
    store.put(("scratch",), "k", {"text": "draft"}, ttl=1)  # minutes
    tenantvec_clock.advance(59)
    assert store.get(("scratch",), "k", refresh_ttl=False) is not None  # a read would refresh the TTL
    tenantvec_clock.advance(1)
    assert store.get(("scratch",), "k") is None
'''


def test_entry_point_registers_the_plugin(request: pytest.FixtureRequest):
    assert [e.value for e in entry_points(group="pytest11") if e.name == "tenantvec"] == ["tenantvec.testing"]
    assert request.config.pluginmanager.has_plugin("tenantvec")


def test_loading_the_plugin_imports_no_engine_and_no_framework(subprocess_env: dict[str, str]):
    code = ("import json, sys, pytest; before = set(sys.modules); import tenantvec.testing; "
            "print(json.dumps(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=subprocess_env)
    loaded = json.loads(out.stdout)
    assert {m for m in loaded if m.startswith("tenantvec")} == {"tenantvec", "tenantvec._version", "tenantvec.errors",
                                                                "tenantvec.testing"}
    heavy = ("numpy", "lmdb", "hnswlib", "langchain", "langgraph", "langsmith", "mem0", "msgpack")
    assert [m for m in loaded if m.split(".")[0].startswith(heavy)] == []


def test_core_fixtures(pytester: pytest.Pytester):
    pytester.makepyfile(test_agent=CORE_TESTS)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", *NO_NETWORK).assert_outcomes(passed=4)


def test_overriding_the_embedder_changes_every_fixture(pytester: pytest.Pytester):
    pytester.makeconftest('''
import pytest
from tenantvec.embedders import HashingEmbedder

@pytest.fixture
def tenantvec_embedder():
    return HashingEmbedder(dim=32)
''')
    pytester.makepyfile(test_agent='''
def test_dim(tenantvec_store, tenantvec_memory):
    assert tenantvec_store.tenant("raw", create=True).info().dim == 32
    assert tenantvec_memory.tenant("acme", create=True).tenant.info().dim == 32
    assert tenantvec_memory.embedder.dim == 32
''')
    pytester.runpytest_subprocess("-p", "no:cacheprovider", *NO_NETWORK).assert_outcomes(passed=1)


def test_framework_fixtures(pytester: pytest.Pytester):
    for fixture, extra, framework in [("tenantvec_langgraph_store", "langgraph", "langgraph.store.base"),
                                      ("tenantvec_langchain_vectorstore", "langchain", "langchain_core.vectorstores")]:
        _require(fixture, extra, framework)  # skips this test where the venv lacks the extra
    pytester.makepyfile(test_agent=FRAMEWORK_TESTS)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", *NO_NETWORK).assert_outcomes(passed=3)


def test_framework_fixtures_skip_without_their_extra(pytester: pytest.Pytester):
    pytester.makeconftest("""
import sys
for module in ("langgraph.store.base", "langchain_core.vectorstores"):
    sys.modules[module] = None  # as if the extras were not installed
""")
    pytester.makepyfile(test_agent=FRAMEWORK_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=3)
    for fixture, extra in [("tenantvec_langgraph_store", "langgraph"), ("tenantvec_langchain_vectorstore", "langchain")]:
        assert f"{fixture} needs the {extra} extra: pip install 'tenantvec[{extra}]'" in result.stdout.str()


def test_a_missing_integration_skips_with_its_name():
    with pytest.raises(pytest.skip.Exception, match=r"fx needs tenantvec\.integrations\.nope, which this tenantvec"):
        _require("fx", "nope", "json")


def test_fake_clock():
    clock = FakeClock(10)
    assert clock() == 10.0
    assert clock.advance(2.5) == clock() == 12.5
    for bad in (-0.1, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match=r"FakeClock\.advance"):
            clock.advance(bad)  # type: ignore[arg-type]
    assert clock() == 12.5
