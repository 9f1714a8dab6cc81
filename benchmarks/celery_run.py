"""Wall time of a run of 1,000 task results on Celery workers beside the eager runner's.

    python -m benchmarks.celery_run                  # 1,000 task results, 2 workers
    python -m benchmarks.celery_run --workers 1 2 --durability none

Starts its own ``redis-server`` on a free loopback port and ``celery worker`` processes
(one pool process each), all on one file log per runner, and stops them at the end.
The task does nothing: the figures are the runners' own cost per task result (a message
through the broker, the claim and the ending recorded in the log, what runs next).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.pipelines import ExtractTask, QuietReporter
from pipelines_events.conf import settings
from pipelines_events.pipeline import Pipeline
from pipelines_events.results.helpers import reset_storage_object
from pipelines_events.runners.eager import Runner as EagerRunner
from pipelines_events.runners.process import Runner as ProcessRunner

STORAGE = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"


ITEMS = 1000


class Thousand(Pipeline):
    """One task of 1,000 task results, doing nothing (workers import it by its id)."""

    work = ExtractTask(config={"items": ITEMS})


def _storage(path: Path, durability: str) -> tuple[str, dict[str, Any]]:
    return (STORAGE, {"path": str(path), "durability": durability})


def _timed(pipeline: Pipeline, run_id: str, runner: Any) -> tuple[float, str]:
    started = time.perf_counter()
    execution = pipeline.start(run_id, None, runner, QuietReporter())
    return time.perf_counter() - started, execution.get_status().name


def main(argv: list[str] | None = None) -> int:
    # Workers import the pipeline by its id: the one of this module, not of __main__.
    from benchmarks.celery_run import Thousand
    from pipelines_events.runners.celery import Runner as CeleryRunner
    from tests.integration.celery_support import cluster

    parser = argparse.ArgumentParser(prog="python -m benchmarks.celery_run")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[2], help="worker counts to time (2)"
    )
    parser.add_argument("--durability", choices=("fsync", "none"), default="fsync")
    args = parser.parse_args(argv)

    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="celery-bench-") as tmp:
        root = Path(tmp)
        pipeline = Thousand()
        spec = _storage(root / "eager.jsonl", args.durability)
        with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=spec):
            rows.append(("eager", *_timed(pipeline, "eager", EagerRunner())))
            reset_storage_object()
        for count in args.workers:
            spec = _storage(root / f"process-{count}.jsonl", args.durability)
            with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=spec):
                rows.append(
                    (f"process, {count} workers", *_timed(pipeline, "p", ProcessRunner(count)))
                )
                reset_storage_object()
        for count in args.workers:
            directory = root / f"celery-{count}"
            spec = _storage(directory / "log.jsonl", args.durability)
            workers = [(f"w{i + 1}", ("celery",)) for i in range(count)]
            with (
                cluster(directory, spec, workers) as started,
                settings.override_settings(**started.settings()),
            ):
                runner = CeleryRunner(wait=True, timeout=300, poll=0.01)
                rows.append((f"celery, {count} workers", *_timed(pipeline, "c", runner)))
                reset_storage_object()

    eager = rows[0][1]
    print(f"{ITEMS} task results, durability={args.durability}")
    print(f"{'runner':<22} {'wall s':>8} {'ms/result':>10} {'x eager':>8}  status")
    for name, seconds, status in rows:
        per = seconds / ITEMS * 1000
        print(f"{name:<22} {seconds:>8.2f} {per:>10.2f} {seconds / eager:>8.1f}  {status}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
