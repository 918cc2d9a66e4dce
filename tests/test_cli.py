"""The ``tenantvec`` command line: every command, its --json output, errors, docs, and
read-only use against a store another process holds open for writing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner, Result

import tenantvec
from tenantvec.cli import main

REPO_ROOT = Path(tenantvec.__file__).resolve().parent.parent
FAST_HNSW = tenantvec.HnswParams(m=8, ef_construction=64, ef=64)


def run(root: Path | None, *args: str, input: str | None = None, env: dict | None = None) -> Result:
    argv = (["--root", str(root)] if root is not None else []) + list(args)
    return CliRunner().invoke(main, argv, input=input, env=env, catch_exceptions=False)


def ok(root: Path | None, *args: str) -> Result:
    r = run(root, *args)
    assert r.exit_code == 0, (r.exit_code, r.output)
    return r


def js(root: Path | None, *args: str) -> object:
    return json.loads(ok(root, *args, "--json").stdout)


def _vecs(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A closed store: 'acme' (exact, 40 records), 'big' (HNSW, 400 records), 'empty'."""
    path = tmp_path / "store"
    with tenantvec.Store(path, dim=8, durability="process", hnsw_threshold=100, hnsw=FAST_HNSW) as store:
        acme = store.create_tenant("acme")
        acme.add(_vecs(40, 8), ids=[f"m{i}" for i in range(40)], documents=[f"memory number {i}" for i in range(40)],
                 metadata=[{"kind": "fact" if i % 2 else "event", "n": i} for i in range(40)])
        big = store.create_tenant("big")
        big.add(_vecs(400, 8, 1), ids=[f"b{i}" for i in range(400)])
        big.delete(ids=[f"b{i}" for i in range(100)])
        store.create_tenant("empty")
    return path


# ---------------------------------------------------------------------------- basics
def test_version_and_help() -> None:
    r = ok(None, "--version")
    assert tenantvec.__version__ in r.stdout
    for flag in ("-h", "--help"):
        r = ok(None, flag)
        assert "Usage: " in r.stdout
        assert "verify" in r.stdout


def test_python_dash_m(root: Path, subprocess_env: dict[str, str]) -> None:
    r = subprocess.run([sys.executable, "-m", "tenantvec", "--root", str(root), "ls", "--json"],
                       capture_output=True, text=True, env=subprocess_env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [row["tenant"] for row in json.loads(r.stdout)] == ["acme", "big", "empty"]


def test_root_from_environment_and_missing_root(root: Path, tmp_path: Path) -> None:
    r = run(None, "ls", "--json", env={"TENANTVEC_ROOT": str(root)})
    assert r.exit_code == 0
    assert len(json.loads(r.stdout)) == 3
    r = run(None, "ls", env={"TENANTVEC_ROOT": ""})
    assert r.exit_code != 0
    assert "--root" in r.output
    r = run(tmp_path / "nowhere", "ls")
    assert r.exit_code == 1
    assert "no tenantvec store" in r.output


def test_errors_are_one_line_without_traceback(root: Path) -> None:
    for args in (["info", "nope"], ["get", "nope"], ["search", "acme", "--vector", "[1, 2]"],
                 ["get", "acme", "--where", '{"n": {"$gt": []}}'], ["info", " padded"]):
        r = run(root, *args)
        assert r.exit_code == 1, (args, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1, r.output
        assert lines[0].startswith("Error: "), r.output
        assert "Traceback" not in r.output, r.output


# ---------------------------------------------------------------------------- read commands
def test_ls(root: Path) -> None:
    rows = js(root, "ls")
    assert [(r["tenant"], r["count"], r["state"], r["index"]) for r in rows] == [
        ("acme", 40, "cold", "exact"), ("big", 300, "cold", "hnsw"), ("empty", 0, "cold", "exact")]
    assert all(r["bytes"] > 0 and r["dim"] == 8 and r["metric"] == "cosine" for r in rows)
    table = ok(root, "ls").stdout.splitlines()
    assert table[0].split()[:3] == ["TENANT", "RECORDS", "STATE"]
    assert len(table) == 5
    assert len({line.index("cold") for line in table[2:]}) == 1  # aligned


def test_info(root: Path) -> None:
    info = js(root, "info", "big")
    assert info["tenant"] == "big"
    assert info["count"] == 300
    assert info["deleted"] == 100
    assert info["dim"] == 8
    assert info["metric"] == "cosine"
    assert info["bytes"] > 0
    assert info["index"] == "hnsw"
    assert info["deleted_fraction"] == pytest.approx(0.25)
    assert info["index_params"]["m"] == 8
    assert {"seq", "checkpoint_seq", "last_write", "memory_bytes", "state"} <= set(info)
    text = ok(root, "info", "big").stdout
    assert "deleted_fraction  25.0%" in text
    assert "index_params" in text


def test_stats(root: Path) -> None:
    st = js(root, "stats")
    assert st["tenants"] == 3
    assert st["records"] == 340
    assert st["hnsw_indexes"] == 1
    assert st["bytes"] > 0
    assert "records" in ok(root, "stats").stdout


def test_get(root: Path) -> None:
    recs = js(root, "get", "acme", "m3", "m1", "zzz")
    assert [r["id"] for r in recs] == ["m3", "m1"]
    assert recs[0]["document"] == "memory number 3"
    assert recs[0]["metadata"] == {"kind": "fact", "n": 3}
    assert recs[0]["created_at"] <= recs[0]["updated_at"]
    assert len(js(root, "get", "acme")) == 20  # default limit without ids
    assert len(js(root, "get", "acme", "--limit", "0")) == 40
    facts = js(root, "get", "acme", "--where", '{"kind": "fact", "n": {"$lt": 10}}')
    assert [r["id"] for r in facts] == ["m1", "m3", "m5", "m7", "m9"]
    with_vec = js(root, "get", "acme", "m0", "--vectors")
    assert np.allclose(with_vec[0]["vector"], _vecs(40, 8)[0])
    assert "memory number 3" in ok(root, "get", "acme", "m3").stdout
    r = run(root, "get", "acme", "--where", "{not json")
    assert r.exit_code == 2
    assert "not valid JSON" in r.output


def test_search(root: Path) -> None:
    v = _vecs(40, 8)
    hits = js(root, "search", "acme", "--vector", json.dumps(v[5].tolist()), "--k", "3")
    assert hits[0]["id"] == "m5"
    assert len(hits) == 3
    assert set(hits[0]) >= {"id", "distance", "metadata"}
    assert hits[0]["distance"] == pytest.approx(0, abs=1e-5)
    like = js(root, "search", "acme", "--like", "m5", "-k", "4", "--where", '{"kind": "event"}')
    assert len(like) == 4
    assert "m5" not in {h["id"] for h in like}
    assert all(h["metadata"]["kind"] == "event" for h in like)
    assert [h["distance"] for h in like] == sorted(h["distance"] for h in like)
    assert js(root, "search", "big", "--like", "b150", "-k", "1")[0]["id"] != "b150"
    assert "DISTANCE" in ok(root, "search", "acme", "--like", "m1").stdout
    assert run(root, "search", "acme").exit_code == 2
    assert run(root, "search", "acme", "--like", "m1", "--vector", "[1]").exit_code == 2
    r = run(root, "search", "acme", "--like", "nope")
    assert r.exit_code == 1
    assert "no record 'nope'" in r.output


# ---------------------------------------------------------------------------- verify & compact
def test_verify_truncated_index_then_fix(root: Path) -> None:
    rows = js(root, "verify", "--all")
    assert [(r["tenant"], r["ok"]) for r in rows] == [("acme", True), ("big", True), ("empty", True)]
    index = root / "tenants" / "big" / "index.hnsw"
    with index.open("r+b") as f:
        f.truncate(100)
    r = run(root, "verify", "big")
    assert r.exit_code == 1
    assert "PROBLEM" in r.stdout
    assert "truncated" in r.stdout
    assert "--fix" in r.stdout
    r = run(root, "verify", "--all", "--json")
    assert r.exit_code == 1
    bad = {row["tenant"]: row for row in json.loads(r.stdout)}
    assert not bad["big"]["ok"]
    assert bad["acme"]["ok"]
    assert any("truncated" in p for p in bad["big"]["problems"])
    r = run(root, "verify", "big", "--fix")
    assert r.exit_code == 0, r.output
    assert "repaired" in r.stdout, r.output
    assert "fixed:" in r.stdout, r.output
    assert run(root, "verify", "big").exit_code == 0
    assert run(root, "verify").exit_code == 2  # neither tenants nor --all
    assert run(root, "verify", "big", "--all").exit_code == 2


def test_compact(root: Path) -> None:
    est = js(root, "compact", "big", "--dry-run")
    assert est[0]["dry_run"]
    assert est[0]["deleted_before"] == 100
    assert "estimates" in ok(root, "compact", "--all", "--dry-run").stdout
    assert js(root, "info", "big")["deleted"] == 100  # dry run changed nothing
    before = js(root, "search", "big", "--like", "b200", "-k", "5")
    done = js(root, "compact", "big")
    assert done[0]["bytes_after"] < done[0]["bytes_before"]
    assert done[0]["memory_after"] <= done[0]["memory_before"]
    assert done[0]["index"] == "hnsw->exact"  # 300 live records: at or below the CLI's hnsw_threshold
    assert js(root, "info", "big")["deleted"] == 0
    after = js(root, "search", "big", "--like", "b200", "-k", "5")  # now exact: HNSW may have missed one
    assert after[0]["id"] == before[0]["id"]
    assert len({h["id"] for h in after} & {h["id"] for h in before}) >= 4
    out = ok(root, "compact", "--all").stdout
    assert "DISK BEFORE" in out
    assert "acme" in out
    assert js(root, "verify", "--all")[1]["ok"]


# ---------------------------------------------------------------------------- export / import
def test_export_import(root: Path, tmp_path: Path) -> None:
    f = tmp_path / "acme.tvx"
    rep = js(root, "export", "acme", str(f))
    assert rep["records"] == 40
    assert rep["bytes"] == f.stat().st_size
    assert len(rep["sha256"]) == 64
    imp = js(root, "import", "acme2", str(f))
    assert imp["tenant"] == "acme2"
    assert imp["records"] == 40
    assert imp["sha256"] == rep["sha256"]
    assert js(root, "get", "acme2", "--limit", "0") == js(root, "get", "acme", "--limit", "0")
    r = run(root, "import", "acme2", str(f))
    assert r.exit_code == 1
    assert "already exists" in r.output
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 1
    bad = tmp_path / "bad.tvx"
    bad.write_bytes(bytes(data))
    r = run(root, "import", "acme3", str(bad))
    assert r.exit_code == 1
    assert "checksum" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert [row["tenant"] for row in js(root, "ls")] == ["acme", "acme2", "big", "empty"]
    assert "records" in ok(root, "export", "big", str(tmp_path / "big.tvx")).stdout


def test_import_into_a_new_store(root: Path, tmp_path: Path) -> None:
    ok(root, "export", "big", str(tmp_path / "big.tvx"))
    other = tmp_path / "other"
    ok(other, "import", "restored", str(tmp_path / "big.tvx"))
    assert js(other, "info", "restored")["count"] == 300


# ---------------------------------------------------------------------------- write commands
def test_drop_needs_yes(root: Path) -> None:
    r = run(root, "drop", "acme")
    assert r.exit_code != 0
    assert "--yes" in r.output
    assert "acme" in [row["tenant"] for row in js(root, "ls")]
    r = ok(root, "drop", "acme", "--yes")
    assert "dropped tenant 'acme'" in r.stdout
    assert [row["tenant"] for row in js(root, "ls")] == ["big", "empty"]
    assert run(root, "drop", "acme", "--yes").exit_code == 1


def test_deactivate_activate(root: Path) -> None:
    ok(root, "deactivate", "acme")
    assert {r["tenant"]: r["state"] for r in js(root, "ls")}["acme"] == "inactive"
    assert js(root, "info", "acme")["state"] == "inactive"
    r = run(root, "get", "acme")
    assert r.exit_code == 1
    assert "deactivated" in r.output
    ok(root, "activate", "acme")
    assert {r["tenant"]: r["state"] for r in js(root, "ls")}["acme"] == "cold"
    assert len(js(root, "get", "acme", "m1")) == 1


# ---------------------------------------------------------------------------- plan (the demo: test_demo.py)
def test_plan() -> None:
    p = js(None, "plan", "--tenants", "1000", "--records-per-tenant", "5000", "--dim", "384", "--hot-fraction", "0.05")
    assert p["hot_tenants"] == 50
    assert p["index_kind"] == "hnsw"
    assert p["disk_total"] == 1000 * p["disk_per_tenant"]
    assert p["memory_hot"] > 0
    assert "LMDB_PAGE_BYTES" in p["constants"]
    out = ok(None, "plan", "--tenants", "10", "--records-per-tenant", "100", "--dim", "64").stdout
    assert "disk, all tenants" in out
    assert "constants (measured by tools/measure_costs.py)" in out
    assert run(None, "plan", "--tenants", "10").exit_code == 2


# ---------------------------------------------------------------------------- docs
def _cli_docs() -> str:
    readme = REPO_ROOT / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if "## CLI" not in text:
        text = (REPO_ROOT / "README_CLI_SECTION.md").read_text(encoding="utf-8")
    return text.split("## CLI", 1)[1].split("\n## ", 1)[0]


def test_every_command_has_help_and_is_documented() -> None:
    docs = _cli_docs()
    assert main.commands
    for name, cmd in main.commands.items():
        assert cmd.help, f"command {name!r} has no help text"
        assert len(cmd.help.strip()) > 20, f"command {name!r} has no help text"
        for p in cmd.params:
            if isinstance(p, click.Option):
                assert p.help, f"option {p.name!r} of {name!r} has no help"
        assert f"tenantvec {name}" in docs or f"`{name}`" in docs, f"command {name!r} is not in README's CLI section"
        r = CliRunner().invoke(main, [name, "--help"])
        assert r.exit_code == 0
        assert cmd.help.split()[0] in r.stdout


def test_data_commands_take_json() -> None:
    for name in ("ls", "info", "stats", "get", "search", "verify", "compact", "export", "import", "plan"):
        assert any(p.name == "as_json" for p in main.commands[name].params), name


# ---------------------------------------------------------------------------- another process writes
WRITER = r"""
import sys, numpy as np, tenantvec
root = sys.argv[1]
rng = np.random.default_rng(0)
v = rng.standard_normal((600, 8)).astype(np.float32)
store = tenantvec.Store(root, dim=8, hnsw_threshold=100, durability="process",
                        hnsw=tenantvec.HnswParams(m=8, ef_construction=64, ef=64), compact_threshold=1.0)
t = store.tenant("live", create=True)
t.add(v[:500], ids=[f"r{i}" for i in range(500)], documents=[f"doc {i}" for i in range(500)])
store.flush()
t.add(v[500:550], ids=[f"r{i}" for i in range(500, 550)])   # after the snapshot: in the op log only
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "compact":
        t.delete(ids=[f"r{i}" for i in range(300)])
        r = t.compact()
        t.add(v[550:], ids=[f"new{i}" for i in range(50)])
        print("compacted", r.index_before, r.index_after, flush=True)
    elif cmd == "quit":
        break
store.close()
print("bye", flush=True)
"""


@pytest.fixture
def writer(tmp_path: Path, subprocess_env: dict[str, str]):
    root = tmp_path / "live"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=subprocess_env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield root, proc
    finally:
        if proc.poll() is None:
            proc.stdin.write("quit\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
            proc.wait(timeout=60)


def test_read_commands_work_while_another_process_writes(writer, tmp_path: Path) -> None:
    root, proc = writer
    assert js(root, "ls")[0]["count"] == 550
    assert js(root, "info", "live")["count"] == 550
    assert js(root, "stats")["records"] == 550
    assert [r["id"] for r in js(root, "get", "live", "r520")] == ["r520"]  # from the op log
    assert len(js(root, "search", "live", "--like", "r10", "-k", "3")) == 3
    assert js(root, "verify", "--all")[0]["ok"]
    assert js(root, "compact", "--all", "--dry-run")[0]["count"] == 550
    assert js(root, "export", "live", str(tmp_path / "live.tvx"))["records"] == 550
    for args in (["drop", "live", "--yes"], ["deactivate", "live"], ["compact", "live"], ["verify", "live", "--fix"],
                 ["import", "x", str(tmp_path / "live.tvx")]):
        r = run(root, *args)
        assert r.exit_code == 1, (args, r.output)
        msg = r.output.strip()
        assert len(msg.splitlines()) == 1, msg
        assert f"pid {proc.pid}" in msg, msg
        assert "LOCK" in msg, msg


def test_reader_follows_a_compaction_by_the_writer(writer) -> None:
    root, proc = writer
    v = np.random.default_rng(0).standard_normal((600, 8)).astype(np.float32)
    with tenantvec.Store(root, readonly=True, hnsw=FAST_HNSW) as store:
        t = store.tenant("live")
        assert t.count() == 550
        assert t.query(v[5], k=1)[0].id == "r5"
        proc.stdin.write("compact\n")
        proc.stdin.flush()
        assert proc.stdout.readline().startswith("compacted hnsw hnsw")
        assert t.count() == 300
        assert t.get(["r5"]) == []
        assert t.query(v[5], k=1)[0].id != "r5"
        assert t.query(v[560], k=1)[0].id == "new10"
        assert t.info().deleted == 0
