"""LangGraph's own store test suite against TenantvecStore, in bound and routed mode.

``tools/upstream_suites.py`` downloads the pinned langgraph-checkpoint sdist, runs its
``tests/test_store.py`` with ``TenantvecStore`` in place of ``InMemoryStore`` and reports
the counts; every case must pass, none skipped or deselected.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("langgraph.store.base", reason="needs the [langgraph] extra (langgraph-checkpoint)")

REPO = Path(__file__).resolve().parent.parent
#: Cases in tests/test_store.py of langgraph-checkpoint 4.3.2 (tools/upstream_suites.py pins it).
EXPECTED_CASES = 117


@pytest.mark.slow
def test_langgraph_store_suite_passes_in_both_modes(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    out = tmp_path / "counts.json"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "upstream_suites.py"), "langgraph", "--json", str(out)],
                          cwd=REPO, env=subprocess_env, capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-8000:]
    counts = json.loads(out.read_text(encoding="utf-8"))["langgraph"]
    assert sorted(counts) == ["bound", "routed"]
    for mode, n in counts.items():
        assert n["mode"] == mode
        assert n["collected"] == n["total"] == n["passed"] == EXPECTED_CASES, (mode, n)
        assert n["failed"] == n["skipped"] == n["deselected"] == 0, (mode, n)
        assert n["stores"] > 50, (mode, n)  # the suite ran on TenantvecStore, not InMemoryStore
        assert n["modules_patched"] == EXPECTED_CASES, (mode, n)
