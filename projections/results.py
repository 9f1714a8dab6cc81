"""The results projection: the four kinds of result object, their attributes and relations."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec

from pipelines_events.errors import ProjectionError, SnapshotError
from pipelines_events.events import (
    PIPELINE_EXECUTION,
    AnyEvent,
    FieldSet,
    ObjectCreated,
    RunRemoved,
    decode_value,
    tag_value,
)
from pipelines_events.status import PipelineTaskStatus
from projections.records import ABSENT, ResultRecord

_PLAIN: Any = frozenset({str, int, float, bool, type(None), dict, list})
"""Types of values a snapshot stores as they are (JSON has them)."""


_FINAL = PipelineTaskStatus.final_statuses()


def _adopt(parent: ResultRecord, child_id: str) -> None:
    if parent.children:
        parent.children.append(child_id)
    else:
        parent.children = [child_id]


class _SnapshotRecord(msgspec.Struct, array_like=True):
    """One object. Statuses and UTC datetimes in the slots of every object go in typed
    members (fast to decode); every other field goes in ``attrs``, tagged by ``types``
    as in an ``ObjectCreated`` event."""

    kind: str
    id: str
    run_id: str
    parent_id: str | None
    status: PipelineTaskStatus | None
    started: datetime | None
    completed: datetime | None
    attrs: dict[str, Any]
    types: dict[str, str]


class _Snapshot(msgspec.Struct):
    records: list[_SnapshotRecord]
    removed_runs: list[str]


_snapshot_decoder = msgspec.json.Decoder(_Snapshot)


def _put(attrs: dict[str, Any], types: dict[str, str], name: str, value: Any) -> None:
    """Store field ``name`` in a snapshot record's ``attrs``, tagged when JSON cannot
    tell its type."""
    if type(value) in _PLAIN:
        attrs[name] = value
        return
    stored, vtype = tag_value(value)
    attrs[name] = stored
    if vtype is not None:
        types[name] = vtype


class ResultsProjection:
    """Result objects by id, runs by run id and pipeline id, children by parent."""

    def __init__(self) -> None:
        self._records: dict[str, ResultRecord] = {}
        self._runs: dict[str, str] = {}
        self._by_pipeline: dict[str, dict[str, None]] = {}
        self._removed_runs: set[str] = set()

    # -- folding -----------------------------------------------------------------------

    def apply(self, event: AnyEvent) -> None:
        """Fold one event into the state."""
        if type(event) is FieldSet:
            self._set(event)
        elif type(event) is ObjectCreated:
            self._created(event)
        elif type(event) is RunRemoved:
            self._removed(event)

    def apply_all(self, events: Iterable[AnyEvent]) -> None:
        """Fold events in log order."""
        apply = self.apply
        for event in events:
            apply(event)

    def _created(self, event: ObjectCreated) -> None:
        records = self._records
        object_id = event.id
        if object_id in records:
            raise ProjectionError(f"seq {event.seq}: {event.kind} {object_id} is created twice")
        parent_id = event.parent_id
        parent = None
        if parent_id is not None:
            parent = records.get(parent_id)
            if parent is None:
                if event.run_id in self._removed_runs:
                    return
                raise ProjectionError(
                    f"seq {event.seq}: {event.kind} {object_id} names parent {parent_id}, "
                    "which was never created"
                )
        elif event.kind == PIPELINE_EXECUTION and event.run_id in self._runs:
            raise ProjectionError(f"seq {event.seq}: run {event.run_id} already has an execution")
        attrs = dict(event.attrs)
        for name, vtype in event.types.items():
            if name in attrs:
                attrs[name] = decode_value(attrs[name], vtype)
        run_id = event.run_id
        if parent is not None:
            # Share the parent's strings instead of keeping the decoded copies.
            parent_id = parent.id
            if parent.run_id == run_id:
                run_id = parent.run_id
        record = ResultRecord(event.kind, object_id, run_id, parent_id, attrs)
        records[object_id] = record
        if parent is not None:
            _adopt(parent, object_id)
            if record.status not in _FINAL:
                parent.open_children += 1
        elif event.kind == PIPELINE_EXECUTION:
            self._removed_runs.discard(event.run_id)
            self._index_execution(record)

    def _set(self, event: FieldSet) -> None:
        record = self._records.get(event.id)
        if record is None:
            if event.run_id in self._removed_runs:
                return
            raise ProjectionError(
                f"seq {event.seq}: sets {event.field!r} on {event.kind} {event.id}, "
                "which was never created"
            )
        vtype = event.vtype
        value = event.value if vtype is None else decode_value(event.value, vtype)
        field = event.field
        if field == "status":
            if record.parent_id is not None:
                was_final = record.status in _FINAL
                if was_final != (value in _FINAL):
                    parent = self._records.get(record.parent_id)
                    if parent is not None:
                        parent.open_children += 1 if was_final else -1
            record.status = value
        else:
            record.set(field, value)

    def _removed(self, event: RunRemoved) -> None:
        execution_id = self._runs.pop(event.run_id, None)
        self._removed_runs.add(event.run_id)
        if execution_id is None:
            return
        execution = self._records[execution_id]
        pipeline_id = execution.get("pipeline_id")
        if isinstance(pipeline_id, str):
            runs = self._by_pipeline.get(pipeline_id)
            if runs is not None:
                runs.pop(execution_id, None)
                if not runs:
                    del self._by_pipeline[pipeline_id]
        for record in list(self._walk(execution)):
            del self._records[record.id]

    # -- queries -----------------------------------------------------------------------

    def get(self, object_id: str) -> ResultRecord | None:
        """The object with ``object_id``, or None."""
        return self._records.get(object_id)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._records

    def execution_of_run(self, run_id: str) -> ResultRecord | None:
        """The execution of run ``run_id``, or None."""
        execution_id = self._runs.get(run_id)
        return None if execution_id is None else self._records[execution_id]

    def run_ids(self) -> list[str]:
        """Every run id present, oldest first."""
        return list(self._runs)

    def is_removed_run(self, run_id: str) -> bool:
        """Whether run ``run_id`` was removed and not created again."""
        return run_id in self._removed_runs

    def executions(
        self, *, pipeline_id: str | None = None, run_id: str | None = None
    ) -> list[ResultRecord]:
        """Executions, oldest first, filtered by pipeline id and run id."""
        if run_id is not None:
            execution = self.execution_of_run(run_id)
            if execution is None:
                return []
            if pipeline_id is not None and execution.get("pipeline_id") != pipeline_id:
                return []
            return [execution]
        if pipeline_id is not None:
            return [self._records[i] for i in self._by_pipeline.get(pipeline_id, ())]
        return [self._records[i] for i in self._runs.values()]

    def children(self, object_id: str) -> list[ResultRecord]:
        """The children of ``object_id`` in creation order (empty when it has none)."""
        record = self._records.get(object_id)
        if record is None:
            return []
        records = self._records
        return [records[i] for i in record.children]

    def descendants(self, records: Iterable[ResultRecord], depth: int) -> list[ResultRecord]:
        """The objects ``depth`` levels below ``records`` (1: children, 2: grandchildren...)."""
        level = list(records)
        for _ in range(depth):
            level = [self._records[i] for record in level for i in record.children]
        return level

    def run_objects(self, run_id: str) -> list[ResultRecord]:
        """Every object of a run, parents before children."""
        execution = self.execution_of_run(run_id)
        return [] if execution is None else list(self._walk(execution))

    def _walk(self, record: ResultRecord) -> Iterator[ResultRecord]:
        yield record
        for child_id in record.children:
            yield from self._walk(self._records[child_id])

    # -- snapshots ---------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The state as bytes, for :meth:`restore`.

        JSON, with values in the log's own encoding (statuses and datetimes tagged as in
        an ``ObjectCreated`` event), so every value the log holds comes back exactly.
        """
        records: list[_SnapshotRecord] = []
        append = records.append
        for execution_id in self._runs.values():
            for record in self._walk(self._records[execution_id]):
                attrs: dict[str, Any] = {}
                types: dict[str, str] = {}
                extra = record.extra
                if extra:
                    for name, value in extra.items():
                        _put(attrs, types, name, value)
                if record.task_object is not ABSENT:
                    _put(attrs, types, "serializable_task_object", record.task_object)
                if record.message is not None:
                    _put(attrs, types, "message", record.message)
                status, started, completed = record.status, record.started, record.completed
                if status is not None and type(status) is not PipelineTaskStatus:
                    _put(attrs, types, "status", status)
                    status = None
                if started is not None and (
                    type(started) is not datetime or started.tzinfo is not UTC
                ):
                    _put(attrs, types, "started", started)
                    started = None
                if completed is not None and (
                    type(completed) is not datetime or completed.tzinfo is not UTC
                ):
                    _put(attrs, types, "completed", completed)
                    completed = None
                append(
                    _SnapshotRecord(
                        record.kind,
                        record.id,
                        record.run_id,
                        record.parent_id,
                        status,
                        started,
                        completed,
                        attrs,
                        types,
                    )
                )
        return msgspec.json.encode(_Snapshot(records, sorted(self._removed_runs)))

    @classmethod
    def restore(cls, data: bytes) -> ResultsProjection:
        """A projection holding the state :meth:`snapshot` wrote."""
        try:
            snapshot = _snapshot_decoder.decode(data)
            projection = cls()
            records = projection._records
            for item in snapshot.records:
                attrs = item.attrs
                for name, vtype in item.types.items():
                    attrs[name] = decode_value(attrs[name], vtype)
                record = ResultRecord(item.kind, item.id, item.run_id, item.parent_id, attrs)
                if item.status is not None:
                    record.status = item.status
                if item.started is not None:
                    record.started = item.started
                if item.completed is not None:
                    record.completed = item.completed
                if item.id in records:
                    raise ValueError(f"object {item.id} appears twice")
                records[item.id] = record
                if item.parent_id is None:
                    projection._index_execution(record)
                    continue
                parent = records[item.parent_id]
                record.parent_id = parent.id
                if parent.run_id == record.run_id:
                    record.run_id = parent.run_id
                _adopt(parent, item.id)
                if record.status not in _FINAL:
                    parent.open_children += 1
        except (
            msgspec.DecodeError,
            msgspec.ValidationError,
            KeyError,
            ValueError,
            TypeError,
            RecursionError,
        ) as exc:
            raise SnapshotError(f"results snapshot is damaged: {exc!r}") from None
        projection._removed_runs.update(snapshot.removed_runs)
        return projection

    def _index_execution(self, record: ResultRecord) -> None:
        self._runs[record.run_id] = record.id
        pipeline_id = record.get("pipeline_id")
        if isinstance(pipeline_id, str):
            self._by_pipeline.setdefault(pipeline_id, {})[record.id] = None


__all__ = ["ResultRecord", "ResultsProjection"]
