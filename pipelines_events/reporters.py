"""Reporters: what hears of every status change a runner records.

The interface is the original django-pipelines' one. Subclass :class:`PipelineReporter`
and implement :meth:`~PipelineReporter.report`; the hooks ``report_pipeline_execution``,
``report_pipeline_result``, ``report_task_execution`` and ``report_task_result`` pass
through :meth:`~PipelineReporter.report_context_object`, which describes the object in
front of the message before calling ``report``. :class:`LoggingReporter` (the default)
logs each change, :class:`MultiPipelineReporter` passes each change on to several
reporters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pipelines_events.dotted import DottedPathError, import_dotted
from pipelines_events.errors import ImproperlyConfigured
from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResult,
    PipelineStorageObject,
    TaskExecution,
    TaskResult,
)
from pipelines_events.status import PipelineTaskStatus

__all__ = [
    "LoggingReporter",
    "MultiPipelineReporter",
    "PipelineReporter",
    "describe",
    "reporter_from_config",
]

LOGGER_NAME = "pipelines_events"
"""The logger :class:`LoggingReporter` writes to by default."""

_ERRORS = PipelineTaskStatus.error_statuses()


def _log_message(
    root: str,
    status: PipelineTaskStatus,
    message: str,
    pipeline_object: Any = None,
    task_object: Any = None,
) -> str:
    parts = [message or status.value.capitalize()]
    if pipeline_object:
        parts.append(f"pipeline object: {pipeline_object}")
    if task_object:
        parts.append(f"task object: {task_object}")
    return f"{root}: {' | '.join(parts)}"


def describe(
    context_object: PipelineStorageObject, status: PipelineTaskStatus, message: str
) -> str:
    """``message`` with the object's description in front, as the original wrote it:
    ``"Task result (<id>) <task name> (<task id>): <message> | task object: {...}"``.

    An empty message is the status's value, capitalised (``"Pending"``).
    """
    obj: Any = context_object
    if isinstance(obj, TaskResult):
        return _log_message(
            f"Task result ({obj.get_id()}) {obj.get_pipeline_task()} ({obj.get_task_id()})",
            status,
            message,
            pipeline_object=obj.get_serializable_pipeline_object(),
            task_object=obj.get_serializable_task_object(),
        )
    if isinstance(obj, TaskExecution):
        return _log_message(
            f"Task execution ({obj.get_id()}) {obj.get_pipeline_task()} ({obj.get_task_id()})",
            status,
            message,
            pipeline_object=obj.get_serializable_pipeline_object(),
        )
    if isinstance(obj, PipelineResult):
        return _log_message(
            f"Pipeline result ({obj.get_id()}) {obj.get_pipeline_id()}",
            status,
            message,
            pipeline_object=obj.get_serializable_pipeline_object(),
        )
    if isinstance(obj, PipelineExecution):
        return _log_message(
            f"Pipeline execution ({obj.get_run_id()}) {obj.get_pipeline_id()}", status, message
        )
    raise TypeError(f"cannot report on {obj!r}: it is not a result object of the storage")


class PipelineReporter:
    """Base of reporters: told of every status change a runner records.

    Subclass it and implement :meth:`report`; the other methods are the hooks runners
    and result objects call, and may be overridden too.
    """

    def report(
        self,
        context_object: PipelineStorageObject,
        status: PipelineTaskStatus,
        message: str,
    ) -> None:
        """Hear that ``context_object`` reached ``status``; ``message`` describes the
        object and the change (see :func:`describe`)."""
        raise NotImplementedError(f"{type(self).__qualname__} does not implement report()")

    def report_pipeline_execution(
        self, pipeline_execution: PipelineExecution, status: PipelineTaskStatus, message: str
    ) -> None:
        """Report on a pipeline execution (through :meth:`report_context_object`)."""
        self.report_context_object(pipeline_execution, status, message)

    def report_pipeline_result(
        self, pipeline_result: PipelineResult, status: PipelineTaskStatus, message: str
    ) -> None:
        """Report on a pipeline result (through :meth:`report_context_object`)."""
        self.report_context_object(pipeline_result, status, message)

    def report_task_execution(
        self, task_execution: TaskExecution, status: PipelineTaskStatus, message: str
    ) -> None:
        """Report on a task execution (through :meth:`report_context_object`)."""
        self.report_context_object(task_execution, status, message)

    def report_task_result(
        self, task_result: TaskResult, status: PipelineTaskStatus, message: str
    ) -> None:
        """Report on a task result (through :meth:`report_context_object`)."""
        self.report_context_object(task_result, status, message)

    def report_context_object(
        self, context_object: PipelineStorageObject, status: PipelineTaskStatus, message: str
    ) -> None:
        """Call :meth:`report` with ``message`` behind the object's description."""
        self.report(context_object, status, describe(context_object, status, message))


class LoggingReporter(PipelineReporter):
    """Logs every status change to the logger ``"pipelines_events"`` (or ``logger``).

    Errors are logged at ERROR, CANCELLED at WARNING, the rest at INFO.
    """

    def __init__(self, logger: logging.Logger | str | None = None) -> None:
        if logger is None or isinstance(logger, str):
            logger = logging.getLogger(logger or LOGGER_NAME)
        self.logger = logger

    @staticmethod
    def level(status: PipelineTaskStatus) -> int:
        """The logging level a change to ``status`` is logged at."""
        if status in _ERRORS:
            return logging.ERROR
        if status is PipelineTaskStatus.CANCELLED:
            return logging.WARNING
        return logging.INFO

    def report_context_object(
        self, context_object: PipelineStorageObject, status: PipelineTaskStatus, message: str
    ) -> None:
        """As the base class's, without describing the object when the logger would drop
        the line (a big run reports every object PENDING)."""
        if self.logger.isEnabledFor(self.level(status)):
            super().report_context_object(context_object, status, message)

    def report(
        self,
        context_object: PipelineStorageObject,
        status: PipelineTaskStatus,
        message: str,
    ) -> None:
        self.logger.log(self.level(status), message)


def reporter_from_config(entry: Any) -> Any:
    """A reporter from a config entry: a reporter object as it is, a dotted class path
    (created without arguments) or a ``(dotted path, {kwargs})`` pair.

    Raises :class:`ImproperlyConfigured` naming the entry when it is none of these or
    the class cannot be imported or created.
    """
    if callable(getattr(entry, "report", None)) and not isinstance(entry, type):
        return entry
    if isinstance(entry, str):
        path, kwargs = entry, {}
    elif (
        isinstance(entry, tuple | list)
        and len(entry) == 2
        and isinstance(entry[0], str)
        and isinstance(entry[1], Mapping)
    ):
        path, kwargs = entry[0], dict(entry[1])
    else:
        raise ImproperlyConfigured(
            f"reporter {entry!r}: give a reporter object, a dotted class path or a "
            "(dotted path, {kwargs}) pair"
        )
    try:
        cls = import_dotted(path, object)
    except DottedPathError as exc:
        verb = "cannot import it: " if exc.reason == "import" else ""
        raise ImproperlyConfigured(f"reporter {path!r}: {verb}{exc.problem}") from exc
    try:
        reporter = cls(**kwargs)
    except Exception as exc:
        raise ImproperlyConfigured(
            f"reporter {path!r}: cannot create it with {kwargs!r}: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(getattr(reporter, "report", None)):
        raise ImproperlyConfigured(f"reporter {path!r}: {cls.__qualname__} has no report()")
    return reporter


class MultiPipelineReporter(PipelineReporter):
    """Passes every report on to the ``report`` of each of ``reporters``, in order.

    Each entry is a reporter object, a dotted class path or a ``(dotted path, {kwargs})``
    pair (see :func:`reporter_from_config`). Every reporter hears of every change even
    when one before it raises; the first exception is raised again once all have been
    called.
    """

    def __init__(self, reporters: Iterable[Any]) -> None:
        if isinstance(reporters, str | bytes | Mapping) or not isinstance(reporters, Iterable):
            raise ImproperlyConfigured(
                f"reporters: give a list of reporters or reporter entries, not {reporters!r}"
            )
        self.reporters: list[Any] = [reporter_from_config(entry) for entry in reporters]

    def report(
        self,
        context_object: PipelineStorageObject,
        status: PipelineTaskStatus,
        message: str,
    ) -> None:
        first_error: Exception | None = None
        for reporter in self.reporters:
            try:
                reporter.report(context_object, status, message)
            except Exception as exc:
                if first_error is None:
                    first_error = exc
        if first_error is not None:
            raise first_error
