"""The worker side of the Celery runner: one delivered message runs one task result,
claimed once, recorded once, and the worker that ends a task starts the next."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from celery.signals import worker_process_init

from pipelines_events.events import utc_now
from pipelines_events.reporters import LoggingReporter
from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResult,
    StatusReporter,
    TaskExecution,
    TaskResult,
    status_change_message,
)
from pipelines_events.results.helpers import get_pipeline_results_storage, reset_storage_object
from pipelines_events.runners import (
    cancelled_message,
    error_message,
    error_traceback,
    settle,
)
from pipelines_events.runners.steps import (
    FAILED,
    Failure,
    Prepared,
    iterator_objects,
    prepare,
)
from pipelines_events.status import PipelineTaskStatus

logger = logging.getLogger(__name__)


Advance = Callable[[PipelineExecution, PipelineResult, int, StatusReporter | None], None]
"""The signature of :func:`pipelines_events.runners.celery.advance`."""


class _Cache(threading.local):
    """What a worker keeps between task results (bounded), one per thread: a task
    result sets its objects on the cached task, which a thread pool's other threads
    must not share."""

    limit: int = 64

    def __init__(self) -> None:
        self.pipeline_objects: dict[str, list[Any]] = {}
        self.tasks: dict[str, Prepared] = {}

    def clear(self) -> None:
        self.pipeline_objects = {}
        self.tasks = {}


_cache = _Cache()


def _after_fork(**_: Any) -> None:
    """A new pool process opens the storage itself, never its parent's copy."""
    _cache.clear()
    reset_storage_object()


worker_process_init.connect(_after_fork, weak=False)


def run_delivered(
    task_result_id: str, pipeline_index: int, task_index: int, worker: str, advance: Advance
) -> str:
    """Run one task result in this worker; returns what happened (``"ran: DONE"``,
    ``"skipped: ..."``). ``advance`` starts the next task once this one has ended."""
    storage = get_pipeline_results_storage()
    result = storage.get_task_result(task_result_id)
    if result is None:
        logger.warning("task result %s is not in the storage: message dropped", task_result_id)
        return "skipped: not in the storage"
    reporter = LoggingReporter()
    task_execution = result.get_task_execution()
    if result.get_status().is_final:
        # Delivered again after it ended: record nothing for it; finish what the worker
        # that ended it may have left undone (it may have died before advancing).
        _after_result(result, task_execution, pipeline_index, reporter, advance)
        return f"skipped: already {result.get_status().name}"
    attempt = _claim(result, reporter, worker)
    if attempt is None:
        if result.get_status().is_final:  # cancelled (or ended) meanwhile
            return f"skipped: already {result.get_status().name}"
        return "skipped: another delivery runs it"
    execution = task_execution.get_pipeline_result().get_pipeline_execution()
    pipeline_object: Any = None
    try:
        prepared = _prepared(execution, task_execution)
        if isinstance(prepared, Prepared):
            pipeline_object = _pipeline_objects(execution)[pipeline_index]
    except Exception as exc:  # the worker cannot load the pipeline or the task
        logger.debug("task result %s cannot be run here", task_result_id, exc_info=True)
        prepared = Failure(PipelineTaskStatus.RUNTIME_ERROR, error_message(exc))
    if isinstance(prepared, Failure):
        recorded = result.report_status_change(
            reporter, prepared.status, prepared.message, propagate=False
        )
    else:
        recorded = _run(result, execution, prepared, pipeline_object, task_index, reporter)
    if not recorded:
        return "skipped: another attempt ended it"
    _after_result(result, task_execution, pipeline_index, reporter, advance)
    return f"ran: {result.get_status().name} (attempt {attempt})"


def attempts(result: TaskResult) -> int:
    """How many deliveries of ``result``'s message started it: 1, more when a worker was
    lost (or a message delivered twice) before it ended; 0 before it started."""
    if result.get_status() is PipelineTaskStatus.PENDING:
        return 0
    try:
        value = result.get_attempt()
    except AttributeError:
        return 1
    return value if type(value) is int and value > 0 else 1


def _claim(result: TaskResult, reporter: StatusReporter, worker: str) -> int | None:
    """Record that this delivery runs ``result``: RUNNING with ``"attempt N on WORKER"``
    (and, from the second attempt on, ``attempt`` N); None when another delivery claimed
    it first."""
    where = f"on {worker} (pid {os.getpid()})"
    if result.get_status() is PipelineTaskStatus.PENDING:
        if result.report_status_change(
            reporter, PipelineTaskStatus.RUNNING, f"attempt 1 {where}", False
        ):
            return 1
        return None
    seen = attempts(result)

    def unchanged() -> bool:
        return result.get_status() is PipelineTaskStatus.RUNNING and attempts(result) == seen

    attempt = seen + 1
    message = (
        f"attempt {attempt} {where}: delivered again before attempt {seen} ended "
        "(its worker was lost, or the message was sent twice)"
    )
    now = utc_now()
    with result.atomic(require=unchanged) as batch:
        result.set_status(PipelineTaskStatus.RUNNING)
        result.set_started(now)
        result.set_message(message)
        result.set_attempt(attempt)
    if not batch.stored:
        return None
    result.save()
    reporter.report_context_object(
        result,
        PipelineTaskStatus.RUNNING,
        status_change_message(PipelineTaskStatus.RUNNING, message),
    )
    return attempt


def _prepared(execution: PipelineExecution, task_execution: TaskExecution) -> Prepared | Failure:
    key = task_execution.get_id()
    cached = _cache.tasks.get(key)
    if cached is not None:
        return cached
    prepared = prepare(execution, task_execution, task_execution.get_task_results())
    if isinstance(prepared, Prepared):
        if len(_cache.tasks) >= _cache.limit:
            _cache.tasks.clear()
        _cache.tasks[key] = prepared
    return prepared


def _pipeline_objects(execution: PipelineExecution) -> list[Any]:
    run_id = execution.get_run_id()
    objects = _cache.pipeline_objects.get(run_id)
    if objects is None:
        objects = iterator_objects(execution.get_pipeline().get_iterator())
        if len(_cache.pipeline_objects) >= _cache.limit:
            _cache.pipeline_objects.clear()
        _cache.pipeline_objects[run_id] = objects
    return objects


def _run(
    result: TaskResult,
    execution: PipelineExecution,
    prepared: Prepared,
    pipeline_object: Any,
    task_index: int,
    reporter: StatusReporter,
) -> bool:
    """Run the task for ``result``; returns whether its final status was recorded here."""
    task = prepared.task
    task.pipeline_object = pipeline_object
    task.task_object = prepared.objects[task_index]
    try:
        task.run(execution.get_pipeline_id(), execution.get_run_id(), prepared.cleaned_data)
    except Exception as exc:
        logger.debug("task result %s failed", result.get_id(), exc_info=True)
        return result.report_status_change(
            reporter,
            PipelineTaskStatus.RUNTIME_ERROR,
            error_message(exc),
            False,
            traceback=error_traceback(exc),
        )
    finally:
        task.pipeline_object = task.task_object = None
    return result.report_status_change(reporter, PipelineTaskStatus.DONE, "", False)


def _after_result(
    result: TaskResult,
    task_execution: TaskExecution,
    pipeline_index: int,
    reporter: StatusReporter,
    advance: Advance,
) -> None:
    """``result`` has ended: after a failure cancel its task's results not started;
    end the task execution once all its results have; then start the next task."""
    siblings = task_execution.get_task_results()
    if result.get_status() in FAILED:
        message = cancelled_message(task_execution.get_pipeline_task())
        for sibling in siblings:
            _cancel_pending(sibling, reporter, message)
    # The later task results are the likelier to be running: looking from the end finds
    # one soon while the task has many left (settle would read them all from the start).
    if any(not sibling.get_status().is_final for sibling in reversed(siblings)):
        return
    settle(task_execution, reporter)
    if task_execution.get_status().is_final:
        pipeline_result = task_execution.get_pipeline_result()
        if not pipeline_result.get_status().is_final:
            execution = pipeline_result.get_pipeline_execution()
            advance(execution, pipeline_result, pipeline_index, reporter)


def _cancel_pending(result: TaskResult, reporter: StatusReporter, message: str) -> None:
    """CANCELLED with ``message`` if ``result`` is still PENDING when it is stored (a
    result another worker has started is left to end)."""

    def pending() -> bool:
        return result.get_status() is PipelineTaskStatus.PENDING

    if not pending():
        return
    with result.atomic(require=pending) as batch:
        result.set_status(PipelineTaskStatus.CANCELLED)
        result.set_completed(utc_now())
        result.set_message(message)
    if batch.stored:
        result.save()
        reporter.report_context_object(
            result,
            PipelineTaskStatus.CANCELLED,
            status_change_message(PipelineTaskStatus.CANCELLED, message),
        )


__all__ = ["Advance", "attempts", "run_delivered"]
