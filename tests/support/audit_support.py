"""Helpers of the audit tests: a tiny pipeline driven by hand through the storage API.

No tests here; the audit test modules (integration and reliability) import these helpers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pipelines_events.reporters import PipelineReporter
from pipelines_events.results.base import PipelineExecution, PipelineStorageObject
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus

RUNNING = PipelineTaskStatus.RUNNING
DONE = PipelineTaskStatus.DONE
FAILED = PipelineTaskStatus.RUNTIME_ERROR
CANCELLED = PipelineTaskStatus.CANCELLED


class TinyTask:
    """A task as ``build_pipeline_execution`` sees it (the ``BuildableTask`` protocol)."""

    def __init__(self, pipeline_task: str, objects: list[Any] | None = None) -> None:
        self.pipeline_task = pipeline_task
        self.task_id = f"tests.tiny.{pipeline_task.title()}Task"
        self._objects = objects

    def get_serializable_config(self) -> Any:
        return {"retries": 0}

    def get_iterator(self) -> Any:
        return self._objects

    def get_serializable_task_object(self, obj: Any) -> Any:
        return obj


class TinyPipeline:
    """Two cities, each with ``extract`` (two parts) then ``load`` (one task result)."""

    def __init__(self, cities: tuple[str, ...] = ("oslo", "lima")) -> None:
        self._cities = cities

    def get_id(self) -> str:
        return "tests.tiny.TinyPipeline"

    def get_iterator(self) -> Any:
        return list(self._cities)

    def get_serializable_pipeline_object(self, obj: Any) -> Any:
        return obj

    def get_build_tasks(self) -> list[TinyTask]:
        return [TinyTask("extract", ["part-1", "part-2"]), TinyTask("load")]


ObjectFields = tuple[str, datetime | None, datetime | None, str]
"""An object's status (name), started, completed and message."""


@dataclass
class Snapshot:
    """The state of every object of a run as the live storage held it, at a seq."""

    seq: int
    ts: str
    objects: dict[str, ObjectFields] = field(default_factory=dict)


def fields_of(obj: PipelineStorageObject) -> ObjectFields:
    return (obj.get_status().name, obj.get_started(), obj.get_completed(), obj.get_message())


def run_objects(execution: PipelineExecution) -> list[PipelineStorageObject]:
    """The execution and everything below it, parents first."""
    out: list[PipelineStorageObject] = []

    def walk(obj: PipelineStorageObject) -> None:
        out.append(obj)
        for child in obj.get_children():
            walk(child)

    walk(execution)
    return out


class SnapshotReporter(PipelineReporter):
    """A reporter that records the whole run's state each time it hears of a change."""

    def __init__(
        self, storage: EventLogPipelineResultsStorage, run_id: str, pause: float = 0.0
    ) -> None:
        self.storage = storage
        self.run_id = run_id
        self.pause = pause
        self.snapshots: list[Snapshot] = []

    def take(self) -> None:
        execution = self.storage.get_pipeline_execution(self.run_id)
        assert execution is not None
        position = self.storage.log.position
        snapshot = Snapshot(position.seq, last_ts(self.storage.log.path))
        for obj in run_objects(execution):
            snapshot.objects[obj.get_id()] = fields_of(obj)
        self.snapshots.append(snapshot)

    def report(
        self, context_object: PipelineStorageObject, status: PipelineTaskStatus, message: str
    ) -> None:
        if status is PipelineTaskStatus.PENDING:
            return  # the objects of the new run, reported once built: nothing changed
        self.take()
        if self.pause:
            time.sleep(self.pause)


def last_ts(path: Path) -> str:
    """The time of the last event in the log file at ``path``."""
    import msgspec

    last = path.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    ts: str = msgspec.json.decode(last)["ts"]
    return ts


def drive_run(
    storage: EventLogPipelineResultsStorage,
    run_id: str = "run-1",
    *,
    fail: tuple[str, str] | None = ("lima", "part-2"),
    cities: tuple[str, ...] = ("oslo", "lima"),
    pause: float = 0.0,
) -> tuple[PipelineExecution, SnapshotReporter]:
    """Build a run of :class:`TinyPipeline` and move every task result along by hand.

    ``fail`` names the (city, part) whose extract fails; the rest of that city's task
    results are then cancelled. Returns the execution and the reporter holding a snapshot
    after the build and after every batch of status changes; ``pause`` seconds pass after
    each batch.
    """
    reporter = SnapshotReporter(storage, run_id, pause)
    execution = storage.build_pipeline_execution(
        TinyPipeline(cities), run_id, object(), reporter, {"day": "2026-11-05"}
    )
    reporter.take()
    for result in execution.get_pipeline_results():
        city = result.get_serializable_pipeline_object()
        failed = False
        for task_execution in result.get_task_executions():
            for task_result in task_execution.get_task_results():
                if failed:
                    task_result.report_status_change(reporter, CANCELLED, "an earlier part failed")
                    continue
                task_result.report_status_change(reporter, RUNNING)
                part = task_result.get_serializable_task_object()
                if fail == (city, part):
                    task_result.report_status_change(reporter, FAILED, f"boom: {city} {part}")
                    failed = True
                else:
                    task_result.report_status_change(reporter, DONE)
    return execution, reporter


def log_lines(path: Path) -> list[bytes]:
    """The lines of a log file, without their newlines."""
    data = path.read_bytes()
    return data[:-1].split(b"\n") if data else []


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def write_slowly(path: str, go: str, run_id: str, pause: float, fail: bool) -> None:
    """In another process: once the file ``go`` exists, write a short run ``noise`` and
    then run ``run_id``, pausing after each batch. Gives up after 30 seconds."""
    deadline = time.monotonic() + 30
    while not Path(go).exists():
        if time.monotonic() > deadline:
            raise SystemExit("the test never said go")
        time.sleep(0.01)
    storage = EventLogPipelineResultsStorage(path, durability="none")
    drive_run(storage, "noise", fail=None, cities=("cairo",))
    drive_run(storage, run_id, fail=("lima", "part-2") if fail else None, pause=pause)
    storage.close()
