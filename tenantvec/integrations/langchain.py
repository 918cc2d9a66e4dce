"""A LangChain ``VectorStore`` over one tenant's shard (``pip install 'tenantvec[langchain]'``).

>>> from tenantvec.integrations.langchain import TenantvecVectorStore    # doctest: +SKIP
>>> vs = TenantvecVectorStore("/var/lib/agent-memory", tenant="acme", embedding=embeddings)
>>> vs.add_texts(["Acme bills through PostgreSQL"], metadatas=[{"topic": "billing"}])
>>> vs.as_retriever(search_kwargs={"k": 3, "filter": {"topic": "billing"}}).invoke("billing?")

Every call reads and writes the one tenant the store was built for; no argument reaches
another tenant.

Metadata: any LangChain metadata dict round-trips, including keys that tenantvec reserves
for itself (``created_at``, ``updated_at``, ``""`` and ``$``-prefixed keys). Such a key is
stored with the escape prefix ``~`` (and so is a key that itself starts with ``~``), every
other key as it is; reads strip the prefix. A ``filter=`` (tenantvec's ``where`` dict) names
the LangChain keys: field names are escaped the same way, so ``{"created_at": {"$gte": 5}}``
filters on the user's ``created_at`` (the record's own timestamps are not filterable
through this class). Keys starting with ``$`` round-trip but cannot be
filtered on, since ``$`` marks an operator in a filter. Values are stored with msgpack:
tuples come back as lists, and a value msgpack cannot hold raises ``InvalidArgument``.

Scores: ``similarity_search_with_score`` returns the cosine similarity (higher is closer,
in ``[-1, 1]``), as LangChain's ``InMemoryVectorStore`` does; the relevance score of
``similarity_search_with_relevance_scores`` is that same number (LangChain's cosine
relevance, ``1 - distance``).

Async: ``aadd_texts``, ``aadd_documents``, ``asimilarity_search[_with_score]`` and
``amax_marginal_relevance_search`` embed with the embeddings' own ``aembed_*`` and run the
storage call (LMDB is blocking) in a worker thread; the other ``a*`` methods are
LangChain's defaults, which run the sync method in an executor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

import tenantvec
from tenantvec.errors import EmbedderError, InvalidArgument, InvalidFilter, InvalidVector
from tenantvec.integrations._keys import decode_metadata, encode_key, encode_metadata

if TYPE_CHECKING:
    from collections.abc import Callable

    from typing_extensions import Self

__all__ = ["TenantvecVectorStore"]

logger = logging.getLogger("tenantvec")

#: A ``where`` filter over LangChain metadata keys (see the module docstring).
Where = dict[str, Any]

#: Deepest ``$and``/``$or``/``$not`` nesting a ``filter=`` may have (as tenantvec's ``where``).
_MAX_FILTER_DEPTH = 64


def _encode_where(where: object, depth: int = 1) -> Any:
    """``where`` with its field names escaped as :func:`_encode_key` stores them; operators
    and anything malformed pass through unchanged for the tenant to reject with its message.

    :raises InvalidFilter: the filter nests deeper than tenantvec allows (or refers to itself).
    """
    if not isinstance(where, dict):
        return where
    if depth > _MAX_FILTER_DEPTH:
        raise InvalidFilter(f"where: filters nest deeper than {_MAX_FILTER_DEPTH} levels (or refer to themselves)")
    out: dict[Any, Any] = {}
    for key, value in where.items():
        if key in ("$and", "$or") and isinstance(value, list):
            out[key] = [_encode_where(sub, depth + 1) for sub in value]
        elif key == "$not":
            out[key] = _encode_where(value, depth + 1)
        elif isinstance(key, str) and not key.startswith("$"):
            out[encode_key(key)] = value
        else:
            out[key] = value
    return out


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise InvalidArgument(f"{what} must be a str, got {type(text).__name__} {text!r:.80}")
    return text


def _check_vector(vector: Any) -> Any:
    """``vector`` if it is one vector (1-D); the tenant checks its values and dimension.

    :raises InvalidVector: a str, a batch of vectors or a ragged list.
    """
    try:
        ndim = -1 if isinstance(vector, (str, bytes)) else np.ndim(vector)
    except ValueError:  # a ragged list
        ndim = -1
    if ndim != 1:
        raise InvalidVector(f"embedding must be one vector (a list of floats), got {type(vector).__name__} {vector!r:.80}")
    return vector


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{name} must be a positive integer, got {value!r}")
    return value


def _no_extra(kwargs: dict[str, Any], call: str) -> None:
    """:raises InvalidArgument: ``call`` got keyword arguments it does not know (a typo
    such as ``filters=`` would otherwise be ignored silently)."""
    if kwargs:
        raise InvalidArgument(f"{call}() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")


def _similarity_is_relevance(score: float) -> float:
    return score


def _mmr_select(relevance: np.ndarray, vectors: np.ndarray, k: int, lambda_mult: float) -> list[int]:
    """Indices of ``k`` rows picked by maximal marginal relevance: each step takes the row
    maximising ``lambda_mult * relevance - (1 - lambda_mult) * max cosine to those picked``."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    chosen = [int(np.argmax(relevance))]
    redundancy = unit @ unit[chosen[0]]
    while len(chosen) < min(k, len(relevance)):
        score = lambda_mult * relevance - (1.0 - lambda_mult) * redundancy
        score[chosen] = -np.inf
        best = int(np.argmax(score))
        chosen.append(best)
        redundancy = np.maximum(redundancy, unit @ unit[best])
    return chosen


@dataclass(frozen=True)
class _Batch:
    """Texts checked and ready to embed and write in one transaction."""

    texts: list[str]
    ids: list[str]
    metadata: list[dict[str, Any]]  # as stored (escaped keys)


class TenantvecVectorStore(VectorStore):
    """A LangChain ``VectorStore`` over one tenant of a tenantvec store.

    ``store_or_path`` is an open :class:`tenantvec.Store` (the caller closes it) or a path
    where one is opened (closed by :meth:`close`). The tenant is created when absent, with
    metric cosine and the dimension ``dim`` or, without it, the length of ``embedding``'s
    vector for one probe text; an existing tenant must use metric cosine (and ``dim`` if
    given). Documents are the records' texts, their ids the record ids.

    Example::

        with TenantvecVectorStore(path, tenant="acme", embedding=emb) as vs:
            vs.add_documents([Document("Acme bills through PostgreSQL", metadata={"topic": "billing"})])
            docs = vs.as_retriever(search_kwargs={"k": 3}).invoke("where is billing data?")

    :raises InvalidTenantId: ``tenant`` breaks the tenant id rules.
    :raises DimensionMismatch: ``dim`` differs from the existing tenant's.
    :raises InvalidArgument: the existing tenant's metric is not cosine.
    :raises ReadOnlyStore: the tenant is absent and the store is read-only.
    """

    def __init__(
        self,
        store_or_path: tenantvec.Store | str | os.PathLike[str],
        *,
        tenant: str,
        embedding: Embeddings,
        dim: int | None = None,
    ) -> None:
        if isinstance(store_or_path, tenantvec.Store):
            store, owned = store_or_path, False
        else:
            store, owned = tenantvec.Store(store_or_path), True
        try:
            if dim is None and not store.has_tenant(tenant):
                dim = len(embedding.embed_query("tenantvec dimension probe"))
                logger.debug("tenant %r: creating it with dim %d (the embeddings' vector length)", tenant, dim)
            self._tenant = store.tenant(tenant, create=True, dim=dim, metric="cosine")
        except BaseException:
            if owned:
                store.close()
            raise
        self._store = store
        self._owns_store = owned
        self.embedding = embedding

    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    @property
    def tenant(self) -> tenantvec.Tenant:
        """The tenant handle every call goes through."""
        return self._tenant

    def close(self) -> None:
        """Close the store if this object opened it (from a path); idempotent."""
        if self._owns_store:
            self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<TenantvecVectorStore tenant={self._tenant.id!r} store={str(self._store.path)!r}>"

    # ------------------------------------------------------------------ writes
    def _batches(self, texts: Iterable[str], metadatas: Sequence[dict[str, Any] | None] | None,
                 ids: Sequence[str | None] | None, batch_size: int | None) -> list[_Batch]:
        """Check every argument (before anything is embedded or written) and split the texts
        into batches of ``batch_size`` (default: one batch); an id that is None or ``""``
        is generated (uuid4 hex).

        :raises InvalidArgument: texts not a list of str, metadatas or ids of another
            length, a metadata dict with a non-str key, ``batch_size`` not positive.
        """
        if isinstance(texts, str):
            raise InvalidArgument(f"texts must be a list of str, got the str {texts!r:.80}")
        texts = [_check_text(text, f"text {i}") for i, text in enumerate(texts)]
        n = len(texts)
        for name, given in (("metadatas", metadatas), ("ids", ids)):
            if given is not None and (isinstance(given, (str, dict)) or len(given) != n):
                raise InvalidArgument(f"{name} must be a list of {n} items, one per text, got {given!r:.80}")
        stored = [encode_metadata(m, i) for i, m in enumerate(metadatas or [None] * n)]
        keys = [i if i else uuid.uuid4().hex for i in (ids or [None] * n)]
        size = n if batch_size is None else _positive_int(batch_size, "batch_size")
        return [_Batch(texts[s:s + size], keys[s:s + size], stored[s:s + size]) for s in range(0, n, size)]

    def _write(self, batch: _Batch, vectors: Sequence[Sequence[float]]) -> list[str]:
        """Upsert one embedded batch in one transaction; returns its ids.

        :raises EmbedderError: the embeddings returned another number of vectors than texts.
        """
        if len(vectors) != len(batch.texts):
            raise EmbedderError(f"{type(self.embedding).__name__} returned {len(vectors)} vectors "
                                f"for {len(batch.texts)} texts")
        return self._tenant.upsert(vectors, batch.ids, documents=batch.texts, metadata=batch.metadata)

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        *,
        ids: Sequence[str | None] | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed ``texts`` and store them with their metadata; returns their ids.

        An id that exists already is overwritten (text, vector, metadata); an id None or
        absent is generated. Each batch of ``batch_size`` texts (default: all) is embedded and
        written in one transaction; every argument is checked before the first one.

        :raises InvalidArgument: malformed texts, metadata, ids or keyword arguments.
        :raises DuplicateId: an id appears twice in one batch.
        :raises InvalidVector, DimensionMismatch, EmbedderError: unusable embeddings.
        """
        _no_extra(kwargs, "add_texts")
        return [key for batch in self._batches(texts, metadatas, ids, batch_size)
                for key in self._write(batch, self.embedding.embed_documents(batch.texts))]

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        *,
        ids: Sequence[str | None] | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """:meth:`add_texts`, embedding with ``aembed_documents`` and writing in a worker thread."""
        _no_extra(kwargs, "aadd_texts")
        out: list[str] = []
        for batch in self._batches(texts, metadatas, ids, batch_size):
            vectors = await self.embedding.aembed_documents(batch.texts)
            out += await asyncio.to_thread(self._write, batch, vectors)
        return out

    @staticmethod
    def _unpack(documents: Sequence[Document], ids: Sequence[str | None] | None) -> dict[str, Any]:
        """:meth:`add_texts` arguments for ``documents``: ``ids`` win over ``Document.id``.

        :raises InvalidArgument: an item is not a ``Document``.
        """
        for i, doc in enumerate(documents):
            if not isinstance(doc, Document):
                raise InvalidArgument(f"document {i} must be a langchain Document, got {type(doc).__name__} {doc!r:.80}")
        return {"texts": [doc.page_content for doc in documents], "metadatas": [doc.metadata for doc in documents],
                "ids": [doc.id for doc in documents] if ids is None else ids}

    def add_documents(self, documents: list[Document], *, ids: Sequence[str | None] | None = None,
                      batch_size: int | None = None, **kwargs: Any) -> list[str]:
        """Store ``documents`` (:meth:`add_texts`); ids from ``ids``, else ``Document.id``,
        else generated. The documents are not modified."""
        return self.add_texts(**self._unpack(documents, ids), batch_size=batch_size, **kwargs)

    async def aadd_documents(self, documents: list[Document], *, ids: Sequence[str | None] | None = None,
                             batch_size: int | None = None, **kwargs: Any) -> list[str]:
        """:meth:`add_documents` through :meth:`aadd_texts`."""
        return await self.aadd_texts(**self._unpack(documents, ids), batch_size=batch_size, **kwargs)

    def delete(self, ids: list[str] | None = None, *, filter: Where | None = None, **kwargs: Any) -> bool:
        """Delete the documents with these ids (unknown ids are skipped) and/or matching
        ``filter``; with neither, delete every document of the tenant (LangChain's contract).
        Returns True.

        :raises InvalidFilter: malformed ``filter`` (nothing is deleted).
        """
        _no_extra(kwargs, "delete")
        if isinstance(ids, str):
            raise InvalidArgument(f"ids must be a list of str, got the str {ids!r:.80}")
        where = _encode_where(filter) if filter is not None else ({} if ids is None else None)
        self._tenant.delete(ids=ids, where=where)
        return True

    # ------------------------------------------------------------------ reads
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids, in the order asked, each once; unknown ids are skipped."""
        if isinstance(ids, str):
            raise InvalidArgument(f"ids must be a list of str, got the str {ids!r:.80}")
        records = self._tenant.get(ids=list(dict.fromkeys(ids)))
        return [self._document(r.id, r.document, r.metadata) for r in records]

    @staticmethod
    def _document(key: str, text: str | None, stored: dict[str, Any]) -> Document:
        return Document(id=key, page_content=text or "", metadata=decode_metadata(stored))

    def _search(self, vector: object, k: int, filter: Where | None) -> list[tuple[Document, float]]:
        hits = self._tenant.query(_check_vector(vector), k=k, where=_encode_where(filter))
        return [(self._document(h.id, h.document, h.metadata), 1.0 - h.distance) for h in hits]

    def similarity_search_with_score(self, query: str, k: int = 4, *, filter: Where | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """The ``k`` documents nearest ``query`` (matching ``filter``) with their cosine
        similarity, nearest first.

        :raises InvalidArgument: ``query`` not a str, ``k`` not positive, unknown keywords.
        :raises InvalidFilter: malformed ``filter``.
        """
        _no_extra(kwargs, "similarity_search_with_score")
        return self._search(self.embedding.embed_query(_check_text(query, "query")), k, filter)

    async def asimilarity_search_with_score(self, query: str, k: int = 4, *, filter: Where | None = None,
                                            **kwargs: Any) -> list[tuple[Document, float]]:
        """:meth:`similarity_search_with_score`, embedding with ``aembed_query`` and
        searching in a worker thread."""
        _no_extra(kwargs, "asimilarity_search_with_score")
        vector = await self.embedding.aembed_query(_check_text(query, "query"))
        return await asyncio.to_thread(self._search, vector, k, filter)

    def similarity_search(self, query: str, k: int = 4, *, filter: Where | None = None,
                          **kwargs: Any) -> list[Document]:
        """The ``k`` documents nearest ``query`` (matching ``filter``), nearest first."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter=filter, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, *, filter: Where | None = None,
                                 **kwargs: Any) -> list[Document]:
        """:meth:`similarity_search` through :meth:`asimilarity_search_with_score`."""
        return [doc for doc, _ in await self.asimilarity_search_with_score(query, k, filter=filter, **kwargs)]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, *, filter: Where | None = None,
                                    **kwargs: Any) -> list[Document]:
        """The ``k`` documents nearest the vector ``embedding`` (matching ``filter``).

        :raises InvalidVector, DimensionMismatch: ``embedding`` is not one usable vector.
        """
        _no_extra(kwargs, "similarity_search_by_vector")
        return [doc for doc, _ in self._search(embedding, k, filter)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return _similarity_is_relevance

    def _mmr(self, vector: object, k: int, fetch_k: int, lambda_mult: float, filter: Where | None) -> list[Document]:
        """Maximal marginal relevance over the ``max(k, fetch_k)`` nearest documents."""
        k, fetch_k = _positive_int(k, "k"), _positive_int(fetch_k, "fetch_k")
        if isinstance(lambda_mult, bool) or not isinstance(lambda_mult, (int, float)) or not 0 <= lambda_mult <= 1:
            raise InvalidArgument(f"lambda_mult must be a number from 0 to 1, got {lambda_mult!r}")
        hits = self._tenant.query(_check_vector(vector), k=max(k, fetch_k), where=_encode_where(filter))
        vectors = {r.id: r.vector for r in self._tenant.get(ids=[h.id for h in hits], include_vectors=True)
                   if r.vector is not None}
        hits = [h for h in hits if h.id in vectors]  # a concurrent delete may have removed one
        if not hits:
            return []
        relevance = np.array([1.0 - h.distance for h in hits])
        chosen = _mmr_select(relevance, np.stack([vectors[h.id] for h in hits]), k, float(lambda_mult))
        return [self._document(hits[i].id, hits[i].document, hits[i].metadata) for i in chosen]

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      *, filter: Where | None = None, **kwargs: Any) -> list[Document]:
        """``k`` documents among the ``fetch_k`` nearest ``query`` (matching ``filter``),
        picked for similarity to ``query`` and diversity among themselves (``lambda_mult``:
        1 = similarity only, 0 = diversity only).

        :raises InvalidArgument: ``k`` or ``fetch_k`` not positive, ``lambda_mult`` outside [0, 1].
        """
        _no_extra(kwargs, "max_marginal_relevance_search")
        return self._mmr(self.embedding.embed_query(_check_text(query, "query")), k, fetch_k, lambda_mult, filter)

    async def amax_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                             lambda_mult: float = 0.5, *, filter: Where | None = None,
                                             **kwargs: Any) -> list[Document]:
        """:meth:`max_marginal_relevance_search`, embedding with ``aembed_query`` and
        searching in a worker thread."""
        _no_extra(kwargs, "amax_marginal_relevance_search")
        vector = await self.embedding.aembed_query(_check_text(query, "query"))
        return await asyncio.to_thread(self._mmr, vector, k, fetch_k, lambda_mult, filter)

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5, *, filter: Where | None = None,
                                                **kwargs: Any) -> list[Document]:
        """:meth:`max_marginal_relevance_search` around the vector ``embedding``."""
        _no_extra(kwargs, "max_marginal_relevance_search_by_vector")
        return self._mmr(embedding, k, fetch_k, lambda_mult, filter)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        store_or_path: tenantvec.Store | str | os.PathLike[str] | None = None,
        tenant: str | None = None,
        dim: int | None = None,
        **kwargs: Any,
    ) -> Self:
        """A store over ``tenant`` of ``store_or_path`` (both required) holding ``texts``
        (:meth:`add_texts`; ``kwargs`` go there). A store opened here from a path is closed
        again if adding fails.

        :raises InvalidArgument: ``store_or_path`` or ``tenant`` missing, or what
            :meth:`add_texts` raises.
        """
        if store_or_path is None or tenant is None:
            raise InvalidArgument("from_texts needs store_or_path= and tenant= (the store and tenant to write to)")
        vs = cls(store_or_path, tenant=tenant, embedding=embedding, dim=dim)
        try:
            vs.add_texts(texts, metadatas, ids=ids, **kwargs)
        except BaseException:
            vs.close()
            raise
        return vs
