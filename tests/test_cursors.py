"""Keyset cursors are opaque and authenticated: no patient data in them, no tampering, no replay."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from datetime import date
from typing import Any

import pytest

from hacs_models import HumanName, Patient
from hacs_persistence.adapter import PostgreSQLAdapter
from hacs_persistence.errors import ConfigurationError, InvalidQueryError
from tests.factories import ADMIN

FAMILY = "Zyqwarnblatt"
BIRTH = date(1931, 7, 14)


async def _patients(adapter: Any, count: int) -> list[Patient]:
    saved = []
    for index in range(count):
        family = None if index % 5 == 4 else f"{FAMILY}{index % 3}"
        patient = Patient(
            name=[HumanName(family=family, given=["Ada"])] if family else [],
            birth_date=BIRTH if index % 2 else None,
        )
        saved.append(await adapter.save(patient, ADMIN))
    return saved


def _decodings(cursor: str) -> list[bytes]:
    """Everything a curious reader might try on the cursor text."""
    found = [cursor.encode()]
    padded = cursor + "=" * (-len(cursor) % 4)
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        for text in (padded, cursor):
            with contextlib.suppress(binascii.Error, ValueError):
                found.append(decode(text))
    with contextlib.suppress(ValueError):
        found.append(bytes.fromhex(cursor))
    return found


def _planted(value: str) -> list[bytes]:
    return [value.encode(), value.lower().encode(), value.encode().hex().encode()]


async def test_cursor_text_holds_no_sort_value_in_any_decoding(granular: PostgreSQLAdapter) -> None:
    await _patients(granular, 6)
    for order_by, secret in (("family_name", FAMILY), ("-birth_date", BIRTH.isoformat())):
        page = await granular.search(Patient, ADMIN, order_by=order_by, limit=1)
        assert page.next_cursor is not None
        for decoded in _decodings(page.next_cursor):
            for planted in _planted(secret):
                assert planted not in decoded
        # The last row's id is not readable either.
        for decoded in _decodings(page.next_cursor):
            assert page.items[0].id.encode() not in decoded


async def test_pagination_returns_every_row_once(adapter: Any) -> None:
    saved = await _patients(adapter, 11)
    orders = ["id", "-id"]
    if adapter.typed_storage:
        orders += ["family_name", "-family_name", "birth_date", "-birth_date"]
    for order_by in orders:
        seen: list[str] = []
        cursor = None
        while True:
            page = await adapter.search(Patient, ADMIN, order_by=order_by, limit=3, cursor=cursor)
            seen.extend(p.id for p in page)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(p.id for p in saved), order_by


def _flipped(cursor: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


async def test_tampered_truncated_or_forged_cursors_are_invalid_queries(adapter: Any) -> None:
    await _patients(adapter, 4)
    page = await adapter.search(Patient, ADMIN, limit=1)
    cursor = page.next_cursor
    assert cursor is not None
    raw_length = len(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    deep = "[" * 100_000 + "]" * 100_000
    bad = [
        *(_flipped(cursor, i) for i in (0, 5, raw_length // 2, raw_length - 1)),
        cursor[:-4],
        cursor[: len(cursor) // 2],
        "",
        "not a cursor!",
        cursor + "A" * 10_000,
        # What the old, merely encoded cursors looked like, and a deeply nested one.
        base64.urlsafe_b64encode(json.dumps(["id", None, True, "x"]).encode()).decode(),
        base64.urlsafe_b64encode(deep.encode()).decode().rstrip("="),
        deep,
    ]
    for forged in bad:
        with pytest.raises(InvalidQueryError) as caught:
            await adapter.search(Patient, ADMIN, limit=1, cursor=forged)
        assert cursor not in str(caught.value)


async def test_a_cursor_cannot_be_replayed_on_another_search(granular: PostgreSQLAdapter) -> None:
    await _patients(granular, 6)
    page = await granular.search(
        Patient, ADMIN, filters={"family_name__prefix": FAMILY}, order_by="family_name", limit=1
    )
    assert page.next_cursor is not None
    others: list[dict[str, Any]] = [
        {"filters": {"family_name__prefix": FAMILY + "1"}, "order_by": "family_name"},
        {"filters": {"family_name__prefix": FAMILY}, "order_by": "-family_name"},
        {"filters": {}, "order_by": "family_name"},
    ]
    for options in others:
        with pytest.raises(InvalidQueryError):
            await granular.search(Patient, ADMIN, limit=1, cursor=page.next_cursor, **options)
    from hacs_models import Practitioner

    with pytest.raises(InvalidQueryError):
        await granular.search(Practitioner, ADMIN, limit=1, cursor=page.next_cursor)
    # The same search still pages on.
    again = await granular.search(
        Patient,
        ADMIN,
        filters={"family_name__prefix": FAMILY},
        order_by="family_name",
        limit=1,
        cursor=page.next_cursor,
    )
    assert len(again) == 1


async def test_cursor_key_comes_from_configuration(
    granular: PostgreSQLAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _patients(granular, 3)
    monkeypatch.setenv("HACS_CURSOR_SECRET", "c" * 48)
    page = await granular.search(Patient, ADMIN, limit=1)
    assert page.next_cursor is not None
    assert len(await granular.search(Patient, ADMIN, limit=1, cursor=page.next_cursor)) == 1
    # Another secret (another deployment, or a rotated one) does not open it.
    monkeypatch.setenv("HACS_CURSOR_SECRET", "d" * 48)
    with pytest.raises(InvalidQueryError):
        await granular.search(Patient, ADMIN, limit=1, cursor=page.next_cursor)
    monkeypatch.setenv("HACS_CURSOR_SECRET", "short")
    with pytest.raises(ConfigurationError):
        await granular.search(Patient, ADMIN, limit=1)
    # Neither secret: a key of this process, cursors still work here.
    monkeypatch.delenv("HACS_CURSOR_SECRET")
    monkeypatch.delenv("HACS_JWT_SECRET")
    page = await granular.search(Patient, ADMIN, limit=1)
    assert page.next_cursor is not None
    assert len(await granular.search(Patient, ADMIN, limit=1, cursor=page.next_cursor)) == 1
