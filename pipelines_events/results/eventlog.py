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
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Final

from pipelines_events.errors import (
    AppendUnreadUnavailable,
    InvalidValueError,
    LogError,
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
    Erased,
    FieldSet,
    ObjectCreated,
    RunRemoved,
    encode_value,
)
from pipelines_events.log.base import DEFAULT_MAX_EVENT_BYTES, Durability, Erasure, RunSummary
from pipelines_events.log.open import LogTarget, is_url, open_log
from pipelines_events.results.base import (
    Batch,
    BuildablePipeline,
    PipelineExecution,
    encode_field_value,
    plan_build,
)
from pipelines_events.results.eventlog_reads import (
    _CONTAINERS,
    _STORAGES,
    EventLogPipelineExecution,
    ReadModelStorage,
    _detached,
)
from pipelines_events.results.eventlog_reads import (
    EventLogPipelineResult as EventLogPipelineResult,
)
from pipelines_events.results.eventlog_reads import (
    EventLogTaskExecution as EventLogTaskExecution,
)
from pipelines_events.results.eventlog_reads import (
    EventLogTaskResult as EventLogTaskResult,
)
from pipelines_events.results.readmodel import FullReadModel, LazyReadModel
from pipelines_events.results.snapshots import (
    Snapshot,
    SnapshotIgnored,
    decode_snapshot,
    encode_snapshot,
)
from pipelines_events.status import PipelineTaskStatus

DEFAULT_PATH: Final = "pipelines-events.jsonl"
"""The log file of the default storage, relative to the working directory."""

DEFAULT_SNAPSHOT_EVERY: Final = 100_000
"""A snapshot is written when a storage opens or closes this many events past the last."""
_BIG_GROUP: Final = 1000
"""Catch-ups that hand over more events than this at once run with the cyclic garbage
collector paused."""
_PENDING: Final = PipelineTaskStatus.PENDING.value
_STATUS_TYPES: Final = {"status": STATUS}
_FAILED = PipelineTaskStatus.failed_statuses()


class EventLogPipelineResultsStorage(ReadModelStorage):
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
        super().__init__(
            open_log(
                path,
                durability=durability,
                max_event_bytes=max_event_bytes,
                readonly=readonly,
                **options,
            )
        )
        self._snapshot_every = snapshot_every
        self._unsnapshotted = 0
        self._append_unread = self._log.supports_append_unread
        self._fold_failed = False  # the last fold stopped at an event: writes catch up
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

    # -- events in and out ------------------------------------------------------------

    def refresh(self) -> None:
        """Fold the events other processes appended since the last look."""
        if self.reads_are_held or not self._log.has_new():
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
            self._fold_failed = True
            self._unsnapshotted += events.index(event)
            try:
                self._log.seek(self._log.cursor_at(event.seq - 1))
            except LogError as seek_error:
                exc.add_note(f"and the storage could not stay before it: {seek_error}")
            if isinstance(exc, ProjectionError):
                raise ProjectionError(self._fold_error(exc, event)) from exc
            raise
        self._fold_failed = False
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
        if self._readonly:
            self._refuse_write("write events")
        local = self._local
        pending = local.pending
        if pending is not None:
            pending.extend(drafts)
            return
        if (
            self._append_unread
            and not local.holding_reads
            and not self._fold_failed
            and self._log.supports_append_unread
        ):
            # What other writers appended is left to the next read, which folds it, and
            # then this batch, in log order; with nothing before it, it is folded now.
            # (After a fold error, a write catches up as reads do and is refused.)
            try:
                self._log.append_unread(drafts, on_written=self._fold)
                return
            except AppendUnreadUnavailable:
                pass  # rolled by another writer, nothing written: catch up and append
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
        with self.reads_held():
            return require()

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

    def _set_field(self, object_id: str, kind: str, name: str, value: Any) -> None:
        if self._readonly:
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

    def run_index(self) -> list[RunSummary] | None:
        """The runs as the engine's run index lists them (oldest first; removed runs and
        runs begun after the storage's position left out), without loading any run; None
        when the storage does not read runs from a run index (a log without one): then
        :meth:`get_pipeline_executions` lists runs.
        """
        if not isinstance(self._model, LazyReadModel):
            return None
        self.refresh()
        with self._lock:
            limit = self._log.position.seq
            return [s for s in self._log.run_summaries() if not s.removed and s.first_seq <= limit]

    # -- cleanup ----------------------------------------------------------------------

    def cleanup(self, before: datetime | None = None, *, erase: bool = False) -> list[str]:
        """Remove the finished runs (see the base class); with ``erase``, then erase the
        content of every removed run from the log's sealed segments
        (:meth:`erase_removed`)."""
        if erase is not True and erase is not False:
            raise InvalidValueError(f"erase must be True or False, not {erase!r}")
        if erase and not self._log.supports_erasure:
            self._log.erase_sealed({})  # raises, saying why, before anything is removed
        removed = super().cleanup(before)  # checks before, then _cleanup
        if erase:
            self.erase_removed()
        return removed

    def erase_removed(self) -> Erasure:
        """Erase, in the log's sealed segments, the content of the events of every run
        removed so far (their seq, place and digest stay: the chain still verifies); writes
        a new snapshot after. Returns what was erased and the bytes reclaimed."""
        self._refuse_write("erase removed runs")
        log = self._log
        if not log.supports_erasure:
            log.erase_sealed({})
        self.refresh()
        sealed = getattr(log, "sealed", None)
        sealed_up_to = 0 if sealed is None else sealed.last_seq
        removed: dict[str, int] = {}
        later: dict[str, list[int]] = {}  # the events of each run in the log file
        for batch in log.read(START):
            for event in batch.events:
                if type(event) is RunRemoved:
                    removed[event.run_id] = event.seq
                elif event.seq > sealed_up_to and type(event) is not Erased:
                    later.setdefault(event.run_id, []).append(event.seq)
        unsealed = sum(
            1
            for run_id, seqs in later.items()
            if run_id in removed
            for seq in seqs
            if seq < removed[run_id]
        )
        done = log.erase_sealed(removed, unsealed)
        if done.erased and self._snapshots:
            self.write_snapshot()  # none from before a removal may hold erased content
        return done

    def _cleanup(self, before: datetime | None) -> list[str]:
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


def _put_value(attrs: dict[str, Any], name: str, value: Any) -> dict[str, str]:
    """Put a value ``plan_build`` checked in ``attrs`` as the log stores it (statuses and
    datetimes tagged, as ``set_`` stores them); returns the created event's type tags."""
    if type(value) in _CONTAINERS:
        attrs[name] = _detached(value)
        return _STATUS_TYPES
    stored, vtype = encode_value(name, value)
    attrs[name] = stored
    return _STATUS_TYPES if vtype is None else {**_STATUS_TYPES, name: vtype}
