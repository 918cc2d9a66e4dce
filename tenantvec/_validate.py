"""Validation of user payloads: vectors, documents, metadata, ``k``.

Everything that crosses into storage is validated here first, so that a rejected call
raises before any transaction begins. (How records are encoded on disk is the engine's
business: :mod:`tenantvec._engine.layout`.)
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np

from .errors import DimensionMismatch, InvalidArgument, InvalidVector

RESERVED_FIELDS = frozenset({"created_at", "updated_at"})
#: Most levels of lists and dicts inside one metadata value (``{"a": [[1]]}`` has 2);
#: deeper values, and self-referencing ones, raise :class:`InvalidArgument`.
MAX_METADATA_DEPTH = 32
#: Largest document (UTF-8 bytes) and largest metadata dict (msgpack bytes) of one
#: record, so a record packs to well under 64 MiB plus its id.
MAX_DOCUMENT_BYTES = 32 * 1024**2
MAX_METADATA_BYTES = 32 * 1024**2

_short = reprlib.Repr()  # a bounded repr, safe for deep and self-referencing values
_short.maxlevel, _short.maxstring, _short.maxother = 3, 40, 40

def check_vectors(
    vectors: object, dim: int, metric: str, tenant: str, *, what: str = "vector", copy: bool = True
) -> tuple[np.ndarray, bool]:
    """Validate vectors and return them as a C-contiguous ``(n, dim)`` float32 array.

    A 1-D input is one vector; the returned flag says whether it was 1-D. With ``copy``
    the result never shares memory with the caller's array.

    :raises InvalidVector: wrong shape or type, NaN/inf, a zero vector under cosine.
    :raises DimensionMismatch: a vector of the wrong dimension.
    """
    if (
        type(vectors) is np.ndarray
        and vectors.ndim == 1
        and vectors.dtype == np.float32
        and vectors.shape[0] == dim
        and not copy
        and vectors.flags.c_contiguous
    ):
        # Fast path for the common query: one float32 vector. A squared norm is finite
        # only if every component is, and zero only for a zero (or underflowing) vector.
        sq = float(vectors.dot(vectors))  # ndarray.dot: far cheaper than @ when caches are cold
        if math.isfinite(sq) and (sq != 0.0 or metric != "cosine"):
            return vectors[None, :], True
    if isinstance(vectors, (str, bytes, dict)) or vectors is None:
        raise InvalidVector(f"tenant {tenant!r}: {what}s must be an array of numbers, got {type(vectors).__name__}")
    try:
        arr = np.asarray(vectors)
    except ValueError as exc:  # ragged nested lists
        raise InvalidVector(f"tenant {tenant!r}: {what}s are ragged or malformed ({exc})") from None
    if arr.dtype.kind not in "iuf":  # object, bool, str, complex, ...
        got = "booleans" if arr.dtype.kind == "b" else f"dtype {arr.dtype}"
        raise InvalidVector(f"tenant {tenant!r}: {what}s must be numeric, got {got}")
    single = arr.ndim == 1
    if single:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InvalidVector(f"tenant {tenant!r}: {what}s must be 1-D or 2-D, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InvalidVector(f"tenant {tenant!r}: no {what}s given (shape {arr.shape})")
    if arr.shape[1] != dim:
        raise DimensionMismatch(
            f"tenant {tenant!r}: {what} 0 has dimension {arr.shape[1]}, expected {dim}"
        )
    if arr.dtype == np.float32:
        out = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.ascontiguousarray(arr, dtype=np.float32)
    # One pass: a squared norm is finite only if every component is (NaN and inf
    # propagate), and zero only for a zero vector (or one too small for float32).
    sq = np.einsum("ij,ij->i", out, out)
    if not np.isfinite(sq).all():
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            raise InvalidVector(
                f"tenant {tenant!r}: {what} {int(np.argmax(bad))} contains NaN or infinity (or overflows float32)"
            )
        raise InvalidVector(
            f"tenant {tenant!r}: {what} {int(np.argmin(np.isfinite(sq)))} is too large: "
            "its squared norm overflows float32 (scale it down)"
        )
    if metric == "cosine" and not sq.all():
        i = int(np.argmin(sq != 0))
        why = "is all zeros, which has" if not out[i].any() else "is too small to normalise in float32 and has"
        raise InvalidVector(f"tenant {tenant!r}: {what} {i} {why} no cosine direction")
    if copy and np.shares_memory(out, arr):
        out = out.copy()  # never alias the caller's buffer into the index
    return out, single


def check_documents(documents: object, n: int, tenant: str) -> list[str | None]:
    """Validate ``documents`` (``None`` or a list of ``str | None`` of length ``n``; each
    valid Unicode of at most :data:`MAX_DOCUMENT_BYTES` in UTF-8)."""
    if documents is None:
        return [None] * n
    if isinstance(documents, str) or not isinstance(documents, Sequence):
        raise InvalidArgument(
            f"tenant {tenant!r}: documents must be a list of str, got {type(documents).__name__} {documents!r:.80}"
        )
    if len(documents) != n:
        raise InvalidArgument(f"tenant {tenant!r}: got {len(documents)} documents for {n} vectors")
    for i, d in enumerate(documents):
        if d is None:
            continue
        if not isinstance(d, str):
            raise InvalidArgument(f"tenant {tenant!r}: document {i} must be a str or None, got {type(d).__name__} {d!r:.80}")
        try:
            size = len(d) if d.isascii() else len(d.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise InvalidArgument(
                f"tenant {tenant!r}: document {i} is not valid Unicode ({exc.reason} at position {exc.start}): {d!r:.80}"
            ) from None
        if size > MAX_DOCUMENT_BYTES:
            raise InvalidArgument(
                f"tenant {tenant!r}: document {i} has {size} bytes in UTF-8, at most {MAX_DOCUMENT_BYTES} are allowed: {d!r:.80}"
            )
    return list(documents)


def _too_deep(v: object, depth: int) -> bool:
    """Whether lists and dicts nest more than :data:`MAX_METADATA_DEPTH` levels inside ``v``
    (``depth`` levels already surround it)."""
    if isinstance(v, dict):
        items: Any = v.values()
    elif isinstance(v, (list, tuple)):
        items = v
    else:
        return False
    if depth >= MAX_METADATA_DEPTH:
        return True
    return any(_too_deep(x, depth + 1) for x in items)


def check_metadata(metadata: object, n: int, tenant: str) -> list[dict[str, Any]]:
    """Validate ``metadata``: ``None``, one dict (for a single vector) or a list of dicts.

    Keys must be non-empty strings, not ``created_at``/``updated_at`` (system fields),
    and every value must be something msgpack can hold (strings valid Unicode), nested at
    most :data:`MAX_METADATA_DEPTH` levels; a dict packs to at most :data:`MAX_METADATA_BYTES`.
    """
    if metadata is None:
        return [{} for _ in range(n)]
    if isinstance(metadata, dict) and n == 1:
        metadata = [metadata]
    if isinstance(metadata, (str, dict)) or not isinstance(metadata, Sequence):
        raise InvalidArgument(
            f"tenant {tenant!r}: metadata must be a list of dicts, got {type(metadata).__name__} {metadata!r:.80}"
        )
    if len(metadata) != n:
        raise InvalidArgument(f"tenant {tenant!r}: got {len(metadata)} metadata dicts for {n} vectors")
    out: list[dict[str, Any]] = []
    for i, m in enumerate(metadata):
        if m is None:
            out.append({})
            continue
        if not isinstance(m, dict):
            raise InvalidArgument(f"tenant {tenant!r}: metadata {i} must be a dict, got {type(m).__name__} {m!r:.80}")
        for key in m:
            if not isinstance(key, str) or not key:
                raise InvalidArgument(f"tenant {tenant!r}: metadata {i} has a key that is not a non-empty str: {key!r}")
            if key in RESERVED_FIELDS:
                raise InvalidArgument(
                    f"tenant {tenant!r}: metadata {i} uses reserved system field {key!r}"
                )
            if key.startswith("$"):
                raise InvalidArgument(f"tenant {tenant!r}: metadata {i} key {key!r} may not start with '$'")
            if isinstance(m[key], (dict, list, tuple)) and _too_deep(m[key], 0):
                raise InvalidArgument(
                    f"tenant {tenant!r}: metadata {i} key {key!r} nests lists and dicts more than "
                    f"{MAX_METADATA_DEPTH} levels deep (or refers to itself): {_short.repr(m[key])}"
                )
        try:
            size = len(msgpack.packb(m, use_bin_type=True))  # as the engine stores it
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidArgument(f"tenant {tenant!r}: metadata {i} cannot be stored ({exc}): {m!r:.120}") from None
        if size > MAX_METADATA_BYTES:
            raise InvalidArgument(
                f"tenant {tenant!r}: metadata {i} packs to {size} bytes, at most {MAX_METADATA_BYTES} are allowed: "
                f"{_short.repr(m)}"
            )
        out.append(dict(m))
    return out


def check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidArgument(f"k must be a positive integer, got {k!r}")
    return int(k)


def check_page(limit: object, offset: object, tenant: str) -> tuple[int, int | None]:
    """A page of ``limit`` (None: all) items after the first ``offset``, as ``islice``
    bounds ``(start, stop)``.

    :raises InvalidArgument: ``limit`` is not a non-negative integer or None, or ``offset``
        not a non-negative integer.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidArgument(f"tenant {tenant!r}: limit must be a non-negative integer or None, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidArgument(f"tenant {tenant!r}: offset must be a non-negative integer, got {offset!r}")
    return offset, None if limit is None else offset + limit
