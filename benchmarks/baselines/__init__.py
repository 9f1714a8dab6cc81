"""Baselines for the benchmarks: other ways to store the seed's four result objects.

Every baseline stores a pipeline execution, its pipeline results, their task executions
and those executions' task results, and offers the same small interface
(:class:`Baseline`) so a benchmark runner drives them identically. The data written is
the same in every baseline: :func:`plan_run` decides ids and attributes, and
:func:`drive_pipeline` is the end-to-end run every ``run_pipeline`` performs.

Importing this package imports neither Django nor ``eventsourcing``; the modules that
need them are loaded by :func:`load_baseline`.
"""

from __future__ import annotations

import importlib
import pathlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol

PIPELINE_EXECUTION: Final = "pipeline_execution"
PIPELINE_RESULT: Final = "pipeline_result"
TASK_EXECUTION: Final = "task_execution"
TASK_RESULT: Final = "task_result"
KINDS: Final = (PIPELINE_EXECUTION, PIPELINE_RESULT, TASK_EXECUTION, TASK_RESULT)
"""The four kinds of result object, parents before children (the project's names)."""

Kind = Literal["pipeline_execution", "pipeline_result", "task_execution", "task_result"]

PENDING: Final = "PENDING"
RUNNING: Final = "RUNNING"
DONE: Final = "DONE"
FINAL_STATUSES: Final = frozenset(
    {"DONE", "CONFIG_ERROR", "VALIDATION_ERROR", "RUNTIME_ERROR", "CANCELLED"}
)
STATUSES: Final = frozenset({PENDING, RUNNING}) | FINAL_STATUSES

PIPELINE_ID: Final = "benchmarks.pipelines.BenchmarkPipeline"
"""The pipeline id every baseline run is stored under."""
PIPELINE_TASKS: Final = ("extract", "load")
"""The two tasks of the run :func:`drive_pipeline` performs."""
RUNNER: Final = "pipelines_events.runners.eager.Runner"
REPORTER: Final = "pipelines_events.reporters.LoggingReporter"

COMMON_FIELDS: Final = ("id", "run_id", "pipeline_id", "status", "started", "completed", "message")
"""Columns every kind has, in storage order."""
KIND_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    PIPELINE_EXECUTION: ("runner", "reporter", "input_data"),
    PIPELINE_RESULT: ("execution_id", "serializable_pipeline_object"),
    TASK_EXECUTION: ("pipeline_result_id", "task_id", "pipeline_task", "config"),
    TASK_RESULT: ("task_execution_id", "serializable_task_object"),
}
"""Columns particular to each kind; ``*_id`` is the parent's id."""
JSON_FIELDS: Final = frozenset(
    {"input_data", "serializable_pipeline_object", "config", "serializable_task_object"}
)
"""Columns holding JSON values."""
DATETIME_FIELDS: Final = frozenset({"started", "completed"})

Row = dict[str, Any]
"""One object's attributes: every name of :data:`COMMON_FIELDS` and its kind's fields."""


def fields_of(kind: str) -> tuple[str, ...]:
    """All columns of ``kind``, common ones first; ``KeyError`` for an unknown kind."""
    return COMMON_FIELDS + KIND_FIELDS[kind]


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def status_message(kind: str, status: str) -> str:
    """The status message recorded with a status change, worded like the original's."""
    subject = "Pipeline" if kind in (PIPELINE_EXECUTION, PIPELINE_RESULT) else "Task"
    if status == PENDING:
        return f"{subject} is waiting to start"
    if status == RUNNING:
        return f"{subject} is running"
    if status == DONE:
        return f"{subject} finished"
    return f"{subject} ended: {status}"


@dataclass(frozen=True)
class StatusChange:
    """What one ``report_status_change`` writes: the status, a timestamp, a message.

    ``started`` is set on RUNNING, ``completed`` on a final status; the other is ``None``
    and is left unchanged in storage.
    """

    status: str
    message: str
    started: datetime | None = None
    completed: datetime | None = None

    @classmethod
    def make(cls, kind: str, status: str, message: str | None = None) -> StatusChange:
        """The change to ``status`` of an object of ``kind``, timestamped now."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {sorted(STATUSES)}")
        if kind not in KIND_FIELDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
        text = status_message(kind, status) if message is None else message
        if status == RUNNING:
            return cls(status, text, started=now())
        if status in FINAL_STATUSES:
            return cls(status, text, completed=now())
        return cls(status, text)

    def fields(self) -> dict[str, Any]:
        """The columns this change writes, by name."""
        written: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.started is not None:
            written["started"] = self.started
        if self.completed is not None:
            written["completed"] = self.completed
        return written


@dataclass(frozen=True)
class BuiltRun:
    """The ids of every object :meth:`Baseline.build` created, by kind, in creation order."""

    run_id: str
    execution_id: str
    pipeline_result_ids: tuple[str, ...]
    task_execution_ids: tuple[str, ...]
    task_result_ids: tuple[str, ...]

    def ids(self, kind: str) -> tuple[str, ...]:
        """The ids of the objects of ``kind``."""
        if kind == PIPELINE_EXECUTION:
            return (self.execution_id,)
        if kind == PIPELINE_RESULT:
            return self.pipeline_result_ids
        if kind == TASK_EXECUTION:
            return self.task_execution_ids
        if kind == TASK_RESULT:
            return self.task_result_ids
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")

    @property
    def object_count(self) -> int:
        """How many objects the run has."""
        return (
            1
            + len(self.pipeline_result_ids)
            + len(self.task_execution_ids)
            + len(self.task_result_ids)
        )


@dataclass
class RunPlan:
    """The rows of one run, by kind, parents before children (see :func:`plan_run`)."""

    run_id: str
    rows: dict[str, list[Row]] = field(default_factory=lambda: {kind: [] for kind in KINDS})

    def built(self) -> BuiltRun:
        """The ids of the planned objects."""
        return BuiltRun(
            run_id=self.run_id,
            execution_id=self.rows[PIPELINE_EXECUTION][0]["id"],
            pipeline_result_ids=tuple(row["id"] for row in self.rows[PIPELINE_RESULT]),
            task_execution_ids=tuple(row["id"] for row in self.rows[TASK_EXECUTION]),
            task_result_ids=tuple(row["id"] for row in self.rows[TASK_RESULT]),
        )


def _new_row(run_id: str, kind: str) -> Row:
    return {
        "id": str(uuid.uuid4()),
        "run_id": run_id,
        "pipeline_id": PIPELINE_ID,
        "status": PENDING,
        "started": None,
        "completed": None,
        "message": status_message(kind, PENDING),
    }


def plan_run(
    run_id: str, n_pipeline_results: int, tasks: Sequence[str], n_task_results: int
) -> RunPlan:
    """The objects of one run: 1 execution, ``n_pipeline_results`` pipeline results,
    one task execution per task per pipeline result, ``n_task_results`` task results
    per task execution; every object PENDING with fresh uuid4 ids.
    """
    if n_pipeline_results < 1 or n_task_results < 1:
        raise ValueError("a run has at least one pipeline result and one task result per task")
    plan = RunPlan(run_id)
    execution = _new_row(run_id, PIPELINE_EXECUTION)
    execution.update(
        runner=RUNNER, reporter=REPORTER, input_data={"source": f"s3://bucket/{run_id}.csv"}
    )
    plan.rows[PIPELINE_EXECUTION].append(execution)
    for p in range(n_pipeline_results):
        result = _new_row(run_id, PIPELINE_RESULT)
        result.update(execution_id=execution["id"], serializable_pipeline_object={"index": p})
        plan.rows[PIPELINE_RESULT].append(result)
        for task_id in tasks:
            task_execution = _new_row(run_id, TASK_EXECUTION)
            task_execution.update(
                pipeline_result_id=result["id"],
                task_id=task_id,
                pipeline_task=task_id,
                config={"task": task_id, "retries": 3},
            )
            plan.rows[TASK_EXECUTION].append(task_execution)
            for t in range(n_task_results):
                task_result = _new_row(run_id, TASK_RESULT)
                task_result.update(
                    task_execution_id=task_execution["id"],
                    serializable_task_object={"index": t, "row": f"{p}-{t}"},
                )
                plan.rows[TASK_RESULT].append(task_result)
    return plan


class Baseline(Protocol):
    """What every baseline offers the benchmark runner.

    Each method commits what it writes before it returns; ``durable`` says whether a
    commit is on disk at that point (fsync) or only handed to the OS.
    """

    name: str
    durable: bool

    def __init__(self, directory: pathlib.Path, durable: bool) -> None: ...

    def build(
        self, run_id: str, n_pipeline_results: int, tasks: list[str], n_task_results: int
    ) -> BuiltRun:
        """Create every object of one run (see :func:`plan_run`); one commit."""
        ...

    def status_change(self, kind: str, object_id: str, status: str) -> None:
        """Record one status change (status, started or completed, message); one commit."""
        ...

    def set_field(self, kind: str, object_id: str, field: str, value: object) -> None:
        """Update one field of one object; one commit."""
        ...

    def run_pipeline(self, run_id: str, n_task_results: int) -> None:
        """Build a run and take it to DONE, one commit per status change (see
        :func:`drive_pipeline`)."""
        ...

    def close(self) -> None:
        """Release connections; the stored data stays in ``directory``."""
        ...


def drive_pipeline(baseline: Baseline, run_id: str, n_task_results: int) -> BuiltRun:
    """The end-to-end run of ``run_pipeline``, the same for every baseline.

    Builds 1 pipeline result with the 2 tasks of :data:`PIPELINE_TASKS` and
    ``n_task_results // 2`` task results per task, moves every task result
    PENDING -> RUNNING -> DONE, then every task execution, the pipeline result and the
    execution to DONE: ``2 * (n_task_results // 2) + 4`` status changes, each committed.
    """
    built = baseline.build(run_id, 1, list(PIPELINE_TASKS), max(n_task_results // 2, 1))
    for object_id in built.task_result_ids:
        baseline.status_change(TASK_RESULT, object_id, RUNNING)
        baseline.status_change(TASK_RESULT, object_id, DONE)
    for object_id in built.task_execution_ids:
        baseline.status_change(TASK_EXECUTION, object_id, DONE)
    for object_id in built.pipeline_result_ids:
        baseline.status_change(PIPELINE_RESULT, object_id, DONE)
    baseline.status_change(PIPELINE_EXECUTION, built.execution_id, DONE)
    return built


BASELINES: Final[dict[str, str]] = {
    "django-orm-sqlite": "benchmarks.baselines.django_orm:DjangoOrmBaseline",
    "eventsourcing-sqlite": "benchmarks.baselines.eventsourcing_lib:EventsourcingBaseline",
    "sqlite-plain": "benchmarks.baselines.sqlite_plain:SqlitePlainBaseline",
}
"""Baseline name -> ``module:class`` of its implementation."""


def load_baseline(name: str) -> type[Baseline]:
    """The class of the baseline called ``name`` (a key of :data:`BASELINES`)."""
    try:
        topic = BASELINES[name]
    except KeyError:
        raise ValueError(
            f"unknown baseline {name!r}; expected one of {sorted(BASELINES)}"
        ) from None
    module_name, _, class_name = topic.partition(":")
    cls: type[Baseline] = getattr(importlib.import_module(module_name), class_name)
    return cls
