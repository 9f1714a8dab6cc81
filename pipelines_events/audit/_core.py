"""What the audit functions share: reading a log batch by batch, and changes with context."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Final

import msgspec

from pipelines_events.errors import InvalidValueError, LogError, PipelinesEventsError
from pipelines_events.events import (
    KINDS,
    AnyEvent,
    FieldSet,
    LogPosition,
    ObjectCreated,
    RunRemoved,
    decode_attrs,
    decode_value,
    parse_time,
)
from pipelines_events.log.jsonl import JsonlEventLog
from pipelines_events.results.base import as_status
from pipelines_events.status import PipelineTaskStatus

LogPath = str | os.PathLike[str]
"""A log file, as a str or a path."""

CREATED: Final = "created"
SET: Final = "set"
REMOVED: Final = "removed"
"""The actions of an :class:`AuditChange`."""


class ReadOnlyStorageError(PipelinesEventsError):
    """A write was attempted through a read-only view of the log."""


class OutputExistsError(PipelinesEventsError, FileExistsError):
    """An export would overwrite an existing file without ``force``."""


class ImportConflictError(PipelinesEventsError):
    """A run cannot be imported: the target log holds a different run with that id."""


class AuditChange(msgspec.Struct, frozen=True, kw_only=True):
    """One change of one result object, with the object's place in its run.

    ``action`` is ``created`` (``new`` holds the initial fields, or the initial value of
    ``field`` when the history was filtered by field or status), ``set`` (``field`` went
    from ``old`` to ``new``) or ``removed`` (the run left the storage). ``message`` is the
    status message stored in the same batch as a status change. ``pipeline_task`` and
    ``task_id`` name the task of task executions and task results; ``pipeline_object``
    is the stored object of the pipeline iterator (pipeline results and below),
    ``task_object`` the stored object of the task iterator (task results).
    """

    seq: int
    time: datetime
    run_id: str
    kind: str
    id: str
    action: str
    field: str | None = None
    old: Any = None
    new: Any = None
    message: str | None = None
    pipeline_task: str | None = None
    task_id: str | None = None
    pipeline_object: Any = None
    task_object: Any = None


class _Context:
    """Where an object sits in its run, learnt from its creation."""

    __slots__ = ("pipeline_object", "pipeline_task", "task_id", "task_object")

    def __init__(
        self,
        pipeline_task: str | None = None,
        task_id: str | None = None,
        pipeline_object: Any = None,
        task_object: Any = None,
    ) -> None:
        self.pipeline_task = pipeline_task
        self.task_id = task_id
        self.pipeline_object = pipeline_object
        self.task_object = task_object


_NO_CONTEXT: Final = _Context()


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


class ChangeFold:
    """Turns events, batch by batch and in log order, into :class:`AuditChange` records.

    Keeps every object's current values (for ``old``) and its context (for the task and
    iterator objects). A status message set in the same batch as a status is attached to
    that status change.
    """

    def __init__(self) -> None:
        self._values: dict[str, dict[str, Any]] = {}
        self._context: dict[str, _Context] = {}
        self._last_ts = ""
        self._last_time: datetime | None = None

    def learn(self, event: ObjectCreated) -> None:
        """Record the context of a created object without producing a change."""
        self._learn(event, decode_attrs(event.attrs, event.types))

    def _learn(self, event: ObjectCreated, attrs: dict[str, Any]) -> _Context:
        parent = _NO_CONTEXT
        if event.parent_id is not None:
            parent = self._context.get(event.parent_id, _NO_CONTEXT)
        context = _Context(
            _str_or_none(attrs["pipeline_task"])
            if "pipeline_task" in attrs
            else parent.pipeline_task,
            _str_or_none(attrs["task_id"]) if "task_id" in attrs else parent.task_id,
            attrs.get("serializable_pipeline_object", parent.pipeline_object),
            attrs.get("serializable_task_object"),
        )
        self._context[event.id] = context
        return context

    def time_of(self, event: AnyEvent) -> datetime:
        """The event's time as an aware datetime."""
        ts = event.ts
        if ts != self._last_ts or self._last_time is None:
            try:
                self._last_time = parse_time(ts)
            except ValueError:
                raise LogError(
                    f"seq {event.seq}: the event's time {ts!r} is not an ISO 8601 time"
                ) from None
            self._last_ts = ts
        return self._last_time

    def batch(self, events: Iterable[AnyEvent]) -> list[AuditChange]:
        """The changes of one batch (or of the part of a batch that was selected)."""
        changes: list[AuditChange] = []
        status_at: dict[str, int] = {}
        messages: dict[str, str] = {}
        for event in events:
            time = self.time_of(event)
            if type(event) is FieldSet:
                values = self._values.setdefault(event.id, {})
                new = decode_value(event.value, event.vtype)
                old = values.get(event.field)
                values[event.field] = new
                if event.field == "status":
                    status_at[event.id] = len(changes)
                elif event.field == "message" and isinstance(new, str):
                    messages[event.id] = new
                changes.append(
                    self._change(event, time, SET, event.field, old, new, self._context_of(event))
                )
            elif type(event) is ObjectCreated:
                attrs = decode_attrs(event.attrs, event.types)
                self._values[event.id] = dict(attrs)
                context = self._learn(event, attrs)
                changes.append(self._change(event, time, CREATED, None, None, attrs, context))
            elif type(event) is RunRemoved:
                changes.append(
                    self._change(event, time, REMOVED, None, None, None, self._context_of(event))
                )
        for object_id, index in status_at.items():
            message = messages.get(object_id)
            if message is not None:
                changes[index] = msgspec.structs.replace(changes[index], message=message)
        return changes

    def _context_of(self, event: AnyEvent) -> _Context:
        return self._context.get(event.id, _NO_CONTEXT)

    @staticmethod
    def _change(
        event: AnyEvent,
        time: datetime,
        action: str,
        field: str | None,
        old: Any,
        new: Any,
        context: _Context,
    ) -> AuditChange:
        return AuditChange(
            seq=event.seq,
            time=time,
            run_id=event.run_id,
            kind=event.kind,
            id=event.id,
            action=action,
            field=field,
            old=old,
            new=new,
            pipeline_task=context.pipeline_task,
            task_id=context.task_id,
            pipeline_object=context.pipeline_object,
            task_object=context.task_object,
        )


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
    with JsonlEventLog(path, readonly=True) as log:
        batch: list[AnyEvent] = []
        for event in log.read_new():
            batch.append(event)
            if not event.more:
                yield batch, log.position
                batch = []


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
    "LogPath",
    "OutputExistsError",
    "ReadOnlyStorageError",
    "check_kind",
    "check_status",
    "check_time",
    "iter_batches",
    "on_field",
]
