"""The read side of the event-log storage: the seed's queries and result objects over a
read model (:mod:`pipelines_events.results.readmodel`).

:class:`ReadModelStorage` answers every ``get_`` method and query from its read model and
hands out result objects whose ``get_`` methods read it too. What moves the read model and
what a ``set_`` does is left to its subclasses: the event-log storage
(:class:`~pipelines_events.results.eventlog.EventLogPipelineResultsStorage`) folds its log
and appends events; the point-in-time view (:class:`~pipelines_events.audit.StorageView`)
keeps a fixed state and refuses every write.
"""

from __future__ import annotations

import abc
import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipelines_events.errors import ObjectNotFoundError
from pipelines_events.events import (
    PIPELINE_RESULT,
    TASK_EXECUTION,
    AnyEvent,
)
from pipelines_events.log.base import EventLog, RunPage, RunQuery, RunSummary
from pipelines_events.results.base import (
    Batch,
    PipelineDigest,
    PipelineExecution,
    PipelineResult,
    PipelineResultsStorage,
    TaskExecution,
    TaskResult,
)
from pipelines_events.results.eventlog_objects import (
    _CLASSES,
    _T,
    EventLogPipelineExecution,
    EventLogPipelineResult,
    EventLogTaskExecution,
    EventLogTaskResult,
    _EventLogObject,
)
from pipelines_events.results.readmodel import ReadModel, ResultsReader
from projections.results import ResultRecord


class ReadModelStorage(PipelineResultsStorage, abc.ABC):
    """The seed's queries and ``get_`` methods over a read model folded from ``log``.

    A subclass gives the read model (:meth:`_use_model`), and says what brings it up to
    date (:meth:`refresh`) and what a write does (:meth:`_set_field`, :meth:`atomic`,
    :meth:`commit`).
    """

    def __init__(self, log: EventLog) -> None:
        self._log = log
        # The lock of the storage's state (its log's: one lock covers the projections and
        # the position), and the per-thread state of atomic blocks.
        self._lock = log.lock
        self._local = _ThreadState()
        _STORAGES.add(self)

    def _use_model(self, model: ReadModel) -> None:
        self._model = model
        self._results: ResultsReader = model.results

    @property
    def log(self) -> EventLog:
        """The event log the storage reads (and, unless read-only, writes to)."""
        return self._log

    @property
    def read_model(self) -> ReadModel:
        """What the storage's queries read (a full fold, or runs loaded on demand)."""
        return self._model

    @property
    def results(self) -> ResultsReader:
        """The results projection (caught up by :meth:`refresh`)."""
        return self._results

    @property
    def snapshot_location(self) -> str:
        """Where the log's engine keeps the storage's snapshot, for messages."""
        return self._log.snapshots.location

    @property
    def snapshot_path(self) -> Path:
        """The snapshot file of a file log (elsewhere: :attr:`snapshot_location` as a path)."""
        return Path(self._log.snapshots.location)

    @property
    def reads_are_held(self) -> bool:
        """Whether this thread is inside :meth:`reads_held` (reads do not catch up)."""
        return self._local.holding_reads

    @contextlib.contextmanager
    def reads_held(self, *, catch_up_first: bool = False) -> Iterator[None]:
        """Within the block, this thread's reads answer from the state as it is and do not
        catch up with the log (appends still do). With ``catch_up_first``, catch up once on
        entering; a block inside another changes nothing."""
        local = self._local
        if local.holding_reads:
            yield
            return
        if catch_up_first:
            self.refresh()
        local.holding_reads = True
        try:
            yield
        finally:
            local.holding_reads = False

    # -- what the subclasses decide -----------------------------------------------------

    @abc.abstractmethod
    def refresh(self) -> None:
        """Bring the read model up to date before a read."""

    @abc.abstractmethod
    def _set_field(self, object_id: str, kind: str, name: str, value: Any) -> None:
        """Store ``value`` as field ``name`` of object ``object_id`` (what ``set_`` does)."""

    @abc.abstractmethod
    def atomic(
        self, require: Callable[[], bool] | None = None
    ) -> contextlib.AbstractContextManager[Batch]:
        """A block whose writes are stored together or not at all."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Make what was written durable."""

    # -- records and objects ----------------------------------------------------------

    def _record(self, object_id: str, kind: str) -> ResultRecord:
        self.refresh()
        record = self._results.get(object_id)
        if record is None or record.kind != kind:
            raise ObjectNotFoundError(
                f"{kind} {object_id} does not exist in {self._log.location} "
                "(never created, or its run was removed by cleanup)"
            )
        return record

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

    # -- queries ----------------------------------------------------------------------

    def run_index(self) -> list[RunSummary] | None:
        """The runs from the engine's run index, without loading any; None here (a
        point-in-time view): :meth:`get_pipeline_executions` lists the runs. The storage
        over an engine with a run index overrides it."""
        return None

    def find_runs(self, query: RunQuery) -> RunPage | None:
        """The page of runs ``query`` asks for, from the engine's run index; None here (a
        point-in-time view): :meth:`get_pipeline_executions` lists the runs. The storage
        over an engine with a run index overrides it."""
        return None

    def get_pipeline_digest(self) -> PipelineDigest:
        self.refresh()
        with self._lock:
            return self._model.digest()

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


class _ThreadState(threading.local):
    """What belongs to one thread of a storage: its open atomic block, and whether its
    reads are held (:meth:`ReadModelStorage.reads_held`, inside a status change)."""

    pending: list[AnyEvent] | None = None
    holding_reads: bool = False


_STORAGES: weakref.WeakSet[ReadModelStorage] = weakref.WeakSet()


_FORKING: list[ReadModelStorage] = []


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
