"""Tenant ids, record ids and the tenant-id -> directory-name mapping.

The directory name is an injective, stable, path-safe function of the tenant id that is
also distinct on case-insensitive filesystems: lowercase ASCII letters, digits and ``-``
stand for themselves; every other character is written as ``_`` followed by the lowercase
hex of its UTF-8 bytes (``"Acme"`` -> ``"_41cme"``). The output only holds ``[a-z0-9_-]``,
so case folding cannot merge two names, and ``.``/``..``/hidden names cannot occur.
Names whose escaped form would exceed :data:`MAX_DIR_NAME` bytes use ``~`` plus a
SHA-256 of the id instead; those directories carry a ``tenant.id`` file for listing.
"""

from __future__ import annotations

import hashlib
import re
import uuid

from .errors import InvalidArgument, InvalidTenantId

MAX_TENANT_ID = 128
MAX_RECORD_ID_BYTES = 511  # LMDB's key size limit
MAX_DIR_NAME = 200
HASHED_ID_FILE = "tenant.id"

_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_ESCAPED_RE = re.compile(r"^(?:[a-z0-9-]|_[0-9a-f]{2})+$")


def check_tenant_id(tenant_id: object) -> str:
    """Return ``tenant_id`` if it is a valid tenant id.

    :raises InvalidTenantId: naming the id and the rule it breaks.
    """
    if not isinstance(tenant_id, str):
        raise InvalidTenantId(f"tenant id must be a str, got {type(tenant_id).__name__} {tenant_id!r}")
    why = None
    if not tenant_id:
        why = "is empty"
    elif len(tenant_id) > MAX_TENANT_ID:
        why = f"has {len(tenant_id)} characters, at most {MAX_TENANT_ID} are allowed"
    elif tenant_id in (".", ".."):
        why = "is a path component"
    elif "/" in tenant_id or "\\" in tenant_id:
        why = "contains a path separator"
    elif any(ord(c) < 32 or 127 <= ord(c) < 160 for c in tenant_id):
        why = "contains a control character"
    elif tenant_id != tenant_id.strip():
        why = "has leading or trailing whitespace (fix the caller's tenant resolution)"
    else:
        try:
            tenant_id.encode("utf-8")
        except UnicodeEncodeError:
            why = "is not valid Unicode (lone surrogate)"
    if why:
        raise InvalidTenantId(f"tenant id {tenant_id!r} {why}")
    return tenant_id


def tenant_dir_name(tenant_id: str) -> str:
    """The directory name of a (valid) tenant id; see the module docstring."""
    parts = []
    for ch in tenant_id:
        if ch in _PLAIN:
            parts.append(ch)
        else:
            parts.extend(f"_{b:02x}" for b in ch.encode("utf-8"))
    name = "".join(parts)
    if len(name) > MAX_DIR_NAME:
        return "~" + hashlib.sha256(tenant_id.encode("utf-8")).hexdigest()
    return name


def tenant_id_from_dir_name(name: str) -> str | None:
    """Invert :func:`tenant_dir_name` for escaped names; ``None`` for hashed or foreign names."""
    if not _ESCAPED_RE.match(name):
        return None
    out = bytearray()
    i = 0
    while i < len(name):
        if name[i] == "_":
            out.append(int(name[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(name[i]))
            i += 1
    try:
        tid = out.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return tid if tenant_dir_name(tid) == name else None


def new_record_id() -> str:
    """A fresh record id (uuid4 hex)."""
    return uuid.uuid4().hex


def check_record_ids(ids: object, n: int | None, tenant: str, *, unique: bool) -> list[str]:
    """Validate a list of record ids (strings, non-empty, bounded, unique in the batch).

    :raises InvalidArgument: for a non-list, a non-string or empty id, or a length mismatch.
    :raises DuplicateId: for an id given twice in one batch when ``unique``.
    """
    from .errors import DuplicateId

    if isinstance(ids, str) or not isinstance(ids, (list, tuple)):
        raise InvalidArgument(
            f"tenant {tenant!r}: ids must be a list of str, got {type(ids).__name__} {ids!r:.80}"
        )
    if n is not None and len(ids) != n:
        raise InvalidArgument(f"tenant {tenant!r}: got {len(ids)} ids for {n} vectors")
    for i, rid in enumerate(ids):
        if not isinstance(rid, str):
            raise InvalidArgument(
                f"tenant {tenant!r}: id {i} must be a str, got {type(rid).__name__} {rid!r:.80}"
            )
        try:
            size = len(rid.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidArgument(f"tenant {tenant!r}: id {i} is not valid Unicode: {rid!r}") from None
        if not 1 <= size <= MAX_RECORD_ID_BYTES:
            raise InvalidArgument(
                f"tenant {tenant!r}: id {i} must have 1 to {MAX_RECORD_ID_BYTES} bytes in UTF-8, "
                f"got {size}: {rid!r:.80}"
            )
    ids = list(ids)
    if unique and len(set(ids)) != len(ids):
        seen: set[str] = set()
        for rid in ids:
            if rid in seen:
                raise DuplicateId(f"tenant {tenant!r}: id {rid!r} appears twice in one call")
            seen.add(rid)
    return ids
