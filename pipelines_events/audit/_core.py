"""What the audit functions share: reading a log batch by batch, and changes with context."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import msgspec

from pipelines_events.errors import InvalidValueError, PipelinesEventsError, ReadOnlyStorageError
from pipelines_events.events import (
    KINDS,
    START,
    AnyEvent,
    LogPosition,
)
from pipelines_events.log.open import LogTarget, open_log
from pipelines_events.results.base import as_status
from pipelines_events.status import PipelineTaskStatus
from projections.history import CREATED, REMOVED, SET, Change, HistoryProjection

LogPath = LogTarget
"""A log: a file path (str or path-like), or a URL (``postgresql://``, ``memory://``)."""

AuditChange = Change
"""One change of one result object: :class:`projections.history.Change`."""

ChangeFold = HistoryProjection
"""Turns batches of events into changes: :class:`projections.history.HistoryProjection`."""


class OutputExistsError(PipelinesEventsError, FileExistsError):
    """An export would overwrite an existing file without ``force``."""


class ImportConflictError(PipelinesEventsError):
    """A run cannot be imported: the target log holds a different run with that id."""


class ImportRefusedError(PipelinesEventsError):
    """A log to import holds an event no storage could fold: names the file, the line and
    the problem. Nothing was imported."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}: line {line}: {reason}; nothing was imported")


def on_field(change: AuditChange, field: str) -> AuditChange | None:
    """``change`` seen as a change of ``field``: a creation gives the field's initial value.

    None when the change does not touch ``field``.
    """
    if change.action == SET:
        return change if change.field == field else None
    if change.action == CREATED and isinstance(change.new, dict) and field in change.new:
        return msgspec.structs.replace(change, field=field, new=change.new[field])
    return None


def iter_batches(path: LogPath) -> Iterator[tuple[list[AnyEvent], LogPosition]]:
    """Each complete batch of the log at ``path``, verified, with the position after it.

    Opens the file read-only: a missing file is a :class:`~pipelines_events.errors.LogOpenError`
    and nothing is created. Damage raises :class:`~pipelines_events.errors.LogCorruptError`.
    """
    with open_log(path, readonly=True) as log:
        for batch in log.read(START):
            yield batch.events, batch.cursor


def check_kind(kind: str | None) -> str | None:
    """``kind`` if it is one of the four kinds (or None); else :class:`InvalidValueError`."""
    if kind is None or kind in KINDS:
        return kind
    raise InvalidValueError(f"{kind!r} is not a kind of result object; the kinds are {_kinds()}")


def _kinds() -> str:
    return ", ".join(KINDS)


def check_status(status: PipelineTaskStatus | str | None) -> PipelineTaskStatus | None:
    """``status`` as a status (a member, its name or value), or None."""
    return None if status is None else as_status(status)


def check_time(name: str, value: datetime | None) -> datetime | None:
    """``value`` if it is an aware datetime (or None); else :class:`InvalidValueError`."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidValueError(f"{name}: give an aware datetime (with a timezone), not {value!r}")
    return value


__all__ = [
    "CREATED",
    "REMOVED",
    "SET",
    "AuditChange",
    "ChangeFold",
    "ImportConflictError",
    "ImportRefusedError",
    "LogPath",
    "OutputExistsError",
    "ReadOnlyStorageError",
    "check_kind",
    "check_status",
    "check_time",
    "iter_batches",
    "on_field",
]
