"""The agent-memory commands of the ``tenantvec`` command line: ``memory recall``,
``memory sessions``, ``audit``, ``offboard``, and the memory columns of ``ls`` and ``info``,
on stores written through ``tenantvec.memory`` with the hashing embedder and an injected
clock (the CLI reads the real time: the clock places memories and sessions around it)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from test_cli import _cli_docs

import tenantvec
from tenantvec.cli import WHEN, main
from tenantvec.embedders import HashingEmbedder
from tenantvec.memory import ERASURE_LOG, Memory

DIM = 64
DAY = 86400.0
HOUR = 3600.0
MEMORY_KEYS = {"embedder", "memories", "sessions"}


def custom_embedder() -> HashingEmbedder:
    """A factory for ``--embedder test_cli_memory:custom_embedder``."""
    return HashingEmbedder(DIM, name="custom-model")


other_embedder = HashingEmbedder(DIM, name="other-model")  # an embedder object for --embedder module:attribute


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def run(root: Path, *args: str, env: dict | None = None) -> Result:
    return CliRunner().invoke(main, ["--root", str(root), *args], env=env, catch_exceptions=False)


def ok(root: Path, *args: str, env: dict | None = None) -> Result:
    r = run(root, *args, env=env)
    assert r.exit_code == 0, (r.exit_code, r.output)
    return r


def js(root: Path, *args: str, env: dict | None = None) -> object:
    return json.loads(ok(root, *args, "--json", env=env).stdout)


def fails(root: Path, *args: str, code: int = 1) -> str:
    r = run(root, *args)
    assert r.exit_code == code, (r.exit_code, r.output)
    assert "Traceback" not in r.output
    return r.output


def tenant_path(root: Path, tenant: str) -> Path:
    with tenantvec.Store(root, readonly=True) as store:
        return store.tenant_path(tenant)


@pytest.fixture
def now() -> float:
    return time.time()


@pytest.fixture
def root(tmp_path: Path, now: float) -> Path:
    """A closed store. 'acme': a memory superseded a day ago (made 200 days ago), three
    current semantic memories (two user, one agent at confidence 0.6), one episodic, one
    procedural consolidated from session 's-done' (no TTL); sessions 's-live' (2 staged
    notes, expires in ~1 h) and 's-gone' (expired ~1 h ago, not swept). 'globex': one
    memory. 'plain': no memory. 'custom': a memory embedded by 'custom-model'."""
    path = tmp_path / "store"
    clock = Clock(now - 200 * DAY)
    with Memory(path, embedder=HashingEmbedder(DIM), clock=clock, durability="process") as mem:
        acme = mem.tenant("acme", create=True)
        old = acme.remember("Acme bills through PostgreSQL", kind="semantic", source="user")
        clock.t = now - DAY
        acme.supersede(old.id, "Acme moved its billing data to MySQL", reason="migration")
        acme.remember("Acme billing data is in the billing schema", kind="semantic", source="user")
        acme.remember("Acme billing data is probably replicated", kind="semantic", source="agent", confidence=0.6)
        acme.remember("The user asked where the billing data is", kind="episodic", source="user")
        acme.session("s-done").note("Send Acme invoices by email", kind="procedural", source="user")
        acme.consolidate("s-done")
        clock.t = now - HOUR
        acme.session("s-gone", ttl=60).note("a stale note")
        clock.t = now - 60
        live = acme.session("s-live", ttl=HOUR)
        live.note("Acme wants weekly reports")
        live.note("Acme's contact is Dana")
        mem.tenant("globex", create=True).remember("Globex bills through Oracle", kind="semantic", source="user")
        mem.store.create_tenant("plain", dim=DIM)
    with Memory(path, embedder=custom_embedder(), durability="process") as mem:
        mem.tenant("custom", create=True).remember("Initech prints TPS reports", source="user")
    return path


# ---------------------------------------------------------------------------- ls and info
def test_ls_shows_memories_by_kind_and_live_sessions(root: Path) -> None:
    rows = {r["tenant"]: r for r in js(root, "ls")}
    assert set(rows) == {"acme", "custom", "globex", "plain"}
    assert {"tenant", "count", "state", "dim", "metric", "index", "bytes", "last_write"} | MEMORY_KEYS <= set(rows["acme"])
    assert rows["acme"]["memories"] == {"episodic": 1, "semantic": 3, "procedural": 1}
    assert rows["acme"]["sessions"] == 2  # s-gone expired
    assert rows["acme"]["embedder"] == f"hashing-v1-{DIM}"
    assert rows["acme"]["count"] == 6  # the superseded memory is still a record
    assert rows["globex"]["memories"] == {"episodic": 0, "semantic": 1, "procedural": 0}
    assert rows["custom"]["embedder"] == "custom-model"
    assert all(rows["plain"][k] is None for k in MEMORY_KEYS)
    table = ok(root, "ls").stdout.splitlines()
    assert table[0].split()[:3] == ["TENANT", "RECORDS", "STATE"]
    assert table[0].split()[-3:] == ["MEMORIES", "E/S/P", "SESSIONS"]
    acme = next(line for line in table if line.startswith("acme "))
    assert acme.split()[-2:] == ["1/3/1", "2"]
    plain = next(line for line in table if line.startswith("plain "))
    assert plain.split()[-2:] == ["-", "-"]
    bare = js(root, "ls", "--no-memory")
    assert [{k: v for k, v in r.items() if k not in MEMORY_KEYS} for r in rows.values()] == bare
    assert not MEMORY_KEYS & set(bare[0])
    assert "MEMORIES" not in ok(root, "ls", "--no-memory").stdout


def test_info_shows_memories_and_sessions(root: Path) -> None:
    info = js(root, "info", "acme")
    assert info["count"] == 6
    assert info["dim"] == DIM
    assert "deleted_fraction" in info
    assert info["memories"] == {"episodic": 1, "semantic": 3, "procedural": 1}
    assert info["sessions"] == 2
    assert info["embedder"] == f"hashing-v1-{DIM}"
    text = ok(root, "info", "acme").stdout
    assert "episodic=1, semantic=3, procedural=1" in text
    assert all(js(root, "info", "plain")[k] is None for k in MEMORY_KEYS)


def test_inactive_tenant_is_listed_without_memory_fields(root: Path) -> None:
    ok(root, "deactivate", "globex")
    row = next(r for r in js(root, "ls") if r["tenant"] == "globex")
    assert row["state"] == "inactive"
    assert all(row[k] is None for k in MEMORY_KEYS)


# ---------------------------------------------------------------------------- memory recall
def test_recall_the_seed_query(root: Path, now: float) -> None:
    hits = js(root, "memory", "recall", "acme", "where is the billing data?", "--kind", "semantic",
              "--source", "user", "--since", "90d")
    assert {h["text"] for h in hits} == {"Acme moved its billing data to MySQL",
                                         "Acme billing data is in the billing schema"}
    assert all(h["kind"] == "semantic" and h["source"] == "user" and h["created_at"] >= now - 90 * DAY for h in hits)
    assert [h["rank"] for h in hits] == [1, 2]
    assert hits[0]["score"] >= hits[1]["score"]
    assert hits[0]["similarity"] == pytest.approx(hits[0]["score"])


def test_recall_filters(root: Path) -> None:
    def texts(*args: str) -> set[str]:
        return {h["text"] for h in js(root, "memory", "recall", "acme", "Acme billing data", "-k", "10", *args)}

    current = texts()
    assert len(current) == 5
    assert "Acme bills through PostgreSQL" not in current  # superseded
    assert "Acme bills through PostgreSQL" in texts("--include-superseded")
    assert "Acme billing data is probably replicated" not in texts("--min-confidence", "0.9")
    assert texts("--kind", "episodic", "--kind", "procedural") == {"The user asked where the billing data is",
                                                                 "Send Acme invoices by email"}
    assert texts("--source", "agent") == {"Acme billing data is probably replicated"}
    assert texts("--include-superseded", "--until", "100d") == {"Acme bills through PostgreSQL"}
    assert texts("--since", "2h") == set()
    assert len(js(root, "memory", "recall", "acme", "billing", "-k", "2")) == 2
    assert js(root, "memory", "recall", "globex", "billing") [0]["text"] == "Globex bills through Oracle"


def test_recall_table_weighted_rank_and_explain(root: Path) -> None:
    hits = js(root, "memory", "recall", "acme", "billing data", "--rank", "weighted", "--explain")
    assert hits
    assert all(set(h["explain"]) == {"similarity", "recency", "confidence", "score"} for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    lines = ok(root, "memory", "recall", "acme", "billing data", "--explain").stdout.splitlines()
    assert lines[0].split() == ["#", "SCORE", "KIND", "SOURCE", "CONF", "CREATED", "TEXT", "ID", "EXPLAIN"]
    assert "similarity=" in lines[2]
    lines = ok(root, "memory", "recall", "acme", "billing data", "--include-superseded").stdout.splitlines()
    assert lines[0].split()[-3:] == ["ID", "SUPERSEDED", "BY"]
    assert ok(root, "memory", "recall", "acme", "billing", "--since", "1h").stdout.strip() == "no memory matches"


def test_recall_embedder_from_option_environment_or_fingerprint(root: Path) -> None:
    expected = js(root, "memory", "recall", "acme", "invoices by email", "-k", "1")  # from the stored fingerprint
    assert expected[0]["text"] == "Send Acme invoices by email"
    assert js(root, "memory", "recall", "acme", "invoices by email", "-k", "1", "--embedder", "hashing") == expected
    assert js(root, "memory", "recall", "acme", "invoices by email", "-k", "1",
              env={"TENANTVEC_EMBEDDER": f"hashing:{DIM}"}) == expected
    got = js(root, "memory", "recall", "custom", "TPS reports", "--embedder", "test_cli_memory:custom_embedder")
    assert got[0]["text"] == "Initech prints TPS reports"


def test_recall_embedder_errors(root: Path) -> None:
    msg = fails(root, "memory", "recall", "acme", "x", "--embedder", "test_cli_memory:other_embedder")
    assert "'other-model'" in msg
    assert f"'hashing-v1-{DIM}'" in msg
    assert msg.startswith("Error: ")
    assert len(msg.strip().splitlines()) == 1
    msg = fails(root, "memory", "recall", "acme", "x", "--embedder", "hashing:32")
    assert "32" in msg
    assert str(DIM) in msg
    assert len(msg.strip().splitlines()) == 1
    msg = fails(root, "memory", "recall", "custom", "x")
    assert "'custom-model'" in msg
    assert "--embedder" in msg
    msg = fails(root, "memory", "recall", "plain", "x")
    assert "no embedder fingerprint" in msg
    assert "--embedder" in msg
    assert "cannot import" in fails(root, "memory", "recall", "acme", "x", "--embedder", "no_such_module_xyz:f", code=2)
    assert "names no embedder" in fails(root, "memory", "recall", "acme", "x", "--embedder", "bogus", code=2)
    assert "positive integer" in fails(root, "memory", "recall", "acme", "x", "--embedder", "hashing:0", code=2)
    assert "neither an embedder nor a factory" in fails(root, "memory", "recall", "acme", "x", "--embedder",
                                                        "test_cli_memory:DIM", code=2)
    assert "does not exist" in fails(root, "memory", "recall", "nope", "x")


def test_recall_bad_arguments(root: Path) -> None:
    for args in (["--min-confidence", "2"], ["-k", "0"]):
        fails(root, "memory", "recall", "acme", "billing", *args, code=2)
    assert "kinds must be one of episodic, semantic, procedural; got 'fact'" in fails(
        root, "memory", "recall", "acme", "billing", "--kind", "semantic", "--kind", "fact")
    assert "got 'me'" in fails(root, "memory", "recall", "acme", "billing", "--source", "me")
    assert "got 'best'" in fails(root, "memory", "recall", "acme", "billing", "--rank", "best")
    assert "empty" in fails(root, "memory", "recall", "acme", "  ")


# ---------------------------------------------------------------------------- WHEN
@pytest.mark.parametrize("text", ["yesterday", "90 days", "2025-13-45", "nan", "inf", "-5d", "12x", ""])
def test_bad_when_values_are_refused(tmp_path: Path, text: str) -> None:  # refused before the store is opened
    out = fails(tmp_path, "audit", "acme", "--since", text, code=2)
    assert "is not a time" in out
    out = fails(tmp_path, "memory", "recall", "acme", "billing", "--until", text, code=2)
    assert "is not a time" in out


def test_when_values(now: float) -> None:
    assert WHEN.convert("1700000000", None, None) == 1700000000.0
    assert WHEN.convert("1700000000.5", None, None) == 1700000000.5
    assert WHEN.convert("2025-01-31", None, None) == datetime(2025, 1, 31).timestamp()
    assert WHEN.convert("2025-01-31T09:30", None, None) == datetime(2025, 1, 31, 9, 30).timestamp()
    assert WHEN.convert("2025-01-31T09:30:00+00:00", None, None) == 1738315800.0
    assert WHEN.convert("2025-01-31T09:30:00Z", None, None) == 1738315800.0
    for text, seconds in (("90d", 90 * DAY), ("12h", 12 * HOUR), ("30m", 1800), ("45s", 45), ("2w", 14 * DAY),
                          ("1.5h", 5400)):
        assert WHEN.convert(text, None, None) == pytest.approx(now - seconds, abs=60)
    with pytest.raises(click.BadParameter):
        WHEN.convert("last tuesday", None, None)


# ---------------------------------------------------------------------------- memory sessions
def test_sessions(root: Path, now: float) -> None:
    rows = js(root, "memory", "sessions", "acme")
    assert [r["id"] for r in rows] == ["s-done", "s-live"]
    done, live = rows
    assert (done["staged"], done["rounds"], done["expires_at"]) == (0, 1, None)
    assert (live["staged"], live["rounds"]) == (2, 0)
    assert live["created_at"] == pytest.approx(now - 60)
    assert live["expires_at"] == pytest.approx(now - 60 + HOUR)
    table = ok(root, "memory", "sessions", "acme").stdout.splitlines()
    assert table[0].split() == ["SESSION", "CREATED", "EXPIRES", "STAGED", "NOTES", "ROUNDS"]
    assert table[2].split()[0] == "s-done"
    assert table[2].split()[3] == "-"
    assert js(root, "memory", "sessions", "plain") == []
    assert ok(root, "memory", "sessions", "plain").stdout.strip() == "tenant 'plain' has no live session"


# ---------------------------------------------------------------------------- audit
def test_audit(root: Path, now: float) -> None:
    entries = js(root, "audit", "acme")
    ops = [e["op"] for e in entries]
    assert ops.count("remember") == 4
    assert "supersede" in ops
    assert "consolidate" in ops
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    first = next(e for e in entries if e["op"] == "remember")
    assert len(first["ids"]) == 1
    assert first["counts"] == {"added": 1}
    assert len(first["hash"]) == 64
    supersede = next(e for e in entries if e["op"] == "supersede")
    assert supersede["reason"] == "migration"
    assert len(supersede["ids"]) == 2
    recent = js(root, "audit", "acme", "--since", "30d", "--op", "remember")
    assert [e["op"] for e in recent] == ["remember"] * 3
    assert all(e["time"] >= now - 30 * DAY for e in recent)
    old = js(root, "audit", "acme", "--until", "100d")
    assert [(e["op"], e["time"]) for e in old] == [("remember", pytest.approx(now - 200 * DAY))]
    assert [e["seq"] for e in js(root, "audit", "acme", "--limit", "2")] == [e["seq"] for e in entries[:2]]
    assert js(root, "audit", "acme", "--op", "forget") == []
    both = js(root, "audit", "acme", "--op", "supersede", "--op", "consolidate")
    assert sorted(e["op"] for e in both) == ["consolidate", "supersede"]
    table = ok(root, "audit", "acme", "--op", "supersede").stdout.splitlines()
    assert table[0].split() == ["SEQ", "TIME", "OP", "ACTOR", "SESSION", "IDS", "COUNTS", "REASON"]
    assert table[2].split()[3:] == ["supersede", "app", "-", "2", "-", "migration"]
    assert ok(root, "audit", "acme", "--op", "forget").stdout.strip() == "no audit entry matches"
    assert "does not exist" in fails(root, "audit", "nope")


# ---------------------------------------------------------------------------- offboard
def test_offboard_refuses_without_yes(root: Path) -> None:
    before = js(root, "audit", "acme")
    out = fails(root, "offboard", "acme", "--reason", "contract ended", code=2)
    assert "refusing to offboard tenant 'acme' without --yes" in out
    assert tenant_path(root, "acme").is_dir()
    assert any(r["tenant"] == "acme" for r in js(root, "ls"))
    assert js(root, "audit", "acme") == before  # nothing written, not even an audit entry
    assert not (root / ERASURE_LOG).exists()
    assert "--reason" in fails(root, "offboard", "acme", "--yes", code=2)
    assert "does not exist" in fails(root, "offboard", "nope", "--reason", "x", "--yes")


def test_offboard_erases_and_logs(root: Path, tmp_path: Path) -> None:
    tenant_dir = tenant_path(root, "acme")
    assert tenant_dir.is_dir()
    export = tmp_path / "export.tvx"
    report = js(root, "offboard", "acme", "--reason", "contract ended", "--export", str(export), "--yes")
    assert report["tenant_digest"] == hashlib.sha256(b"acme").hexdigest()
    assert report["reason"] == "contract ended"
    assert report["bytes_removed"] > 0
    assert report["files_removed"] > 0
    assert report["exported_to"] == str(export)
    assert export.stat().st_size > 0
    assert not tenant_dir.exists()
    assert "acme" not in [r["tenant"] for r in js(root, "ls")]
    logged = [json.loads(line) for line in (root / ERASURE_LOG).read_text().splitlines()]
    assert logged == [{k: report[k] for k in logged[0]}]
    assert "acme" not in (root / ERASURE_LOG).read_text()
    text = ok(root, "offboard", "globex", "--reason", "left", "--yes").stdout
    assert "tenant_digest" in text
    assert hashlib.sha256(b"globex").hexdigest() in text
    with tenantvec.Store(root, readonly=True) as store:
        assert store.tenants() == ["custom", "plain"]


# ---------------------------------------------------------------------------- a live writer
def test_read_commands_work_while_this_process_holds_the_store(root: Path) -> None:
    with Memory(root, embedder=HashingEmbedder(DIM), durability="process") as mem:  # holds the writer lock
        mem.tenant("globex").remember("Globex renewed its contract", kind="episodic", source="user")
        # LMDB allows one environment per file per process: read the tenants this Store has not opened
        assert [s["id"] for s in js(root, "memory", "sessions", "acme")] == ["s-done", "s-live"]
        assert js(root, "memory", "recall", "acme", "invoices by email", "-k", "1")[0]["kind"] == "procedural"
        assert next(r for r in js(root, "ls") if r["tenant"] == "acme")["sessions"] == 2
        assert js(root, "info", "acme")["memories"]["semantic"] == 3
        assert js(root, "audit", "acme", "--op", "consolidate")[0]["session"] == "s-done"
        out = fails(root, "offboard", "acme", "--reason", "x", "--yes")
        assert "locked" in out
        assert "LOCK" in out
        assert tenant_path(root, "acme").is_dir()


WRITER = r"""
import sys
from tenantvec.embedders import HashingEmbedder
from tenantvec.memory import Memory
with Memory(sys.argv[1], embedder=HashingEmbedder(int(sys.argv[2])), durability="process") as mem:
    acme = mem.tenant("acme")
    acme.remember("Acme renewed its contract", kind="episodic", source="user")
    acme.session("s-new", ttl=3600).note("a fresh note")  # in the working-memory journal, not in LMDB
    print("ready", flush=True)
    sys.stdin.readline()
"""


def test_read_commands_see_another_process_writing(root: Path, subprocess_env: dict[str, str]) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(DIM)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=subprocess_env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        sessions = {s["id"]: s for s in js(root, "memory", "sessions", "acme")}
        assert set(sessions) == {"s-done", "s-live", "s-new"}
        assert sessions["s-new"]["staged"] == 1
        hit = js(root, "memory", "recall", "acme", "renewed its contract", "-k", "1")[0]
        assert hit["text"] == "Acme renewed its contract"
        assert next(r for r in js(root, "ls") if r["tenant"] == "acme")["memories"]["episodic"] == 2
        assert js(root, "info", "acme")["sessions"] == 3
        assert js(root, "audit", "acme")[-1]["op"] == "remember"
        out = fails(root, "offboard", "acme", "--reason", "x", "--yes")
        assert f"pid {proc.pid}" in out
    finally:
        proc.communicate("quit\n", timeout=60)
    assert proc.returncode == 0


# ---------------------------------------------------------------------------- docs
def test_memory_commands_have_help_and_are_documented() -> None:
    docs = _cli_docs()
    memory = main.commands["memory"]
    assert isinstance(memory, click.Group)
    commands = {f"memory {n}": c for n, c in memory.commands.items()}
    commands |= {n: main.commands[n] for n in ("audit", "offboard")}
    assert set(commands) == {"memory recall", "memory sessions", "audit", "offboard"}
    for name, cmd in commands.items():
        assert len((cmd.help or "").strip()) > 20, name
        assert all(p.help for p in cmd.params if isinstance(p, click.Option)), name
        assert any(p.name == "as_json" for p in cmd.params), name
        assert f"tenantvec {name}" in docs, name
        r = CliRunner().invoke(main, [*name.split(), "--help"])
        assert r.exit_code == 0
        assert cmd.help.split()[0] in r.stdout
    assert "TENANTVEC_EMBEDDER" in docs
    assert "--embedder" in docs
