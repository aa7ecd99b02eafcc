"""Named fault points, so reliability tests can break a step exactly there.

``CREDIT_BATCH_FAULT=<point>[:<action>]`` makes the process that reaches
``<point>`` do ``<action>``:

``kill`` (the default)
    SIGKILL itself: no ``finally`` blocks, no rollback, no flush; the same as
    the OOM killer or a lost worker.
``unavailable``
    raise :class:`~credit_batch.errors.ServiceUnavailableError` (retryable).
``error``
    raise :class:`~credit_batch.errors.DataError` (permanent).
``pause``
    write ``<point>.reached`` in ``CREDIT_BATCH_FAULT_DIR`` and wait (up to
    :data:`PAUSE_SECONDS`) for ``<point>.go`` there: a barrier a test holds
    open while it starts a second run.

``CREDIT_BATCH_FAULT_ONCE=<path>`` fires the fault only while ``<path>`` does
not exist, and creates it when it fires: a first try fails, its retry goes
through. Unset (always, in production), a fault point costs one lookup.

Points: see :data:`POINTS`.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from credit_batch.errors import DataError, ServiceUnavailableError

__all__ = [
    "ACTIONS",
    "PAUSE_SECONDS",
    "POINTS",
    "fault_point",
]

logger = logging.getLogger(__name__)

POINTS = (
    "extract.after_first_part",
    "extract.before_return",
    "lake.before_rename",
    "score.after_first_chunk",
    "score.before_manifest",
    "score.after_manifest",
    "load.after_delete",
    "load.after_insert",
    "load.before_commit",
    "load.after_commit",
    "importance.before_commit",
    "registry.before_register",
    "promote.between_updates",
    "stream.after_write",
)
ACTIONS = ("kill", "unavailable", "error", "pause")
#: A paused process gives up waiting (and goes on) after this many seconds.
PAUSE_SECONDS = 300.0


def fault_point(name: str) -> None:
    """Break here if ``CREDIT_BATCH_FAULT`` names this point (see the module's docstring)."""
    wanted = os.environ.get("CREDIT_BATCH_FAULT")
    if not wanted or wanted.partition(":")[0] != name or not _first_time():
        return
    action = wanted.partition(":")[2] or "kill"
    logger.warning("fault point %s: %s (process %d)", name, action, os.getpid())
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "unavailable":
        raise ServiceUnavailableError(f"fault point {name}: planted unavailable service")
    elif action == "error":
        raise DataError(f"fault point {name}: planted permanent error")
    elif action == "pause":
        _pause(name)


def _first_time() -> bool:
    once = os.environ.get("CREDIT_BATCH_FAULT_ONCE")
    if not once:
        return True
    try:
        Path(once).touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


def _pause(name: str) -> None:
    folder = Path(os.environ.get("CREDIT_BATCH_FAULT_DIR", "."))
    (folder / f"{name}.reached").write_text(str(os.getpid()))
    deadline = time.monotonic() + PAUSE_SECONDS
    while not (folder / f"{name}.go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
