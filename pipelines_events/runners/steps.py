"""The steps runners share: loading a run, what is checked before a task runs, the order
of a pipeline result's tasks, the objects of an iterator."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResult,
    StatusReporter,
    TaskExecution,
)
from pipelines_events.runners import error_message, fail_run
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.task import Task

__all__ = [
    "FAILED",
    "Failure",
    "LoadedRun",
    "Prepared",
    "iterator_objects",
    "load_run",
    "prepare",
    "sorted_task_executions",
    "task_order",
]


logger = logging.getLogger(__name__)

FAILED: Final = PipelineTaskStatus.error_statuses()
"""The statuses of a task result that failed (a later task does not run)."""


@dataclass(frozen=True)
class LoadedRun:
    """A built run ready to start: its pipeline, pipeline results, the iterator's objects
    (one per result) and its tasks' order."""

    pipeline: Any
    results: Sequence[PipelineResult]
    objects: list[Any]
    order: dict[str, int]


def load_run(execution: PipelineExecution, reporter: StatusReporter | None) -> LoadedRun | None:
    """Load the pipeline of ``execution`` and check that its iterator still gives one
    object per built pipeline result; None after failing the run when it cannot."""
    results = execution.get_pipeline_results()
    try:
        pipeline = execution.get_pipeline()
        objects = iterator_objects(pipeline.get_iterator())
        order = task_order(pipeline)
    except Exception as exc:
        logger.debug("loading pipeline %s failed", execution.get_pipeline_id(), exc_info=True)
        fail_run(execution, reporter, error_message(exc))
        return None
    if len(objects) != len(results):
        fail_run(
            execution,
            reporter,
            f"the pipeline iterator gave {len(objects)} objects, but the run was built "
            f"with {len(results)} pipeline results",
        )
        return None
    return LoadedRun(pipeline, results, objects, order)


@dataclass(frozen=True)
class Prepared:
    """A task ready to run: the task, its iterator's objects, the cleaned input data."""

    task: Task
    objects: list[Any]
    cleaned_data: Any


@dataclass(frozen=True)
class Failure:
    """Why a task cannot run: the failed status its task results get, and the message."""

    status: PipelineTaskStatus
    message: str


def iterator_objects(iterator: Any) -> list[Any]:
    """The objects of an iterator as a list; None means one ``None`` object."""
    return [None] if iterator is None else list(iterator)


def task_order(pipeline: Any) -> dict[str, int]:
    """Task name -> its position in ``pipeline.get_build_tasks()`` (dependency order)."""
    return {task.pipeline_task: i for i, task in enumerate(pipeline.get_build_tasks())}


def sorted_task_executions(result: PipelineResult, order: Mapping[str, int]) -> list[TaskExecution]:
    """The task executions of ``result`` in ``order`` (from :func:`task_order`)."""
    return sorted(
        result.get_task_executions(),
        key=lambda te: order.get(te.get_pipeline_task(), len(order)),
    )


def prepare(
    execution: PipelineExecution, task_execution: TaskExecution, results: Sequence[Any]
) -> Prepared | Failure:
    """The task of ``task_execution``, its iterator's objects (one per task result in
    ``results``) and the cleaned input data; or the failed status and message when one
    of them cannot be had: RUNTIME_ERROR when the task cannot be loaded or its iterator
    raises or gives another number of objects, CONFIG_ERROR or VALIDATION_ERROR when its
    config or the input data does not validate."""
    try:
        task = task_execution.get_task()
    except Exception as exc:
        return Failure(PipelineTaskStatus.RUNTIME_ERROR, error_message(exc))
    if not isinstance(task, Task):
        return Failure(PipelineTaskStatus.RUNTIME_ERROR, f"the loader gave {task!r}, not a Task")
    try:
        task.get_config()
    except msgspec.ValidationError as exc:
        return Failure(PipelineTaskStatus.CONFIG_ERROR, f"config of task {task.name!r}: {exc}")
    try:
        cleaned_data = task.clean_input_data(execution.get_input_data())
    except msgspec.ValidationError as exc:
        return Failure(
            PipelineTaskStatus.VALIDATION_ERROR, f"input data of task {task.name!r}: {exc}"
        )
    try:
        task_objects = iterator_objects(task.get_iterator())
    except Exception as exc:
        return Failure(PipelineTaskStatus.RUNTIME_ERROR, error_message(exc))
    if len(task_objects) != len(results):
        return Failure(
            PipelineTaskStatus.RUNTIME_ERROR,
            f"the iterator of task {task.name!r} gave {len(task_objects)} objects, but the "
            f"run was built with {len(results)} task results",
        )
    return Prepared(task, task_objects, cleaned_data)
