"""API keys of the HTTP service: made once, kept as a sha256, revoked by name.

A key is 32 random bytes (``secrets.token_urlsafe``) behind a ``cbk_``
prefix. Only its sha256 is stored: a key is random and long, so a fast hash
is enough (no password to stretch), and a stolen table lets no one in.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from credit_batch.checks import utcnow
from credit_batch.config import Settings
from credit_batch.errors import ParameterError
from credit_batch.stores import results
from credit_batch.stores.db import Database, read_sql

__all__ = ["create_key", "key_statuses", "revoke_key", "status_of"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PREFIX = "cbk_"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _checked_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ParameterError("key name", name, f"must match {_NAME.pattern}")
    return name


def create_key(db: Database, settings: Settings, name: str) -> str:
    """A new key named ``name`` (refused if the name is taken); returns the key, once."""
    import pyarrow as pa

    name = _checked_name(name)
    key = _PREFIX + secrets.token_urlsafe(32)
    with db.transaction():
        results.lock(db, settings, f"api_key/{name}")
        if db.fetch_arrow(
            read_sql(settings.sql_dir, "serve/key_by_name.sql"), {"name": name}
        ).num_rows:
            raise ParameterError("key name", name, "is taken (revoke it, or choose another)")
        row = {"name": name, "key_sha256": _digest(key), "created_at": utcnow()}
        db.bulk_insert("api_keys", pa.Table.from_pylist([row]))
    return key


def revoke_key(db: Database, settings: Settings, name: str) -> None:
    """Revoke the key ``name`` (ParameterError if there is none)."""
    name = _checked_name(name)
    found = db.fetch_arrow(read_sql(settings.sql_dir, "serve/key_by_name.sql"), {"name": name})
    if not found.num_rows:
        raise ParameterError("key name", name, "names no API key")
    db.execute(
        read_sql(settings.sql_dir, "serve/revoke_key.sql"), {"name": name, "revoked_at": utcnow()}
    )


def key_statuses(db: Database, settings: Settings) -> dict[str, str]:
    """Every key's sha256 and its status, ``valid`` or ``revoked`` (one small read)."""
    found = db.fetch_arrow(read_sql(settings.sql_dir, "serve/keys.sql")).to_pylist()
    return {r["key_sha256"]: "revoked" if r["revoked_at"] is not None else "valid" for r in found}


def status_of(key: str, statuses: dict[str, str]) -> str:
    """``valid``, ``revoked`` or ``unknown``: ``key`` looked up by its sha256 in ``statuses``."""
    if not key.startswith(_PREFIX) or len(key) > 128:
        return "unknown"
    return statuses.get(_digest(key), "unknown")
