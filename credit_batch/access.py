"""Who may call the HTTP service: its API keys, made, revoked and checked by name.

The use-case functions the faces call (the ``api-key`` commands, the
service's bearer check); the keys themselves live in
:mod:`credit_batch.stores.keys` (only their sha256 is stored).
"""

from __future__ import annotations

from credit_batch.config import Settings
from credit_batch.stores import keys, results

__all__ = ["create_api_key", "key_status", "key_statuses", "revoke_api_key"]


def create_api_key(settings: Settings, name: str) -> str:
    """A new API key named ``name``: returned once, only its sha256 is stored."""
    with results.open_results(settings) as db:
        return keys.create_key(db, settings, name)


def revoke_api_key(settings: Settings, name: str) -> None:
    """Revoke the API key ``name``: every request with it gets a 403 from now on."""
    with results.open_results(settings) as db:
        keys.revoke_key(db, settings, name)


def key_statuses(settings: Settings) -> dict[str, str]:
    """Every key's status by its sha256 (none on a fresh home); only reads."""
    if not results.exists(settings):
        return {}
    with results.open_results(settings, read_only=True) as db:
        return keys.key_statuses(db, settings)


def key_status(key: str, statuses: dict[str, str]) -> str:
    """``valid``, ``revoked`` or ``unknown``: the status of ``key`` among ``statuses``."""
    return keys.status_of(key, statuses)
