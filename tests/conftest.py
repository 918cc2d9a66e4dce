"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tenantvec

REPO_ROOT = Path(tenantvec.__file__).resolve().parent.parent


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for a ``python`` subprocess that must import this checkout's tenantvec."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.pop("PYTHONSAFEPATH", None)
    return env


# Hypothesis keeps its example database and caches in ./.hypothesis by default; keep the
# working tree clean by putting them in the temp directory (set the variable to override).
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(os.environ.get("TMPDIR", "/tmp"), "tenantvec-hypothesis")
)

# In CI (CI=true) Hypothesis draws the same examples every run, so a landing never
# depends on luck; locally every run explores new examples.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
