"""Every error pipelines-events raises; each names the problem and where it was found."""

from __future__ import annotations


class PipelinesEventsError(Exception):
    """Base class of every error raised by pipelines-events."""


class InvalidValueError(PipelinesEventsError, ValueError):
    """A value cannot be stored: JSON cannot hold it, or it has the wrong type."""


class LogError(PipelinesEventsError):
    """The log file cannot be opened, read or written."""


class AppendUnreadUnavailable(LogError):
    """:meth:`~pipelines_events.log.base.EventLog.append_unread` wrote nothing: the log was
    rolled into a segment by another writer; append with ``append`` instead."""


class LogOpenError(LogError):
    """The log path cannot be used (a directory, not writable, not creatable)."""


class LogWriteError(LogError):
    """An append failed; nothing of the batch is in the log."""


class EventTooLargeError(LogError, ValueError):
    """An encoded event is larger than the log's ``max_event_bytes``."""


class LogCorruptError(LogError):
    """A line of the log is damaged: names the file, the line number and the reason."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}: line {line}: {reason}")


class ReadOnlyStorageError(PipelinesEventsError):
    """A write was attempted through a read-only storage or view of the log."""


class SnapshotError(PipelinesEventsError):
    """A snapshot cannot be used (damaged, or not matching its log)."""


class ImproperlyConfigured(PipelinesEventsError):
    """A setting has a value that cannot be used; the message names the setting."""


class ObjectNotFoundError(PipelinesEventsError, LookupError):
    """No result object or run has the given id."""


class PipelineDefinitionError(PipelinesEventsError, TypeError):
    """A pipeline or task class is declared wrongly (bad ordering, unknown task)."""


class ProjectionError(PipelinesEventsError):
    """An event cannot be folded (it names an object that was never created, say)."""
