"""Reporters: what hears of every status change a runner records.

Subclass :class:`PipelineReporter` and implement :meth:`~PipelineReporter.report`;
:class:`LoggingReporter` (the default) logs each change, :class:`MultiPipelineReporter`
passes each change on to several reporters.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable

from pipelines_events.results.base import StatusReporter
from pipelines_events.status import PipelineTaskStatus

__all__ = ["LoggingReporter", "MultiPipelineReporter", "PipelineReporter"]

LOGGER_NAME = "pipelines_events"
"""The logger :class:`LoggingReporter` writes to by default."""


class PipelineReporter(abc.ABC):
    """Base of reporters: told of every status change a runner records."""

    @abc.abstractmethod
    def report(
        self,
        pipeline_id: str | None,
        task_id: str | None,
        status: PipelineTaskStatus,
        message: str,
    ) -> None:
        """Hear that an object of pipeline ``pipeline_id`` (and task ``task_id``, or None
        for the execution and pipeline results) reached ``status``, with ``message``."""


class LoggingReporter(PipelineReporter):
    """Logs every status change to the logger ``"pipelines_events"`` (or ``logger``).

    Failed statuses are logged at ERROR, CANCELLED at WARNING, the rest at INFO.
    """

    def __init__(self, logger: logging.Logger | str | None = None) -> None:
        if logger is None or isinstance(logger, str):
            logger = logging.getLogger(logger or LOGGER_NAME)
        self.logger = logger

    @staticmethod
    def level(status: PipelineTaskStatus) -> int:
        """The logging level a change to ``status`` is logged at."""
        if status in PipelineTaskStatus.failed_statuses():
            return logging.ERROR
        if status is PipelineTaskStatus.CANCELLED:
            return logging.WARNING
        return logging.INFO

    def report(
        self,
        pipeline_id: str | None,
        task_id: str | None,
        status: PipelineTaskStatus,
        message: str,
    ) -> None:
        where = pipeline_id or "?"
        if task_id is not None:
            where = f"{where} task {task_id}"
        text = f"{where}: {status.value}"
        if message:
            text = f"{text}: {message}"
        self.logger.log(self.level(status), text)


class MultiPipelineReporter(PipelineReporter):
    """Passes every status change on to each of ``reporters``, in order.

    Every reporter hears of every change even when one before it raises; the first
    exception is raised again once all have been called.
    """

    def __init__(self, reporters: Iterable[StatusReporter]) -> None:
        self.reporters: list[StatusReporter] = list(reporters)

    def report(
        self,
        pipeline_id: str | None,
        task_id: str | None,
        status: PipelineTaskStatus,
        message: str,
    ) -> None:
        first_error: Exception | None = None
        for reporter in self.reporters:
            try:
                reporter.report(pipeline_id, task_id, status, message)
            except Exception as exc:
                if first_error is None:
                    first_error = exc
        if first_error is not None:
            raise first_error
