"""Metadata keys as the integrations store them: any framework metadata dict round-trips
although tenantvec reserves some keys (``created_at``, ``updated_at``, ``""`` and names
starting with ``$``). Such a key, and any key already starting with :data:`ESCAPE`, is
stored with an :data:`ESCAPE` prefix, which reading strips."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidArgument

#: Prefix of a stored metadata key that had to be escaped.
ESCAPE = "~"
_RESERVED_KEYS = frozenset({"", "created_at", "updated_at"})


def encode_key(key: str) -> str:
    """The stored name of the framework's metadata key ``key``."""
    return ESCAPE + key if key in _RESERVED_KEYS or key.startswith(("$", ESCAPE)) else key


def decode_key(key: str) -> str:
    """The framework's metadata key stored as ``key`` (inverse of :func:`encode_key`)."""
    return key[len(ESCAPE):] if key.startswith(ESCAPE) else key


def encode_metadata(metadata: object, i: int, what: str = "metadata") -> dict[str, Any]:
    """Item ``i``'s metadata as stored (top-level keys escaped); None is ``{}``.

    :raises InvalidArgument: not a dict, or a key that is not a str.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidArgument(f"{what} {i} must be a dict, got {type(metadata).__name__} {metadata!r:.80}")
    for key in metadata:
        if not isinstance(key, str):
            raise InvalidArgument(f"{what} {i} has a key that is not a str: {key!r}")
    return {encode_key(key): value for key, value in metadata.items()}


def decode_metadata(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Stored metadata as the framework wrote it (inverse of :func:`encode_metadata`)."""
    return {decode_key(key): value for key, value in stored.items()}
