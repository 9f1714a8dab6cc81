"""The default storage: result objects kept as events in a JSON-lines log.

Every ``set_`` call appends one :class:`~pipelines_events.events.FieldSet` event; building
a run appends the :class:`~pipelines_events.events.ObjectCreated` events of all its objects
as one batch. Every ``get_`` and every query first folds what other processes appended,
then reads the projections. A storage may be shared by threads: one lock per storage
covers catch-up, append and fold, and atomic blocks are per thread.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import msgspec

from pipelines_events.errors import (
    InvalidValueError,
    LogError,
    ObjectNotFoundError,
    ProjectionError,
    ReadOnlyStorageError,
    SnapshotError,
)
from pipelines_events.events import (
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    START,
    STATUS,
    TASK_EXECUTION,
    TASK_RESULT,
    AnyEvent,
    FieldSet,
    ObjectCreated,
    RunRemoved,
    encode_value,
)
from pipelines_events.log.base import DEFAULT_MAX_EVENT_BYTES, Durability, EventLog, RunSummary
from pipelines_events.log.open import LogTarget, is_url, open_log
from pipelines_events.results.base import (
    IDENTIFYING_FIELDS,
    Batch,
    BuildablePipeline,
    PipelineDigest,
    PipelineExecution,
    PipelineResult,
    PipelineResultsStorage,
    PipelineStorageObject,
    StatusReporter,
    TaskExecution,
    TaskResult,
    encode_field_value,
    plan_build,
)
from pipelines_events.results.readmodel import (
    FullReadModel,
    LazyReadModel,
    ReadModel,
    ResultsReader,
)
from pipelines_events.results.snapshots import (
    Snapshot,
    SnapshotIgnored,
    decode_snapshot,
    encode_snapshot,
)
from pipelines_events.status import PipelineTaskStatus
from projections.results import ResultRecord

DEFAULT_PATH: Final = "pipelines-events.jsonl"
"""The log file of the default storage, relative to the working directory."""

DEFAULT_SNAPSHOT_EVERY: Final = 100_000
"""A snapshot is written when a storage opens or closes this many events past the last."""
_BIG_GROUP: Final = 1000
"""Catch-ups that hand over more events than this at once run with the cyclic garbage
collector paused."""
_PENDING: Final = PipelineTaskStatus.PENDING.value
_STATUS_TYPES: Final = {"status": STATUS}
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
_FAILED = PipelineTaskStatus.failed_statuses()
_MISSING: Final = object()


class _EventLogObject(PipelineStorageObject):
    """A result object whose state lives in the storage's projections."""

    def __init__(self, storage: EventLogPipelineResultsStorage, object_id: str) -> None:
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
        local = self._storage._local
        if local.frozen:
            return super().report_status_change(reporter, status, message, propagate, traceback)
        self._storage.refresh()
        local.frozen = True
        try:
            return super().report_status_change(reporter, status, message, propagate, traceback)
        finally:
            local.frozen = False

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


class EventLogPipelineResultsStorage(PipelineResultsStorage):
    """Result objects as an append-only, hash-chained event log.

    ``path`` is the log: a file path (created with its directory when missing), a
    ``postgresql://`` URL or ``memory://NAME``, opened with
    :func:`~pipelines_events.log.open.open_log`. ``durability``, ``max_event_bytes``,
    ``mode`` (file logs only) and ``log_options`` (a dict: the engine's own options, such
    as the PostgreSQL engine's connection options) are passed to the engine. Opening the
    storage replays the log. With ``readonly`` the log must exist and is never written: a
    torn tail is skipped, not cut, a snapshot is read but never written, and every write
    raises :class:`~pipelines_events.errors.ReadOnlyStorageError`.
    """

    def __init__(
        self,
        path: LogTarget = DEFAULT_PATH,
        *,
        durability: Durability = "fsync",
        mode: int = 0o600,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        snapshots: bool = True,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        readonly: bool = False,
        log_options: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(readonly, bool):
            raise InvalidValueError(f"readonly must be True or False, not {readonly!r}")
        if not isinstance(snapshots, bool):
            raise InvalidValueError(f"snapshots must be True or False, not {snapshots!r}")
        if type(snapshot_every) is not int or snapshot_every < 1:
            raise InvalidValueError(
                f"snapshot_every must be a positive int (events), not {snapshot_every!r}"
            )
        self._readonly = readonly
        if log_options is not None and not isinstance(log_options, dict):
            raise InvalidValueError(
                f"log_options must be a dict of the engine's options, not {log_options!r}"
            )
        options = dict(log_options or {})
        if not is_url(path):
            options["mode"] = mode
        self._log: EventLog = open_log(
            path,
            durability=durability,
            max_event_bytes=max_event_bytes,
            readonly=readonly,
            **options,
        )
        self._init_threads()
        self._snapshot_every = snapshot_every
        self._unsnapshotted = 0
        if self._log.supports_run_index:
            # Nothing is folded at open: runs load from the engine's run index on demand.
            self._snapshots = False
            self._use_model(LazyReadModel(self._log, self._lock))
            self._log.seek(self._log.head())
            return
        self._snapshots = snapshots
        self._use_model(FullReadModel())
        if snapshots:
            self._restore_snapshot()
        self.refresh()
        if snapshots and not readonly and self._unsnapshotted >= snapshot_every:
            self.write_snapshot()

    def _use_model(self, model: ReadModel) -> None:
        self._model = model
        self._results: ResultsReader = model.results

    def _attach_read_only(self, log: EventLog, model: ReadModel) -> None:
        """Become a read-only storage over ``log`` whose state is ``model`` as it is: no
        catch-up, no snapshot, every read frozen (what a point-in-time view is)."""
        self._log = log
        self._readonly = True
        self._snapshots = False
        self._snapshot_every = DEFAULT_SNAPSHOT_EVERY
        self._unsnapshotted = 0
        self._init_threads(frozen=True)
        self._use_model(model)

    def _init_threads(self, *, frozen: bool = False) -> None:
        """The lock of the storage's state (its log's: one lock covers the projections and
        the position), and the per-thread state of atomic blocks."""
        self._lock = self._log.lock
        self._local = _FrozenThreadState() if frozen else _ThreadState()
        _STORAGES.add(self)

    @property
    def log(self) -> EventLog:
        """The event log the storage writes to."""
        return self._log

    @property
    def readonly(self) -> bool:
        """Whether the storage was opened read-only (it never writes)."""
        return self._readonly

    def _refuse_write(self, what: str) -> None:
        if self._readonly:
            raise ReadOnlyStorageError(
                f"cannot {what}: the storage of {self._log.location} was opened read-only; "
                "nothing was written"
            )

    @property
    def read_model(self) -> ReadModel:
        """What the storage's queries read (a full fold, or runs loaded on demand)."""
        return self._model

    @property
    def results(self) -> ResultsReader:
        """The results projection (caught up by :meth:`refresh`)."""
        return self._results

    # -- events in and out ------------------------------------------------------------

    def refresh(self) -> None:
        """Fold the events other processes appended since the last look."""
        if self._local.frozen or not self._log.has_new():
            return
        with self._lock:
            self._read_log()

    def _read_log(self) -> None:
        groups = self._log.read_groups()
        for group in groups:
            if len(group) > _BIG_GROUP:
                with _gc_paused():
                    self._fold(group)
                    for group in groups:
                        self._fold(group)
                return
            self._fold(group)

    def _fold(self, events: list[AnyEvent]) -> None:
        """Fold ``events``, the last the log handed over. When one cannot be folded, the
        log goes back to just before it: it is not skipped, the next read meets it again."""
        apply_results, apply_digest = self._model.appliers
        try:
            for event in events:
                apply_results(event)
                apply_digest(event)
        except BaseException as exc:
            self._unsnapshotted += events.index(event)
            try:
                self._log.seek(self._log.cursor_at(event.seq - 1))
            except LogError as seek_error:
                exc.add_note(f"and the storage could not stay before it: {seek_error}")
            if isinstance(exc, ProjectionError):
                raise ProjectionError(self._fold_error(exc, event)) from exc
            raise
        self._unsnapshotted += len(events)

    def _fold_error(self, exc: ProjectionError, event: AnyEvent) -> str:
        reason = str(exc)
        where = f"seq {event.seq}"
        if not reason.startswith(f"{where}:"):
            reason = f"{where}: {reason}"
        return (
            f"{self._log.location}: {reason} (the storage does not read past this event; "
            "`pipelines-events verify` checks the log)"
        )

    def _emit(self, drafts: list[AnyEvent]) -> None:
        self._refuse_write("write events")
        pending = self._local.pending
        if pending is not None:
            pending.extend(drafts)
            return
        self._log.append(drafts, on_caught_up=self._fold_caught, on_written=self._fold)

    def _fold_caught(self, caught: list[AnyEvent]) -> bool:
        """Fold, under the log's lock, what other writers appended before an append: if it
        cannot be folded, nothing is written."""
        if caught:
            self._fold(caught)
        return True

    def atomic(self, require: Callable[[], bool] | None = None) -> _AtomicBlock:
        """Append every event emitted inside the block as one batch; none if it raises.

        ``require`` is checked under the log's lock against the caught-up state; when it
        is False the batch is dropped and ``Batch.stored`` is False. The block belongs to
        the thread that enters it: other threads' events are not part of it.
        """
        return _AtomicBlock(self, require)

    def _append_block(self, pending: list[AnyEvent], require: Callable[[], bool] | None) -> bool:
        """Append ``pending`` as one batch; returns whether it was stored. Everything is
        folded under the log's lock, in log order: first what other writers appended (if
        that cannot be folded, nothing is written), then the batch."""
        self._refuse_write("write events")
        if require is None:
            self._log.append(pending, on_caught_up=self._fold_caught, on_written=self._fold)
            return True

        def check(caught: list[AnyEvent]) -> bool:
            if caught:
                self._fold(caught)
            return self._check(require)

        return bool(self._log.append(pending, on_caught_up=check, on_written=self._fold))

    def _check(self, require: Callable[[], bool]) -> bool:
        """Evaluate ``require`` against the caught-up state without reading the log again."""
        local = self._local
        frozen, local.frozen = local.frozen, True
        try:
            return require()
        finally:
            local.frozen = frozen

    def commit(self) -> None:
        """Make every appended event durable as the log's durability promises."""
        self._log.commit()

    def close(self) -> None:
        """Commit, write a snapshot if many events came since the last, close the log."""
        with self._lock:
            if (
                self._snapshots
                and not self._readonly
                and self._unsnapshotted >= self._snapshot_every
            ):
                self.write_snapshot()
            self._log.close()
        _STORAGES.discard(self)

    # -- snapshots --------------------------------------------------------------------

    @property
    def snapshot_location(self) -> str:
        """Where the log's engine keeps the storage's snapshot, for messages."""
        return self._log.snapshots.location

    @property
    def snapshot_path(self) -> Path:
        """The snapshot file of a file log (elsewhere: :attr:`snapshot_location` as a path)."""
        return Path(self._log.snapshots.location)

    def write_snapshot(self) -> None:
        """Write the projections' state at the current log position (a warning on failure:
        a snapshot is a cache, never needed for correctness; nothing on an engine with a
        run index, which needs none)."""
        self._refuse_write("write a snapshot")
        with self._lock:
            self._write_snapshot()

    def _write_snapshot(self) -> None:
        model = self._model
        if not isinstance(model, FullReadModel):
            return  # runs load from the engine's run index: there is nothing to cache
        try:
            snapshot = Snapshot(position=self._log.position, parts=model.snapshot_parts())
        except Exception as exc:  # a value the encoder refuses must not fail close()
            warnings.warn(
                f"{self.snapshot_location}: cannot encode the snapshot ({type(exc).__name__}: "
                f"{exc}); the next open replays more of the log",
                SnapshotIgnored,
                stacklevel=2,
            )
            return
        try:
            self._log.snapshots.save(encode_snapshot(snapshot))
        except OSError as exc:
            warnings.warn(
                f"{self.snapshot_location}: cannot write the snapshot ({exc.strerror}); "
                "the next open replays more of the log",
                SnapshotIgnored,
                stacklevel=3,
            )
            return
        self._unsnapshotted = 0

    def _restore_snapshot(self) -> None:
        store = self._log.snapshots
        path = store.location
        try:
            data = store.load()
            if data is None:
                return
            snapshot = decode_snapshot(data, path)
            self._log.seek(snapshot.position)
            with _gc_paused():
                model = FullReadModel.restore(snapshot.parts)
        except (SnapshotError, LogError, KeyError, OSError) as exc:
            self._log.seek(START)
            warnings.warn(
                f"{path}: snapshot ignored ({exc}); replaying the whole log",
                SnapshotIgnored,
                stacklevel=3,
            )
            return
        self._use_model(model)

    def _record(self, object_id: str, kind: str) -> ResultRecord:
        self.refresh()
        record = self._results.get(object_id)
        if record is None or record.kind != kind:
            raise ObjectNotFoundError(
                f"{kind} {object_id} does not exist in {self._log.location} "
                "(never created, or its run was removed by cleanup)"
            )
        return record

    def _set_field(self, object_id: str, kind: str, name: str, value: Any) -> None:
        self._refuse_write(f"set {name!r} on {kind} {object_id}")
        stored, vtype = encode_field_value(name, value)
        stored = _detached(stored)
        record = self._results.get(object_id)
        if record is None or record.kind != kind:
            record = self._record(object_id, kind)
        self._emit(
            [
                FieldSet(
                    run_id=record.run_id,
                    kind=kind,
                    id=object_id,
                    field=name,
                    value=stored,
                    vtype=vtype,
                )
            ]
        )

    def _inherited(self, record: ResultRecord, name: str, default: Any = None) -> Any:
        """Field ``name`` of ``record`` or its nearest ancestor holding it, else ``default``."""
        current: ResultRecord | None = record
        while current is not None:
            if current.has(name):
                return current.get(name)
            parent_id = current.parent_id
            current = None if parent_id is None else self._results.get(parent_id)
        return default

    def _wrap(self, object_id: str) -> _EventLogObject:
        record = self._results.get(object_id)
        if record is None:
            raise ObjectNotFoundError(f"object {object_id} does not exist")
        return _CLASSES[record.kind](self, object_id)

    def _children(self, record: ResultRecord, cls: type[_T]) -> list[_T]:
        with self._lock:
            return [cls(self, child) for child in record.children]

    # -- building ---------------------------------------------------------------------

    def build_pipeline_execution(
        self,
        pipeline: BuildablePipeline,
        run_id: str,
        runner: object,
        reporter: object,
        input_data: Any,
        build_all: bool = True,
    ) -> PipelineExecution:
        self._refuse_write(f"build run {run_id!r}")
        plan = plan_build(pipeline, run_id, runner, reporter, input_data, build_all)
        self.refresh()
        if self._results.execution_of_run(run_id) is not None:
            self._refuse_run_id(run_id)
        execution_id = _new_id()
        attrs: dict[str, Any] = {
            "pipeline_id": plan.pipeline_id,
            "status": _PENDING,
            "runner": plan.runner,
            "reporter": plan.reporter,
        }
        drafts: list[AnyEvent] = [
            ObjectCreated(
                run_id=run_id,
                kind=PIPELINE_EXECUTION,
                id=execution_id,
                attrs=attrs,
                types=_put_value(attrs, "input_data", plan.input_data),
            )
        ]
        for planned_result in plan.pipeline_results:
            result_id = _new_id()
            attrs = {"pipeline_id": plan.pipeline_id, "status": _PENDING}
            types = _put_value(
                attrs, "serializable_pipeline_object", planned_result.pipeline_object
            )
            drafts.append(
                ObjectCreated(
                    run_id=run_id,
                    kind=PIPELINE_RESULT,
                    id=result_id,
                    parent_id=execution_id,
                    attrs=attrs,
                    types=types,
                )
            )
            for planned_execution in planned_result.task_executions:
                task_execution_id = _new_id()
                attrs = {
                    "task_id": planned_execution.task_id,
                    "pipeline_task": planned_execution.pipeline_task,
                    "status": _PENDING,
                }
                types = _put_value(attrs, "config", planned_execution.config)
                drafts.append(
                    ObjectCreated(
                        run_id=run_id,
                        kind=TASK_EXECUTION,
                        id=task_execution_id,
                        parent_id=result_id,
                        attrs=attrs,
                        types=types,
                    )
                )
                for task_object in planned_execution.task_objects:
                    attrs = {"status": _PENDING}
                    types = _put_value(attrs, "serializable_task_object", task_object)
                    drafts.append(
                        ObjectCreated(
                            run_id=run_id,
                            kind=TASK_RESULT,
                            id=_new_id(),
                            parent_id=task_execution_id,
                            attrs=attrs,
                            types=types,
                        )
                    )
        # Checked again against the caught-up log: another thread or process may have
        # built the same run meanwhile.
        with self.atomic(require=lambda: self._results.execution_of_run(run_id) is None) as batch:
            self._emit(drafts)
        if not batch.stored:
            self._refuse_run_id(run_id)
        self.commit()
        return EventLogPipelineExecution(self, execution_id)

    def _refuse_run_id(self, run_id: str) -> None:
        raise InvalidValueError(
            f"run {run_id!r} already has an execution in {self._log.location}; "
            "give every run a new id"
        )

    # -- queries ----------------------------------------------------------------------

    def get_pipeline_digest(self) -> PipelineDigest:
        self.refresh()
        with self._lock:
            return self._model.digest()

    def run_index(self) -> list[RunSummary] | None:
        """The runs as the engine's run index lists them (oldest first; removed runs and
        runs begun after the storage's position left out), without loading any run; None
        when the storage does not read runs from a run index (a log without one, or a
        point-in-time view): then :meth:`get_pipeline_executions` lists runs.
        """
        if not isinstance(self._model, LazyReadModel):
            return None
        self.refresh()
        with self._lock:
            limit = self._log.position.seq
            return [s for s in self._log.run_summaries() if not s.removed and s.first_seq <= limit]

    def get_pipeline_executions(self, pipeline_id: str | None = None) -> list[PipelineExecution]:
        self.refresh()
        with self._lock:
            records = self._results.executions(pipeline_id=pipeline_id)
        return [EventLogPipelineExecution(self, record.id) for record in records]

    def get_pipeline_execution(self, run_id: str) -> PipelineExecution | None:
        self.refresh()
        record = self._results.execution_of_run(run_id)
        return None if record is None else EventLogPipelineExecution(self, record.id)

    def get_pipeline_results(
        self, run_id: str | None = None, pipeline_id: str | None = None
    ) -> list[PipelineResult]:
        self.refresh()
        with self._lock:
            executions = self._results.executions(run_id=run_id, pipeline_id=pipeline_id)
            records = self._results.descendants(executions, 1)
        return [EventLogPipelineResult(self, record.id) for record in records]

    def get_pipeline_result(self, _id: str) -> PipelineResult | None:
        return self._lookup(_id, EventLogPipelineResult)

    def get_task_executions(
        self, run_id: str | None = None, pipeline_result_id: str | None = None
    ) -> list[TaskExecution]:
        self.refresh()
        with self._lock:
            records = self._below(run_id, [(pipeline_result_id, PIPELINE_RESULT)], 2)
        return [EventLogTaskExecution(self, record.id) for record in records]

    def get_task_execution(self, _id: str) -> TaskExecution | None:
        return self._lookup(_id, EventLogTaskExecution)

    def get_task_results(
        self,
        run_id: str | None = None,
        pipeline_result_id: str | None = None,
        task_execution_id: str | None = None,
    ) -> list[TaskResult]:
        self.refresh()
        with self._lock:
            records = self._below(
                run_id,
                [(task_execution_id, TASK_EXECUTION), (pipeline_result_id, PIPELINE_RESULT)],
                3,
            )
        return [EventLogTaskResult(self, record.id) for record in records]

    def get_task_result(self, _id: str) -> TaskResult | None:
        return self._lookup(_id, EventLogTaskResult)

    def _lookup(self, object_id: str, cls: type[_T]) -> _T | None:
        self.refresh()
        record = self._results.get(object_id)
        if record is None or record.kind != cls.kind:
            return None
        return cls(self, object_id)

    def _below(
        self, run_id: str | None, anchors: list[tuple[str | None, str]], depth: int
    ) -> list[ResultRecord]:
        """Objects ``depth`` levels below executions, starting from the narrowest anchor."""
        levels = {TASK_EXECUTION: 2, PIPELINE_RESULT: 1}
        for anchor_id, kind in anchors:
            if anchor_id is None:
                continue
            anchor = self._results.get(anchor_id)
            if anchor is None or anchor.kind != kind:
                return []
            records = self._results.descendants([anchor], depth - levels[kind])
            if run_id is not None:
                records = [r for r in records if r.run_id == run_id]
            for other_id, other_kind in anchors:
                if other_id is not None and other_kind != kind:
                    records = [r for r in records if self._has_ancestor(r, other_id)]
            return records
        return self._results.descendants(self._results.executions(run_id=run_id), depth)

    def _has_ancestor(self, record: ResultRecord, ancestor_id: str) -> bool:
        current: ResultRecord | None = record
        while current is not None and current.parent_id is not None:
            if current.parent_id == ancestor_id:
                return True
            current = self._results.get(current.parent_id)
        return False

    # -- cleanup ----------------------------------------------------------------------

    def cleanup(self, before: datetime | None = None) -> list[str]:
        if before is not None and (not isinstance(before, datetime) or before.utcoffset() is None):
            raise InvalidValueError(f"before: give an aware datetime or None, not {before!r}")
        self._refuse_write("clean up runs")
        self.refresh()
        removed: list[str] = []
        drafts: list[AnyEvent] = []
        with self._lock:
            for record in self._results.executions():
                status = record.status
                if not isinstance(status, PipelineTaskStatus) or not status.is_final:
                    continue
                completed = record.completed
                if before is not None and (completed is None or completed >= before):
                    continue
                removed.append(record.run_id)
                drafts.append(
                    RunRemoved(run_id=record.run_id, kind=PIPELINE_EXECUTION, id=record.id)
                )
            if drafts:
                self._emit(drafts)
        if drafts:
            self.commit()
        return removed


class _AtomicBlock:
    """The context manager :meth:`EventLogPipelineResultsStorage.atomic` returns (a class,
    not a generator: it is on the path of every status change)."""

    __slots__ = ("_batch", "_outer", "_require", "_storage")

    def __init__(
        self, storage: EventLogPipelineResultsStorage, require: Callable[[], bool] | None
    ) -> None:
        self._storage = storage
        self._require = require
        self._batch = Batch()
        self._outer = False

    def __enter__(self) -> Batch:
        local = self._storage._local
        if local.pending is None:
            local.pending = []
            self._outer = True
        return self._batch

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if not self._outer:
            return
        storage = self._storage
        local = storage._local
        pending, local.pending = local.pending, None
        if kind is None and pending:
            self._batch.stored = storage._append_block(pending, self._require)


class _ThreadState(threading.local):
    """What belongs to one thread of a storage: its open atomic block, and whether its
    reads are frozen (inside a status change)."""

    pending: list[AnyEvent] | None = None
    frozen: bool = False


class _FrozenThreadState(_ThreadState):
    frozen = True


_STORAGES: weakref.WeakSet[EventLogPipelineResultsStorage] = weakref.WeakSet()


_FORKING: list[EventLogPipelineResultsStorage] = []


def _before_fork() -> None:
    # Wait until no thread is inside a fold or an append: the child gets a whole state.
    _FORKING[:] = list(_STORAGES)
    for storage in _FORKING:
        storage._lock.acquire()


def _after_fork_in_parent() -> None:
    for storage in _FORKING:
        storage._lock.release()
    _FORKING.clear()


def _after_fork_in_child() -> None:
    # The threads that used the locks do not exist in the child; the log module's hook,
    # which runs first, gave each log a new lock.
    for storage in _FORKING:
        storage._lock = storage._log.lock
    _FORKING.clear()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building many long-lived objects: it would rescan them
    again and again for nothing (that doubles replay time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _new_id() -> str:
    return str(uuid.uuid4())


_CONTAINERS: Final = (dict, list, tuple)


def _put_value(attrs: dict[str, Any], name: str, value: Any) -> dict[str, str]:
    """Put a value ``plan_build`` checked in ``attrs`` as the log stores it (statuses and
    datetimes tagged, as ``set_`` stores them); returns the created event's type tags."""
    if type(value) in _CONTAINERS:
        attrs[name] = _detached(value)
        return _STATUS_TYPES
    stored, vtype = encode_value(name, value)
    attrs[name] = stored
    return _STATUS_TYPES if vtype is None else {**_STATUS_TYPES, name: vtype}


def _detached(value: Any) -> Any:
    """``value`` as a replay of the log gives it back: a copy the caller cannot change
    afterwards, tuples as lists."""
    if type(value) in _CONTAINERS:
        return msgspec.json.decode(msgspec.json.encode(value))
    return value
