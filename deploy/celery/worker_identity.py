"""The name a Celery worker of the one-machine deployment gives its task instances.

On separate machines Airflow records each task instance's host name; here the
two workers share one host, so each reports ``<worker>@<host>`` (from
``CREDIT_BATCH_WORKER_NAME``), and the UI and the REST API say which ran what.
Set as ``[core] hostname_callable = worker_identity.hostname``.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    name = os.environ.get("CREDIT_BATCH_WORKER_NAME")
    return f"{name}@{socket.getfqdn()}" if name else socket.getfqdn()
