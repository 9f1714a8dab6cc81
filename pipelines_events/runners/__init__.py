"""Runners: what runs the tasks of a built pipeline execution and reports their statuses."""

from __future__ import annotations

import os
import socket
import traceback
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
    "cancel_run",
    "cancelled_message",
    "error_message",
    "error_traceback",
    "fail_run",
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
        scheduled) and what :meth:`run` returns when that is a bool.

        A run not yet final first records where its runner lives: ``runner_host`` (the
        host name) and ``runner_pid`` (this process's id), where the storage keeps
        fields beyond the seed's.
        """
        if not pipeline_execution.get_status().is_final:
            try:
                with pipeline_execution.atomic():
                    pipeline_execution.set_runner_host(socket.gethostname())
                    pipeline_execution.set_runner_pid(os.getpid())
            except (AttributeError, NotImplementedError):
                pass  # a custom storage that keeps only the seed's fields
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
    return obj.report_status_change(reporter, outcome, obj.outcome_message(outcome))


def cancel_below(
    obj: PipelineStorageObject,
    reporter: StatusReporter | None,
    message: str,
    propagate: bool = True,
) -> None:
    """Mark ``obj`` and every object below it that is not final yet CANCELLED with
    ``message``, children first (a parent whose children are all final follows, with the
    outcome they add up to); with ``propagate`` False no change goes up on its own."""
    children = obj.get_children()
    for child in children:
        cancel_below(child, reporter, message, propagate)
    if obj.get_status().is_final:
        return
    # A parent whose children all ended ends as they add up (a failure among them is
    # the parent's outcome, not CANCELLED); only what had not ended is cancelled.
    outcome = obj.children_outcome() if children else None
    if outcome is None or outcome is PipelineTaskStatus.CANCELLED:
        obj.report_status_change(reporter, PipelineTaskStatus.CANCELLED, message, propagate)
    else:
        obj.report_status_change(reporter, outcome, obj.outcome_message(outcome), propagate)


def fail_run(execution: PipelineExecution, reporter: StatusReporter | None, message: str) -> None:
    """The run failed as a whole (its pipeline cannot be loaded, say): every object below
    the execution that is not final is CANCELLED, then the execution gets RUNTIME_ERROR
    with ``message``."""
    for child in execution.get_children():
        cancel_below(child, reporter, "cancelled: the run failed", propagate=False)
    execution.report_status_change(reporter, PipelineTaskStatus.RUNTIME_ERROR, message)


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


TRACEBACK_LIMIT = 16_384
"""The most characters of a traceback a failure records (the end is kept)."""


def error_traceback(exc: BaseException, limit: int = TRACEBACK_LIMIT) -> str:
    """The traceback of ``exc`` as Python prints it, ending with ``TypeName: text``; at
    most ``limit`` characters (the start is cut, a line says so)."""
    text = "".join(traceback.format_exception(exc)).rstrip("\n")
    if len(text) <= limit:
        return text
    tail = text[-(limit - 60) :]
    tail = tail[tail.find("\n") + 1 :] if "\n" in tail else tail
    return f"[{len(text) - len(tail)} characters of the traceback cut]\n{tail}"


def cancel_run(execution: PipelineExecution, reporter: StatusReporter | None, message: str) -> int:
    """End every object of ``execution``'s run that is not final as CANCELLED with
    ``message``, children before their parents; returns how many were changed."""
    changed = 0

    def cancel(obj: PipelineStorageObject) -> None:
        nonlocal changed
        for child in obj.get_children():
            cancel(child)
        if not obj.get_status().is_final and obj.report_status_change(
            reporter, PipelineTaskStatus.CANCELLED, message, propagate=False
        ):
            changed += 1

    cancel(execution)
    return changed
