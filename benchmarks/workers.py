"""Work done in a separate process, as an Airflow task would do it.

``python -m benchmarks.workers score HOME PLAN_JSON INDEX`` scores one
partition of a plan (what one mapped ``score`` task runs) and prints JSON:
seconds, rows and the process's peak resident set size.

``parse DAGS_FOLDER REPEATS`` parses every DAG file of a folder with
Airflow's ``DagBag`` and prints each file's parse seconds (best of REPEATS).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def peak_rss_bytes() -> int:
    """Peak resident set size of this process's memory (``VmHWM``).

    Not ``getrusage``'s ``ru_maxrss``: Linux carries that over ``fork`` and
    ``exec``, so a worker started by a big parent reports the parent's peak.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def score(home: str, plan_json: str, index: str) -> dict:
    from credit_batch import pipeline
    from credit_batch.config import Settings
    from credit_batch.run import Plan

    plan = Plan.from_xcom(json.loads(Path(plan_json).read_text()))
    partition = next(p for p in plan.partitions if p["index"] == int(index))
    before = peak_rss_bytes()
    t0 = time.perf_counter()
    done = pipeline.score_partition(Settings(home=Path(home)), plan.run, partition)
    return {
        "seconds": time.perf_counter() - t0,
        "rows": done["rows_scored"] + done["rows_quarantined"],
        "peak_rss_bytes": peak_rss_bytes(),
        "rss_before_bytes": before,
    }


def parse(dags_folder: str, repeats: str) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    best: dict[str, float] = {}
    for _ in range(int(repeats)):
        bag = DagBag(dag_folder=dags_folder)
        if bag.import_errors:
            raise SystemExit(f"import errors: {bag.import_errors}")
        for stat in bag.dagbag_stats:
            seconds = (
                stat.duration.total_seconds()
                if hasattr(stat.duration, "total_seconds")
                else float(stat.duration)
            )
            name = Path(stat.file).name
            best[name] = min(best.get(name, float("inf")), seconds)
    return best


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    print(json.dumps({"score": score, "parse": parse}[command](*args)))
