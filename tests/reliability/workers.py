"""Functions run in writer processes by the reliability tests (importable under spawn)."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pipelines_events.events import AnyEvent, FieldSet, ObjectCreated
from pipelines_events.results.base import PipelineResultsStorage, TaskResult
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus

RUNNING = PipelineTaskStatus.RUNNING
DONE = PipelineTaskStatus.DONE


def payload(writer: int, index: int) -> str:
    """The value writer ``writer`` sets on its ``index``-th task result: unique in a test."""
    return f"w{writer}-{index}"


def work_on(
    storage: PipelineResultsStorage,
    results: Sequence[TaskResult],
    writer: int,
    *,
    shared: Any = None,
    commit_each: bool = False,
) -> int:
    """Take each task result RUNNING, set its payload, take it DONE (propagating both);
    every tenth one also sets field ``w<writer>`` on ``shared``. Returns the calls made."""
    calls = 0
    for index, result in enumerate(results):
        assert result.report_status_change(None, RUNNING)
        result.set_payload(payload(writer, index))
        assert result.report_status_change(None, DONE, f"done {payload(writer, index)}")
        calls += 3
        if shared is not None and index % 10 == 0:
            getattr(shared, f"set_w{writer}")(index)
            calls += 1
        if commit_each:
            result.save()
    return calls


def own_run_writer(
    path: str,
    durability: str,
    run_id: str,
    writer: int,
    barrier: Any,
    inherited: EventLogPipelineResultsStorage | None = None,
) -> None:
    """Work on every task result of run ``run_id`` (built by the parent)."""
    storage = inherited or EventLogPipelineResultsStorage(path, durability=durability)  # type: ignore[arg-type]
    shared = storage.get_pipeline_execution("shared")
    results = storage.get_task_results(run_id=run_id)
    barrier.wait(timeout=60)
    work_on(storage, results, writer, shared=shared, commit_each=durability == "fsync")
    storage.close()


def shared_run_writer(path: str, writer: int, barrier: Any) -> None:
    """Work on task result ``writer`` of every task execution of run ``shared-parents``:
    all writers propagate to the same parents at about the same time."""
    storage = EventLogPipelineResultsStorage(path, durability="none")
    results = [
        execution.get_task_results()[writer]
        for execution in storage.get_task_executions(run_id="shared-parents")
    ]
    barrier.wait(timeout=60)
    work_on(storage, results, writer)
    storage.close()


def status_histories(events: list[AnyEvent]) -> dict[str, list[str]]:
    """Every status each object had, in log order, from its creation on."""
    histories: dict[str, list[str]] = defaultdict(list)
    for event in events:
        if type(event) is ObjectCreated and "status" in event.attrs:
            histories[event.id].append(event.attrs["status"])
        elif type(event) is FieldSet and event.field == "status":
            histories[event.id].append(event.value)
    return dict(histories)


def pid() -> int:
    """The current process id (for tests that check where work ran)."""
    return os.getpid()
