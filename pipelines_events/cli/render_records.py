"""The records the run commands print: a run's objects as a tree, and a run's summary.

Records are built from the storage's public ``get_`` methods, so any
:class:`~pipelines_events.results.base.PipelineResultsStorage` (and a point-in-time view)
gives the same records. :mod:`pipelines_events.cli.render` draws them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

import msgspec

from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResult,
    PipelineResultsStorage,
    PipelineStorageObject,
    TaskExecution,
    TaskResult,
)
from pipelines_events.status import PipelineTaskStatus

_FAILED: Final = PipelineTaskStatus.error_statuses()

# -- records ------------------------------------------------------------------------------


class ResultState(msgspec.Struct, kw_only=True):
    """One result object: its own fields and those it inherits (a line of ``show --format
    jsonl``). Fields that do not apply to its kind are None."""

    kind: str
    """``pipeline_execution``, ``pipeline_result``, ``task_execution`` or ``task_result``."""
    id: str
    run_id: str
    parent_id: str | None
    status: PipelineTaskStatus
    started: datetime | None
    completed: datetime | None
    duration: float | None
    """Seconds from started to completed; None until both are known."""
    message: str
    pipeline_id: str
    input_data: Any = None
    """The run's input data (executions only)."""
    pipeline_object: Any = None
    """The serializable pipeline object (pipeline results and below)."""
    pipeline_task: str | None = None
    """The task's attribute name on the pipeline (task executions and results)."""
    task_id: str | None = None
    """The task's id (task executions and results)."""
    task_object: Any = None
    """The serializable task object (task results only)."""
    traceback: str = ""
    """The traceback recorded with a failure ("" when none was)."""


class ResultTree(ResultState, kw_only=True):
    """A result object with the objects below it (``show --format json``)."""

    children: list[ResultTree] = []


class TaskCounts(msgspec.Struct):
    """How many task results of a run are DONE, failed, CANCELLED, and in all."""

    done: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class RunSummary(msgspec.Struct, kw_only=True):
    """One execution as ``runs`` lists it."""

    run_id: str
    id: str
    """The execution's id."""
    pipeline_id: str
    status: PipelineTaskStatus
    started: datetime | None
    completed: datetime | None
    duration: float | None
    message: str
    task_results: TaskCounts
    host: str | None = None
    """The host of the process that ran the run (None when not recorded)."""
    pid: int | None = None
    """The id of the process that ran the run (None when not recorded)."""
    stale: bool = False
    """Not final, and its runner's process on this host is gone."""


def _duration(obj: PipelineStorageObject) -> float | None:
    started, completed = obj.get_started(), obj.get_completed()
    if started is None or completed is None:
        return None
    return (completed - started).total_seconds()


def result_tree(obj: PipelineStorageObject, parent_id: str | None = None) -> ResultTree:
    """The record of ``obj`` with the records of every object below it."""
    node = ResultTree(
        kind=obj.kind,
        id=obj.get_id(),
        run_id=obj.get_run_id(),
        parent_id=parent_id,
        status=obj.get_status(),
        started=obj.get_started(),
        completed=obj.get_completed(),
        duration=_duration(obj),
        message=obj.get_message(),
        pipeline_id=obj.get_pipeline_id(),
        traceback=obj.get_traceback(),
    )
    if isinstance(obj, PipelineExecution):
        node.input_data = obj.get_input_data()
    elif isinstance(obj, PipelineResult):
        node.pipeline_object = obj.get_serializable_pipeline_object()
    elif isinstance(obj, TaskExecution | TaskResult):
        node.pipeline_object = obj.get_serializable_pipeline_object()
        node.pipeline_task = obj.get_pipeline_task()
        node.task_id = obj.get_task_id()
        if isinstance(obj, TaskResult):
            node.task_object = obj.get_serializable_task_object()
    node.children = [result_tree(child, node.id) for child in obj.get_children()]
    return node


def result_lines(tree: ResultTree) -> Iterator[ResultState]:
    """Every object of ``tree`` without its children, parents first."""
    fields = {name: getattr(tree, name) for name in ResultState.__struct_fields__}
    yield ResultState(**fields)
    for child in tree.children:
        yield from result_lines(child)


def run_summary(storage: PipelineResultsStorage, execution: PipelineExecution) -> RunSummary:
    """``execution`` with the counts of its run's task results by status."""
    run_id = execution.get_run_id()
    counts = TaskCounts()
    for task_result in storage.get_task_results(run_id=run_id):
        status = task_result.get_status()
        counts.total += 1
        if status is PipelineTaskStatus.DONE:
            counts.done += 1
        elif status in _FAILED:
            counts.failed += 1
        elif status is PipelineTaskStatus.CANCELLED:
            counts.cancelled += 1
    return RunSummary(
        run_id=run_id,
        id=execution.get_id(),
        pipeline_id=execution.get_pipeline_id(),
        status=execution.get_status(),
        started=execution.get_started(),
        completed=execution.get_completed(),
        duration=_duration(execution),
        message=execution.get_message(),
        task_results=counts,
        host=execution.get_runner_host(),
        pid=execution.get_runner_pid(),
        stale=is_stale(execution),
    )


def is_stale(execution: PipelineExecution) -> bool:
    """Whether ``execution`` is not final while its runner's process, on this host, is gone."""
    if execution.get_status().is_final:
        return False
    host, pid = execution.get_runner_host(), execution.get_runner_pid()
    if host != socket.gethostname() or pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists, owned by someone else
    return False
