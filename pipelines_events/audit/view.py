"""The state of the storage at a point of its log: a read-only view with the storage's queries."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn

import msgspec

from pipelines_events.audit._core import LogPath, ReadOnlyStorageError, check_time
from pipelines_events.errors import InvalidValueError, ObjectNotFoundError, ProjectionError
from pipelines_events.events import (
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    START,
    TASK_EXECUTION,
    TASK_RESULT,
    LogPosition,
    parse_time,
)
from pipelines_events.log.base import EventLog
from pipelines_events.log.open import open_log
from pipelines_events.log.segments import Erasure
from pipelines_events.results.base import (
    Batch,
    BuildablePipeline,
    PipelineExecution,
    PipelineResultsStorage,
    PipelineStorageObject,
    TaskExecution,
    TaskResult,
)
from pipelines_events.results.eventlog_reads import ReadModelStorage
from pipelines_events.results.readmodel import FullReadModel
from pipelines_events.status import PipelineTaskStatus


class StorageView(ReadModelStorage):
    """The results storage as it stood at one position of its log; nothing can be written.

    Offers every ``get_`` method and query of
    :class:`~pipelines_events.results.eventlog.EventLogPipelineResultsStorage` (both read
    through :class:`~pipelines_events.results.eventlog_reads.ReadModelStorage`), and objects
    with the same ``get_`` methods. Writing (a ``set_`` call, a status change, building a
    run, cleanup) raises :class:`ReadOnlyStorageError`. Build one with :func:`view_at`.
    """

    def __init__(
        self,
        log: EventLog,
        model: FullReadModel,
        position: LogPosition,
        *,
        time: datetime | None = None,
        requested_seq: int | None = None,
        as_of: datetime | None = None,
    ) -> None:
        # The storage's queries over a read model folded up to ``position``: nothing is
        # opened for writing and nothing more is read.
        super().__init__(log)
        self._use_model(model)
        self._position = position
        self._time = time
        self._requested_seq = requested_seq
        self._as_of = as_of

    @property
    def position(self) -> LogPosition:
        """The position of the view: the end of the last batch it holds."""
        return self._position

    @property
    def seq(self) -> int:
        """The seq of the last event the view holds (0 before the first event)."""
        return self._position.seq

    @property
    def time(self) -> datetime | None:
        """The time of the last event the view holds (None before the first event)."""
        return self._time

    @property
    def requested_seq(self) -> int | None:
        """The seq the view was asked for (its batch may end later)."""
        return self._requested_seq

    @property
    def as_of(self) -> datetime | None:
        """The time the view was asked for."""
        return self._as_of

    def describe(self) -> str:
        """Where the view stands, for messages and titles."""
        where = f"{self.location} at seq {self.seq}"
        if self._time is not None:
            where += f" ({self._time.isoformat()})"
        return where

    @property
    def location(self) -> str:
        """The log file the view was read from."""
        return self.log.location

    @property
    def readonly(self) -> bool:
        """Always True: a view never writes."""
        return True

    # -- nothing moves, nothing is written -------------------------------------------

    def refresh(self) -> None:
        """A view never reads further: its state is fixed."""

    def _refuse(self, what: str) -> NoReturn:
        raise ReadOnlyStorageError(
            f"cannot {what}: this is a read-only view of {self.describe()}; "
            "open the storage itself to change results"
        )

    def _set_field(self, object_id: str, kind: str, name: str, value: Any) -> None:
        self._refuse(f"set {name!r} on {kind} {object_id}")

    def atomic(
        self, require: Callable[[], bool] | None = None
    ) -> contextlib.AbstractContextManager[Batch]:
        """A block in which every write is refused, as it is outside one."""
        return contextlib.nullcontext(Batch())

    def build_pipeline_execution(
        self,
        pipeline: BuildablePipeline,
        run_id: str,
        runner: object,
        reporter: object,
        input_data: Any,
        build_all: bool = True,
    ) -> PipelineExecution:
        self._refuse(f"build run {run_id!r}")

    def cleanup(self, before: datetime | None = None, *, erase: bool = False) -> list[str]:
        self._refuse("clean up runs")

    def erase_removed(self) -> Erasure:
        """A view erases nothing."""
        self._refuse("erase removed runs")

    def write_snapshot(self) -> None:
        """A view writes no snapshot: its state is not the log's."""
        self._refuse("write a snapshot")

    def commit(self) -> None:
        """Nothing to commit."""

    def close(self) -> None:
        """Nothing is held open."""


def view_at(
    log: LogPath,
    *,
    seq: int | None = None,
    as_of: datetime | None = None,
) -> StorageView:
    """A read-only view of the storage in ``log`` at a point of its history.

    ``seq``: after the batch holding event ``seq`` (batches land whole, so a view never
    holds half of one; 0 is the empty storage). ``as_of``: after the last batch written
    at or before that aware datetime (the longest such prefix of the log). Neither: the
    whole log. Raises :class:`InvalidValueError` for a seq beyond the log's head.
    """
    if seq is not None and as_of is not None:
        raise InvalidValueError("give seq or as_of, not both")
    if seq is not None and (type(seq) is not int or seq < 0):
        raise InvalidValueError(f"seq: give an int of at least 0, not {seq!r}")
    as_of = check_time("as_of", as_of)
    model = FullReadModel()
    apply_results, apply_digest = model.appliers
    position = START
    last_ts = ""
    reader = open_log(log, readonly=True)
    try:
        for read in reader.read(START):
            batch = read.events
            if seq is not None and position.seq >= seq:
                break
            if as_of is not None and parse_time(batch[0].ts) > as_of:
                break
            try:
                for event in batch:
                    apply_results(event)
                    apply_digest(event)
            except ProjectionError as exc:
                raise ProjectionError(f"{reader.location}: {exc}") from exc
            position = read.cursor
            last_ts = batch[-1].ts
    finally:
        reader.close()
    if seq is not None and position.seq < seq:
        raise InvalidValueError(f"{log}: there is no seq {seq}: the log ends at seq {position.seq}")
    return StorageView(
        reader,
        model,
        position,
        time=parse_time(last_ts) if last_ts else None,
        requested_seq=seq,
        as_of=as_of,
    )


class ObjectState(msgspec.Struct, frozen=True, kw_only=True):
    """One result object as a storage holds it, with its children (for display and JSON)."""

    kind: str
    id: str
    run_id: str
    status: PipelineTaskStatus
    started: datetime | None = None
    completed: datetime | None = None
    message: str = ""
    pipeline_id: str | None = None
    pipeline_task: str | None = None
    task_id: str | None = None
    pipeline_object: Any = None
    task_object: Any = None
    children: list[ObjectState] = []


def run_state(storage: PipelineResultsStorage, run_id: str) -> ObjectState:
    """The state of run ``run_id`` in ``storage`` (a live storage or a :class:`StorageView`)
    through the public ``get_`` methods, execution first."""
    execution = storage.get_pipeline_execution(run_id)
    if execution is None:
        where = storage.describe() if isinstance(storage, StorageView) else "the storage"
        raise ObjectNotFoundError(f"no run has the id {run_id!r} in {where}")
    return _state(execution)


def _state(obj: PipelineStorageObject) -> ObjectState:
    kind = obj.kind
    extra: dict[str, Any] = {}
    if kind == PIPELINE_EXECUTION:
        extra["pipeline_id"] = obj.get_pipeline_id()
    elif kind == PIPELINE_RESULT:
        extra["pipeline_object"] = obj.get_serializable_pipeline_object()
    elif kind == TASK_EXECUTION and isinstance(obj, TaskExecution):
        extra["pipeline_task"] = obj.get_pipeline_task()
        extra["task_id"] = obj.get_task_id()
    elif kind == TASK_RESULT and isinstance(obj, TaskResult):
        extra["task_object"] = obj.get_serializable_task_object()
    return ObjectState(
        kind=kind,
        id=obj.get_id(),
        run_id=obj.get_run_id(),
        status=obj.get_status(),
        started=obj.get_started(),
        completed=obj.get_completed(),
        message=obj.get_message(),
        children=[_state(child) for child in obj.get_children()],
        **extra,
    )
