"""Payload indexes (filled in by the filters work): lookups answer None, meaning scan."""

from __future__ import annotations

from typing import Any

import lmdb
import numpy as np

from ._filters import Node


def add_entries(txn: lmdb.Transaction, db: Any, lb: bytes, rec: list) -> None:
    return None


def delete_entries(txn: lmdb.Transaction, db: Any, lb: bytes, rec: list) -> None:
    return None


def lookup(txn: lmdb.Transaction, db: Any, node: Node, total: int) -> np.ndarray | None:
    return None
