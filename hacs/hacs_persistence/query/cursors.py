"""Opaque keyset cursors: the last row's sort value and id, encrypted and bound to their query.

A cursor carries the sort value of the last row of a page (a family name, a birth date): patient
data. It is therefore sealed with AES-GCM (``cryptography``), never merely encoded, and its
authenticated data is the query it belongs to (resource type, filter shape and values, order,
patient scope), so a cursor cannot be read, altered, or replayed on another search.

The key, in order of preference:

* ``HACS_CURSOR_SECRET`` (at least 32 characters), stretched with HKDF-SHA256;
* else a key derived with HKDF-SHA256 from ``HACS_JWT_SECRET`` (its own ``info``, so the cursor
  key is never the token key);
* else a random key of this process. Cursors then work only in the process that issued them
  (until it restarts); deployments with several processes behind one client set either secret
  identically everywhere. A per-process key keeps searches working with no configuration and
  never writes a secret into the database, where every reader of the configuration table
  could use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hacs_persistence.errors import ConfigurationError, InvalidQueryError

__all__ = [
    "CURSOR_SECRET_ENV_VAR",
    "check_cursor_key",
    "open_cursor",
    "query_binding",
    "seal_cursor",
]

CURSOR_SECRET_ENV_VAR = "HACS_CURSOR_SECRET"
_JWT_SECRET_ENV_VAR = "HACS_JWT_SECRET"
_MIN_SECRET = 32
_VERSION = b"\x01"
_NONCE = 12
_TAG = 16
# Plaintexts are padded to a multiple of this, so a cursor's length says little about the value.
_BLOCK = 64
# Far above any cursor this module issues (an indexed text value is at most ~2.7 kB).
_MAX_CURSOR = 8192
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]+")
_PROCESS_KEY = AESGCM.generate_key(bit_length=256)
_INVALID = (
    "Invalid cursor: pass back the next_cursor of the same search (same filters and order_by)."
)


@lru_cache(maxsize=8)
def _derive(secret: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())


def _key() -> bytes:
    """The cursor key of the current configuration (read each time: settings can change)."""
    secret = os.environ.get(CURSOR_SECRET_ENV_VAR)
    if secret:
        if len(secret) < _MIN_SECRET:
            raise ConfigurationError(
                f"{CURSOR_SECRET_ENV_VAR} must be at least {_MIN_SECRET} characters; generate one "
                'with `python -c "import secrets; print(secrets.token_urlsafe(48))"`.'
            )
        return _derive(secret, b"hacs keyset cursor v1")
    jwt_secret = os.environ.get(_JWT_SECRET_ENV_VAR)
    if jwt_secret:
        return _derive(jwt_secret, b"hacs keyset cursor from jwt secret v1")
    return _PROCESS_KEY


def check_cursor_key() -> None:
    """Raise ``ConfigurationError`` now, before any SQL, if the cursor secret is unusable."""
    _key()


def query_binding(resource_type: str, shape: str, values: dict[str, Any]) -> bytes:
    """The authenticated data of a query's cursors: what was asked, with a digest of the values.

    Only a digest of the filter values goes in, and it is never part of the cursor text.
    """
    canonical = json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"hacs-cursor|{resource_type}|{shape}|{digest}".encode()


def seal_cursor(payload: list[Any], binding: bytes) -> str:
    """Encrypt and authenticate ``payload`` (JSON) for the query of ``binding``."""
    plain = json.dumps(payload, separators=(",", ":")).encode()
    plain += b" " * (-len(plain) % _BLOCK)  # JSON ignores trailing whitespace
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(_key()).encrypt(nonce, plain, binding)
    return base64.urlsafe_b64encode(_VERSION + nonce + sealed).decode().rstrip("=")


def open_cursor(cursor: object, binding: bytes) -> list[Any]:
    """The payload of a cursor this module sealed for the same query; else InvalidQueryError.

    Tampered, truncated, foreign, oversized or replayed cursors all fail the same way, before
    any JSON is parsed (so no crafted nesting ever reaches the parser).
    """
    if (
        not isinstance(cursor, str)
        or len(cursor) > _MAX_CURSOR
        or not _CURSOR_TEXT.fullmatch(cursor)
    ):
        raise InvalidQueryError(_INVALID)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise InvalidQueryError(_INVALID) from None
    if len(raw) < 1 + _NONCE + _TAG or raw[:1] != _VERSION:
        raise InvalidQueryError(_INVALID)
    nonce, sealed = raw[1 : 1 + _NONCE], raw[1 + _NONCE :]
    try:
        plain = AESGCM(_key()).decrypt(nonce, sealed, binding)
    except InvalidTag:
        raise InvalidQueryError(_INVALID) from None
    try:
        payload = json.loads(plain)
    except ValueError:
        raise InvalidQueryError(_INVALID) from None
    if not isinstance(payload, list):
        raise InvalidQueryError(_INVALID)
    return payload
