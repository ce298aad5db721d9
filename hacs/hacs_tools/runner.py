"""Run a tool's coroutine to completion from synchronous code, with or without a running loop.

The user guide calls the synchronous tools from inside ``async def`` functions, where an event
loop is already running in the thread and ``asyncio.run`` is forbidden. There the coroutine runs
on a dedicated worker thread with its own event loop (asyncpg connections belong to the loop
that opened them, so it must not touch the caller's). Without a running loop it runs with
``asyncio.run`` in the calling thread. Either way it runs in a copy of the caller's
``contextvars`` context, so the current actor (``hacs_auth.get_current_actor``) stays visible.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result (or raise its exception).

    Called from a thread with a running event loop, this blocks that loop until the
    coroutine finishes on a worker thread: async code should await the ``a*`` tools instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        # asyncio.run copies the current context into its main task: the actor carries over.
        return asyncio.run(coro)
    return _run_on_worker_thread(coro)


def _run_on_worker_thread(coro: Coroutine[Any, Any, T]) -> T:
    # Copied here, in the caller's thread: a new thread would otherwise start with an empty
    # context and no current actor.
    context = contextvars.copy_context()

    def run_in_context() -> T:
        return context.run(asyncio.run, coro)

    # A fresh single-use thread per call rather than a shared pool: a tool running on a worker
    # may itself call a sync tool, and a bounded shared pool could then deadlock on itself.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hacs-tools")
    try:
        future = pool.submit(run_in_context)
    except BaseException:
        coro.close()  # never started: close it so Python does not warn it was never awaited
        pool.shutdown(wait=False)
        raise
    try:
        return future.result()
    finally:
        # Not waiting keeps an interrupt of the caller (KeyboardInterrupt) prompt; the worker
        # finishes its call on its own and the interpreter joins it at exit.
        pool.shutdown(wait=False)
