"""What a reporter must offer to hear of status changes, and what it is told."""

from __future__ import annotations

from typing import Any, Protocol

from pipelines_events.status import PipelineTaskStatus

__all__ = ["REPORTER_HOOKS", "StatusReporter", "check_reporter", "status_change_message"]


class StatusReporter(Protocol):
    """What a reporter must offer to hear about status changes (as the original's
    ``PipelineReporter``: :class:`pipelines_events.reporters.PipelineReporter` has them all)."""

    def report_context_object(
        self, context_object: Any, status: PipelineTaskStatus, message: str
    ) -> None: ...

    def report_pipeline_execution(
        self, pipeline_execution: Any, status: PipelineTaskStatus, message: str
    ) -> None: ...

    def report_pipeline_result(
        self, pipeline_result: Any, status: PipelineTaskStatus, message: str
    ) -> None: ...

    def report_task_execution(
        self, task_execution: Any, status: PipelineTaskStatus, message: str
    ) -> None: ...

    def report_task_result(
        self, task_result: Any, status: PipelineTaskStatus, message: str
    ) -> None: ...


REPORTER_HOOKS = (
    "report_context_object",
    "report_pipeline_execution",
    "report_pipeline_result",
    "report_task_execution",
    "report_task_result",
)
"""The methods a reporter must have (see :class:`StatusReporter`)."""


def check_reporter(reporter: object) -> None:
    """Raise :class:`TypeError` unless ``reporter`` is None or has every reporter hook."""
    if reporter is None:
        return
    missing = [name for name in REPORTER_HOOKS if not callable(getattr(reporter, name, None))]
    if missing:
        raise TypeError(
            f"reporter: {type(reporter).__name__} has no {', '.join(missing)}; give a "
            "pipelines_events.reporters.PipelineReporter (subclass it and implement report)"
        )


def status_change_message(status: PipelineTaskStatus, message: str) -> str:
    """What a status change tells the reporter: ``"Changed state to RUNNING - go"``."""
    return f"Changed state to {status.value}{' - ' + message if message else ''}"
