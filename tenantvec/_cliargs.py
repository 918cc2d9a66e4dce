"""Argument types of the ``tenantvec`` CLI that need more than click: points in time
(``--since 90d``) and the embedder a command embeds text with (``--embedder SPEC``, or the
tenant's stored fingerprint)."""

from __future__ import annotations

import importlib
import math
import re
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .errors import TenantVecError

if TYPE_CHECKING:
    from ._tenant import Tenant
    from .embedders import Embedder

EMBEDDER_ENV = "TENANTVEC_EMBEDDER"

_AGO = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_AGO_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class _When(click.ParamType):
    """A point in time as unix seconds, from an ISO date or datetime (naive: local time),
    unix seconds, or a duration meaning that long ago (``90d``, ``12h``, ``30m``, ``45s``, ``2w``)."""

    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        ago = _AGO.fullmatch(text)
        if ago:
            return time.time() - float(ago[1]) * _AGO_SECONDS[ago[2]]
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds):
            return seconds
        try:
            return datetime.fromisoformat(text).timestamp()
        except (ValueError, OverflowError, OSError):
            self.fail(f"{value!r} is not a time: give an ISO date or datetime (2025-01-31, 2025-01-31T09:30, "
                      "2025-01-31T09:30+02:00), unix seconds, or a duration ago (90d, 12h, 30m, 45s, 2w)", param, ctx)


WHEN = _When()


# ---------------------------------------------------------------------------- embedders
EMBEDDER_SPECS = "hashing[:DIM], onnx, sentence-transformers[:MODEL], fastembed:MODEL_DIR or module:attribute"
# fingerprint names of the built-in embedders' default models -> the spec that builds them
_DEFAULT_MODELS = {"onnx:all-MiniLM-L6-v2-int8": "onnx",
                   "sentence-transformers:all-MiniLM-L6-v2": "sentence-transformers"}


def embedder_for(spec: str | None, tenant: Tenant) -> Embedder:
    """The embedder for ``tenant``'s memories: the one ``spec`` (``--embedder``) names, or
    else the built-in one whose name the tenant's stored fingerprint holds."""
    from .embedders import FastEmbedEmbedder, HashingEmbedder, OnnxEmbedder, SentenceTransformerEmbedder
    from .memory._tenant import stored_fingerprint

    stored = stored_fingerprint(tenant)
    if spec is None:
        if stored is None:
            raise click.ClickException(f"tenant {tenant.id!r} stores no embedder fingerprint (no memory was written "
                                       f"to it through tenantvec.memory): pass --embedder SPEC or set {EMBEDDER_ENV}")
        spec = _spec_of(*stored)
        if spec is None:
            raise click.ClickException(
                f"tenant {tenant.id!r} was embedded with {stored[0]!r} (dim {stored[1]}), which is no built-in "
                f"embedder: pass --embedder module:attribute naming a factory for it, or set {EMBEDDER_ENV}")
    family, sep, arg = spec.strip().partition(":")
    if family == "hashing":
        return HashingEmbedder(_dim_of(arg) if sep else (stored[1] if stored else tenant.info().dim))
    if family == "onnx" and not sep:
        return OnnxEmbedder()
    if family == "sentence-transformers":
        if not arg:
            return SentenceTransformerEmbedder()
        return SentenceTransformerEmbedder(arg, name=_directory_name(family, arg, stored))
    if family == "fastembed" and arg:
        if Path(arg).is_dir():
            return FastEmbedEmbedder(model_path=arg, name=_directory_name(family, arg, stored))
        return FastEmbedEmbedder(arg)
    if family and arg and family not in ("onnx", "fastembed"):
        return _import_embedder(family, arg)
    raise click.BadParameter(f"{spec!r} names no embedder: give {EMBEDDER_SPECS}", param_hint="--embedder")


def _spec_of(name: str, dim: int) -> str | None:
    """The ``--embedder`` spec that rebuilds a built-in embedder from its stored fingerprint."""
    if name == f"hashing-v1-{dim}":
        return f"hashing:{dim}"
    if name in _DEFAULT_MODELS:
        return _DEFAULT_MODELS[name]
    return name if name.startswith(("sentence-transformers:", "fastembed:")) else None


def _dim_of(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise click.BadParameter(f"hashing:DIM needs a positive integer DIM, got {text!r}", param_hint="--embedder")
    return int(text)


def _directory_name(family: str, path: str, stored: tuple[str, int] | None) -> str | None:
    """The name of a model loaded from a directory (its files do not say): the tenant's
    stored one when that names a model of the same library, else ``family:<directory name>``."""
    if not Path(path).is_dir():
        return None
    if stored is not None and stored[0].startswith(f"{family}:"):
        return stored[0]
    return f"{family}:{Path(path).resolve().name}"


def _import_embedder(module: str, attribute: str) -> Embedder:
    """The embedder ``module:attribute`` names: an embedder object, or a zero-argument factory."""
    from .embedders import Embedder

    where = f"{module}:{attribute}"
    try:
        obj: Any = importlib.import_module(module)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # an import runs arbitrary code: report whatever it raised
        raise click.BadParameter(f"cannot import {where} ({type(exc).__name__}: {exc})",
                                 param_hint="--embedder") from None
    if not isinstance(obj, Embedder):
        if not callable(obj):
            raise click.BadParameter(f"{where} is a {type(obj).__name__}, neither an embedder nor a factory",
                                     param_hint="--embedder")
        try:
            obj = obj()
        except TenantVecError:
            raise
        except Exception as exc:  # the factory is the user's code
            raise click.ClickException(f"--embedder {where} raised {type(exc).__name__}: {exc}") from None
    return obj  # not checked here: Memory refuses what is not an embedder (InvalidArgument)
