"""The eager runner: runs every task in the calling process, in dependency order."""

from __future__ import annotations

import logging
from typing import Any

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
    error_traceback,
    fail_task_execution,
    settle,
)
from pipelines_events.runners.steps import (
    Failure,
    load_run,
    prepare,
    sorted_task_executions,
)
from pipelines_events.status import PipelineTaskStatus

__all__ = ["Runner"]

logger = logging.getLogger(__name__)

_RUNNING = PipelineTaskStatus.RUNNING
_DONE = PipelineTaskStatus.DONE
_RUNTIME_ERROR = PipelineTaskStatus.RUNTIME_ERROR
_FAILED = PipelineTaskStatus.error_statuses()


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
        run = load_run(execution, reporter)
        if run is None:
            return
        for result, pipeline_object in zip(run.results, run.objects, strict=True):
            self.run_pipeline_result(execution, result, pipeline_object, run.order, reporter)
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
        task_executions = sorted_task_executions(result, order)
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
        prepared = prepare(execution, task_execution, results)
        if isinstance(prepared, Failure):
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
                result.report_status_change(
                    reporter, _RUNTIME_ERROR, error_message(exc), traceback=error_traceback(exc)
                )
                cancel_below(task_execution, reporter, cancelled_message(name))
                return False
            finally:
                task.pipeline_object = task.task_object = None
            result.report_status_change(reporter, _DONE)
        settle(task_execution, reporter)
        return task_execution.get_status() not in _FAILED
