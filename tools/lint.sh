#!/usr/bin/env bash
# The static checks CI runs before the test suite, with the repository's .venv (see the
# README's quick start): lint (ruff), types (mypy), import contracts (import-linter).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/mypy tenantvec
.venv/bin/lint-imports
