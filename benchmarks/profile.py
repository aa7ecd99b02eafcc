"""Profile one run's steps with pyinstrument; write ``profile.txt``.

    python -m benchmarks.profile --rows 2000000 --out benchmarks/results

The run is warmed first (imports, folders, tables), then extract, the score
step (every partition, in this process, one thread each as a task) and load
are profiled; the text tree shows where the time goes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks import figures


def main(argv: list[str] | None = None) -> int:
    from pyinstrument import Profiler

    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="credit-batch-profile-") as tmp:
        bench = figures.setup(
            Path(tmp), args.rows, partition_rows=1_000_000, chunk_rows=100_000, repeats=1
        )
        profiler = Profiler(interval=0.001)
        with profiler:
            figures.run_pipeline(bench)
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "profile.txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
