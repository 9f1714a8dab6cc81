"""The eager runner: runs every task in the calling process, in dependency order."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResult,
    StatusReporter,
    TaskExecution,
)
from pipelines_events.runners import (
    PipelineRunner,
    cancel_below,
    cancelled_message,
    error_message,
    fail_task_execution,
    settle,
)
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.task import Task

__all__ = ["Runner"]

logger = logging.getLogger(__name__)

_RUNNING = PipelineTaskStatus.RUNNING
_DONE = PipelineTaskStatus.DONE
_RUNTIME_ERROR = PipelineTaskStatus.RUNTIME_ERROR
_FAILED = PipelineTaskStatus.error_statuses()


@dataclass(frozen=True)
class _Prepared:
    task: Task
    objects: list[Any]
    cleaned_data: Any


@dataclass(frozen=True)
class _Failure:
    status: PipelineTaskStatus
    message: str


def _objects(iterator: Any) -> list[Any]:
    """The objects of an iterator as a list; None means one ``None`` object."""
    return [None] if iterator is None else list(iterator)


class Runner(PipelineRunner):
    """Runs each pipeline result in turn, its tasks in dependency order, every task result
    of a task in iterator order.

    Tasks are loaded through the result objects (``TaskExecution.get_task()``) and see
    the objects of the pipeline and task iterators, which are run again for the purpose.
    A task whose ``run`` raises gets RUNTIME_ERROR with ``"TypeName: text"`` as message;
    the rest of its pipeline result is then CANCELLED (``"cancelled: task 'x' failed"``),
    and the other pipeline results still run.
    """

    def run(self, execution: PipelineExecution, reporter: StatusReporter) -> None:
        if execution.get_status().is_final:
            return
        execution.report_status_change(reporter, _RUNNING)
        results = execution.get_pipeline_results()
        try:
            pipeline = execution.get_pipeline()
            objects = _objects(pipeline.get_iterator())
            order = {task.pipeline_task: i for i, task in enumerate(pipeline.get_build_tasks())}
        except Exception as exc:
            logger.debug("loading pipeline %s failed", execution.get_pipeline_id(), exc_info=True)
            self._fail_run(execution, reporter, error_message(exc))
            return
        if len(objects) != len(results):
            self._fail_run(
                execution,
                reporter,
                f"the pipeline iterator gave {len(objects)} objects, but the run was built "
                f"with {len(results)} pipeline results",
            )
            return
        for result, pipeline_object in zip(results, objects, strict=True):
            self.run_pipeline_result(execution, result, pipeline_object, order, reporter)
        settle(execution, reporter)

    def run_pipeline_result(
        self,
        execution: PipelineExecution,
        result: PipelineResult,
        pipeline_object: Any,
        order: dict[str, int],
        reporter: StatusReporter,
    ) -> None:
        """Run the tasks of one pipeline result in ``order`` (task name -> position)."""
        if result.get_status().is_final:
            return
        result.report_status_change(reporter, _RUNNING)
        task_executions = sorted(
            result.get_task_executions(),
            key=lambda te: order.get(te.get_pipeline_task(), len(order)),
        )
        failed: str | None = None
        for task_execution in task_executions:
            if failed is not None:
                cancel_below(task_execution, reporter, cancelled_message(failed))
            elif not self.run_task_execution(execution, task_execution, pipeline_object, reporter):
                failed = task_execution.get_pipeline_task()
        settle(result, reporter)

    def run_task_execution(
        self,
        execution: PipelineExecution,
        task_execution: TaskExecution,
        pipeline_object: Any,
        reporter: StatusReporter,
    ) -> bool:
        """Run every task result of one task execution; returns False if the task failed."""
        name = task_execution.get_pipeline_task()
        if task_execution.get_status().is_final:
            return task_execution.get_status() not in _FAILED
        task_execution.report_status_change(reporter, _RUNNING)
        results = task_execution.get_task_results()
        prepared = self._prepare(execution, task_execution, results)
        if isinstance(prepared, _Failure):
            fail_task_execution(task_execution, reporter, prepared.status, prepared.message)
            cancel_below(task_execution, reporter, cancelled_message(name))
            return False
        task, task_objects, cleaned_data = prepared.task, prepared.objects, prepared.cleaned_data
        pipeline_id, run_id = execution.get_pipeline_id(), execution.get_run_id()
        for result, task_object in zip(results, task_objects, strict=True):
            if result.get_status().is_final:
                continue
            result.report_status_change(reporter, _RUNNING)
            task.pipeline_object, task.task_object = pipeline_object, task_object
            try:
                task.run(pipeline_id, run_id, cleaned_data)
            except Exception as exc:
                logger.debug("task %s of run %s failed", name, run_id, exc_info=True)
                result.report_status_change(reporter, _RUNTIME_ERROR, error_message(exc))
                cancel_below(task_execution, reporter, cancelled_message(name))
                return False
            finally:
                task.pipeline_object = task.task_object = None
            result.report_status_change(reporter, _DONE)
        settle(task_execution, reporter)
        return task_execution.get_status() not in _FAILED

    def _prepare(
        self,
        execution: PipelineExecution,
        task_execution: TaskExecution,
        results: Sequence[Any],
    ) -> _Prepared | _Failure:
        """The task, its iterator's objects and the cleaned input data; or the failed
        status and message when one of them cannot be had."""
        try:
            task = task_execution.get_task()
        except Exception as exc:
            return _Failure(_RUNTIME_ERROR, error_message(exc))
        if not isinstance(task, Task):
            return _Failure(_RUNTIME_ERROR, f"the loader gave {task!r}, not a Task")
        try:
            task.get_config()
        except msgspec.ValidationError as exc:
            return _Failure(PipelineTaskStatus.CONFIG_ERROR, f"config of task {task.name!r}: {exc}")
        try:
            cleaned_data = task.clean_input_data(execution.get_input_data())
        except msgspec.ValidationError as exc:
            return _Failure(
                PipelineTaskStatus.VALIDATION_ERROR, f"input data of task {task.name!r}: {exc}"
            )
        try:
            task_objects = _objects(task.get_iterator())
        except Exception as exc:
            return _Failure(_RUNTIME_ERROR, error_message(exc))
        if len(task_objects) != len(results):
            return _Failure(
                _RUNTIME_ERROR,
                f"the iterator of task {task.name!r} gave {len(task_objects)} objects, but the "
                f"run was built with {len(results)} task results",
            )
        return _Prepared(task, task_objects, cleaned_data)

    @staticmethod
    def _fail_run(execution: PipelineExecution, reporter: StatusReporter, message: str) -> None:
        execution.report_status_change(reporter, _RUNTIME_ERROR, message)
        cancel_below(execution, reporter, "cancelled: the run failed")
