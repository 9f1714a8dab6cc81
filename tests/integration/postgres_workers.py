"""Writer and follower processes for the PostgreSQL tests (importable by spawned children)."""

from __future__ import annotations

import time
from typing import Any

from pipelines_events.errors import LogError, LogWriteError
from pipelines_events.events import PIPELINE_EXECUTION, START, FieldSet, ObjectCreated
from pipelines_events.log.postgres import PostgresEventLog


def batch_of(writer: int, number: int) -> list[Any]:
    """Batch ``number`` of ``writer``: 1 to 3 events, each tagged with both."""
    run_id = f"run-{writer}"
    size = 1 + number % 3
    if number == 0:
        first: Any = ObjectCreated(
            run_id=run_id,
            kind=PIPELINE_EXECUTION,
            id=f"ex-{writer}",
            attrs={"pipeline_id": "p", "status": "pending"},
        )
        return [first]
    return [
        FieldSet(
            run_id=run_id,
            kind=PIPELINE_EXECUTION,
            id=f"ex-{writer}",
            field=f"f{index}",
            value=[writer, number, index, size],
        )
        for index in range(size)
    ]


def write(url: str, schema: str, writer: int, batches: int, results: Any) -> None:
    """Append ``batches`` batches; puts (writer, acknowledged, unknown, failures) on
    ``results``.

    A batch refused with LogWriteError (nothing written) is tried again; a batch whose
    outcome the log could not tell is recorded as unknown and not tried again.
    """
    acknowledged: list[int] = []
    unknown: list[int] = []
    failures = 0
    log = None
    number = 0
    deadline = time.monotonic() + 120
    while number < batches and time.monotonic() < deadline:
        try:
            if log is None:
                log = PostgresEventLog(url, schema=schema, connect_timeout=5)
            log.append(batch_of(writer, number))
            acknowledged.append(number)
            number += 1
        except LogWriteError:
            failures += 1
            time.sleep(0.05)
        except LogError as exc:
            if "could not be asked" in str(exc):
                unknown.append(number)
                number += 1
            else:
                # The server is away (opening failed): try again shortly.
                failures += 1
                log = None
                time.sleep(0.1)
    if log is not None:
        log.close()
    results.put((writer, acknowledged, unknown, failures))


def follow(url: str, schema: str, until: int, results: Any) -> None:
    """Follow the log with wait/read_batches until seq ``until``; puts the seqs seen."""
    seen: list[int] = []
    with PostgresEventLog(url, schema=schema, readonly=True) as log:
        cursor = START
        deadline = time.monotonic() + 120
        while cursor.seq < until and time.monotonic() < deadline:
            log.wait(cursor, 1.0)
            for batch in log.read_batches():
                seen.extend(event.seq for event in batch)
            cursor = log.position
    results.put(seen)
