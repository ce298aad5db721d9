"""Tests for ``hacs_auth.context``: the current-actor ContextVar helpers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from hacs_auth import (
    Actor,
    acting_as,
    configure_hacs,
    get_current_actor,
    reset_current_actor,
    set_current_actor,
)


@pytest.fixture(autouse=True)
def _no_actor() -> Iterator[None]:
    token = set_current_actor(None)
    yield
    reset_current_actor(token)


def _actor(name: str) -> Actor:
    return Actor(name=name, role="agent", permissions=["patient:read"])


def test_default_is_none() -> None:
    assert get_current_actor() is None


def test_set_and_reset() -> None:
    alice, bob = _actor("alice"), _actor("bob")
    t1 = set_current_actor(alice)
    assert get_current_actor() is alice
    t2 = set_current_actor(bob)
    assert get_current_actor() is bob
    reset_current_actor(t2)
    assert get_current_actor() is alice
    reset_current_actor(t1)
    assert get_current_actor() is None


def test_set_rejects_non_actor() -> None:
    with pytest.raises(TypeError):
        set_current_actor({"id": "x"})  # type: ignore[arg-type]
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
    assert get_current_actor() is None


def test_configure_hacs() -> None:
    alice = _actor("alice")
    configure_hacs(current_actor=alice)
    assert get_current_actor() is alice
    configure_hacs()  # omitted: unchanged
    assert get_current_actor() is alice
    configure_hacs(current_actor=None)
    assert get_current_actor() is None


async def test_tasks_are_isolated() -> None:
    alice, bob = _actor("alice"), _actor("bob")
    configure_hacs(current_actor=alice)
    seen: list[Actor | None] = []

    async def worker() -> None:
        seen.append(get_current_actor())
        set_current_actor(bob)
        await asyncio.sleep(0)
        seen.append(get_current_actor())

    await asyncio.create_task(worker())
    assert seen == [alice, bob]
    assert get_current_actor() is alice  # the task's change did not leak out


def test_new_threads_start_without_actor() -> None:
    configure_hacs(current_actor=_actor("alice"))
    seen: list[Actor | None] = []
    thread = threading.Thread(target=lambda: seen.append(get_current_actor()))
    thread.start()
    thread.join()
    assert seen == [None]
