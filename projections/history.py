"""The history projection: every change of every object, in log order, for audit."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from pipelines_events.errors import SnapshotError
from pipelines_events.events import (
    AnyEvent,
    FieldSet,
    ObjectCreated,
    RunRemoved,
    decode_attrs,
    decode_value,
    encode_value,
)

CREATED = "created"
SET = "set"
REMOVED = "removed"


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One change of one object.

    ``action`` is ``created`` (``new`` holds the initial attributes), ``set`` (``field``
    went from ``old`` to ``new``) or ``removed`` (the run left the storage). ``message``
    is the status message recorded in the same batch as a status change.
    """

    seq: int
    ts: str
    run_id: str
    kind: str
    id: str
    action: str
    field: str | None = None
    old: Any = None
    new: Any = None
    message: str | None = None


class _SnapshotState(msgspec.Struct):
    changes: list[Any]
    current: dict[str, dict[str, Any]]


class HistoryProjection:
    """Ordered changes per object and per run, with old and new values."""

    def __init__(self) -> None:
        self._changes: list[Change] = []
        self._by_object: dict[str, list[int]] = {}
        self._by_run: dict[str, list[int]] = {}
        self._current: dict[str, dict[str, Any]] = {}
        self._batch_status: dict[str, int] = {}
        self._batch_message: dict[str, str] = {}

    def apply(self, event: AnyEvent) -> None:
        """Fold one event into the history."""
        if type(event) is FieldSet:
            current = self._current.setdefault(event.id, {})
            new = decode_value(event.value, event.vtype)
            old = current.get(event.field)
            current[event.field] = new
            index = self._add(event, SET, field=event.field, old=old, new=new)
            if event.field == "status":
                self._batch_status[event.id] = index
            elif event.field == "message" and isinstance(new, str):
                self._batch_message[event.id] = new
        elif type(event) is ObjectCreated:
            attrs = decode_attrs(event.attrs, event.types)
            self._current[event.id] = dict(attrs)
            self._add(event, CREATED, new=attrs, parent=event.parent_id)
        elif type(event) is RunRemoved:
            self._add(event, REMOVED)
        if event.more == 0:
            self._close_batch()

    def apply_all(self, events: Iterable[AnyEvent]) -> None:
        """Fold events in log order."""
        for event in events:
            self.apply(event)

    def _add(
        self,
        event: AnyEvent,
        action: str,
        *,
        field: str | None = None,
        old: Any = None,
        new: Any = None,
        parent: str | None = None,
    ) -> int:
        index = len(self._changes)
        self._changes.append(
            Change(
                seq=event.seq,
                ts=event.ts,
                run_id=event.run_id,
                kind=event.kind,
                id=event.id,
                action=action,
                field=field,
                old=old,
                new=new,
            )
        )
        self._by_object.setdefault(event.id, []).append(index)
        self._by_run.setdefault(event.run_id, []).append(index)
        return index

    def _close_batch(self) -> None:
        for object_id, index in self._batch_status.items():
            message = self._batch_message.get(object_id)
            if message is not None:
                self._changes[index] = msgspec.structs.replace(
                    self._changes[index], message=message
                )
        self._batch_status.clear()
        self._batch_message.clear()

    def changes(self) -> list[Change]:
        """Every change, in log order."""
        return list(self._changes)

    def object_changes(self, object_id: str) -> list[Change]:
        """The changes of one object, in log order."""
        return [self._changes[i] for i in self._by_object.get(object_id, ())]

    def run_changes(self, run_id: str) -> list[Change]:
        """The changes of every object of a run, in log order."""
        return [self._changes[i] for i in self._by_run.get(run_id, ())]

    def snapshot(self) -> bytes:
        """The state as bytes, for :meth:`restore`."""
        changes = [
            (
                c.seq,
                c.ts,
                c.run_id,
                c.kind,
                c.id,
                c.action,
                c.field,
                _encode(c.old),
                _encode(c.new),
                c.message,
            )
            for c in self._changes
        ]
        current = {
            object_id: {name: _encode(value) for name, value in values.items()}
            for object_id, values in self._current.items()
        }
        return msgspec.msgpack.encode(_SnapshotState(changes, current))

    @classmethod
    def restore(cls, data: bytes) -> HistoryProjection:
        """A projection holding the state :meth:`snapshot` wrote."""
        try:
            state = msgspec.msgpack.decode(data, type=_SnapshotState)
            projection = cls()
            for seq, ts, run_id, kind, id_, action, field, old, new, message in state.changes:
                change = Change(
                    seq=seq,
                    ts=ts,
                    run_id=run_id,
                    kind=kind,
                    id=id_,
                    action=action,
                    field=field,
                    old=_decode(old),
                    new=_decode(new),
                    message=message,
                )
                index = len(projection._changes)
                projection._changes.append(change)
                projection._by_object.setdefault(id_, []).append(index)
                projection._by_run.setdefault(run_id, []).append(index)
            projection._current = {
                object_id: {name: _decode(value) for name, value in values.items()}
                for object_id, values in state.current.items()
            }
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError) as exc:
            raise SnapshotError(f"history snapshot is damaged: {exc}") from None
        return projection


def _encode(value: Any) -> Any:
    if isinstance(value, dict) and not value:
        return [None, {}]
    if isinstance(value, dict) and any(not _plain(v) for v in value.values()):
        return [None, {name: _encode(v) for name, v in value.items()}, True]
    stored, vtype = encode_value("value", value)
    return [vtype, stored]


def _plain(value: Any) -> bool:
    return encode_value("value", value)[1] is None


def _decode(item: Any) -> Any:
    if len(item) == 3:
        return {name: _decode(v) for name, v in item[1].items()}
    return decode_value(item[1], item[0])
