"""Named fault points, so reliability tests can kill a step exactly there.

``CREDIT_BATCH_FAULT=<point>`` makes the process that reaches ``<point>``
kill itself with SIGKILL: no ``finally`` blocks, no rollback, no flush; the
same as the OOM killer or a lost worker. Unset (always, in production), a
fault point costs one dictionary lookup.

Points: see :data:`POINTS`.
"""

from __future__ import annotations

import logging
import os
import signal

logger = logging.getLogger(__name__)

POINTS = (
    "extract.after_first_part",
    "extract.before_return",
    "lake.before_rename",
    "score.after_first_chunk",
    "score.before_manifest",
    "load.after_delete",
    "load.after_insert",
    "load.before_commit",
    "load.after_commit",
    "importance.before_commit",
    "registry.before_register",
    "promote.between_updates",
)


def fault_point(name: str) -> None:
    """Die here with SIGKILL if ``CREDIT_BATCH_FAULT`` names this point."""
    if os.environ.get("CREDIT_BATCH_FAULT") == name:
        logger.warning("fault point %s: killing process %d", name, os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)
