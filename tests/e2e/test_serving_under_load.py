"""Lookups over HTTP (a real uvicorn server) while the nightly load replaces the slice."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from credit_batch import serve
from tests.conftest import free_port, query, run_pipeline

pytestmark = pytest.mark.e2e

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")


@pytest.fixture
def server(demo):
    """The demo scored once, a key, and ``credit-batch serve`` on a free port."""
    import httpx

    settings, _, _ = demo
    run_pipeline(settings, snapshot_date="2026-10-31", sample_rows=500, repeats=1)
    key = serve.create_api_key(settings, "load-test")
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("credit-batch")), "serve", "--port", str(port)],
        env={**os.environ, "CREDIT_BATCH_HOME": str(settings.home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    client.headers["Authorization"] = f"Bearer {key}"
    try:
        for _ in range(150):
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield settings, client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=30)


def test_lookups_during_a_load_see_the_old_or_the_new_slice_and_never_fail(server):
    settings, client = server
    [old] = query(settings, "SELECT run_id FROM scoring_runs")
    answers, done = [], threading.Event()

    def ask() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            got = client.get("/v1/customers/1/score")
            run_id = got.json().get("run_id") if got.status_code == 200 else got.text
            answers.append((got.status_code, run_id, time.perf_counter() - t0))
            time.sleep(max(0.0, 0.01 - (time.perf_counter() - t0)))  # about 100 per second

    asker = threading.Thread(target=ask)
    asker.start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    run_pipeline(settings, snapshot_date="2026-10-31", sample_rows=500, repeats=1)
    load_seconds = time.perf_counter() - t0
    [new] = query(
        settings, "SELECT run_id FROM scoring_runs WHERE run_id <> :o", {"o": old["run_id"]}
    )
    deadline = time.perf_counter() + 3 * serve.CACHE_SECONDS  # the service sees it within
    while time.perf_counter() < deadline and answers[-1][1] != new["run_id"]:
        time.sleep(0.1)
    done.set()
    asker.join(timeout=60)
    assert {status for status, _, _ in answers} == {200}, answers[:5]
    assert {run_id for _, run_id, _ in answers} <= {old["run_id"], new["run_id"]}
    assert answers[-1][1] == new["run_id"] and answers[0][1] == old["run_id"]
    assert load_seconds < 60  # the load's lock budget is never exhausted by the readers
    assert len(answers) > 20
