"""The worker processes of the process runner: each opens the storage itself and runs
the task results it is sent, reporting their status changes back."""

from __future__ import annotations

import logging
from typing import Any

from pipelines_events.reporters import PipelineReporter
from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResultsStorage,
    TaskExecution,
)
from pipelines_events.runners import error_message, error_traceback
from pipelines_events.runners.steps import (
    Failure,
    iterator_objects,
    prepare,
)
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.task import Task

logger = logging.getLogger(__name__)

StorageSpec = tuple[str, dict[str, Any]]
"""A storage class's dotted path and the kwargs to create it with."""


Report = tuple[str, str]
"""A status change a worker recorded for its task result: status name, message."""


class _Worker:
    """What a worker process keeps between the task results it runs."""

    spec: StorageSpec | None = None
    pipeline: Any = None
    storage: PipelineResultsStorage | None = None
    pipeline_objects: dict[str, list[Any]] = {}  # noqa: RUF012
    tasks: dict[str, tuple[Task, list[Any], Any]] = {}  # noqa: RUF012


def init_worker(spec: StorageSpec, pipeline: Any) -> None:
    _Worker.spec = spec
    _Worker.pipeline = pipeline
    _Worker.storage = None
    _Worker.pipeline_objects = {}
    _Worker.tasks = {}


def _storage() -> PipelineResultsStorage:
    if _Worker.storage is None:
        from pipelines_events.results.helpers import load_storage_class

        assert _Worker.spec is not None
        path, kwargs = _Worker.spec
        _Worker.storage = load_storage_class(path)(**kwargs)
    return _Worker.storage


def sees_run(run_id: str) -> bool:
    return _storage().get_pipeline_execution(run_id) is not None


class _Collect(PipelineReporter):
    """A reporter that keeps the changes of one task result, for the runner's process to
    report (the worker records them without propagating, so they are all that object's)."""

    def __init__(self) -> None:
        self.reports: list[Report] = []

    def report_context_object(
        self, context_object: Any, status: PipelineTaskStatus, message: str
    ) -> None:
        self.reports.append((status.name, message))


def run_task_result(
    task_execution_id: str, result_id: str, index: int, lane: int
) -> tuple[str, str, list[Report]]:
    """Run task result ``result_id`` (object ``index`` of its task's iterator, in pipeline
    result number ``lane``); returns its final status, message and the changes made."""
    storage = _storage()
    result = storage.get_task_result(result_id)
    if result is None:
        raise LookupError(f"task result {result_id} is not in the worker's storage")
    if result.get_status().is_final:
        return result.get_status().name, result.get_message(), []
    task_execution = result.get_task_execution()
    execution = task_execution.get_pipeline_result().get_pipeline_execution()
    task, task_objects, cleaned_data = _task(task_execution_id, task_execution, execution)
    pipeline_object = _pipeline_objects(execution)[lane]
    collect = _Collect()
    # Without propagating: two workers finishing task results of one task at the same
    # time would both settle its task execution, with the message of whichever came
    # first. The runner's process propagates failures and settles parents instead.
    result.report_status_change(collect, PipelineTaskStatus.RUNNING, "", False)
    task.pipeline_object, task.task_object = pipeline_object, task_objects[index]
    try:
        task.run(execution.get_pipeline_id(), execution.get_run_id(), cleaned_data)
    except Exception as exc:
        logger.debug("task result %s failed", result_id, exc_info=True)
        message = error_message(exc)
        result.report_status_change(
            collect,
            PipelineTaskStatus.RUNTIME_ERROR,
            message,
            False,
            traceback=error_traceback(exc),
        )
        return PipelineTaskStatus.RUNTIME_ERROR.name, message, collect.reports
    finally:
        task.pipeline_object = task.task_object = None
    result.report_status_change(collect, PipelineTaskStatus.DONE, "", False)
    return PipelineTaskStatus.DONE.name, "", collect.reports


def _task(
    task_execution_id: str, task_execution: TaskExecution, execution: PipelineExecution
) -> tuple[Task, list[Any], Any]:
    cached = _Worker.tasks.get(task_execution_id)
    if cached is None:
        prepared = prepare(execution, task_execution, task_execution.get_task_results())
        if isinstance(prepared, Failure):
            raise RuntimeError(prepared.message)
        cached = (prepared.task, prepared.objects, prepared.cleaned_data)
        _Worker.tasks[task_execution_id] = cached
    return cached


def _pipeline_objects(execution: PipelineExecution) -> list[Any]:
    run_id = execution.get_run_id()
    objects = _Worker.pipeline_objects.get(run_id)
    if objects is None:
        pipeline = _Worker.pipeline
        if pipeline is None or pipeline.get_id() != execution.get_pipeline_id():
            pipeline = execution.get_pipeline()
        objects = iterator_objects(pipeline.get_iterator())
        _Worker.pipeline_objects[run_id] = objects
    return objects


__all__ = ["Report", "StorageSpec", "init_worker", "run_task_result", "sees_run"]
