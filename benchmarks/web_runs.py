"""Time the web page's run list on a log of many runs, once the storage is open.

    python -m benchmarks.web_runs /tmp/runs-100k.jsonl --runs 100000

writes the log first when the file does not exist (:func:`benchmarks.make_log.make_log`,
one pipeline result, one task and one task result per run: 20 events a run), opens a
read-only storage, then times, best of ``--repeat``:

- the first page's records (:func:`pipelines_events.web.data.run_page`), newest first;
- the same with a status filter (which looks at every execution);
- the first page as the server answers it (``GET /`` and ``GET /api/runs`` through the ASGI
  app in this process: routing, the guard, the records and the HTML), the request's
  server time;
- the baseline measured in the same run: one run's summary, as ``runs`` builds it for every
  run, times the page size (what a page must at least cost).

Needs the ``web`` extra and httpx (in the ``test`` extra).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette would rather have httpx2; httpx does the job
    from starlette.testclient import TestClient

from benchmarks.make_log import make_log
from pipelines_events.cli import render
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.web import create_app
from pipelines_events.web.data import PER_PAGE, RunFilter, run_page

EVENTS_PER_RUN = 20


def _best(work: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="the log (written first when missing)")
    parser.add_argument("--runs", type=int, default=100_000, help="runs to write (default 1e5)")
    parser.add_argument("--repeat", type=int, default=20, help="best of this many (default 20)")
    args = parser.parse_args()
    if not args.path.exists():
        started = time.perf_counter()
        make_log(args.path, args.runs * EVENTS_PER_RUN, results=1, tasks=1, parts=1)
        print(f"wrote {args.path} in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    storage = EventLogPipelineResultsStorage(args.path, readonly=True, snapshots=False)
    opened = time.perf_counter() - started
    runs = len(storage.results.executions())
    print(f"{args.path}: {runs} runs, {storage.log.position.seq} events; opened in {opened:.1f} s")

    first = _best(lambda: run_page(storage, RunFilter(), 1, PER_PAGE), args.repeat)
    done = RunFilter(status=PipelineTaskStatus.DONE)
    filtered = _best(lambda: run_page(storage, done, 1, PER_PAGE), args.repeat)
    last_page = (runs + PER_PAGE - 1) // PER_PAGE
    deep = _best(lambda: run_page(storage, RunFilter(), last_page, PER_PAGE), args.repeat)
    one = storage.get_pipeline_executions()[-1]
    baseline = _best(lambda: render.run_summary(storage, one), args.repeat) * PER_PAGE
    storage.close()

    app = create_app(args.path)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/").status_code == 200
        html = _best(lambda: client.get("/"), args.repeat)
        api = _best(lambda: client.get("/api/runs"), args.repeat)

    rows = [
        ("first page: records", first),
        ("first page: records, status=DONE", filtered),
        (f"last page ({last_page}): records", deep),
        ("GET / (HTML) in process", html),
        ("GET /api/runs in process", api),
    ]
    print(f"baseline: {PER_PAGE} run summaries = {baseline * 1000:.2f} ms")
    for name, seconds in rows:
        print(f"{name:<38} {seconds * 1000:8.2f} ms  {seconds / baseline:6.1f}x baseline")


if __name__ == "__main__":
    main()
