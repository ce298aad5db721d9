"""Tests for ``hacs_auth.context``: the current actor is set only for a scope."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

import hacs_auth
from hacs_auth import Actor, acting_as, configure_hacs, get_current_actor


@pytest.fixture(autouse=True)
def _no_actor() -> Iterator[None]:
    with acting_as(None):
        yield


def _actor(name: str) -> Actor:
    return Actor(name=name, role="agent", permissions=["patient:read"])


def test_default_is_none() -> None:
    assert get_current_actor() is None


def test_token_functions_are_not_public() -> None:
    # A bare set without its reset is exactly the leak; only scoped helpers are exported.
    assert not hasattr(hacs_auth, "set_current_actor")
    assert not hasattr(hacs_auth, "reset_current_actor")
    assert "set_current_actor" not in hacs_auth.__all__


def test_acting_as_rejects_non_actor() -> None:
    with pytest.raises(TypeError, match="Actor or None"):
        acting_as({"id": "x"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Actor or None"):
        configure_hacs(current_actor="alice")  # type: ignore[arg-type]
    assert get_current_actor() is None


def test_acting_as_nests_and_restores_on_error() -> None:
    alice, bob = _actor("alice"), _actor("bob")
    with acting_as(alice) as current:
        assert current is alice
        assert get_current_actor() is alice
        with pytest.raises(RuntimeError), acting_as(bob):
            assert get_current_actor() is bob
            raise RuntimeError("boom")
        assert get_current_actor() is alice
        with acting_as(None):
            assert get_current_actor() is None
        assert get_current_actor() is alice
    assert get_current_actor() is None


def test_acting_as_object_can_be_reentered() -> None:
    alice = _actor("alice")
    scope = acting_as(alice)
    assert scope.actor is alice
    with scope:
        with scope:
            assert get_current_actor() is alice
        assert get_current_actor() is alice
    assert get_current_actor() is None
    with scope:
        assert get_current_actor() is alice
    assert get_current_actor() is None


def test_acting_as_decorates_sync_functions() -> None:
    alice = _actor("alice")
    seen: list[Actor | None] = []

    @acting_as(alice)
    def job(x: int) -> int:
        """Doc."""
        seen.append(get_current_actor())
        if x < 0:
            raise ValueError("negative")
        return x * 2

    assert job.__name__ == "job" and job.__doc__ == "Doc."
    assert get_current_actor() is None  # decorating sets nothing
    assert job(2) == 4
    assert seen == [alice]
    assert get_current_actor() is None
    with pytest.raises(ValueError, match="negative"):
        job(-1)
    assert get_current_actor() is None


async def test_acting_as_decorates_async_functions() -> None:
    alice = _actor("alice")
    seen: list[Actor | None] = []

    @acting_as(alice)
    async def job() -> str:
        await asyncio.sleep(0)
        seen.append(get_current_actor())  # current while the coroutine runs
        return "done"

    assert asyncio.iscoroutinefunction(job)
    coro = job()
    assert get_current_actor() is None  # creating the coroutine sets nothing
    assert await coro == "done"
    assert seen == [alice]
    assert get_current_actor() is None
    assert list(await asyncio.gather(job(), job())) == ["done", "done"]
    assert seen == [alice, alice, alice]


def test_acting_as_refuses_generator_functions() -> None:
    def gen() -> Iterator[int]:
        yield 1

    async def agen() -> object:  # pragma: no cover - never run
        yield 1

    for func in (gen, agen):
        with pytest.raises(TypeError, match="generator"):
            acting_as(_actor("alice"))(func)


def test_configure_hacs_is_a_context_manager() -> None:
    alice, bob = _actor("alice"), _actor("bob")
    with configure_hacs(current_actor=alice) as current:
        assert current is alice
        assert get_current_actor() is alice
        with configure_hacs():  # omitted: unchanged
            assert get_current_actor() is alice
        with configure_hacs(current_actor=None):
            assert get_current_actor() is None
        with configure_hacs(current_actor=bob):
            assert get_current_actor() is bob
        assert get_current_actor() is alice
    assert get_current_actor() is None


def test_configure_hacs_works_with_exit_stack() -> None:
    alice = _actor("alice")
    with ExitStack() as stack:
        stack.enter_context(configure_hacs(current_actor=alice))
        assert get_current_actor() is alice
    assert get_current_actor() is None


def test_bare_configure_hacs_sets_nothing_and_warns() -> None:
    # Regression (finding 6): a bare call used to leave the actor current for good.
    with pytest.warns(RuntimeWarning, match=r"acting_as\(actor\)"):
        configure_hacs(current_actor=_actor("alice"))
        gc.collect()
    assert get_current_actor() is None
    with pytest.warns(RuntimeWarning, match="never entered"):
        acting_as(_actor("bob"))
        gc.collect()
    assert get_current_actor() is None


def _bare_configure(actor: Actor) -> None:
    """What callers used to do to "set" the actor: a plain call, no ``with``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        configure_hacs(current_actor=actor)
        gc.collect()


def test_reused_worker_thread_does_not_inherit_previous_actor() -> None:
    # Regression (finding 6): job 1 "configures" the actor the way callers used to; job 2
    # runs on the same pooled thread without authenticating and must not run as job 1's.
    alice = _actor("alice")

    def job_1() -> int:
        _bare_configure(alice)
        return threading.get_ident()

    def job_2() -> tuple[int, Actor | None]:
        return threading.get_ident(), get_current_actor()

    with ThreadPoolExecutor(max_workers=1) as pool:
        thread_1 = pool.submit(job_1).result()
        thread_2, seen = pool.submit(job_2).result()
    assert thread_1 == thread_2  # really the same reused worker
    assert seen is None


def test_scoped_job_does_not_leak_to_next_job_on_worker() -> None:
    alice = _actor("alice")

    @acting_as(alice)
    def decorated_job() -> Actor | None:
        return get_current_actor()

    def with_job() -> Actor | None:
        with configure_hacs(current_actor=alice):
            return get_current_actor()

    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(decorated_job).result() is alice
        assert pool.submit(get_current_actor).result() is None
        assert pool.submit(with_job).result() is alice
        assert pool.submit(get_current_actor).result() is None


async def test_next_task_does_not_inherit_previous_actor() -> None:
    # Regression (finding 6), asyncio flavour: a handler awaited in this task "configures"
    # the actor; the task itself and a task created afterwards must still see nobody.
    alice = _actor("alice")

    async def handler_1() -> None:
        await asyncio.sleep(0)
        _bare_configure(alice)

    async def handler_2() -> Actor | None:
        return get_current_actor()

    await handler_1()
    assert await asyncio.create_task(handler_2()) is None
    assert get_current_actor() is None


async def test_scoped_task_does_not_leak() -> None:
    alice = _actor("alice")

    @acting_as(alice)
    async def handler_1() -> Actor | None:
        await asyncio.sleep(0)
        return get_current_actor()

    async def handler_2() -> Actor | None:
        with configure_hacs(current_actor=alice):
            await asyncio.sleep(0)
            return get_current_actor()

    assert await handler_1() is alice
    assert get_current_actor() is None
    assert await asyncio.create_task(handler_2()) is alice
    assert await handler_2() is alice
    assert get_current_actor() is None


async def test_tasks_are_isolated() -> None:
    alice, bob = _actor("alice"), _actor("bob")
    seen: list[Actor | None] = []

    async def worker() -> None:
        seen.append(get_current_actor())
        with acting_as(bob):
            await asyncio.sleep(0)
            seen.append(get_current_actor())
        seen.append(get_current_actor())

    with acting_as(alice):
        await asyncio.create_task(worker())
        assert get_current_actor() is alice  # the task's change did not leak out
    assert seen == [alice, bob, alice]
    assert get_current_actor() is None


def test_new_threads_start_without_actor() -> None:
    seen: list[Actor | None] = []
    with acting_as(_actor("alice")):
        thread = threading.Thread(target=lambda: seen.append(get_current_actor()))
        thread.start()
        thread.join()
    assert seen == [None]
