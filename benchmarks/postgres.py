"""The PostgreSQL engine against a plain INSERT per event on the same server.

    python -m benchmarks.postgres              # 10^5 and 10^6 events for the open figures
    python -m benchmarks.postgres --quick      # smaller sizes (a smoke run)
    python -m benchmarks.postgres --open-only  # only the open figures (log, storage, CLI)
    python -m benchmarks.postgres --pipeline-only [--full]  # only the pipeline figures
    PIPELINES_EVENTS_TEST_POSTGRES_URL=postgresql://... python -m benchmarks.postgres

Starts its own throwaway server (``initdb`` and ``pg_ctl`` on a free loopback port, as
``tests/integration/postgres_server.py`` does for the tests) unless the environment
variable names one.
Every append commits with ``synchronous_commit`` on; the baseline is one autocommitted
``INSERT`` per event into a two-column table. Rounds interleave the engine and the
baseline; the figures are the best (min time) and median of the rounds. The pipeline
section runs the pipeline of ``benchmarks.run`` on the PostgreSQL log, the file log
(both durability fsync) and plain sqlite3 (WAL, synchronous FULL), in interleaved rounds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.measure import interleaved
from benchmarks.run import _run_baseline, _run_ours, run_pipeline_on
from pipelines_events.events import (
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    TASK_EXECUTION,
    TASK_RESULT,
    FieldSet,
    ObjectCreated,
    encode_attrs,
    encode_value,
)
from pipelines_events.log.chain import chain_draft, encode_event
from pipelines_events.log.postgres import PostgresEventLog
from pipelines_events.status import PipelineTaskStatus
from projections.runs import RunsProjection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the ``tests`` package
from tests.integration.postgres_server import ENV_URL, start_server


def _draft(writer: int, number: int, index: int = 0) -> FieldSet:
    return FieldSet(
        run_id=f"run-{writer}",
        kind=PIPELINE_EXECUTION,
        id=f"ex-{writer}",
        field="status",
        value=f"n{number}.{index}",
    )


def _engine_writer(url: str, schema: str, writer: int, appends: int, batch: int, barrier: Any,
                   out: Any) -> None:  # fmt: skip
    log = PostgresEventLog(url, schema=schema)
    drafts = [[_draft(writer, n, i) for i in range(batch)] for n in range(appends)]
    barrier.wait()
    started = time.perf_counter()
    for group in drafts:
        log.append(group)
    out.put(time.perf_counter() - started)
    log.close()


def _insert_writer(url: str, schema: str, writer: int, appends: int, batch: int, barrier: Any,
                   out: Any) -> None:  # fmt: skip
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET synchronous_commit = on")
    rows = [[encode_event(_draft(writer, n, i)) for i in range(batch)] for n in range(appends)]
    statement = f'INSERT INTO "{schema}".plain (line) VALUES (%s)'
    barrier.wait()
    started = time.perf_counter()
    with conn.cursor() as cur:
        for group in rows:
            if batch == 1:
                cur.execute(statement, (group[0],))
            else:
                with conn.transaction():
                    cur.executemany(statement, [(line,) for line in group])
    out.put(time.perf_counter() - started)
    conn.close()


def _round(target: Any, url: str, schema: str, writers: int, appends: int, batch: int) -> float:
    """Events per second of ``writers`` processes, each appending ``appends`` batches."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(writers)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(url, schema, w, appends, batch, barrier, out))
        for w in range(writers)
    ]
    for proc in procs:
        proc.start()
    times = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    return writers * appends * batch / max(times)


def _fresh_schema(url: str) -> str:
    schema = "bench_" + uuid.uuid4().hex[:12]
    PostgresEventLog(url, schema=schema).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{schema}".plain (id bigserial PRIMARY KEY, line bytea)')
    return schema


def throughput(url: str, rounds: int, appends: int) -> None:
    print("appends per second, one event per append, synchronous_commit on")
    print(f"{'writers':>8} {'engine best':>12} {'median':>9} {'INSERT best':>12} {'median':>9}"
          f" {'ratio':>6}")  # fmt: skip
    for writers in (1, 4, 8):
        figures: dict[str, list[float]] = {"engine": [], "insert": []}
        schema = _fresh_schema(url)
        for _ in range(rounds):
            each = max(20, appends // writers)
            figures["engine"].append(_round(_engine_writer, url, schema, writers, each, 1))
            figures["insert"].append(_round(_insert_writer, url, schema, writers, each, 1))
        engine, insert = figures["engine"], figures["insert"]
        print(f"{writers:>8} {max(engine):>12,.0f} {statistics.median(engine):>9,.0f} "
              f"{max(insert):>12,.0f} {statistics.median(insert):>9,.0f} "
              f"{statistics.median(engine) / statistics.median(insert):>6.2f}")  # fmt: skip
    print()
    print("events per second in batches, 1 writer (baseline: the batch's INSERTs in one "
          "transaction)")  # fmt: skip
    print(f"{'batch':>8} {'engine best':>12} {'median':>9} {'INSERT best':>12} {'median':>9}"
          f" {'ratio':>6}")  # fmt: skip
    for batch in (10, 100):
        figures = {"engine": [], "insert": []}
        schema = _fresh_schema(url)
        for _ in range(rounds):
            each = max(10, appends * 2 // batch)
            figures["engine"].append(_round(_engine_writer, url, schema, 1, each, batch))
            figures["insert"].append(_round(_insert_writer, url, schema, 1, each, batch))
        engine, insert = figures["engine"], figures["insert"]
        print(f"{batch:>8} {max(engine):>12,.0f} {statistics.median(engine):>9,.0f} "
              f"{max(insert):>12,.0f} {statistics.median(insert):>9,.0f} "
              f"{statistics.median(engine) / statistics.median(insert):>6.2f}")  # fmt: skip
    print()


def _run_events(run: int, per_run: int) -> list[Any]:
    """The events of one finished run of ``per_run`` events (``per_run`` >= 10): an
    execution, a pipeline result, a task execution and its task results, created PENDING,
    then RUNNING and DONE, with the execution's times; padded with message changes."""
    run_id, ex, pr, te = f"run-{run}", f"ex-{run}", f"pr-{run}", f"te-{run}"
    results = (per_run - 7) // 3
    ts = "2026-11-05T12:00:00.000001+00:00"
    when = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)

    def created(kind: str, oid: str, parent: str | None, attrs: dict[str, Any]) -> Any:
        stored, types = encode_attrs({**attrs, "status": PipelineTaskStatus.PENDING})
        return ObjectCreated(
            run_id=run_id, kind=kind, id=oid, parent_id=parent, attrs=stored, types=types, ts=ts
        )

    def change(kind: str, oid: str, field: str, value: Any) -> Any:
        stored, vtype = encode_value(field, value)
        return FieldSet(
            run_id=run_id, kind=kind, id=oid, field=field, value=stored, vtype=vtype, ts=ts
        )

    pipeline = f"p{run % 7}"
    events = [
        created(PIPELINE_EXECUTION, ex, None, {"pipeline_id": pipeline, "input_data": {},
                                               "runner": "bench.Runner",
                                               "reporter": "bench.Reporter"}),
        created(PIPELINE_RESULT, pr, ex, {"pipeline_id": pipeline,
                                          "serializable_pipeline_object": "x"}),
        created(TASK_EXECUTION, te, pr, {"task_id": "bench.Task", "pipeline_task": "t",
                                         "config": {}}),
    ]  # fmt: skip
    ids = [f"tr-{run}-{n}" for n in range(results)]
    events += [created(TASK_RESULT, i, te, {"serializable_task_object": n})
               for n, i in enumerate(ids)]  # fmt: skip
    events.append(change(PIPELINE_EXECUTION, ex, "started", when))
    events.append(change(PIPELINE_EXECUTION, ex, "status", PipelineTaskStatus.RUNNING))
    for status in (PipelineTaskStatus.RUNNING, PipelineTaskStatus.DONE):
        events += [change(TASK_RESULT, i, "status", status) for i in ids]
    events.append(change(PIPELINE_EXECUTION, ex, "status", PipelineTaskStatus.DONE))
    events.append(change(PIPELINE_EXECUTION, ex, "completed", when))
    while len(events) < per_run:
        events.append(change(PIPELINE_EXECUTION, ex, "message", f"note {len(events)}"))
    return events


def build(url: str, schema: str, events: int, per_run: int = 100) -> None:
    """Fill ``schema`` with ``events`` chained events (finished runs of ``per_run``) by
    COPY, with the run summaries the engine would have kept."""
    PostgresEventLog(url, schema=schema).close()
    runs = RunsProjection()
    prev = "0" * 64
    size = 0
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            copy_sql = (f'COPY "{schema}".events (seq, run_id, kind, object_id, more, hash, line)'
                        " FROM STDIN")  # fmt: skip
            with cur.copy(copy_sql) as copy:
                seq = 0
                run = 0
                while seq < events:
                    for draft in _run_events(run, per_run)[: events - seq]:
                        seq += 1
                        event, line, _ = chain_draft(
                            draft, seq=seq, more=0, ts=draft.ts, prev_hash=prev
                        )
                        prev = event.hash
                        size += len(line)
                        copy.write_row((seq, event.run_id, event.kind, event.id, 0, prev,
                                        line[:-1]))  # fmt: skip
                        runs.apply(event)
                    run += 1
            cur.execute(f'UPDATE "{schema}".head SET seq = %s, hash = %s, bytes = %s',
                        (events, prev, size))  # fmt: skip
            with cur.copy(
                f'COPY "{schema}".runs (run_id, execution_id, pipeline_id, status, started, '
                "completed, counts, first_seq, last_seq, removed) FROM STDIN"
            ) as copy:
                for state in runs.runs():
                    copy.write_row((state.run_id, state.execution_id, state.pipeline_id,
                                    state.status, state.started, state.completed,
                                    json.dumps(state.counts, sort_keys=True), state.first_seq,
                                    state.last_seq, state.removed))  # fmt: skip
        conn.commit()
        conn.execute(f'ANALYZE "{schema}".events')
        conn.execute(f'ANALYZE "{schema}".runs')
    print(f"  built {events:,} events ({-(-events // per_run):,} runs) in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip


_PEAK = """
def peak_kb():  # this process's peak RSS (ru_maxrss would count the parent before exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
"""

_OPEN_PROBE = (
    _PEAK
    + """
import sys, time
from pipelines_events.log.postgres import PostgresEventLog
before = peak_kb()
started = time.perf_counter()
log = PostgresEventLog(sys.argv[1], schema=sys.argv[2])
head = log.head()
runs = log.run_summaries()
elapsed = time.perf_counter() - started
after = peak_kb()
log.close()
print(elapsed, before, after, head.seq, len(runs))
"""
)


def open_figures(url: str, sizes: list[int], rounds: int) -> None:
    print("open: connect + schema check + head() + run_summaries(), in a fresh process;")
    print("then the storage (a postgresql:// URL): open, `runs --limit 20`, `show RUN`")
    print(f"{'events':>10} {'runs':>7} {'best s':>8} {'median s':>9} {'peak RSS imports':>18}"
          f" {'peak RSS open':>15}")  # fmt: skip
    for events in sizes:
        schema = "bench_open_" + uuid.uuid4().hex[:8]
        build(url, schema, events)
        figures = []
        for _ in range(rounds):
            done = subprocess.run(
                [sys.executable, "-c", _OPEN_PROBE, url, schema],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            elapsed, before, after, seq, runs = done.stdout.split()
            assert int(seq) == events
            figures.append((float(elapsed), int(before), int(after), int(runs)))
        times = [f[0] for f in figures]
        print(f"{events:>10,} {figures[0][3]:>7,} {min(times):>8.3f} "
              f"{statistics.median(times):>9.3f} {figures[-1][1] / 1024:>15.1f} MB "
              f"{figures[-1][2] / 1024:>12.1f} MB")  # fmt: skip
        storage_figures(url, schema, events, rounds)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print()


_STORAGE_PROBE = (
    _PEAK
    + """
import contextlib, io, json, sys, time
import pipelines_events.log.postgres
from pipelines_events.cli import main
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
url, run = sys.argv[1], sys.argv[2]
before = peak_kb()
started = time.perf_counter()
storage = EventLogPipelineResultsStorage(url, readonly=True)
opened = time.perf_counter() - started
storage.close()
out, err = io.StringIO(), io.StringIO()
started = time.perf_counter()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    status = main(["runs", "--limit", "20", "--log", url, "--format", "json"])
listed = time.perf_counter() - started
assert status == 0 and len(json.loads(out.getvalue())) == 20, (status, err.getvalue())
out = io.StringIO()
started = time.perf_counter()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    status = main(["show", run, "--log", url, "--format", "json"])
shown = time.perf_counter() - started
assert status == 0 and json.loads(out.getvalue())["status"] == "DONE", err.getvalue()
after = peak_kb()
print(opened, listed, shown, before, after)
"""
)


def storage_figures(url: str, schema: str, events: int, rounds: int) -> None:
    """The storage's open, ``runs --limit 20`` and ``show RUN`` on the log in ``schema``."""
    target = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    run = f"run-{events // 100 // 2}"  # a run in the middle of the history
    figures = []
    for _ in range(rounds):
        done = subprocess.run(
            [sys.executable, "-c", _STORAGE_PROBE, target, run],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        opened, listed, shown, before, after = done.stdout.split()
        figures.append((float(opened), float(listed), float(shown), int(before), int(after)))
    best = [min(f[i] for f in figures) for i in range(3)]
    print(f"{'':>10} storage open {best[0]:.3f} s, runs --limit 20 {best[1]:.3f} s, "
          f"show {best[2]:.3f} s (best of {rounds}); peak RSS {figures[-1][3] / 1024:.1f} MB "
          f"after imports, {figures[-1][4] / 1024:.1f} MB after all three")  # fmt: skip


def _run_on_postgres(url: str, task_results: int) -> float:
    """The benchmark pipeline on a storage over a fresh schema of ``url`` (durability fsync)."""
    schema = "bench_pipe_" + uuid.uuid4().hex[:8]
    try:
        target = f"{url}{'&' if '?' in url else '?'}schema={schema}"
        return run_pipeline_on(target, "fsync", task_results)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def pipeline_figures(url: str, sizes: list[int], rounds: int) -> dict[int, dict[str, list[float]]]:
    """Wall seconds of the benchmark pipeline per side and size, in interleaved rounds."""
    print("pipeline (benchmarks.pipelines, eager runner, quiet reporter), every status change")
    print("committed: PostgreSQL and file log durability fsync, sqlite3 WAL synchronous=FULL")
    print(f"{'results':>8} {'side':>12} {'best s':>8} {'median s':>9} {'vs file':>8}"
          f" {'vs sqlite':>10}")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="pipelines-events-pg-bench-"))
    figures: dict[int, dict[str, list[float]]] = {}
    try:
        for n in sizes:
            times = interleaved(rounds, {
                "postgresql": lambda n=n: _run_on_postgres(url, n),
                "file log": lambda n=n: _run_ours(work, "fsync", n),
                "sqlite3": lambda n=n: _run_baseline("sqlite-plain", work, True, n),
            })  # fmt: skip
            figures[n] = times
            file_median = statistics.median(times["file log"])
            sqlite_median = statistics.median(times["sqlite3"])
            for side, values in times.items():
                mid = statistics.median(values)
                print(f"{n:>8,} {side:>12} {min(values):>8.3f} {mid:>9.3f} "
                      f"{mid / file_median:>7.2f}x {mid / sqlite_median:>9.2f}x")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("(ratios: median over median; >1 is slower than that side)\n")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--rounds", type=int, default=3)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--open-only", action="store_true", help="only the open figures")
    only.add_argument("--pipeline-only", action="store_true", help="only the pipeline figures")
    parser.add_argument("--full", action="store_true", help="the pipeline at 10^4 results too")
    args = parser.parse_args()
    url = os.environ.get(ENV_URL)
    server = None
    if not url:
        server = start_server()
        url = server.url
    try:
        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            fsync = conn.execute("SHOW fsync").fetchone()
        print(f"PostgreSQL {version[0] if version else '?'} (fsync {fsync[0] if fsync else '?'}),"
              f" {os.cpu_count()} cores\n")  # fmt: skip
        if not (args.open_only or args.pipeline_only):
            throughput(url, args.rounds, 200 if args.quick else 800)
        if not args.open_only:
            sizes = [1_000, 10_000] if args.full else [100 if args.quick else 1_000]
            pipeline_figures(url, sizes, args.rounds)
        if not args.pipeline_only:
            sizes = [10_000, 100_000] if args.quick else [100_000, 1_000_000]
            open_figures(url, sizes, args.rounds)
    finally:
        if server is not None:
            server.destroy()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"(children used {usage.ru_utime + usage.ru_stime:.1f} s of CPU)")


if __name__ == "__main__":
    main()
