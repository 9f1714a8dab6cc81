"""Many writer processes on one log: every event once, seq contiguous, chain valid, and
the projections equal to the state the writers produced."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipelines_events.events import FieldSet
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from tests.reliability.common import (
    TinyPipeline,
    TinyTask,
    all_events,
    build,
    payload_counts,
    snapshot,
)
from tests.reliability.workers import own_run_writer, payload, shared_run_writer, status_histories

pytestmark = pytest.mark.slow  # the quick subset (-m 'not slow') leaves these out

WRITERS = 8
JOIN_TIMEOUT = 120.0


def work_pipeline(results: int) -> TinyPipeline:
    return TinyPipeline("work", objects=None, tasks=[TinyTask("work", list(range(results)))])


def run_processes(context: str, target: Any, args: list[tuple[Any, ...]]) -> float:
    """Start one process per ``args``, wait for all (bounded), fail if any failed."""
    ctx = multiprocessing.get_context(context)
    processes = [ctx.Process(target=target, args=a) for a in args]
    started = time.monotonic()
    for process in processes:
        process.start()
    deadline = started + JOIN_TIMEOUT
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    hung = [p for p in processes if p.is_alive()]
    for process in hung:
        process.kill()
        process.join(10)
    assert not hung, f"{len(hung)} writer processes did not finish in {JOIN_TIMEOUT} s"
    assert [p.exitcode for p in processes] == [0] * len(processes)
    return time.monotonic() - started


def check_runs(path: Path, writers: int, results: int, events_seen: int) -> None:
    """The log and a fresh storage agree with what the writers did."""
    events = all_events(path)  # verifies seq, batches and the hash chain
    assert len(events) == events_seen
    counts = payload_counts(events)
    expected = {payload(w, i) for w in range(writers) for i in range(results)}
    assert set(counts) == expected
    assert set(counts.values()) == {1}, "some payload was stored twice"
    messages = Counter(
        e.value
        for e in events
        if type(e) is FieldSet and e.field == "message" and e.kind == "task_result"
    )
    assert set(messages) == {f"done {value}" for value in expected}
    assert set(messages.values()) == {1}
    for object_id, history in status_histories(events).items():
        assert history in (["PENDING"], ["PENDING", "RUNNING", "DONE"]), (object_id, history)

    storage = EventLogPipelineResultsStorage(path)
    try:
        shared = storage.get_pipeline_execution("shared")
        assert shared is not None
        for writer in range(writers):
            execution = storage.get_pipeline_execution(f"run-{writer}")
            assert execution is not None
            assert execution.get_status().name == "DONE"
            for obj in [
                *storage.get_pipeline_results(run_id=f"run-{writer}"),
                *storage.get_task_executions(run_id=f"run-{writer}"),
            ]:
                assert obj.get_status().name == "DONE"
                assert obj.get_started() is not None and obj.get_completed() is not None
            task_results = storage.get_task_results(run_id=f"run-{writer}")
            assert len(task_results) == results
            for index, result in enumerate(task_results):
                assert result.get_status().name == "DONE"
                assert result.get_payload() == payload(writer, index)
                assert result.get_message() == f"done {payload(writer, index)}"
            assert getattr(shared, f"get_w{writer}")() == (results - 1) // 10 * 10
        item = storage.get_pipeline_digest()["work"]
        assert (item.total_runs, item.total_success, item.total_failure) == (writers, writers, 0)
    finally:
        storage.close()


def prepare(path: Path, durability: str, writers: int, results: int) -> None:
    storage = EventLogPipelineResultsStorage(path, durability=durability)  # type: ignore[arg-type]
    try:
        build(storage, "shared")
        for writer in range(writers):
            build(storage, f"run-{writer}", work_pipeline(results))
    finally:
        storage.close()


def expected_events(writers: int, results: int) -> int:
    created = 4 + writers * (3 + results)  # the shared run, then each writer's run
    per_result = 2 + 1 + 3  # RUNNING + started, the payload, DONE + completed + message
    ups = 3 * (2 + 3)  # the same status changes of the task execution, result, execution
    shared_sets = (results + 9) // 10
    return created + writers * (results * per_result + ups + shared_sets)


def test_eight_forked_writers_thousands_of_changes_each(log_path: Path) -> None:
    """Half the writers use the storage the parent opened before the fork (the log opens
    its own descriptor in the child), half open their own."""
    results = 1000  # 3 calls each (RUNNING, set_payload, DONE) + a shared set_ every 10th
    prepare(log_path, "none", WRITERS, results)
    parent = EventLogPipelineResultsStorage(log_path, durability="none")
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(WRITERS)
    args = [
        (str(log_path), "none", f"run-{w}", w, barrier, parent if w % 2 else None)
        for w in range(WRITERS)
    ]
    run_processes("fork", own_run_writer, args)
    # The parent's own storage catches up on everything the children wrote.
    assert len(parent.get_task_results()) == WRITERS * results + 1
    seen_by_parent = snapshot(parent)
    parent.close()
    fresh = EventLogPipelineResultsStorage(log_path)
    assert snapshot(fresh) == seen_by_parent
    fresh.close()
    check_runs(log_path, WRITERS, results, expected_events(WRITERS, results))


def test_eight_spawned_writers_with_fsync(log_path: Path) -> None:
    results = 30
    prepare(log_path, "fsync", WRITERS, results)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WRITERS)
    args = [(str(log_path), "fsync", f"run-{w}", w, barrier) for w in range(WRITERS)]
    run_processes("spawn", own_run_writer, args)
    check_runs(log_path, WRITERS, results, expected_events(WRITERS, results))


@pytest.mark.parametrize("executions", [1, 60])
def test_writers_propagating_to_the_same_parents(log_path: Path, executions: int) -> None:
    """Each task execution has one task result per writer, and every writer works on its
    own task result of each, in the same order: the writers take the same parents RUNNING
    and DONE at about the same time. Each parent still takes RUNNING and DONE exactly
    once, in that order (the status check is made again under the log's lock)."""
    pipeline = TinyPipeline(
        "shared", objects=list(range(executions)), tasks=[TinyTask("work", list(range(WRITERS)))]
    )
    storage = EventLogPipelineResultsStorage(log_path, durability="none")
    build(storage, "shared-parents", pipeline)
    storage.close()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(WRITERS)
    run_processes("fork", shared_run_writer, [(str(log_path), w, barrier) for w in range(WRITERS)])
    events = all_events(log_path)
    histories = status_histories(events)
    assert len(histories) == 1 + executions * (2 + WRITERS)
    for object_id, history in histories.items():
        assert history == ["PENDING", "RUNNING", "DONE"], (object_id, history)
    assert set(payload_counts(events).values()) == {1}
    storage = EventLogPipelineResultsStorage(log_path)
    try:
        execution = storage.get_pipeline_execution("shared-parents")
        assert execution is not None
        assert execution.get_status().name == "DONE"
        assert all(r.get_status().name == "DONE" for r in storage.get_task_results())
    finally:
        storage.close()
