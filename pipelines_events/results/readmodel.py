"""The storage's read models: what its ``get_`` methods and queries read, kept in step with
the position of its log.

- :class:`FullReadModel` folds every event of the log into the projections (the file log,
  and any engine without a run index); it can be snapshotted.
- :class:`LazyReadModel` (engines with a run index) folds nothing at open: runs are listed
  from the engine's run summaries, one run's objects are loaded from its events the
  first time something asks for them, and only the new events of loaded runs are folded
  afterwards.

Both offer :attr:`ReadModel.results` (the queries of
:class:`~projections.results.ResultsProjection`), :meth:`ReadModel.digest` and
:attr:`ReadModel.appliers` (the functions the storage folds each event with).
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from pipelines_events.events import PIPELINE_EXECUTION, AnyEvent, ObjectCreated
from pipelines_events.log.base import EventLog
from pipelines_events.results.base import PipelineDigest
from projections.digest import DigestProjection
from projections.results import ResultRecord, ResultsProjection

Apply = Callable[[AnyEvent], None]


class ResultsReader(Protocol):
    """The queries the storage and its faces read records with (those of
    :class:`~projections.results.ResultsProjection`)."""

    def get(self, object_id: str) -> ResultRecord | None: ...

    def execution_of_run(self, run_id: str) -> ResultRecord | None: ...

    def executions(
        self, *, pipeline_id: str | None = None, run_id: str | None = None
    ) -> list[ResultRecord]: ...

    def children(self, object_id: str) -> list[ResultRecord]: ...

    def descendants(self, records: Iterable[ResultRecord], depth: int) -> list[ResultRecord]: ...

    def run_objects(self, run_id: str) -> list[ResultRecord]: ...

    def run_ids(self) -> list[str]: ...

    def is_removed_run(self, run_id: str) -> bool: ...


class ReadModel(abc.ABC):
    """The state a storage reads, folded from its log up to the log's position."""

    results: ResultsReader
    """The result records."""

    appliers: tuple[Apply, Apply]
    """The functions each event the storage reads is folded with, in order (two, so that
    the storage's fold loop stays a plain loop)."""

    @abc.abstractmethod
    def digest(self) -> PipelineDigest:
        """The digest of every run up to the position."""


class FullReadModel(ReadModel):
    """Every event folded into a results and a digest projection (restorable from a
    snapshot's parts)."""

    def __init__(
        self, results: ResultsProjection | None = None, digest: DigestProjection | None = None
    ) -> None:
        self.projection = results if results is not None else ResultsProjection()
        self.digest_projection = digest if digest is not None else DigestProjection()
        self.results = self.projection
        self.appliers = (self.projection.apply, self.digest_projection.apply)

    def digest(self) -> PipelineDigest:
        return self.digest_projection.digest()

    def snapshot_parts(self) -> dict[str, bytes]:
        """The projections as a snapshot's parts."""
        return {"results": self.projection.snapshot(), "digest": self.digest_projection.snapshot()}

    @classmethod
    def restore(cls, parts: dict[str, bytes]) -> FullReadModel:
        """The model a snapshot's parts hold (KeyError when one is missing)."""
        return cls(
            ResultsProjection.restore(parts["results"]), DigestProjection.restore(parts["digest"])
        )


class LazyReadModel(ReadModel):
    """Runs loaded on demand from a log with a run index (``log.supports_run_index``).

    ``lock`` is the storage's lock (the log's): loading a run reads the run's events up
    to the log's position, which must not move meanwhile.
    """

    def __init__(self, log: EventLog, lock: threading.RLock) -> None:
        self._log = log
        self._lock = lock
        self.projection = ResultsProjection()
        self._digest = DigestProjection()
        self._loaded: set[str] = set()
        self._begun: dict[str, int] = {}  # run id: seq of its execution's creation
        self._all = False
        self.results = _LazyResults(self)
        self.appliers = (self._apply_results, self._apply_digest)

    @property
    def loaded_runs(self) -> frozenset[str]:
        """The runs whose objects are in memory (every run once :meth:`load_all` ran)."""
        return frozenset(self._loaded)

    def _apply_results(self, event: AnyEvent) -> None:
        if self._all or event.run_id in self._loaded:
            self.projection.apply(event)
            if isinstance(event, ObjectCreated) and event.kind == PIPELINE_EXECUTION:
                self._begun[event.run_id] = event.seq

    def in_log_order(self, records: list[ResultRecord]) -> list[ResultRecord]:
        """Executions in the order their runs began in the log (runs load in any order)."""
        begun = self._begun
        return sorted(records, key=lambda record: begun.get(record.run_id, 0))

    def _apply_digest(self, event: AnyEvent) -> None:
        if self._all or event.run_id in self._loaded:
            self._digest.apply(event)

    def load_run(self, run_id: str) -> None:
        """Fold the events of run ``run_id`` up to the position, once."""
        if self._all or run_id in self._loaded:
            return
        with self._lock:
            if run_id in self._loaded:
                return
            limit = self._log.position.seq
            events = [event for event in self._log.run_events(run_id) if event.seq <= limit]
            apply_results, apply_digest = self.projection.apply, self._digest.apply
            for event in events:
                apply_results(event)
                apply_digest(event)
                if isinstance(event, ObjectCreated) and event.kind == PIPELINE_EXECUTION:
                    self._begun[run_id] = event.seq
            self._loaded.add(run_id)

    def load_all(self, pipeline_id: str | None = None) -> None:
        """Load every run (of ``pipeline_id`` only, when given) the run index lists."""
        if self._all:
            return
        with self._lock:
            for summary in self._log.run_summaries():
                if pipeline_id is None or summary.pipeline_id == pipeline_id:
                    self.load_run(summary.run_id)
            if pipeline_id is None:
                self._all = True

    def load_object(self, object_id: str) -> None:
        """Load the run of ``object_id`` (found through the run index), if any."""
        if self._all:
            return
        run_id = self._log.run_of(object_id)
        if run_id is not None:
            self.load_run(run_id)

    def digest(self) -> PipelineDigest:
        self.load_all()
        return self._digest.digest()


class _LazyResults:
    """The queries of a :class:`LazyReadModel`: each loads the runs it needs first."""

    def __init__(self, model: LazyReadModel) -> None:
        self._model = model
        self._projection = model.projection

    def get(self, object_id: str) -> ResultRecord | None:
        record = self._projection.get(object_id)
        if record is None:
            self._model.load_object(object_id)
            record = self._projection.get(object_id)
        return record

    def execution_of_run(self, run_id: str) -> ResultRecord | None:
        self._model.load_run(run_id)
        return self._projection.execution_of_run(run_id)

    def executions(
        self, *, pipeline_id: str | None = None, run_id: str | None = None
    ) -> list[ResultRecord]:
        if run_id is not None:
            self._model.load_run(run_id)
        else:
            self._model.load_all(pipeline_id)
        found = self._projection.executions(pipeline_id=pipeline_id, run_id=run_id)
        return found if len(found) < 2 else self._model.in_log_order(found)

    def children(self, object_id: str) -> list[ResultRecord]:
        self.get(object_id)
        return self._projection.children(object_id)

    def descendants(self, records: Iterable[ResultRecord], depth: int) -> list[ResultRecord]:
        return self._projection.descendants(records, depth)

    def run_objects(self, run_id: str) -> list[ResultRecord]:
        self._model.load_run(run_id)
        return self._projection.run_objects(run_id)

    def run_ids(self) -> list[str]:
        self._model.load_all()
        return [record.run_id for record in self.executions()]

    def is_removed_run(self, run_id: str) -> bool:
        self._model.load_run(run_id)
        return self._projection.is_removed_run(run_id)


__all__ = ["FullReadModel", "LazyReadModel", "ReadModel", "ResultsReader"]
