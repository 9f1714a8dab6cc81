"""The result objects of the event-log storage and of the point-in-time view: each
``get_`` reads the storage's read model (:class:`ReadModelStorage
<pipelines_events.results.eventlog_reads.ReadModelStorage>`), each ``set_`` asks the
storage to record the change."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgspec

from pipelines_events.errors import InvalidValueError
from pipelines_events.events import (
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    TASK_EXECUTION,
    TASK_RESULT,
)
from pipelines_events.results.base import (
    IDENTIFYING_FIELDS,
    Batch,
    PipelineExecution,
    PipelineResult,
    PipelineStorageObject,
    StatusReporter,
    TaskExecution,
    TaskResult,
)
from pipelines_events.status import PipelineTaskStatus
from projections.results import ResultRecord

if TYPE_CHECKING:
    from pipelines_events.results.eventlog_reads import ReadModelStorage

_RECORD_NAMES: Final = frozenset({"id", "run_id", "kind", "parent_id"})
_ALWAYS_KNOWN: Final = frozenset({"status", "started", "completed", "message"})
_INHERITED: Final = frozenset(
    {
        "pipeline_id",
        "task_id",
        "pipeline_task",
        "config",
        "input_data",
        "runner",
        "reporter",
        "serializable_pipeline_object",
    }
)
_MISSING: Final = object()


class _EventLogObject(PipelineStorageObject):
    """A result object whose state lives in the storage's projections."""

    def __init__(self, storage: ReadModelStorage, object_id: str) -> None:
        self._storage = storage
        self._id = object_id

    def _record(self) -> ResultRecord:
        return self._storage._record(self._id, self.kind)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _EventLogObject)
            and other._id == self._id
            and other._storage is self._storage
        )

    def __hash__(self) -> int:
        return hash(self._id)

    # -- the get_/set_ hooks ----------------------------------------------------------

    def getter(self, name: str) -> Callable[[], Any]:
        """Read ``name`` from the projection (the object's own field, then its parents'),
        else the attribute or property ``name`` of this object.

        Lists and dicts of the projection come back as copies: changing them changes
        nothing stored.
        """
        record = self._record()
        if name in _ALWAYS_KNOWN or record.has(name):
            return lambda: _detached(self._record().get(name))
        if name in _RECORD_NAMES:
            return lambda: getattr(self._record(), name)
        if name in _INHERITED and self._storage._inherited(record, name, _MISSING) is not _MISSING:
            return lambda: _detached(self._storage._inherited(self._record(), name))
        # Step 2 of the seed: an attribute or property of this very object (a plain
        # attribute lives on this object only: lookups return new objects).
        try:
            object.__getattribute__(self, name)
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__} has no get_{name}(), no stored field {name!r} and "
                f"no attribute {name!r} to fall back on"
            ) from None
        return lambda: getattr(self, name)

    def setter(self, name: str) -> Callable[[Any], None]:
        """Append a field-set event for ``name`` on each call."""
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidValueError(f"cannot set field {name!r}: a field name is an identifier")
        if name in IDENTIFYING_FIELDS:
            raise InvalidValueError(
                f"cannot set field {name!r}: it identifies the object, and the event-log "
                "storage indexes it, so it is fixed when the object is built"
            )
        storage, object_id, kind = self._storage, self._id, self.kind

        def set_value(value: Any) -> None:
            storage._set_field(object_id, kind, name, value)

        # Found as an attribute from now on: later set_<name> calls skip __getattr__.
        self.__dict__["set_" + name] = set_value
        return set_value

    # -- fast paths for the common fields -------------------------------------------------

    def get_id(self) -> str:
        return self._id

    def get_run_id(self) -> str:
        return self._record().run_id

    def get_pipeline_id(self) -> str:
        return str(self._storage._inherited(self._record(), "pipeline_id"))

    def get_status(self) -> PipelineTaskStatus:
        status: PipelineTaskStatus = self._record().status
        return status

    def set_status(self, value: PipelineTaskStatus) -> None:
        self._storage._set_field(self._id, self.kind, "status", value)

    def get_started(self) -> datetime | None:
        started: datetime | None = self._record().started
        return started

    def set_started(self, value: datetime | None) -> None:
        self._storage._set_field(self._id, self.kind, "started", value)

    def get_completed(self) -> datetime | None:
        completed: datetime | None = self._record().completed
        return completed

    def set_completed(self, value: datetime | None) -> None:
        self._storage._set_field(self._id, self.kind, "completed", value)

    def get_message(self) -> str:
        message = self._record().message
        return "" if message is None else str(message)

    def set_message(self, value: str) -> None:
        self._storage._set_field(self._id, self.kind, "message", value)

    def report_status_change(
        self,
        reporter: StatusReporter | None,
        status: PipelineTaskStatus | str,
        message: str = "",
        propagate: bool = True,
        traceback: str = "",
    ) -> bool:
        """As :meth:`PipelineStorageObject.report_status_change`, catching up with the log
        once: the reads inside see the state as of that catch-up and of each append
        (which catches up again), and the status itself is checked again under the lock."""
        with self._storage.reads_held(catch_up_first=True):
            return super().report_status_change(reporter, status, message, propagate, traceback)

    def save(self) -> None:
        """Commit with the log's durability (fsync by default)."""
        self._storage.commit()

    def atomic(
        self, require: Callable[[], bool] | None = None
    ) -> contextlib.AbstractContextManager[Batch]:
        """Append every ``set_`` inside the block as one batch, all or nothing."""
        return self._storage.atomic(require)

    # -- relations --------------------------------------------------------------------

    def get_parent(self) -> PipelineStorageObject | None:
        parent_id = self._record().parent_id
        return None if parent_id is None else self._storage._wrap(parent_id)

    def get_children(self) -> Sequence[PipelineStorageObject]:
        storage = self._storage
        record = self._record()
        with storage._lock:
            return [storage._wrap(child) for child in record.children]

    def children_outcome(self) -> PipelineTaskStatus | None:
        record = self._record()
        if record.open_children:
            return None
        return super().children_outcome()


class EventLogPipelineExecution(_EventLogObject, PipelineExecution):
    """A pipeline execution stored in the event log."""

    def get_pipeline_results(self) -> Sequence[PipelineResult]:
        return self._storage._children(self._record(), EventLogPipelineResult)


class EventLogPipelineResult(_EventLogObject, PipelineResult):
    """A pipeline result stored in the event log."""

    def get_pipeline_execution(self) -> PipelineExecution:
        return EventLogPipelineExecution(self._storage, str(self._record().parent_id))

    def get_task_executions(self) -> Sequence[TaskExecution]:
        return self._storage._children(self._record(), EventLogTaskExecution)


class EventLogTaskExecution(_EventLogObject, TaskExecution):
    """A task execution stored in the event log."""

    def get_pipeline_result(self) -> PipelineResult:
        return EventLogPipelineResult(self._storage, str(self._record().parent_id))

    def get_task_results(self) -> Sequence[TaskResult]:
        return self._storage._children(self._record(), EventLogTaskResult)


class EventLogTaskResult(_EventLogObject, TaskResult):
    """A task result stored in the event log."""

    def get_task_execution(self) -> TaskExecution:
        return EventLogTaskExecution(self._storage, str(self._record().parent_id))


_T = TypeVar("_T", bound=_EventLogObject)

_CLASSES: Final[dict[str, type[_EventLogObject]]] = {
    PIPELINE_EXECUTION: EventLogPipelineExecution,
    PIPELINE_RESULT: EventLogPipelineResult,
    TASK_EXECUTION: EventLogTaskExecution,
    TASK_RESULT: EventLogTaskResult,
}


_CONTAINERS: Final = (dict, list, tuple)


def _detached(value: Any) -> Any:
    """``value`` as a replay of the log gives it back: a copy the caller cannot change
    afterwards, tuples as lists."""
    if type(value) in _CONTAINERS:
        return msgspec.json.decode(msgspec.json.encode(value))
    return value
