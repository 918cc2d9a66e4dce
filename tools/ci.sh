#!/usr/bin/env bash
# Every check CI runs, in order, with the repository's .venv (see the README's quick start):
# lint (ruff), types (mypy), import contracts (import-linter), then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/mypy tenantvec
.venv/bin/lint-imports
.venv/bin/python -m pytest -q
