"""Baseline: the four objects as aggregates of the ``eventsourcing`` library on SQLite.

One :class:`ResultsApplication` per baseline instance, persisted with the library's SQLite
module in ``<directory>/eventsourcing.sqlite3``. Creating an object is one ``Created``
event, a status change one ``StatusChanged`` event and a field update one ``FieldSet``
event, each saved with ``Application.save`` (one SQLite transaction; the whole run of
:meth:`EventsourcingBaseline.build` is one ``save`` of all its aggregates).

Durability: ``eventsourcing.sqlite`` has no setting for ``PRAGMA synchronous``; it always
switches a file database to ``journal_mode=WAL`` and leaves ``synchronous`` at SQLite's
default, FULL (2) in the SQLite this project runs on, so every commit fsyncs the WAL.
The durable mode uses ``PERSISTENCE_MODULE=eventsourcing.sqlite`` untouched. The unsynced
mode uses :class:`PragmaSQLiteFactory`, the library's factory whose connections also run
``PRAGMA synchronous=OFF`` (environment key ``SQLITE_SYNCHRONOUS``).
"""

from __future__ import annotations

import pathlib
import sqlite3
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteFactory
from eventsourcing.utils import Environment, EnvType

from benchmarks.baselines import (
    KIND_FIELDS,
    KINDS,
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    TASK_EXECUTION,
    TASK_RESULT,
    BuiltRun,
    StatusChange,
    drive_pipeline,
    fields_of,
    plan_run,
)

SYNCHRONOUS_MODES: Final = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
_NOT_CREATED: Final = frozenset({"id", "started", "completed"})
"""Row members the ``Created`` events do not carry (the id is the aggregate's own)."""


class _PragmaSQLiteConnectionPool(SQLiteConnectionPool):
    """The library's pool; each new connection also runs ``PRAGMA synchronous=<mode>``."""

    def __init__(self, *, synchronous: str, **kwargs: Any) -> None:
        self.synchronous = synchronous
        super().__init__(**kwargs)

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        connection._sqlite_conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return connection


class PragmaSQLiteFactory(SQLiteFactory):
    """``eventsourcing.sqlite``'s factory, plus ``SQLITE_SYNCHRONOUS`` (OFF/NORMAL/FULL/EXTRA)."""

    SQLITE_SYNCHRONOUS = "SQLITE_SYNCHRONOUS"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        synchronous = (self.env.get(self.SQLITE_SYNCHRONOUS) or "").strip().upper()
        if not synchronous:
            return
        if synchronous not in SYNCHRONOUS_MODES:
            raise OSError(
                f"{self.SQLITE_SYNCHRONOUS} {synchronous!r} is not one of "
                f"{sorted(SYNCHRONOUS_MODES)}"
            )
        library_pool = self.datastore.pool
        self.datastore.pool = _PragmaSQLiteConnectionPool(
            synchronous=synchronous,
            db_name=library_pool.db_name,
            lock_timeout=library_pool.lock_timeout,
            pool_size=library_pool.pool_size,
            max_overflow=library_pool.max_overflow,
            pool_timeout=library_pool.pool_timeout,
            max_age=library_pool.max_age,
            pre_ping=library_pool.pre_ping,
        )
        library_pool.close()  # it has not connected yet


class ResultObject(Aggregate):
    """What the four kinds share: status, timestamps, message; status and field events.

    (No class-level annotations: the library would take them for ``Created`` arguments.)
    """

    def _init_common(self, run_id: str, pipeline_id: str, status: str, message: str) -> None:
        self.run_id: str = run_id
        self.pipeline_id: str = pipeline_id
        self.status: str = status
        self.started: datetime | None = None
        self.completed: datetime | None = None
        self.message: str = message

    @event("StatusChanged")
    def change_status(
        self,
        status: str,
        message: str,
        started: datetime | None,
        completed: datetime | None,
    ) -> None:
        """Record a status change (``started``/``completed`` ``None`` = unchanged)."""
        self.status = status
        self.message = message
        if started is not None:
            self.started = started
        if completed is not None:
            self.completed = completed

    @event("FieldSet")
    def set_field(self, field: str, value: Any) -> None:
        """Record one field update."""
        setattr(self, field, value)


class PipelineExecutionAggregate(ResultObject):
    """A pipeline execution."""

    @event("Created")
    def __init__(
        self,
        id: UUID,
        run_id: str,
        pipeline_id: str,
        status: str,
        message: str,
        runner: str,
        reporter: str,
        input_data: Any,
    ) -> None:
        self._init_common(run_id, pipeline_id, status, message)
        self.runner = runner
        self.reporter = reporter
        self.input_data = input_data


class PipelineResultAggregate(ResultObject):
    """A pipeline result."""

    @event("Created")
    def __init__(
        self,
        id: UUID,
        run_id: str,
        pipeline_id: str,
        status: str,
        message: str,
        execution_id: str,
        serializable_pipeline_object: Any,
    ) -> None:
        self._init_common(run_id, pipeline_id, status, message)
        self.execution_id = execution_id
        self.serializable_pipeline_object = serializable_pipeline_object


class TaskExecutionAggregate(ResultObject):
    """A task execution."""

    @event("Created")
    def __init__(
        self,
        id: UUID,
        run_id: str,
        pipeline_id: str,
        status: str,
        message: str,
        pipeline_result_id: str,
        task_id: str,
        pipeline_task: str,
        config: Any,
    ) -> None:
        self._init_common(run_id, pipeline_id, status, message)
        self.pipeline_result_id = pipeline_result_id
        self.task_id = task_id
        self.pipeline_task = pipeline_task
        self.config = config


class TaskResultAggregate(ResultObject):
    """A task result."""

    @event("Created")
    def __init__(
        self,
        id: UUID,
        run_id: str,
        pipeline_id: str,
        status: str,
        message: str,
        task_execution_id: str,
        serializable_task_object: Any,
    ) -> None:
        self._init_common(run_id, pipeline_id, status, message)
        self.task_execution_id = task_execution_id
        self.serializable_task_object = serializable_task_object


AGGREGATES: Final[dict[str, type[ResultObject]]] = {
    PIPELINE_EXECUTION: PipelineExecutionAggregate,
    PIPELINE_RESULT: PipelineResultAggregate,
    TASK_EXECUTION: TaskExecutionAggregate,
    TASK_RESULT: TaskResultAggregate,
}


class ResultsApplication(Application[UUID]):
    """The application whose repository holds the result aggregates."""

    name = "PipelinesResults"


class EventsourcingBaseline:
    """The four kinds as ``eventsourcing`` aggregates, one saved event per change."""

    name = "eventsourcing-sqlite"
    journal_mode = "WAL"

    def __init__(self, directory: pathlib.Path, durable: bool) -> None:
        self.durable = durable
        self.path = pathlib.Path(directory) / "eventsourcing.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            "SQLITE_DBNAME": str(self.path),
            "SQLITE_LOCK_TIMEOUT": "10",
            "CREATE_TABLE": "y",
            "IS_SNAPSHOTTING_ENABLED": "n",
        }
        if durable:
            env["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
        else:
            env["PERSISTENCE_MODULE"] = f"{__name__}:{PragmaSQLiteFactory.__name__}"
            env[PragmaSQLiteFactory.SQLITE_SYNCHRONOUS] = "OFF"
        self.app = ResultsApplication(env=env)
        self._held: dict[str, ResultObject] = {}

    def build(
        self, run_id: str, n_pipeline_results: int, tasks: list[str], n_task_results: int
    ) -> BuiltRun:
        """Create one aggregate per object (ids as planned), all saved in one ``save``."""
        plan = plan_run(run_id, n_pipeline_results, tasks, n_task_results)
        created: list[ResultObject] = []
        for kind in KINDS:
            cls: Any = AGGREGATES[kind]  # whose ``Created`` takes ``id`` and the attributes
            for row in plan.rows[kind]:
                attrs = {name: value for name, value in row.items() if name not in _NOT_CREATED}
                created.append(cls(id=UUID(row["id"]), **attrs))
        self.app.save(*created)
        for aggregate in created:
            self._held[str(aggregate.id)] = aggregate
        return plan.built()

    def _aggregate(self, object_id: str) -> ResultObject:
        """The aggregate built in this process, else the one the repository replays."""
        held = self._held.get(object_id)
        if held is None:
            replayed: ResultObject = self.app.repository.get(UUID(object_id))
            held = self._held[object_id] = replayed
        return held

    def status_change(self, kind: str, object_id: str, status: str) -> None:
        """Trigger one ``StatusChanged`` event and save it."""
        change = StatusChange.make(kind, status)
        aggregate = self._aggregate(object_id)
        aggregate.change_status(change.status, change.message, change.started, change.completed)
        self.app.save(aggregate)

    def set_field(self, kind: str, object_id: str, field: str, value: object) -> None:
        """Trigger one ``FieldSet`` event and save it."""
        if field == "id" or field not in fields_of(kind):
            raise ValueError(f"{kind} has no settable field {field!r}")
        aggregate = self._aggregate(object_id)
        aggregate.set_field(field, value)
        self.app.save(aggregate)

    def run_pipeline(self, run_id: str, n_task_results: int) -> None:
        """See :func:`benchmarks.baselines.drive_pipeline`."""
        drive_pipeline(self, run_id, n_task_results)

    def get(self, kind: str, object_id: str) -> dict[str, Any]:
        """One object replayed from its stored events (for checks, not timed)."""
        if kind not in KIND_FIELDS:
            raise ValueError(f"unknown kind {kind!r}")
        aggregate: Aggregate = self.app.repository.get(UUID(object_id))
        if not isinstance(aggregate, AGGREGATES[kind]):
            raise KeyError(f"no {kind} with id {object_id!r}")
        values = {name: getattr(aggregate, name) for name in fields_of(kind) if name != "id"}
        return {"id": str(aggregate.id), **values}

    def pragma(self, name: str) -> Any:
        """The value of ``PRAGMA name`` on the application's connection."""
        datastore = self.app.factory.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=False) as cursor:
            cursor.execute(f"PRAGMA {name}")
            row: sqlite3.Row = cursor.fetchone()
        return row[0]

    def close(self) -> None:
        """Close the application and its connections."""
        self._held.clear()
        self.app.close()
