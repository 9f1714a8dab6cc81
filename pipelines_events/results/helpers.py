"""Create and fetch result objects through the configured storage.

The storage is the class named by the setting ``PIPELINES_PIPELINES_RESULTS_STORAGE``
(see :mod:`pipelines_events.conf`), created on first use and kept until
:func:`reset_storage_object` or until the settings change.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pipelines_events.conf import STORAGE_SETTING, settings, storage_setting
from pipelines_events.dotted import DottedPathError, import_dotted
from pipelines_events.errors import ImproperlyConfigured, PipelinesEventsError
from pipelines_events.results.base import (
    BuildablePipeline,
    PipelineDigest,
    PipelineExecution,
    PipelineResult,
    PipelineResultsStorage,
    StatusReporter,
    TaskExecution,
    TaskResult,
    check_reporter,
)
from pipelines_events.status import PipelineTaskStatus

__all__ = [
    "build_pipeline_execution",
    "cleanup_task_results",
    "get_pipeline_digest",
    "get_pipeline_execution",
    "get_pipeline_executions",
    "get_pipeline_result",
    "get_pipeline_results",
    "get_pipeline_results_storage",
    "get_task_execution",
    "get_task_executions",
    "get_task_result",
    "get_task_results",
    "load_storage_class",
    "report_built",
    "reset_storage_object",
]

_PIPELINE_WAITING = "Pipeline is waiting to start"
_TASK_WAITING = "Task is waiting to start"

_lock = threading.RLock()
_cached: tuple[PipelineResultsStorage, int] | None = None
"""The storage and the settings generation it was created under."""


def _bad(path: str, problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{STORAGE_SETTING}: {path!r}: {problem}")


def load_storage_class(path: str) -> type[PipelineResultsStorage]:
    """The storage class at dotted ``path``; :class:`ImproperlyConfigured` if unusable."""
    try:
        cls = import_dotted(path, PipelineResultsStorage)
    except DottedPathError as exc:
        raise _bad(path, exc.problem) from exc.__cause__ or exc
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise _bad(path, f"is abstract: it does not implement {missing}")
    return cls


def _check_kwargs(path: str, cls: type[PipelineResultsStorage], kwargs: dict[str, Any]) -> None:
    """Refuse kwargs the class cannot take, before anything is created."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # no signature to check: the call will tell
        return
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        plain = signature.replace(
            parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
            return_annotation=signature.empty,
        )
        given = ", ".join(kwargs) or "none"
        raise _bad(
            path,
            f"the kwargs do not fit {cls.__qualname__}{plain}: {exc} (kwargs given: {given})",
        ) from None


def _create() -> PipelineResultsStorage:
    path, kwargs = storage_setting()
    cls = load_storage_class(path)
    _check_kwargs(path, cls, kwargs)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, PipelinesEventsError) as exc:
        # A value the class refuses (a bad path or mode, say) is a setting to fix.
        raise _bad(
            path, f"{cls.__qualname__} refused its kwargs: {type(exc).__name__}: {exc}"
        ) from exc


def get_pipeline_results_storage() -> PipelineResultsStorage:
    """The configured storage, created on first use and cached.

    A change of settings (``configure``, ``override_settings``, another settings module)
    closes the cached storage and creates the newly configured one. Raises
    :class:`ImproperlyConfigured` naming the setting when the class cannot be imported,
    is not a :class:`PipelineResultsStorage`, does not take the kwargs given (checked
    before it is called) or refuses their values.
    """
    global _cached
    cached = _cached
    generation = settings.generation
    if cached is not None and cached[1] == generation:
        return cached[0]
    with _lock:
        generation = settings.generation
        if _cached is not None:
            if _cached[1] == generation:
                return _cached[0]
            reset_storage_object()
        storage = _create()
        _cached = (storage, generation)
        return storage


def reset_storage_object() -> None:
    """Forget the cached storage, closing it; the next helper call creates it anew."""
    global _cached
    with _lock:
        cached, _cached = _cached, None
    if cached is not None:
        cached[0].close()


def build_pipeline_execution(
    pipeline: BuildablePipeline,
    run_id: str,
    runner: object,
    reporter: object,
    input_data: Any,
    build_all: bool = True,
) -> PipelineExecution:
    """Create the execution of a run and, with ``build_all``, every object below it, then
    report each object PENDING to ``reporter`` (as the original did): the execution and
    the pipeline results with ``"Pipeline is waiting to start"``, the task executions and
    task results with ``"Task is waiting to start"``.

    ``reporter`` must have the reporter hooks (:class:`TypeError` before anything is
    built otherwise), or be None to report nothing.
    """
    check_reporter(reporter)
    execution = get_pipeline_results_storage().build_pipeline_execution(
        pipeline, run_id, runner, reporter, input_data, build_all=build_all
    )
    if reporter is not None:
        report_built(execution, reporter)  # type: ignore[arg-type]  # check_reporter checked it
    return execution


def report_built(execution: PipelineExecution, reporter: StatusReporter) -> None:
    """Report every object of a newly built run PENDING, in the original's order."""
    pending = PipelineTaskStatus.PENDING
    reporter.report_pipeline_execution(execution, pending, _PIPELINE_WAITING)
    results = execution.get_pipeline_results()
    for result in results:
        reporter.report_pipeline_result(result, pending, _PIPELINE_WAITING)
    task_executions = [te for result in results for te in result.get_task_executions()]
    for task_execution in task_executions:
        reporter.report_task_execution(task_execution, pending, _TASK_WAITING)
    for task_execution in task_executions:
        for task_result in task_execution.get_task_results():
            reporter.report_task_result(task_result, pending, _TASK_WAITING)


def get_pipeline_digest() -> PipelineDigest:
    """Per pipeline id: runs, successes, failures, last ran, average runtime."""
    return get_pipeline_results_storage().get_pipeline_digest()


def get_pipeline_executions(pipeline_id: str | None = None) -> Sequence[PipelineExecution]:
    """Executions, optionally of one pipeline."""
    return get_pipeline_results_storage().get_pipeline_executions(pipeline_id=pipeline_id)


def get_pipeline_execution(run_id: str) -> PipelineExecution | None:
    """The execution of run ``run_id``, or None."""
    return get_pipeline_results_storage().get_pipeline_execution(run_id)


def get_pipeline_results(
    run_id: str | None = None, pipeline_id: str | None = None
) -> Sequence[PipelineResult]:
    """Pipeline results, optionally of one run or one pipeline."""
    return get_pipeline_results_storage().get_pipeline_results(
        run_id=run_id, pipeline_id=pipeline_id
    )


def get_pipeline_result(_id: str) -> PipelineResult | None:
    """The pipeline result with id ``_id``, or None."""
    return get_pipeline_results_storage().get_pipeline_result(_id)


def get_task_executions(
    run_id: str | None = None, pipeline_result_id: str | None = None
) -> Sequence[TaskExecution]:
    """Task executions, optionally of one run or one pipeline result."""
    return get_pipeline_results_storage().get_task_executions(
        run_id=run_id, pipeline_result_id=pipeline_result_id
    )


def get_task_execution(_id: str) -> TaskExecution | None:
    """The task execution with id ``_id``, or None."""
    return get_pipeline_results_storage().get_task_execution(_id)


def get_task_results(
    run_id: str | None = None,
    pipeline_result_id: str | None = None,
    task_execution_id: str | None = None,
) -> Sequence[TaskResult]:
    """Task results, optionally of one run, pipeline result or task execution."""
    return get_pipeline_results_storage().get_task_results(
        run_id=run_id,
        pipeline_result_id=pipeline_result_id,
        task_execution_id=task_execution_id,
    )


def get_task_result(_id: str) -> TaskResult | None:
    """The task result with id ``_id``, or None."""
    return get_pipeline_results_storage().get_task_result(_id)


def cleanup_task_results(before: datetime | None = None) -> list[str]:
    """Remove finished runs (completed before ``before`` when given); returns their ids."""
    return get_pipeline_results_storage().cleanup(before=before)
