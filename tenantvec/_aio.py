"""Async twins of blocking methods: ``aadd = twin(add)`` in a class body.

tenantvec's calls block (LMDB, index searches, embedders), so an ``async`` application
must not run them on its event loop thread. A twin awaits the blocking method in a worker
thread with :func:`asyncio.to_thread`, that is in the running loop's default executor
(a ``ThreadPoolExecutor``; size it with ``loop.set_default_executor``), with the caller's
``contextvars`` copied in. It returns what the method returns and raises what it raises.

Cancelling the awaiting task does not stop the thread: the call runs to completion (a
write commits) and only its result is dropped. A twin looks the method up by name on the
instance when called, so an override in a subclass has its twin for free.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

S = TypeVar("S")
P = ParamSpec("P")
R = TypeVar("R")


def twin(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """The async twin of ``method`` (a function defined in a class body), named ``a<name>``
    with ``method``'s signature (overloads included, for type checkers) and a docstring
    that refers to it::

        class Tenant:
            def add(self, vectors, ids=None) -> list[str]: ...
            aadd = twin(add)          # await tenant.aadd(vectors) -> list[str]
    """
    name = method.__name__

    @functools.wraps(method)
    async def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(getattr(self, name), *args, **kwargs)

    owner = method.__qualname__.rpartition(".")[0]
    run.__name__ = f"a{name}"
    run.__qualname__ = f"{owner}.a{name}" if owner else f"a{name}"
    run.__doc__ = (f"Async twin of :meth:`{method.__qualname__}`: the same call, awaited in a worker thread "
                   f"(``asyncio.to_thread``, the event loop's default executor); returns what ``{name}`` "
                   f"returns and raises what it raises.")
    return run
