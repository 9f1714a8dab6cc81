"""The PostgreSQL engine against a plain INSERT per event on the same server.

    python -m benchmarks.postgres              # 10^5 and 10^6 events for the open figures
    python -m benchmarks.postgres --quick      # smaller sizes (a smoke run)
    PIPELINES_EVENTS_TEST_POSTGRES_URL=postgresql://... python -m benchmarks.postgres

Starts its own throwaway server (``initdb`` and ``pg_ctl`` on a free loopback port, as
``tests/postgres_server.py`` does for the tests) unless the environment variable names one.
Every append commits with ``synchronous_commit`` on; the baseline is one autocommitted
``INSERT`` per event into a two-column table. Rounds interleave the engine and the
baseline; the figures are the best (min time) and median of the rounds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from pipelines_events.events import (
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    SCHEMA_VERSION,
    FieldSet,
    ObjectCreated,
)
from pipelines_events.log.chain import encode_event, seal
from pipelines_events.log.postgres import PostgresEventLog
from projections.runs import RunsProjection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from postgres_server import ENV_URL, start_server


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


def build(url: str, schema: str, events: int, per_run: int = 100) -> None:
    """Fill ``schema`` with ``events`` chained events (runs of ``per_run``) by COPY."""
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
                for seq in range(1, events + 1):
                    run = (seq - 1) // per_run
                    run_id = f"run-{run}"
                    event: Any
                    if (seq - 1) % per_run == 0:
                        event = ObjectCreated(
                            v=SCHEMA_VERSION, seq=seq, ts="2026-11-05T12:00:00.000001+00:00",
                            run_id=run_id, kind=PIPELINE_EXECUTION, id=f"ex-{run}",
                            attrs={"pipeline_id": f"p{run % 7}", "status": "PENDING"},
                        )  # fmt: skip
                    else:
                        event = FieldSet(
                            v=SCHEMA_VERSION, seq=seq, ts="2026-11-05T12:00:00.000001+00:00",
                            run_id=run_id, kind=PIPELINE_RESULT, id=f"pr-{run}-{seq % 10}",
                            field="status", value="RUNNING",
                        )  # fmt: skip
                    line, prev = seal(encode_event(event), prev)
                    size += len(line)
                    row = (seq, run_id, event.kind, event.id, 0, prev, line[:-1])
                    copy.write_row(row)
                    runs.apply(event)
            cur.execute(f'UPDATE "{schema}".head SET seq = %s, hash = %s, bytes = %s',
                        (events, prev, size))  # fmt: skip
            with cur.copy(
                f'COPY "{schema}".runs (run_id, execution_id, pipeline_id, status, started, '
                "completed, counts, first_seq, last_seq, removed) FROM STDIN"
            ) as copy:
                import json

                for state in runs.runs():
                    copy.write_row((state.run_id, state.execution_id, state.pipeline_id,
                                    state.status, state.started, state.completed,
                                    json.dumps(state.counts), state.first_seq, state.last_seq,
                                    state.removed))  # fmt: skip
        conn.commit()
        conn.execute(f'ANALYZE "{schema}".events')
    print(f"  built {events:,} events ({events // per_run:,} runs) in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip


_OPEN_PROBE = """
import resource, sys, time
from pipelines_events.log.postgres import PostgresEventLog
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
log = PostgresEventLog(sys.argv[1], schema=sys.argv[2])
head = log.head()
runs = log.run_summaries()
elapsed = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
log.close()
print(elapsed, before, after, head.seq, len(runs))
"""


def open_figures(url: str, sizes: list[int], rounds: int) -> None:
    print("open: connect + schema check + head() + run_summaries(), in a fresh process")
    print(f"{'events':>10} {'runs':>7} {'best s':>8} {'median s':>9} {'RSS after imports':>18}"
          f" {'RSS after open':>15}")  # fmt: skip
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
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--rounds", type=int, default=3)
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
        throughput(url, args.rounds, 200 if args.quick else 800)
        open_figures(url, [10_000, 100_000] if args.quick else [100_000, 1_000_000], args.rounds)
    finally:
        if server is not None:
            server.destroy()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"(children used {usage.ru_utime + usage.ru_stime:.1f} s of CPU)")


if __name__ == "__main__":
    main()
