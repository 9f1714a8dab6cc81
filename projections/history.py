"""The history projection: every change of every object, in log order, with its context.

:meth:`HistoryProjection.batch` turns one batch of events into :class:`Change` records
(the audit commands stream a log through it); :meth:`HistoryProjection.apply` also keeps
them, for queries by object and by run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

import msgspec

from pipelines_events.errors import ProjectionError, SnapshotError
from pipelines_events.events import (
    AnyEvent,
    FieldSet,
    ObjectCreated,
    RunRemoved,
    decode_attrs,
    decode_value,
    parse_time,
    tag_value,
)

CREATED: Final = "created"
SET: Final = "set"
REMOVED: Final = "removed"
"""The actions of a :class:`Change`."""


class Change(msgspec.Struct, frozen=True, kw_only=True):
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


class _SnapshotState(msgspec.Struct):
    changes: list[Any]
    values: dict[str, dict[str, Any]]
    contexts: dict[str, list[Any]]


class HistoryProjection:
    """Every object's current values (for ``old``) and context, and, through
    :meth:`apply`, every change kept for :meth:`object_changes` and :meth:`run_changes`.

    A status message set in the same batch as a status is attached to that status change.
    """

    def __init__(self) -> None:
        self._values: dict[str, dict[str, Any]] = {}
        self._context: dict[str, _Context] = {}
        self._last_ts = ""
        self._last_time: datetime | None = None
        self._pending: list[AnyEvent] = []
        self._changes: list[Change] = []
        self._by_object: dict[str, list[int]] = {}
        self._by_run: dict[str, list[int]] = {}

    # -- streaming --------------------------------------------------------------------

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
                raise ProjectionError(
                    f"seq {event.seq}: the event's time {ts!r} is not an ISO 8601 time"
                ) from None
            self._last_ts = ts
        return self._last_time

    def batch(self, events: Iterable[AnyEvent]) -> list[Change]:
        """The changes of one batch (or of the part of a batch that was selected)."""
        changes: list[Change] = []
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
    ) -> Change:
        return Change(
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

    # -- keeping every change ---------------------------------------------------------

    def apply(self, event: AnyEvent) -> None:
        """Fold one event in log order; a batch's changes are kept once it is complete."""
        self._pending.append(event)
        if event.more == 0:
            pending, self._pending = self._pending, []
            for change in self.batch(pending):
                self._keep(change)

    def apply_all(self, events: Iterable[AnyEvent]) -> None:
        """Fold events in log order."""
        for event in events:
            self.apply(event)

    def _keep(self, change: Change) -> None:
        index = len(self._changes)
        self._changes.append(change)
        self._by_object.setdefault(change.id, []).append(index)
        self._by_run.setdefault(change.run_id, []).append(index)

    def changes(self) -> list[Change]:
        """Every change kept, in log order."""
        return list(self._changes)

    def object_changes(self, object_id: str) -> list[Change]:
        """The changes of one object, in log order."""
        return [self._changes[i] for i in self._by_object.get(object_id, ())]

    def run_changes(self, run_id: str) -> list[Change]:
        """The changes of every object of a run, in log order."""
        return [self._changes[i] for i in self._by_run.get(run_id, ())]

    # -- snapshots --------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The state as bytes, for :meth:`restore` (after a complete batch).

        JSON, with statuses and datetimes tagged as the log tags them, so every value
        comes back exactly.
        """
        changes = [
            (
                c.seq,
                c.time.isoformat(),
                c.run_id,
                c.kind,
                c.id,
                c.action,
                c.field,
                _encode(c.old),
                _encode(c.new),
                c.message,
                c.pipeline_task,
                c.task_id,
                c.pipeline_object,
                c.task_object,
            )
            for c in self._changes
        ]
        values = {
            object_id: {name: _encode(value) for name, value in fields.items()}
            for object_id, fields in self._values.items()
        }
        contexts = {
            object_id: [c.pipeline_task, c.task_id, c.pipeline_object, c.task_object]
            for object_id, c in self._context.items()
        }
        return msgspec.json.encode(_SnapshotState(changes, values, contexts))

    @classmethod
    def restore(cls, data: bytes) -> HistoryProjection:
        """A projection holding the state :meth:`snapshot` wrote."""
        try:
            state = msgspec.json.decode(data, type=_SnapshotState)
            projection = cls()
            for (
                seq,
                time,
                run_id,
                kind,
                id_,
                action,
                field,
                old,
                new,
                message,
                pipeline_task,
                task_id,
                pipeline_object,
                task_object,
            ) in state.changes:
                projection._keep(
                    Change(
                        seq=seq,
                        time=parse_time(time),
                        run_id=run_id,
                        kind=kind,
                        id=id_,
                        action=action,
                        field=field,
                        old=_decode(old),
                        new=_decode(new),
                        message=message,
                        pipeline_task=pipeline_task,
                        task_id=task_id,
                        pipeline_object=pipeline_object,
                        task_object=task_object,
                    )
                )
            projection._values = {
                object_id: {name: _decode(value) for name, value in fields.items()}
                for object_id, fields in state.values.items()
            }
            projection._context = {
                object_id: _Context(*context) for object_id, context in state.contexts.items()
            }
        except (
            msgspec.DecodeError,
            msgspec.ValidationError,
            ValueError,
            TypeError,
            KeyError,
            IndexError,
            RecursionError,
        ) as exc:
            raise SnapshotError(f"history snapshot is damaged: {exc}") from None
        return projection


def _encode(value: Any) -> list[Any]:
    """``value`` as ``[vtype, json]``, or ``[None, {name: [vtype, json]}, True]`` for the
    attributes of a created object (whose values may be statuses and datetimes)."""
    if type(value) is dict and any(tag_value(v)[1] is not None for v in value.values()):
        return [None, {name: _encode(v) for name, v in value.items()}, True]
    stored, vtype = tag_value(value)
    return [vtype, stored]


def _decode(item: list[Any]) -> Any:
    if len(item) == 3:
        return {name: _decode(v) for name, v in item[1].items()}
    return decode_value(item[1], item[0])
