"""The default storage: result objects kept as events in a JSON-lines log.

Every ``set_`` call appends one :class:`~pipelines_events.events.FieldSet` event; building
a run appends the :class:`~pipelines_events.events.ObjectCreated` events of all its objects
as one batch. Every ``get_`` and every query first folds what other processes appended,
then reads the projections. A storage may be shared by threads: one lock per storage
covers catch-up, append and fold, and atomic blocks are per thread.
"""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import Any, Final

import msgspec

from pipelines_events.errors import (
    InvalidValueError,
    LogError,
    SnapshotError,
)
from pipelines_events.events import (
    PIPELINE_EXECUTION,
    START,
    AnyEvent,
    Erased,
    FieldSet,
    RunRemoved,
)
from pipelines_events.log.base import (
    DEFAULT_MAX_EVENT_BYTES,
    Durability,
    Erasure,
    RunPage,
    RunQuery,
    RunSummary,
    summaries_as_of,
)
from pipelines_events.log.open import LogTarget, is_url, open_log
from pipelines_events.results.base import (
    BuildablePipeline,
    PipelineExecution,
    encode_field_value,
    plan_build,
)
from pipelines_events.results.eventlog_build import run_drafts
from pipelines_events.results.eventlog_io import EventLogIO, _gc_paused
from pipelines_events.results.eventlog_objects import (
    EventLogPipelineExecution,
    _detached,
)
from pipelines_events.results.eventlog_objects import (
    EventLogPipelineResult as EventLogPipelineResult,
)
from pipelines_events.results.eventlog_objects import (
    EventLogTaskExecution as EventLogTaskExecution,
)
from pipelines_events.results.eventlog_objects import (
    EventLogTaskResult as EventLogTaskResult,
)
from pipelines_events.results.eventlog_reads import _STORAGES
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
_FAILED = PipelineTaskStatus.failed_statuses()


class EventLogPipelineResultsStorage(EventLogIO):
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
        execution_id, drafts = run_drafts(plan, run_id)
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
        """The runs as the engine's run index lists them (oldest first), each as it stood at
        the storage's position (runs removed or not begun by then left out), without
        loading any run but those changed after that position; None
        when the storage does not read runs from a run index (a log without one): then
        :meth:`get_pipeline_executions` lists runs.
        """
        if not isinstance(self._model, LazyReadModel):
            return None
        self.refresh()
        with self._lock:
            log = self._log
            summaries = summaries_as_of(log.run_summaries(), log.position.seq, log.run_events)
            return [summary for summary in summaries if not summary.removed]

    def find_runs(self, query: RunQuery) -> RunPage | None:
        """The runs ``query`` lists (newest first, at most its limit, and how many match),
        from the engine's run index, without loading any run and without reading every
        run's summary where the engine pages in its database; each run as it stood at the
        storage's position (runs begun after it left out). None when the storage does not
        read runs from a run index (then :meth:`get_pipeline_executions` lists runs)."""
        if not isinstance(self._model, LazyReadModel):
            return None
        if not isinstance(query, RunQuery):
            raise InvalidValueError(f"query must be a RunQuery, not {query!r}")
        self.refresh()
        with self._lock:
            limit = self._log.position.seq
            through = limit if query.through_seq is None else min(limit, query.through_seq)
            return self._log.run_page(msgspec.structs.replace(query, through_seq=through))

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
        # A run with events still in the log file is left whole until they are sealed too:
        # erasing its creations but not its later changes would leave a log that no
        # longer folds (a change to an object never created).
        unsealed = 0
        for run_id, seqs in later.items():
            if run_id in removed:
                kept = sum(1 for seq in seqs if seq < removed[run_id])
                if kept:
                    unsealed += kept
                    del removed[run_id]
        done = log.erase_sealed(removed, unsealed)
        if done.erased:
            self._replace_snapshot()  # none from before a removal may hold erased content
        return done

    def _replace_snapshot(self) -> None:
        """After an erasure: write the snapshot anew, or, when this storage writes none
        (runs load from the run index), replace one another storage wrote with an empty
        snapshot at the log's start (it holds nothing; a storage using it replays all)."""
        if self._snapshots and isinstance(self._model, FullReadModel):
            self.write_snapshot()
            return
        store = self._log.snapshots
        try:
            if store.load() is None:
                return
        except (SnapshotError, OSError):
            pass  # unreadable: replaced all the same
        empty = Snapshot(position=START, parts=FullReadModel().snapshot_parts())
        try:
            store.save(encode_snapshot(empty))
        except OSError as exc:
            warnings.warn(
                f"{store.location}: cannot replace the snapshot written before the erasure "
                f"({exc.strerror}); it may still hold erased content: delete it",
                SnapshotIgnored,
                stacklevel=3,
            )

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
