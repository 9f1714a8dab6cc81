"""Runners: what runs the tasks of a built pipeline execution and reports their statuses."""

from __future__ import annotations

from graphlib import TopologicalSorter
from typing import Any

from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResult,
    PipelineStorageObject,
    StatusReporter,
    TaskExecution,
    not_implemented,
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


class PipelineRunner:
    """Base of runners. ``Pipeline.start()`` builds the result objects of a run, then
    calls :meth:`start`, which calls :meth:`run`; a runner implements :meth:`run`."""

    @classmethod
    def get_task_graph(cls, pipeline_result: PipelineResult) -> TopologicalSorter[str]:
        """The tasks of ``pipeline_result``'s pipeline as a :class:`graphlib.TopologicalSorter`
        (built as the original built it): each task after the one declared before it when
        the pipeline has no dependencies, else after its dependencies only."""
        pipeline: Any = pipeline_result.get_pipeline()
        dependencies: dict[str, list[str]] = pipeline.get_dependencies()
        if not any(dependencies.values()):
            graph: dict[str, list[str]] = {}
            previous = ""
            for name in dependencies:
                graph[name] = [previous] if previous else []
                previous = name
            dependencies = graph
        return TopologicalSorter(dependencies)

    @classmethod
    def get_flat_task_list(cls, pipeline_result: PipelineResult) -> list[TaskExecution]:
        """The task executions of ``pipeline_result`` in an order that respects every
        dependency (:meth:`get_task_graph`'s static order)."""
        order = {
            name: i for i, name in enumerate(cls.get_task_graph(pipeline_result).static_order())
        }
        return sorted(
            pipeline_result.get_task_executions(),
            key=lambda te: order.get(te.get_pipeline_task(), len(order)),
        )

    def start(self, pipeline_execution: PipelineExecution, reporter: StatusReporter) -> bool:
        """Run ``pipeline_execution`` with :meth:`run`; returns True once it is run (or
        scheduled) and what :meth:`run` returns when that is a bool."""
        outcome = self.run(pipeline_execution, reporter)
        return outcome if isinstance(outcome, bool) else True

    def run(self, execution: PipelineExecution, reporter: StatusReporter) -> bool | None:
        """Run every task of ``execution``, reporting each status change to ``reporter``
        through the result objects' ``report_status_change``."""
        raise not_implemented(self, "run", "a runner implements run")


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
