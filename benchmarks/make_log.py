"""Write a large, valid results log quickly, for timing the audit commands.

Each run has the shape a real one has: its objects created in one batch (an execution,
pipeline results, task executions, task results), then for every object a RUNNING batch
(status, started) and a DONE batch (status, completed). Batches go through
:meth:`JsonlEventLog.append` with ``durability="none"``; times advance 1 ms per batch.

    python -m benchmarks.make_log /tmp/big.jsonl --events 1000000

then, for instance::

    time pipelines-events verify --log /tmp/big.jsonl
    time pipelines-events history run-001538 --log /tmp/big.jsonl --format jsonl > /dev/null
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines_events.events import (
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    TASK_EXECUTION,
    TASK_RESULT,
    AnyEvent,
    FieldSet,
    ObjectCreated,
    encode_attrs,
    encode_value,
    format_time,
)
from pipelines_events.log import JsonlEventLog
from pipelines_events.status import PipelineTaskStatus

_PENDING, _TYPES = encode_attrs({"status": PipelineTaskStatus.PENDING})
_RUNNING = encode_value("status", PipelineTaskStatus.RUNNING)
_DONE = encode_value("status", PipelineTaskStatus.DONE)


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 5, tzinfo=UTC)

    def tick(self) -> str:
        self.now += timedelta(milliseconds=1)
        return format_time(self.now)


def _run_batches(
    run_id: str, clock: _Clock, results: int, tasks: int, parts: int
) -> list[list[AnyEvent]]:
    """Every batch of one run, in the order a runner writes them."""
    ts = clock.tick()
    execution = str(uuid.uuid4())
    created: list[AnyEvent] = [
        ObjectCreated(
            run_id=run_id,
            kind=PIPELINE_EXECUTION,
            id=execution,
            ts=ts,
            attrs={**_PENDING, "pipeline_id": "bench.Pipeline", "input_data": {"n": 1}},
            types=_TYPES,
        )
    ]
    order: list[tuple[str, str]] = [(PIPELINE_EXECUTION, execution)]
    for r in range(results):
        result = str(uuid.uuid4())
        created.append(
            ObjectCreated(
                run_id=run_id,
                kind=PIPELINE_RESULT,
                id=result,
                parent_id=execution,
                ts=ts,
                attrs={**_PENDING, "serializable_pipeline_object": f"object-{r}"},
                types=_TYPES,
            )
        )
        order.append((PIPELINE_RESULT, result))
        for t in range(tasks):
            task = str(uuid.uuid4())
            created.append(
                ObjectCreated(
                    run_id=run_id,
                    kind=TASK_EXECUTION,
                    id=task,
                    parent_id=result,
                    ts=ts,
                    attrs={**_PENDING, "task_id": f"bench.Task{t}", "pipeline_task": f"task{t}"},
                    types=_TYPES,
                )
            )
            order.append((TASK_EXECUTION, task))
            for p in range(parts):
                part = str(uuid.uuid4())
                created.append(
                    ObjectCreated(
                        run_id=run_id,
                        kind=TASK_RESULT,
                        id=part,
                        parent_id=task,
                        ts=ts,
                        attrs={**_PENDING, "serializable_task_object": p},
                        types=_TYPES,
                    )
                )
                order.append((TASK_RESULT, part))
    batches = [created]
    for status, when in ((_RUNNING, "started"), (_DONE, "completed")):
        for kind, object_id in order:
            ts = clock.tick()
            moment, vtype = encode_value(when, clock.now)
            batches.append(
                [
                    FieldSet(
                        run_id=run_id,
                        kind=kind,
                        id=object_id,
                        ts=ts,
                        field="status",
                        value=status[0],
                        vtype=status[1],
                    ),
                    FieldSet(
                        run_id=run_id,
                        kind=kind,
                        id=object_id,
                        ts=ts,
                        field=when,
                        value=moment,
                        vtype=vtype,
                    ),
                ]
            )
    return batches


def make_log(
    path: Path, events: int, *, results: int = 4, tasks: int = 3, parts: int = 4
) -> tuple[int, int, list[str]]:
    """Append whole runs to ``path`` until it holds at least ``events`` events.

    Returns the events and batches written and the run ids.
    """
    clock = _Clock()
    written = batches = 0
    run_ids: list[str] = []
    with JsonlEventLog(path, durability="none", max_event_bytes=1 << 20) as log:
        while written < events:
            run_id = f"run-{len(run_ids):06d}"
            run_ids.append(run_id)
            for batch in _run_batches(run_id, clock, results, tasks, parts):
                log.append(batch)
                written += len(batch)
                batches += 1
    return written, batches, run_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="the log to write (must not exist)")
    parser.add_argument("--events", type=int, default=1_000_000, help="at least this many")
    args = parser.parse_args()
    if args.path.exists():
        parser.error(f"{args.path} exists; give a new file")
    started = time.perf_counter()
    events, batches, run_ids = make_log(args.path, args.events)
    seconds = time.perf_counter() - started
    size = args.path.stat().st_size
    print(
        f"{args.path}: {events} events in {batches} batches, {len(run_ids)} runs, "
        f"{size / 1e6:.1f} MB, written in {seconds:.1f} s"
    )
    print(f"a run in the middle: {run_ids[len(run_ids) // 2]}")


if __name__ == "__main__":
    main()
