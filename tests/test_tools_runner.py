"""run_sync: the bridge the sync tools use, with and without a running event loop."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from hacs_tools.runner import run_sync

_marker: contextvars.ContextVar[str | None] = contextvars.ContextVar("marker", default=None)


async def _where() -> tuple[int, asyncio.AbstractEventLoop, str | None]:
    await asyncio.sleep(0)
    return threading.get_ident(), asyncio.get_running_loop(), _marker.get()


async def _set_marker() -> None:
    _marker.set("changed inside")


async def _boom() -> None:
    raise ValueError("boom")


async def test_inside_a_running_loop_runs_on_a_worker_thread_with_the_callers_context() -> None:
    token = _marker.set("caller")
    try:
        thread, loop, seen = run_sync(_where())
    finally:
        _marker.reset(token)
    assert thread != threading.get_ident()
    assert loop is not asyncio.get_running_loop()
    assert seen == "caller"


async def test_without_a_loop_runs_in_the_calling_thread_with_its_context() -> None:
    def plain() -> tuple[int, tuple[int, asyncio.AbstractEventLoop, str | None]]:
        _marker.set("plain thread")
        return threading.get_ident(), run_sync(_where())

    caller, (thread, loop, seen) = await asyncio.to_thread(plain)
    assert thread == caller
    assert loop is not asyncio.get_running_loop()
    assert seen == "plain thread"


async def test_context_changes_inside_do_not_leak_out() -> None:
    token = _marker.set("caller")
    try:
        run_sync(_set_marker())
        assert _marker.get() == "caller"
    finally:
        _marker.reset(token)


async def test_exceptions_reach_the_caller() -> None:
    with pytest.raises(ValueError, match="boom"):
        run_sync(_boom())
    with pytest.raises(ValueError, match="boom"):
        await asyncio.to_thread(run_sync, _boom())


async def test_nested_sync_calls_from_a_worker_do_not_deadlock() -> None:
    async def outer() -> str | None:
        # Runs on a worker's loop, so this inner call needs a worker of its own.
        return run_sync(_where())[2]

    token = _marker.set("nested")
    try:
        assert run_sync(outer()) == "nested"
    finally:
        _marker.reset(token)
