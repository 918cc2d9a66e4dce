"""The ``tenantvec`` vector-store provider for Mem0 (``pip install 'tenantvec[mem0]'``).

Importing this module registers the provider in Mem0's own registries (:func:`register`),
without forking Mem0; then ``"provider": "tenantvec"`` works in any Mem0 config:

>>> from mem0 import Memory                                          # doctest: +SKIP
>>> from tenantvec.embedders import HashingEmbedder
>>> from tenantvec.integrations.mem0 import embedder_config
>>> m = Memory.from_config({
...     "vector_store": {"provider": "tenantvec",
...                      "config": {"path": "/var/lib/agent-memory/mem0", "embedding_model_dims": 384}},
...     "embedder": embedder_config(HashingEmbedder(dim=384)),      # or any Mem0 embedder
...     "llm": {"provider": "openai", "config": {"model": "gpt-4.1-mini"}},
... })
>>> m.add("Prefers invoices by email", user_id="alice", infer=False)
>>> m.search("how does alice want invoices?", filters={"user_id": "alice"})

**One tenant per Mem0 scope.** ``path`` is a tenantvec store; each collection
(``collection_name``; Mem0 adds ``<name>_entities`` for its entity links) keeps every scope
in its own tenant, so its own shard: a record goes to the tenant of the first of
``scope_fields`` (default ``user_id``, then ``agent_id``, then ``run_id``) its payload
names, ``"<collection>:<field>:<value>"`` (``"mem0:user_id:alice"``; ``%``, ``/``, ``\\``,
whitespace and control characters of the value are %-escaped), and a record naming none to
``"<collection>:<unscoped_tenant>"`` (``"mem0:_unscoped"``). A search or a list goes to the
one tenant its filters' top-level scope fields name in the same way: a record stored with
``user_id`` and ``agent_id`` is found by filters naming its ``user_id`` (and narrowed by
``agent_id``), not by filters naming only its ``agent_id``. A scope field in filters must
name one id (``{"user_id": "alice"}``), never ``"*"`` or a list.

**Ids.** Mem0 reads, updates and deletes a memory by id alone. Each collection has an id
directory, the tenant named after the collection (``"mem0"``), mapping every id to the one
tenant holding it: an insert claims its ids there first (an id held by another tenant is
refused with :class:`~tenantvec.errors.TenantMismatch`; re-inserting into the same tenant
replaces the record), a delete removes the record and then its claim, and ``get``,
``update`` and ``delete`` touch only the tenant the directory names. So an id never exists
in two tenants, and a crash between the two steps leaves at most a claim without a record,
which reads as "not found". The provider's writes to a collection are serialised in the
process (tenantvec has one writer process per store).

**Bound mode.** ``"bind": {"user_id": "alice"}`` confines a provider, and so a ``Memory``,
to that scope's tenant: searches and lists read only it (filters naming another scope
raise ``TenantMismatch``), inserts for another scope raise ``TenantMismatch``, an id of
another tenant reads as absent (``get`` returns None; ``update``/``delete`` raise
:class:`~tenantvec.errors.MemoryNotFound`, so Mem0 says "not found"), and
``reset``/``delete_col`` clear only that tenant. Build one bound ``Memory`` per user to
make get/update/delete by id unable to reach other users.

**Filters.** Mem0's operators become tenantvec ``where`` filters: a scalar is equality, a
list means ``in``, ``"*"`` means the field exists, ``eq ne gt gte lt lte in nin`` (also
spelled ``$eq``...) map to their ``$`` operators, ``AND``/``OR``/``NOT`` (and Mem0's
rewritten ``$and``/``$or``/``$not``) to ``$and``/``$or`` and a ``$not`` around each listed
filter (``NOT: [a, b]`` matches records matching neither), several keys of one dict are
ANDed. ``contains`` (substring of a string field, or an element of a list field) and
``icontains`` (the same, case-insensitive) have no ``where`` operator: they are
**post-filters** — the store searches with a filter that leaves them out (a superset) and
the provider keeps the records that match them, asking for more candidates until it has
``top_k`` or the superset is exhausted, so results stay the true top-k. Semantics are
tenantvec's (``True`` is not ``1``; a record without the field matches only ``ne``,
``nin`` and ``NOT``).

**Payloads** round-trip exactly. ``created_at``/``updated_at`` (which Mem0 keeps in the
payload as ISO strings), ``""`` and keys starting with ``$`` or ``~`` are stored under
``~<key>`` (tenantvec reserves them), and filters on them are rewritten the same way;
``payload["data"]``, the memory text, is also the record's document.

**Scores** are similarities in [0, 1], as Mem0 asks: ``max(0, 1 - distance)`` for cosine,
the dot product clamped to [0, 1] for ``ip``, ``1 / (1 + distance)`` for ``l2``.

Mem0 builds its providers itself, several per ``Memory`` (entity links, telemetry, again
after ``reset``); they share one open :class:`tenantvec.Store` per ``path`` in the
process, closed when the last of them is closed or collected (:meth:`TenantvecVectorStore.close`).
Keyword (BM25) search is not provided, so Mem0 ranks by similarity alone.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import types
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from mem0.embeddings.base import EmbeddingBase  # type: ignore[import-untyped]
from mem0.embeddings.configs import EmbedderConfig  # type: ignore[import-untyped]
from mem0.utils.factory import EmbedderFactory, VectorStoreFactory  # type: ignore[import-untyped]
from mem0.vector_stores.base import VectorStoreBase  # type: ignore[import-untyped]
from mem0.vector_stores.configs import VectorStoreConfig  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import override

import tenantvec
from tenantvec.embedders import Embedder
from tenantvec.errors import (
    DimensionMismatch,
    DuplicateId,
    EmbedderError,
    InvalidArgument,
    InvalidFilter,
    InvalidVector,
    MemoryNotFound,
    TenantMismatch,
    TenantNotFound,
    TenantVecError,
)
from tenantvec.integrations._keys import decode_metadata, encode_key, encode_metadata

__all__ = [
    "PROVIDER",
    "OutputData",
    "TenantvecConfig",
    "TenantvecEmbedding",
    "TenantvecVectorStore",
    "embedder_config",
    "register",
]

logger = logging.getLogger("tenantvec")

#: The provider name, for ``vector_store.provider`` (and ``embedder.provider``).
PROVIDER = "tenantvec"
#: The module Mem0's ``VectorStoreConfig`` imports a provider's config class from.
_CONFIG_MODULE = f"mem0.configs.vector_stores.{PROVIDER}"
_DEFAULT_SCOPES = ("user_id", "agent_id", "run_id")
_MAX_FILTER_DEPTH = 64
#: The always-true and always-false ``where`` filters.
_TRUE: dict[str, Any] = {}
_FALSE: dict[str, Any] = {"$not": {}}
_FIELD_OPS = {"eq": "$eq", "ne": "$ne", "gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte", "in": "$in",
              "nin": "$nin", "exists": "$exists"}
_SUBSTRING_OPS = {"contains": False, "icontains": True}  # -> case-insensitive?
_LOGIC_OPS = {"AND": "$and", "$and": "$and", "OR": "$or", "$or": "$or", "NOT": "$not", "$not": "$not"}


# -- registration ------------------------------------------------------------------------
def register() -> None:
    """Register the ``tenantvec`` vector-store provider (with :class:`TenantvecConfig`) and
    the ``tenantvec`` embedder class in Mem0's factories. Idempotent; importing this module
    calls it.

    Mem0 2.x looks providers up in ``VectorStoreFactory.provider_to_class`` and validates a
    ``vector_store`` config through ``VectorStoreConfig``'s provider table, importing the
    config class from ``mem0.configs.vector_stores.<provider>``: this adds the entries and
    a module of that name holding :class:`TenantvecConfig`.

    :raises TenantVecError: this Mem0 keeps its provider table elsewhere (not a 2.x).
    """
    table = VectorStoreConfig.__private_attributes__.get("_provider_configs")
    if table is None or not isinstance(table.default, dict):
        raise TenantVecError("this mem0 has no VectorStoreConfig._provider_configs table; "
                             "tenantvec.integrations.mem0 supports mem0ai 2.x")
    module = sys.modules.get(_CONFIG_MODULE)
    if module is None:
        module = types.ModuleType(_CONFIG_MODULE, "The tenantvec provider's config (see tenantvec.integrations.mem0).")
        sys.modules[_CONFIG_MODULE] = module
    module.__dict__["TenantvecConfig"] = TenantvecConfig
    table.default[PROVIDER] = "TenantvecConfig"
    VectorStoreFactory.provider_to_class[PROVIDER] = f"{__name__}.TenantvecVectorStore"
    EmbedderFactory.provider_to_class[PROVIDER] = f"{__name__}.TenantvecEmbedding"


def embedder_config(embedder: Embedder) -> EmbedderConfig:
    """Mem0's ``embedder`` config for a tenantvec :class:`~tenantvec.embedders.Embedder`
    (``HashingEmbedder`` for offline tests, ``OnnxEmbedder`` for a local model, ...)::

        Memory.from_config({"embedder": embedder_config(HashingEmbedder(dim=384)), ...})

    Mem0 2.2's ``EmbedderConfig`` accepts only its built-in provider names, so this returns
    the config object already built (``model_construct``); ``Memory.from_config`` keeps it
    as given and Mem0's ``EmbedderFactory`` makes a :class:`TenantvecEmbedding` of it.

    :raises EmbedderError: ``embedder`` is not an ``Embedder``.
    """
    _check_embedder(embedder)
    register()
    return EmbedderConfig.model_construct(provider=PROVIDER, config={"model": embedder, "embedding_dims": embedder.dim})


def _check_embedder(embedder: object) -> None:
    if not isinstance(embedder, Embedder):
        raise EmbedderError(f"expected a tenantvec.embedders.Embedder (name, dim, embed_documents, embed_query), "
                            f"got {type(embedder).__name__}")


class TenantvecEmbedding(EmbeddingBase):
    """A Mem0 embedder over the tenantvec embedder in ``config.model`` (see
    :func:`embedder_config`): searches embed with ``embed_query``, everything else with
    ``embed_documents``.

    :raises EmbedderError: ``config.model`` is not an ``Embedder``.
    :raises DimensionMismatch: ``config.embedding_dims`` differs from the embedder's ``dim``.
    """

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        embedder = self.config.model
        _check_embedder(embedder)
        if self.config.embedding_dims is None:
            self.config.embedding_dims = embedder.dim
        elif self.config.embedding_dims != embedder.dim:
            raise DimensionMismatch(f"embedding_dims={self.config.embedding_dims} but embedder {embedder.name!r} "
                                    f"has dim {embedder.dim}")
        self.embedder: Embedder = embedder

    @override
    def embed(self, text: str, memory_action: str | None = None) -> list[float]:
        """``text``'s vector (a query vector when ``memory_action`` is ``"search"``)."""
        if memory_action == "search":
            return [float(x) for x in self.embedder.embed_query(text)]
        return [float(x) for x in self.embedder.embed_documents([text])[0]]

    @override
    def embed_batch(self, texts: Sequence[str], memory_action: str = "add") -> list[list[float]]:
        """The vectors of ``texts``, in one call to the embedder unless they are queries."""
        if memory_action == "search":
            return [self.embed(text, memory_action) for text in texts]
        return [[float(x) for x in row] for row in self.embedder.embed_documents(list(texts))]


# -- configuration -----------------------------------------------------------------------
def _check_name_part(value: str, what: str) -> str:
    """A piece of a tenant id (collection, field or unscoped tenant name): non-empty, no
    ``:`` (the separator), no whitespace or control characters, no path separators."""
    if not value or any(c == ":" or c in "/\\" or c.isspace() or not c.isprintable() for c in value):
        raise InvalidArgument(f"{what} must be a non-empty name without ':', '/', '\\\\', whitespace or control "
                         f"characters, got {value!r}")
    return value


class TenantvecConfig(BaseModel):
    """The ``vector_store.config`` of the ``tenantvec`` provider (see the module docstring).

    :param path: the tenantvec store's directory (created if missing; Mem0 puts
        ``/tmp/tenantvec`` when the config names none).
    :param collection_name: prefix of this collection's tenant ids.
    :param embedding_model_dims: the vectors' dimension.
    :param metric: ``"cosine"`` (default), ``"ip"`` or ``"l2"``.
    :param scope_fields: payload fields that pick a record's tenant, in order of precedence.
    :param unscoped_tenant: name (after ``"<collection>:"``) of the tenant of records
        naming no scope field.
    :param bind: one ``{scope_field: id}``: confine the provider to that scope's tenant.
    """

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Directory of the tenantvec store")
    collection_name: str = Field("mem0", description="Prefix of the collection's tenant ids")
    embedding_model_dims: int = Field(1536, ge=1, le=65536, description="Dimension of the vectors")
    metric: Literal["cosine", "ip", "l2"] = Field("cosine", description="Distance metric of new tenants")
    scope_fields: list[str] = Field(default_factory=lambda: list(_DEFAULT_SCOPES),
                                    description="Payload fields naming a record's tenant, first match wins")
    unscoped_tenant: str = Field("_unscoped", description="Tenant of records naming no scope field")
    bind: dict[str, str] | None = Field(None, description="{scope_field: id}: confine the provider to that tenant")

    @field_validator("path", mode="before")
    @classmethod
    def _fspath(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("collection_name")
    @classmethod
    def _check_collection(cls, value: str) -> str:
        return _check_name_part(value, "collection_name")

    @field_validator("unscoped_tenant")
    @classmethod
    def _check_unscoped(cls, value: str) -> str:
        return _check_name_part(value, "unscoped_tenant")

    @field_validator("scope_fields")
    @classmethod
    def _check_scopes(cls, value: list[str]) -> list[str]:
        if not value or len(set(value)) != len(value):
            raise InvalidArgument(f"scope_fields must be a non-empty list of distinct field names, got {value!r}")
        for name in value:
            _check_name_part(name, "a scope field")
        return value

    @model_validator(mode="after")
    def _check_bind(self) -> TenantvecConfig:
        if self.bind is not None:
            if len(self.bind) != 1 or next(iter(self.bind)) not in self.scope_fields:
                raise InvalidArgument(f"bind must name one of scope_fields {self.scope_fields} with its id, "
                                 f"e.g. {{'user_id': 'alice'}}; got {self.bind!r}")
            if not next(iter(self.bind.values())):
                raise InvalidArgument(f"bind needs a non-empty id, got {self.bind!r}")
        return self


# -- payloads and filters ----------------------------------------------------------------
def _document(payload: Mapping[str, Any]) -> str | None:
    data = payload.get("data")
    return data if isinstance(data, str) else None


@dataclass(frozen=True, slots=True)
class _Substring:
    """A ``contains``/``icontains`` condition: evaluated by the provider, not the store."""

    index: int
    key: str  # the stored (escaped) field name
    needle: str
    fold: bool  # case-insensitive

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Whether the stored record ``metadata`` satisfies the condition: the field is a
        string holding the needle, or a list with the needle as an element."""
        value = metadata.get(self.key)
        fold: Callable[[str], str] = str.casefold if self.fold else str
        needle = fold(self.needle)
        if isinstance(value, str):
            return needle in fold(value)
        if isinstance(value, list):
            return any(isinstance(item, str) and fold(item) == needle for item in value)
        return False


def _substitute(node: Any, value: Callable[[_Substring, bool], dict[str, Any]], positive: bool = True) -> Any:
    """``node`` (a translated filter) with each substring condition replaced by
    ``value(condition, positive)``; ``positive`` is false under an odd number of ``$not``."""
    if isinstance(node, _Substring):
        return value(node, positive)
    out: dict[str, Any] = {}
    for key, sub in node.items():
        if key in ("$and", "$or"):
            out[key] = [_substitute(s, value, positive) for s in sub]
        elif key == "$not":
            out[key] = _substitute(sub, value, not positive)
        else:
            out[key] = sub
    return out


def _fixed(truth: tuple[bool, ...]) -> Callable[[_Substring, bool], dict[str, Any]]:
    """A :func:`_substitute` value: each substring condition's truth for one record."""
    return lambda cond, _positive: _TRUE if truth[cond.index] else _FALSE


class _FilterPlan:
    """Mem0 ``filters`` translated: ``where`` for the store and, when the filters use
    ``contains``/``icontains``, the substring conditions the provider checks itself.

    :raises InvalidFilter: malformed filters or an unknown operator, naming the path.
    """

    def __init__(self, filters: Mapping[str, Any] | None) -> None:
        self.substrings: list[_Substring] = []
        self.tree: Any = self._filter(filters, "filters", 1) if filters else None
        #: The store's filter: exact without substring conditions, else a superset (each
        #: substring condition relaxed to true, or to false under a ``$not``).
        self.where: dict[str, Any] | None = (
            None if self.tree is None else _substitute(self.tree, lambda _c, positive: _TRUE if positive else _FALSE)
        )

    def refine(self, tenant: tenantvec.Tenant, found: Sequence[Any]) -> list[Any]:
        """The records (hits) of ``found``, which matched :attr:`where` in ``tenant``, that
        match the filters exactly, in order: records are grouped by which substring
        conditions they meet, and the store evaluates the rest of the filter per group."""
        if not self.substrings or not found:
            return list(found)
        groups: dict[tuple[bool, ...], list[str]] = {}
        for rec in found:
            groups.setdefault(tuple(c.matches(rec.metadata) for c in self.substrings), []).append(rec.id)
        keep: set[str] = set()
        for truth, ids in groups.items():
            exact = _substitute(self.tree, _fixed(truth))
            if exact == self.where:  # these records matched it already
                keep.update(ids)
            else:
                keep.update(rec.id for rec in tenant.get(ids=ids, where=exact))
        return [rec for rec in found if rec.id in keep]

    def _filter(self, filters: object, path: str, depth: int) -> Any:
        if not isinstance(filters, Mapping):
            raise InvalidFilter(f"{path}: a filter must be a dict, got {type(filters).__name__} {filters!r:.80}")
        if depth > _MAX_FILTER_DEPTH:
            raise InvalidFilter(f"{path}: filters nest deeper than {_MAX_FILTER_DEPTH} levels (or refer to themselves)")
        parts: list[Any] = []
        for key, value in filters.items():
            kpath = f"{path}.{key}"
            logic = _LOGIC_OPS.get(key) if isinstance(key, str) else None
            if logic is not None:
                subs = [value] if logic == "$not" and isinstance(value, Mapping) else value
                if not isinstance(subs, list) or not subs:
                    raise InvalidFilter(f"{kpath}: {key} needs a non-empty list of filters, got {value!r:.80}")
                nodes = [self._filter(sub, f"{kpath}[{i}]", depth + 1) for i, sub in enumerate(subs)]
                if logic == "$and":
                    parts.extend(nodes)
                elif logic == "$or":
                    parts.append(nodes[0] if len(nodes) == 1 else {"$or": nodes})
                else:  # NOT: [a, b] matches records matching none of them
                    parts.extend({"$not": node} for node in nodes)
            elif not isinstance(key, str) or key.startswith("$"):
                raise InvalidFilter(f"{path}: unknown operator {key!r} (known: AND, OR, NOT and $and, $or, $not)")
            else:
                parts.extend(self._field(encode_key(key), value, kpath))
        if len(parts) == 1:
            return parts[0]
        return {"$and": parts} if parts else _TRUE

    def _field(self, key: str, value: object, path: str) -> list[Any]:
        if isinstance(value, str) and value == "*":
            return [{key: {"$exists": True}}]
        if isinstance(value, list):
            return [{key: {"$in": value}}]
        if not isinstance(value, Mapping):
            return [{key: {"$eq": value}}]
        if not value:
            raise InvalidFilter(f"{path}: an empty operator dict")
        out: list[Any] = []
        for op, operand in value.items():
            name = op[1:] if isinstance(op, str) and op.startswith("$") else op
            if name in _FIELD_OPS:
                out.append({key: {_FIELD_OPS[name]: operand}})
            elif name in _SUBSTRING_OPS:
                if not isinstance(operand, str):
                    raise InvalidFilter(f"{path}.{op}: {name} needs a str, got {type(operand).__name__} {operand!r:.80}")
                cond = _Substring(len(self.substrings), key, operand, _SUBSTRING_OPS[name])
                self.substrings.append(cond)
                out.append(cond)
            else:
                raise InvalidFilter(f"{path}: unknown operator {op!r} (known: {', '.join(_FIELD_OPS)}, "
                                    f"{', '.join(_SUBSTRING_OPS)})")
        return out


# -- the stores the providers share ------------------------------------------------------
@dataclass
class _OpenStore:
    """One open store and the providers using it (``users``), with one write lock per collection."""

    store: tenantvec.Store
    users: int = 0
    locks: dict[str, threading.Lock] = field(default_factory=dict)


_OPEN: dict[str, _OpenStore] = {}
_OPEN_LOCK = threading.Lock()


def _open_store(path: str) -> tuple[str, _OpenStore]:
    """The store at ``path`` (opened now if no provider has it open), with one more user."""
    key = os.path.realpath(path)
    with _OPEN_LOCK:
        entry = _OPEN.get(key)
        if entry is None:
            entry = _OPEN[key] = _OpenStore(tenantvec.Store(key))
        entry.users += 1
    return key, entry


def _release_store(key: str) -> None:
    """One user fewer for the store at ``key``; the last one closes it."""
    with _OPEN_LOCK:
        entry = _OPEN[key]
        entry.users -= 1
        if entry.users:
            return
        del _OPEN[key]
    entry.store.close()


def _write_lock(entry: _OpenStore, collection: str) -> threading.Lock:
    with _OPEN_LOCK:
        return entry.locks.setdefault(collection, threading.Lock())


def _escape_scope_value(value: str) -> str:
    """``value`` made safe inside a tenant id: ``%``, ``/``, ``\\``, whitespace and
    non-printable characters become ``%XX`` (their UTF-8 bytes), so distinct values stay
    distinct."""
    return "".join(
        "".join(f"%{b:02X}" for b in c.encode()) if c in "%/\\" or c.isspace() or not c.isprintable() else c
        for c in value
    )


# -- the provider ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OutputData:
    """One record as Mem0 reads it: ``score`` is the similarity in [0, 1] for a search
    result, ``None`` for ``get`` and ``list``."""

    id: str
    score: float | None
    payload: dict[str, Any]


class TenantvecVectorStore(VectorStoreBase):
    """Mem0's ``VectorStoreBase`` over a tenantvec store, one tenant per scope (see the
    module docstring). Mem0 builds it from the config (``VectorStoreFactory``); built
    directly, it takes the fields of :class:`TenantvecConfig` as keyword arguments::

        vs = TenantvecVectorStore(path="/tmp/mem0-store", embedding_model_dims=384)
        vs.insert([vector], payloads=[{"data": "likes tea", "user_id": "alice"}], ids=["m1"])
        vs.search("tea", vector, top_k=5, filters={"user_id": "alice"})

    :raises pydantic.ValidationError: a malformed config.
    :raises StoreLocked: another process writes the store.
    """

    def __init__(self, **fields: Any) -> None:
        self.config = TenantvecConfig(**fields)
        self.collection_name = self.config.collection_name
        self.embedding_model_dims = self.config.embedding_model_dims
        self._key, self._open = _open_store(self.config.path)
        self._release = weakref.finalize(self, _release_store, self._key)
        try:
            self._bound = self._route(self.config.bind, "bind") if self.config.bind else None
            self.create_col(self.collection_name, self.embedding_model_dims, self.config.metric)
        except BaseException:
            self.close()
            raise

    @property
    def store(self) -> tenantvec.Store:
        """The open store (shared with the other providers on the same ``path``)."""
        return self._open.store

    def close(self) -> None:
        """Stop using the store; the last provider on a path closes it. Idempotent."""
        self._release()

    def __repr__(self) -> str:
        bound = f" bind={self.config.bind!r}" if self.config.bind else ""
        return f"<TenantvecVectorStore {self._key!r} collection={self.collection_name!r}{bound}>"

    # -- tenants ---------------------------------------------------------------------
    def _route(self, source: Mapping[str, Any] | None, what: str) -> str:
        """The tenant of a payload, of filters or of ``bind``: the first scope field that
        ``source`` names (a filter value may be ``{"eq": id}``), else the unscoped tenant.

        :raises InvalidFilter: a scope field whose value is not one id.
        """
        coll = self.collection_name
        for name in self.config.scope_fields:
            value = source.get(name) if source else None
            if isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in ("eq", "$eq"):
                value = next(iter(value.values()))
            if value is None:
                continue
            if not isinstance(value, str) or not value or value == "*":
                raise InvalidFilter(f"{what}.{name}: a scope field must name one id (a non-empty str), "
                                    f"got {value!r:.80}; each scope is its own tenant")
            return f"{coll}:{name}:{_escape_scope_value(value)}"
        return f"{coll}:{self.config.unscoped_tenant}"

    def _check_bound(self, tenant_id: str, what: str) -> None:
        if self._bound is not None and tenant_id != self._bound:
            raise TenantMismatch(f"{what} names another scope than this provider's bind={self.config.bind!r}",
                                 tenant=self._bound)

    def _read_tenant(self, filters: Mapping[str, Any] | None) -> str:
        """The tenant a search or a list reads: the one ``filters`` name (the bound tenant
        when the provider is bound and they name none)."""
        if self._bound is not None and not any((filters or {}).get(name) is not None for name in self.config.scope_fields):
            return self._bound
        tenant_id = self._route(filters, "filters")
        self._check_bound(tenant_id, "filters")
        return tenant_id

    def _tenant(self, tenant_id: str) -> tenantvec.Tenant | None:
        """A handle on an existing tenant, or None."""
        try:
            return self.store.tenant(tenant_id)
        except TenantNotFound:
            return None

    def _data_tenant(self, tenant_id: str) -> tenantvec.Tenant:
        return self.store.tenant(tenant_id, create=True, dim=self.embedding_model_dims, metric=self.config.metric)

    def _directory(self) -> tenantvec.Tenant:
        """The id directory (created on first use): a record per id, ``{"tenant": id}``."""
        return self.store.tenant(self.collection_name, create=True, dim=1, metric="l2")

    def _owners(self, ids: Sequence[str]) -> dict[str, str]:
        """The tenant holding each of ``ids`` that the directory knows."""
        return {rec.id: rec.metadata["tenant"] for rec in self._directory().get(ids=ids)}

    def _owner(self, vector_id: str) -> str | None:
        """The tenant holding ``vector_id`` (None if none does, or if it is not the bound one)."""
        owner = self._owners([vector_id]).get(vector_id)
        return None if owner is None or (self._bound is not None and owner != self._bound) else owner

    def _score(self, distance: float) -> float:
        if self.config.metric == "l2":
            return 1.0 / (1.0 + max(0.0, distance))
        return min(1.0, max(0.0, 1.0 - distance))  # cosine: 1 - distance; ip: the dot product

    # -- VectorStoreBase ---------------------------------------------------------------
    @override
    def create_col(self, name: str, vector_size: int, distance: str) -> None:
        """Create collection ``name`` (its id directory); its tenants are created with
        their first record. For this provider's own collection, ``vector_size`` and
        ``distance`` must be its configured dimension and metric.

        :raises DimensionMismatch: ``vector_size`` is not (own collection).
        :raises InvalidArgument: ``distance`` is not (own collection), or a malformed ``name``.
        """
        _check_name_part(name, "a collection name")
        if name == self.collection_name:
            if vector_size != self.embedding_model_dims:
                raise DimensionMismatch(f"collection {name!r} holds dim {self.embedding_model_dims} vectors "
                                        f"(embedding_model_dims); asked for {vector_size}")
            if distance != self.config.metric:
                raise InvalidArgument(f"collection {name!r} uses metric {self.config.metric!r}; asked for {distance!r}")
        self.store.tenant(name, create=True, dim=1, metric="l2")

    @override
    def insert(self, vectors: Sequence[Sequence[float]], payloads: Sequence[Mapping[str, Any]] | None = None,
               ids: Sequence[str] | None = None) -> None:
        """Insert (or, for an id its tenant holds already, replace) records, each in the
        tenant of its payload's scope. Ids default to new uuid4 strings.

        :raises TenantMismatch: an id belongs to another tenant, or (bound) a payload names
            another scope; nothing was written.
        :raises InvalidArgument, InvalidVector, DimensionMismatch: malformed input; nothing
            of that tenant's batch was written.
        """
        rows = list(vectors)
        payload_list = [p if p is not None else {} for p in payloads] if payloads is not None else [{}] * len(rows)
        id_list = list(ids) if ids is not None else [str(uuid.uuid4()) for _ in rows]
        if not len(rows) == len(payload_list) == len(id_list):
            raise InvalidArgument(f"insert: {len(rows)} vectors, {len(payload_list)} payloads and {len(id_list)} ids")
        if len(set(id_list)) != len(id_list):
            raise DuplicateId(f"insert: an id appears twice in {id_list[:10]!r:.200}")
        stored = [encode_metadata(p, i) for i, p in enumerate(payload_list)]
        groups: dict[str, list[int]] = {}
        for i, payload in enumerate(payload_list):
            tenant_id = self._route(payload, f"payloads[{i}]")
            self._check_bound(tenant_id, f"payloads[{i}]")
            groups.setdefault(tenant_id, []).append(i)
        with _write_lock(self._open, self.collection_name):
            owners = self._owners(id_list)
            for tenant_id, rows_of in groups.items():
                taken = [id_list[i] for i in rows_of if owners.get(id_list[i], tenant_id) != tenant_id]
                if taken:
                    raise TenantMismatch(f"collection {self.collection_name!r}: ids {taken[:5]} belong to another scope")
            for tenant_id, rows_of in groups.items():
                self._insert_into(tenant_id, [id_list[i] for i in rows_of], [rows[i] for i in rows_of],
                                  [stored[i] for i in rows_of], owners)

    def _insert_into(self, tenant_id: str, ids: list[str], vectors: list[Sequence[float]],
                     stored: list[dict[str, Any]], owners: Mapping[str, str]) -> None:
        """Claim the new ids for ``tenant_id``, then write the records (``stored``: their
        payloads as stored); a failed write releases the claims it made."""
        directory = self._directory()
        claims = [i for i in ids if i not in owners]
        if claims:
            directory.add(np.ones((len(claims), 1), dtype=np.float32), ids=claims,
                          metadata=[{"tenant": tenant_id}] * len(claims))
        try:
            self._data_tenant(tenant_id).upsert(vectors, ids=ids, documents=[_document(p) for p in stored],
                                                metadata=stored)
        except BaseException:
            if claims:
                directory.delete(ids=claims)
            raise

    @override
    def search(self, query: str, vectors: Sequence[float], top_k: int = 5,
               filters: Mapping[str, Any] | None = None) -> list[OutputData]:
        """The ``top_k`` records nearest to the vector ``vectors`` among those matching
        ``filters``, in the one tenant the filters name; ``query`` (the text) is unused.

        :raises InvalidFilter: malformed filters, or a scope field naming no single id.
        :raises TenantMismatch: (bound) the filters name another scope.
        :raises InvalidVector, DimensionMismatch: a malformed vector.
        """
        vector = np.asarray(vectors, dtype=np.float32)
        if vector.ndim != 1:
            raise InvalidVector(f"search takes one vector, got an array of shape {vector.shape}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise InvalidArgument(f"top_k must be a non-negative int, got {top_k!r}")
        plan = _FilterPlan(filters)
        tenant = self._tenant(self._read_tenant(filters))
        if tenant is None or top_k == 0:
            return []
        k = top_k
        while True:
            hits = tenant.query(vector, k=k, where=plan.where)
            kept = plan.refine(tenant, hits)
            if len(kept) >= top_k or len(hits) < k:
                return [OutputData(h.id, self._score(h.distance), decode_metadata(h.metadata)) for h in kept[:top_k]]
            k *= 4

    @override
    def delete(self, vector_id: str) -> None:
        """Delete the record ``vector_id`` from the tenant holding it, then its claim (also
        a claim left without its record by a crash).

        :raises MemoryNotFound: no tenant (bound: not this provider's) holds it.
        """
        with _write_lock(self._open, self.collection_name):
            owner = self._owner(vector_id)
            tenant = self._tenant(owner) if owner is not None else None
            deleted = tenant.delete(ids=[vector_id]) if tenant is not None else 0
            if owner is not None:
                self._directory().delete(ids=[vector_id])
        if not deleted:
            raise MemoryNotFound(f"collection {self.collection_name!r} has no record {vector_id!r}", tenant=self._bound)

    @override
    def update(self, vector_id: str, vector: Sequence[float] | None = None,
               payload: Mapping[str, Any] | None = None) -> None:
        """Replace the vector and/or the payload of record ``vector_id``, in the tenant
        holding it (what is not given is kept).

        :raises MemoryNotFound: no tenant (bound: not this provider's) holds it.
        :raises TenantMismatch: ``payload`` names another scope than the record's tenant.
        """
        with _write_lock(self._open, self.collection_name):
            owner = self._owner(vector_id)
            tenant = self._tenant(owner) if owner is not None else None
            found = tenant.get(ids=[vector_id], include_vectors=vector is None) if tenant is not None else []
            if tenant is None or owner is None or not found:
                raise MemoryNotFound(f"collection {self.collection_name!r} has no record {vector_id!r}",
                                     tenant=self._bound)
            rec = found[0]
            if payload is None:
                document, metadata = rec.document, rec.metadata
            else:
                if self._route(payload, "payload") != owner:
                    raise TenantMismatch(f"record {vector_id!r}: the new payload names another scope; "
                                         "a record cannot move between scopes", tenant=self._bound)
                document, metadata = _document(payload), encode_metadata(payload, 0)
            tenant.upsert([rec.vector if vector is None else vector], ids=[vector_id], documents=[document],
                          metadata=[metadata])

    @override
    def get(self, vector_id: str) -> OutputData | None:
        """The record ``vector_id`` from the tenant holding it, or None (bound: also when
        another tenant holds it)."""
        owner = self._owner(vector_id)
        tenant = self._tenant(owner) if owner is not None else None
        found = tenant.get(ids=[vector_id]) if tenant is not None else []
        return OutputData(found[0].id, None, decode_metadata(found[0].metadata)) if found else None

    @override
    def list_cols(self) -> list[str]:
        """The collections in the store (the tenants that are id directories), sorted."""
        return [t for t in self.store.tenants() if ":" not in t]

    def _collection_tenants(self) -> list[str]:
        """The tenants this provider may drop: the bound one, or every data tenant of the collection."""
        if self._bound is not None:
            return [self._bound] if self.store.has_tenant(self._bound) else []
        prefix = self.collection_name + ":"
        return [t for t in self.store.tenants() if t.startswith(prefix)]

    @override
    def delete_col(self) -> None:
        """Delete the collection's records: every tenant of it and its id directory; when
        bound, the bound tenant and its ids only."""
        with _write_lock(self._open, self.collection_name):
            for tenant_id in self._collection_tenants():
                self.store.drop_tenant(tenant_id)
            if self._bound is not None:
                self._directory().delete(where={"tenant": self._bound})
            elif self.store.has_tenant(self.collection_name):
                self.store.drop_tenant(self.collection_name)
        logger.info("mem0 collection %r: deleted%s", self.collection_name,
                    f" the records of {self._bound!r}" if self._bound else "")

    @override
    def col_info(self) -> dict[str, Any]:
        """Name, store path, dimension, metric, number of tenants and of records (bound:
        of the bound tenant only)."""
        tenant_ids = self._collection_tenants()
        count = 0
        for tenant_id in tenant_ids:
            tenant = self._tenant(tenant_id)
            count += tenant.count() if tenant is not None else 0
        return {"name": self.collection_name, "path": self._key, "dim": self.embedding_model_dims,
                "metric": self.config.metric, "bind": self.config.bind, "tenants": len(tenant_ids), "count": count}

    @override
    def reset(self) -> None:
        """Delete the collection (:meth:`delete_col`) and create it again, empty."""
        self.delete_col()
        self.create_col(self.collection_name, self.embedding_model_dims, self.config.metric)

    @override
    def list(self, filters: Mapping[str, Any] | None = None, top_k: int | None = None) -> list[list[OutputData]]:
        """``[records]``: up to ``top_k`` (None: all) records matching ``filters`` from the
        one tenant they name, oldest first (an update moves a record to the end). Wrapped
        in a list, as Mem0 reads it.

        :raises InvalidFilter: malformed filters, or a scope field naming no single id.
        :raises TenantMismatch: (bound) the filters name another scope.
        """
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
            raise InvalidArgument(f"top_k must be a non-negative int or None, got {top_k!r}")
        plan = _FilterPlan(filters)
        tenant = self._tenant(self._read_tenant(filters))
        if tenant is None or top_k == 0:
            return [[]]
        return [[OutputData(r.id, None, decode_metadata(r.metadata)) for r in _matching(tenant, plan, top_k)]]


def _matching(tenant: tenantvec.Tenant, plan: _FilterPlan, limit: int | None, page: int = 1000) -> Iterable[Any]:
    """Up to ``limit`` records of ``tenant`` matching ``plan``, in insertion order."""
    if not plan.substrings:
        return tenant.get(where=plan.where, limit=limit)
    out: list[Any] = []
    offset = 0
    while limit is None or len(out) < limit:
        batch = tenant.get(where=plan.where, limit=page, offset=offset)
        out.extend(plan.refine(tenant, batch))
        if len(batch) < page:
            break
        offset += page
    return out if limit is None else out[:limit]


register()
