"""Runners: what runs the tasks of a built pipeline execution and reports their statuses."""

from __future__ import annotations

import abc

from pipelines_events.results.base import (
    PipelineExecution,
    PipelineStorageObject,
    StatusReporter,
    TaskExecution,
)
from pipelines_events.status import PipelineTaskStatus

__all__ = [
    "PipelineRunner",
    "cancel_below",
    "cancelled_message",
    "error_message",
    "fail_task_execution",
    "settle",
]


class PipelineRunner(abc.ABC):
    """Base of runners. ``Pipeline.start()`` builds the result objects of a run, then
    hands the execution to :meth:`run`."""

    @abc.abstractmethod
    def run(self, execution: PipelineExecution, reporter: StatusReporter) -> None:
        """Run every task of ``execution``, reporting each status change to ``reporter``
        through the result objects' ``report_status_change``."""


def settle(obj: PipelineStorageObject, reporter: StatusReporter | None) -> bool:
    """Give ``obj`` the status its children add up to, if they are all final.

    An object without children becomes DONE. Returns whether a status was recorded.
    """
    if obj.get_status().is_final:
        return False
    outcome = obj.children_outcome()
    if outcome is None:
        return False
    return obj.report_status_change(reporter, outcome)


def cancel_below(obj: PipelineStorageObject, reporter: StatusReporter | None, message: str) -> None:
    """Mark ``obj`` and every object below it that is not final yet CANCELLED with
    ``message``, children first (a parent whose children all end up cancelled follows)."""
    for child in obj.get_children():
        cancel_below(child, reporter, message)
    if not obj.get_status().is_final:
        obj.report_status_change(reporter, PipelineTaskStatus.CANCELLED, message)


def fail_task_execution(
    task_execution: TaskExecution,
    reporter: StatusReporter | None,
    status: PipelineTaskStatus,
    message: str,
) -> None:
    """Give every task result of ``task_execution`` that is not final yet the failed
    ``status`` with ``message`` (the task execution itself when it has none)."""
    results = task_execution.get_task_results()
    for result in results:
        if not result.get_status().is_final:
            result.report_status_change(reporter, status, message)
    if not results:
        task_execution.report_status_change(reporter, status, message)


def cancelled_message(pipeline_task: str) -> str:
    """The message of the objects cancelled because task ``pipeline_task`` failed."""
    return f"cancelled: task {pipeline_task!r} failed"


def error_message(exc: BaseException) -> str:
    """``"TypeName: text"`` for an exception (``"TypeName"`` when it has no text)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
