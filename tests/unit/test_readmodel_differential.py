"""The lazy read model over the in-memory log answers every storage query as the full fold
over the file log does, given the same events (copied with their times, so the chains are
identical): each query on a storage just opened, so that the lazy one loads what it needs
for that query only."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipelines_events.events import START
from pipelines_events.log.base import EventLog
from pipelines_events.log.memory import MemoryEventLog, drop_memory_store
from pipelines_events.log.open import open_log
from pipelines_events.results.base import PipelineStorageObject
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.readmodel import FullReadModel, LazyReadModel
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing import (
    T0,
    ExamplePipeline,
    ExampleReporter,
    ExampleRunner,
    ExampleTask,
    describe_storage,
)

Storage = EventLogPipelineResultsStorage
_names = itertools.count()
DONE, FAILED, RUNNING = (
    PipelineTaskStatus.DONE,
    PipelineTaskStatus.RUNTIME_ERROR,
    PipelineTaskStatus.RUNNING,
)


def _pipeline(pipeline_id: str, items: int) -> ExamplePipeline:
    return ExamplePipeline(
        pipeline_id,
        [ExampleTask("first", config={"n": items}), ExampleTask("second", objects=range(items))],
        objects=["x", "y"],
    )


def _build(storage: Storage, run_id: str, pipeline_id: str, items: int = 2) -> Any:
    return storage.build_pipeline_execution(
        _pipeline(pipeline_id, items), run_id, ExampleRunner(), ExampleReporter(), {"r": run_id}
    )


def _finish(storage: Storage, run_id: str, status: PipelineTaskStatus, hours: int) -> None:
    execution = storage.get_pipeline_execution(run_id)
    assert execution is not None
    execution.set_started(T0 + timedelta(hours=hours))
    for result in execution.get_pipeline_results():
        for task_execution in result.get_task_executions():
            for task_result in task_execution.get_task_results():
                task_result.set_status(status)
                task_result.set_message(f"{run_id} {status.value}")
    execution.set_status(status)
    execution.set_completed(T0 + timedelta(hours=hours, minutes=5))


def _history(storage: Storage) -> None:
    """Runs of two pipelines, finished, failed, running, removed, and a removed run id
    built again."""
    _build(storage, "a", "p1")
    _build(storage, "b", "p2", 3)
    _finish(storage, "a", DONE, 1)
    _build(storage, "c", "p1", 1)
    _finish(storage, "b", FAILED, 2)
    _build(storage, "d", "p1")
    execution = storage.get_pipeline_execution("d")
    assert execution is not None
    execution.set_status(RUNNING)
    assert storage.cleanup(before=T0 + timedelta(hours=1, minutes=30)) == ["a"]
    _build(storage, "a", "p2")  # the removed run's id, used again
    _finish(storage, "c", DONE, 3)


def _copy(source: EventLog, into: EventLog) -> None:
    """Append the batches of ``source`` that ``into`` lacks, with their times."""
    for batch in source.read(source.cursor_at(into.head().seq)):
        into.append([msgspec.structs.replace(event, hash="") for event in batch.events])
    assert into.head().hash == source.head().hash


class Pair:
    """A file log and an in-memory log with the same events."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "log.jsonl"
        self.name = f"differential-{next(_names)}"
        self.url = f"memory://{self.name}"
        self.memory = MemoryEventLog(self.name)

    def sync(self) -> None:
        with open_log(self.path, readonly=True) as source:
            _copy(source, self.memory)

    def full(self, **options: Any) -> Storage:
        storage = Storage(self.path, snapshots=False, log_options={"run_index": False}, **options)
        assert isinstance(storage.read_model, FullReadModel)
        return storage

    def lazy(self, **options: Any) -> Storage:
        storage = Storage(self.url, **options)
        assert isinstance(storage.read_model, LazyReadModel)
        return storage

    def close(self) -> None:
        self.memory.close()
        drop_memory_store(self.name)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    pair = Pair(tmp_path)
    writer = pair.full()
    _history(writer)
    writer.close()
    pair.sync()
    yield pair
    pair.close()


def _object(obj: PipelineStorageObject | None) -> Any:
    if obj is None:
        return None
    parent = obj.get_parent()
    return {
        "id": obj.get_id(),
        "kind": obj.kind,
        "run_id": obj.get_run_id(),
        "pipeline_id": obj.get_pipeline_id(),
        "status": obj.get_status(),
        "message": obj.get_message(),
        "started": obj.get_started(),
        "completed": obj.get_completed(),
        "parent": None if parent is None else parent.get_id(),
        "children": [child.get_id() for child in obj.get_children()],
    }


def _ids(storage: Storage, kind: str) -> list[str]:
    """Every id of ``kind`` (read from the storage over the file log, once)."""
    queries: dict[str, Callable[[], list[Any]]] = {
        "pipeline_result": storage.get_pipeline_results,
        "task_execution": storage.get_task_executions,
        "task_result": storage.get_task_results,
    }
    return [obj.get_id() for obj in queries[kind]()]


QUERIES: dict[str, Callable[[Storage, dict[str, list[str]]], Any]] = {
    "describe": lambda s, ids: describe_storage(s),
    "digest": lambda s, ids: s.get_pipeline_digest(),
    "executions": lambda s, ids: [_object(e) for e in s.get_pipeline_executions()],
    "executions of p1": lambda s, ids: [_object(e) for e in s.get_pipeline_executions("p1")],
    "executions of p2": lambda s, ids: [_object(e) for e in s.get_pipeline_executions("p2")],
    "executions of nope": lambda s, ids: s.get_pipeline_executions("nope"),
    "each execution": lambda s, ids: [
        _object(s.get_pipeline_execution(run)) for run in ("d", "a", "b", "c", "zz")
    ],
    "results of run b": lambda s, ids: [_object(r) for r in s.get_pipeline_results(run_id="b")],
    "results of p2": lambda s, ids: [_object(r) for r in s.get_pipeline_results(pipeline_id="p2")],
    "task executions of a result": lambda s, ids: [
        _object(t) for t in s.get_task_executions(pipeline_result_id=ids["pipeline_result"][-1])
    ],
    "task results of a task execution": lambda s, ids: [
        _object(t) for t in s.get_task_results(task_execution_id=ids["task_execution"][3])
    ],
    "task results of run c": lambda s, ids: [_object(t) for t in s.get_task_results(run_id="c")],
    "one task result": lambda s, ids: _object(s.get_task_result(ids["task_result"][-1])),
    "its execution first": lambda s, ids: (
        _object(s.get_task_result(ids["task_result"][0])),
        _object(s.get_task_execution(ids["task_execution"][0])),
        _object(s.get_pipeline_result(ids["pipeline_result"][0])),
    ),
    "a result id asked as a task result": lambda s, ids: s.get_task_result(
        ids["pipeline_result"][0]
    ),
}


EMPTY = frozenset({"executions of nope", "a result id asked as a task result"})


@pytest.mark.parametrize("query", list(QUERIES))
def test_a_query_on_a_fresh_storage_answers_the_same(pair: Pair, query: str) -> None:
    full = pair.full(readonly=True)
    ids = {kind: _ids(full, kind) for kind in ("pipeline_result", "task_execution", "task_result")}
    full.close()
    full, lazy = pair.full(readonly=True), pair.lazy(readonly=True)
    try:
        expected = QUERIES[query](full, ids)
        assert QUERIES[query](lazy, ids) == expected
        assert expected not in (None, []) or query in EMPTY
    finally:
        full.close()
        lazy.close()


def test_a_reader_sees_what_another_handle_appended(pair: Pair) -> None:
    full, lazy = pair.full(readonly=True), pair.lazy(readonly=True)
    try:
        assert _object(lazy.get_pipeline_execution("d")) == _object(
            full.get_pipeline_execution("d")
        )
        assert isinstance(lazy.read_model, LazyReadModel)
        assert lazy.read_model.loaded_runs == {"d"}
        writer = pair.full()
        _finish(writer, "d", DONE, 4)  # a run the lazy reader loaded
        _finish(writer, "a", FAILED, 5)  # one it did not
        _build(writer, "e", "p2")  # a new one
        assert writer.cleanup(before=T0 + timedelta(hours=2, minutes=30)) == ["b"]
        writer.close()
        pair.sync()
        for query in ("each execution", "digest", "describe"):
            assert QUERIES[query](lazy, {}) == QUERIES[query](full, {}), query
    finally:
        full.close()
        lazy.close()


def test_cleanup_removes_the_same_runs(pair: Pair, tmp_path: Path) -> None:
    copy = tmp_path / "copy.jsonl"
    shutil.copy(pair.path, copy)
    full = Storage(copy, snapshots=False)
    lazy = pair.lazy()
    try:
        before = T0 + timedelta(hours=4)
        removed = full.cleanup(before=before)
        assert removed and lazy.cleanup(before=before) == removed
        assert describe_storage(lazy) == describe_storage(full)
        assert full.log.head().seq == lazy.log.head().seq != START.seq
    finally:
        full.close()
        lazy.close()
