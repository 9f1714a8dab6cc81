"""What the event-log storage adds to the conformance suite: the events it writes, replay,
several storages on one log, and refusals that write nothing."""

from __future__ import annotations

import math
import os
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines_events.errors import EventTooLargeError, InvalidValueError, ObjectNotFoundError
from pipelines_events.events import (
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    TASK_EXECUTION,
    TASK_RESULT,
    AnyEvent,
    FieldSet,
    ObjectCreated,
    RunRemoved,
)
from pipelines_events.log import read_events
from pipelines_events.log.chain import decode_event
from pipelines_events.results.base import PipelineExecution, PipelineStorageObject
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing import (
    ExamplePipeline,
    ExampleReporter,
    ExampleRunner,
    ExampleTask,
    describe_storage,
)

RUNNING = PipelineTaskStatus.RUNNING
DONE = PipelineTaskStatus.DONE
T0 = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "log.jsonl"


@pytest.fixture
def storage(path: Path) -> Iterator[EventLogPipelineResultsStorage]:
    storage = EventLogPipelineResultsStorage(path, durability="none")
    yield storage
    storage.close()


def pipeline(pipeline_id: str = "tests.Example", items: int = 2) -> ExamplePipeline:
    return ExamplePipeline(
        pipeline_id,
        [ExampleTask("first", config={"n": 1}), ExampleTask("second", objects=range(items))],
        objects=["x", "y"],
    )


def build(
    storage: EventLogPipelineResultsStorage,
    run_id: str = "run-1",
    example: ExamplePipeline | None = None,
    input_data: Any = None,
    build_all: bool = True,
) -> PipelineExecution:
    return storage.build_pipeline_execution(
        example or pipeline(),
        run_id,
        ExampleRunner(),
        ExampleReporter(),
        {"rows": [1, 2]} if input_data is None else input_data,
        build_all,
    )


def objects(execution: PipelineExecution) -> list[PipelineStorageObject]:
    found: list[PipelineStorageObject] = [execution]
    for result in execution.get_pipeline_results():
        found.append(result)
        for task_execution in result.get_task_executions():
            found.append(task_execution)
            found.extend(task_execution.get_task_results())
    return found


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def new_events(path: Path, before: int) -> list[AnyEvent]:
    """The events of the lines after the first ``before`` lines."""
    return [decode_event(line) for line in lines(path)[before:]]


# -- the events each call writes --------------------------------------------------------


def test_every_set_call_appends_one_field_set_event(
    storage: EventLogPipelineResultsStorage, path: Path
) -> None:
    calls: list[tuple[str, Any]] = [
        ("colour", "blue"),
        ("payload", {"a": [1, 2.5, None]}),
        ("status", RUNNING),
        ("started", T0),
        ("completed", T0 + timedelta(seconds=1)),
        ("message", "hello"),
        ("colour", "red"),
    ]
    for obj in objects(build(storage)):
        for field, value in calls:
            count = len(lines(path))
            getattr(obj, f"set_{field}")(value)
            (event,) = new_events(path, count)
            assert type(event) is FieldSet
            assert (event.kind, event.id, event.run_id) == (obj.kind, obj.get_id(), "run-1")
            assert event.field == field
            assert event.more == 0
            assert event.seq == count + 1
            assert getattr(obj, f"get_{field}")() == value


def test_set_events_tag_datetimes_and_statuses(
    storage: EventLogPipelineResultsStorage, path: Path
) -> None:
    execution = build(storage)
    count = len(lines(path))
    execution.set_started(T0)
    execution.set_status(DONE)
    execution.set_when(T0)
    execution.set_plain("2026-11-05T12:00:00+00:00")
    started, status, when, plain = new_events(path, count)
    assert isinstance(started, FieldSet) and isinstance(status, FieldSet)
    assert isinstance(when, FieldSet) and isinstance(plain, FieldSet)
    assert (started.value, started.vtype) == ("2026-11-05T12:00:00+00:00", "datetime")
    assert (status.value, status.vtype) == ("DONE", "status")
    assert when.vtype == "datetime"
    assert (plain.value, plain.vtype) == ("2026-11-05T12:00:00+00:00", None)
    reopened = EventLogPipelineResultsStorage(path)
    found = reopened.get_pipeline_execution("run-1")
    assert found is not None
    assert found.get_when() == T0
    assert found.get_plain() == "2026-11-05T12:00:00+00:00"
    reopened.close()


def test_building_appends_one_batch_of_created_events(
    storage: EventLogPipelineResultsStorage, path: Path
) -> None:
    build(storage, "run-0", build_all=False)
    count = len(lines(path))
    assert count == 1
    execution = build(storage, "run-1")
    events = new_events(path, count)
    # 1 execution, 2 pipeline results, 4 task executions, 2 * (1 + 2) task results.
    assert len(events) == 1 + 2 + 4 + 6
    assert all(type(e) is ObjectCreated for e in events)
    assert [e.more for e in events] == list(range(len(events) - 1, -1, -1))
    assert [e.seq for e in events] == list(range(count + 1, count + 1 + len(events)))
    assert {e.run_id for e in events} == {"run-1"}
    assert len({e.ts for e in events}) == 1
    assert [e.id for e in events] == [o.get_id() for o in objects(execution)]
    kinds = [e.kind for e in events]
    assert kinds[:5] == [
        PIPELINE_EXECUTION,
        PIPELINE_RESULT,
        TASK_EXECUTION,
        TASK_RESULT,
        TASK_EXECUTION,
    ]
    created = {e.id: e for e in events if isinstance(e, ObjectCreated)}
    for obj in objects(execution):
        event = created[obj.get_id()]
        parent = obj.get_parent()
        assert event.parent_id == (None if parent is None else parent.get_id())
        assert event.attrs["status"] == "PENDING"
    first = created[execution.get_id()]
    assert first.attrs["input_data"] == {"rows": [1, 2]}
    assert first.attrs["runner"] == "pipelines_events.testing.ExampleRunner"


def test_a_status_change_is_one_batch(storage: EventLogPipelineResultsStorage, path: Path) -> None:
    execution = build(storage)
    task_result = objects(execution)[3]
    assert task_result.kind == TASK_RESULT

    def change(status: PipelineTaskStatus, message: str = "") -> list[tuple[str, Any, int]]:
        count = len(lines(path))
        task_result.report_status_change(None, status, message, propagate=False)
        events = new_events(path, count)
        assert all(isinstance(e, FieldSet) and e.id == task_result.get_id() for e in events)
        return [(e.field, e.value, e.more) for e in events if isinstance(e, FieldSet)]

    running = change(RUNNING, "go")
    assert [(f, m) for f, _, m in running] == [("status", 2), ("started", 1), ("message", 0)]
    assert running[0][1] == "RUNNING" and running[2][1] == "go"
    assert change(RUNNING, "again") == []
    done = change(DONE)
    assert [(f, m) for f, _, m in done] == [("status", 2), ("completed", 1), ("message", 0)]
    assert done[2][1] == ""
    assert change(PipelineTaskStatus.CANCELLED, "late") == []


def test_a_status_change_without_message_is_a_batch_of_two(
    storage: EventLogPipelineResultsStorage, path: Path
) -> None:
    execution = build(storage, example=ExamplePipeline("tests.One", [ExampleTask("only")]))
    task_result = objects(execution)[3]
    count = len(lines(path))
    task_result.report_status_change(None, RUNNING)
    events = new_events(path, count)
    # The task result and each of its three parents: status and started, in one batch each.
    assert [(e.id, getattr(e, "field", None), e.more) for e in events] == [
        (obj.get_id(), field, more)
        for obj in (task_result, *reversed(objects(execution)[:3]))
        for field, more in (("status", 1), ("started", 0))
    ]


# -- replay and several storages ------------------------------------------------------------


def busy_workload(storage: EventLogPipelineResultsStorage) -> None:
    """Builds, status changes, set_ calls of every kind of value, a cleanup."""
    input_data: dict[str, Any] = {"rows": [1, 2], "name": "ünïcødé"}
    one = build(storage, "run-1", input_data=input_data)
    input_data["rows"].append(3)  # the caller's later change is not part of the run
    two = build(storage, "run-2", pipeline("tests.Other", items=3))
    gone = build(storage, "run-gone", ExamplePipeline("tests.One", [ExampleTask("only")]))
    for obj in objects(gone)[3:]:
        obj.report_status_change(None, DONE)
    one_objects, two_objects = objects(one), objects(two)
    one_objects[3].report_status_change(None, RUNNING, "started ✓")
    one_objects[3].report_status_change(None, DONE)
    one_objects[5].report_status_change(None, RUNNING)
    one_objects[5].report_status_change(None, PipelineTaskStatus.RUNTIME_ERROR, "boom", False)
    two_objects[-1].report_status_change(None, PipelineTaskStatus.CANCELLED, "no", False)
    payload = [1, (2, 3), {"k": (None, 1.5)}]
    two_objects[1].set_payload(payload)
    payload.append("later")
    two_objects[2].set_when(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
    two_objects[0].set_status(RUNNING)
    assert storage.cleanup() == ["run-gone"]


def custom_fields(storage: EventLogPipelineResultsStorage) -> dict[str, Any]:
    result = storage.get_pipeline_results(run_id="run-2")[0]
    task_execution = storage.get_task_executions(run_id="run-2")[0]
    return {"payload": result.get_payload(), "when": task_execution.get_when()}


def test_reopening_the_log_gives_the_same_state(
    storage: EventLogPipelineResultsStorage, path: Path
) -> None:
    busy_workload(storage)
    written = describe_storage(storage)
    assert written["objects"]
    assert written["runs"] == ["run-1", "run-2"]
    reopened = EventLogPipelineResultsStorage(path)
    assert describe_storage(reopened) == written
    assert custom_fields(reopened) == custom_fields(storage)
    assert custom_fields(reopened)["payload"] == [1, [2, 3], {"k": [None, 1.5]}]
    execution = reopened.get_pipeline_execution("run-1")
    assert execution is not None
    assert execution.get_input_data() == {"rows": [1, 2], "name": "ünïcødé"}
    reopened.close()


def test_two_storages_on_one_log_agree(path: Path) -> None:
    first = EventLogPipelineResultsStorage(path)
    second = EventLogPipelineResultsStorage(path)
    execution = build(first)
    assert describe_storage(second) == describe_storage(first)

    task_result = second.get_task_results(run_id="run-1")[0]
    task_result.report_status_change(None, RUNNING, "from the second")
    assert describe_storage(first) == describe_storage(second)
    assert execution.get_status() is RUNNING
    assert execution.get_message() == "from the second"

    first_view = first.get_task_result(task_result.get_id())
    assert first_view is not None
    first_view.set_note("from the first")
    assert task_result.get_note() == "from the first"

    for obj in objects(execution)[3:]:
        obj.report_status_change(None, DONE)
    assert second.cleanup() == ["run-1"]
    assert first.get_pipeline_execution("run-1") is None
    assert describe_storage(first) == describe_storage(second)
    with pytest.raises(ObjectNotFoundError):
        first_view.set_note("too late")
    assert first.cleanup() == []
    first.close()
    second.close()


def test_a_status_change_is_checked_against_the_other_storages_writes(path: Path) -> None:
    first = EventLogPipelineResultsStorage(path)
    second = EventLogPipelineResultsStorage(path)
    execution = build(first, example=ExamplePipeline("tests.One", [ExampleTask("only")]))
    mine = objects(execution)[3]
    theirs = second.get_task_result(mine.get_id())
    assert theirs is not None
    assert theirs.report_status_change(None, DONE) is True
    count = len(lines(path))
    assert mine.report_status_change(None, RUNNING) is False
    assert len(lines(path)) == count
    assert mine.get_status() is DONE
    first.close()
    second.close()


# -- cleanup keeps the history --------------------------------------------------------------


def test_cleanup_appends_run_removed_and_the_history_stays(
    storage: EventLogPipelineResultsStorage, path: Path
) -> None:
    gone = build(storage, "run-gone")
    build(storage, "run-kept")
    for obj in objects(gone)[3:]:
        if obj.kind == TASK_RESULT:
            obj.report_status_change(None, DONE)
    history = path.read_bytes()
    assert storage.cleanup() == ["run-gone"]
    assert path.read_bytes().startswith(history)
    events = list(read_events(path))
    (removed,) = [e for e in events if isinstance(e, RunRemoved)]
    assert events[-1] == removed
    assert (removed.run_id, removed.kind, removed.id) == (
        "run-gone",
        PIPELINE_EXECUTION,
        gone.get_id(),
    )
    created = {e.id for e in events if isinstance(e, ObjectCreated) and e.run_id == "run-gone"}
    assert len(created) == 13
    statuses = [
        e.value
        for e in events
        if isinstance(e, FieldSet) and e.run_id == "run-gone" and e.field == "status"
    ]
    assert statuses.count("DONE") == 13
    count = len(lines(path))
    assert storage.cleanup() == []
    assert len(lines(path)) == count


# -- refusals write nothing ---------------------------------------------------------------


@pytest.fixture
def small(path: Path) -> Iterator[EventLogPipelineResultsStorage]:
    storage = EventLogPipelineResultsStorage(path, max_event_bytes=2048)
    yield storage
    storage.close()


def still_works(storage: EventLogPipelineResultsStorage, path: Path) -> None:
    """The storage takes writes after a refusal, and a replay agrees with it."""
    task_result = storage.get_task_results()[0]
    assert task_result.report_status_change(None, RUNNING, "after") is True
    task_result.set_note("ok")
    reopened = EventLogPipelineResultsStorage(path)
    assert describe_storage(reopened) == describe_storage(storage)
    reopened.close()


def test_invalid_values_write_nothing(small: EventLogPipelineResultsStorage, path: Path) -> None:
    task_result = objects(build(small))[3]
    data = path.read_bytes()
    with pytest.raises(InvalidValueError, match="'payload'"):
        task_result.set_payload({"x": math.nan})
    with pytest.raises(InvalidValueError, match="'started'"):
        task_result.set_started("yesterday")  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="'BOGUS' is not a status"):
        task_result.set_status("BOGUS")  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="'BOGUS' is not a status"):
        task_result.report_status_change(None, "BOGUS")
    with pytest.raises(InvalidValueError, match="identifies the object"):
        task_result.set_run_id("other")
    with pytest.raises(InvalidValueError, match="run-1"):
        build(small, "run-1")
    with pytest.raises(InvalidValueError, match="'input_data'"):
        build(small, "run-2", input_data={"s": {1}})
    assert path.read_bytes() == data
    still_works(small, path)


def test_writes_to_a_removed_run_write_nothing(
    small: EventLogPipelineResultsStorage, path: Path
) -> None:
    gone = build(small, "run-gone")
    build(small, "run-kept")
    objects_before_cleanup = objects(gone)
    for obj in objects_before_cleanup:
        if obj.kind == TASK_RESULT:
            obj.report_status_change(None, DONE)
    assert small.cleanup() == ["run-gone"]
    data = path.read_bytes()
    for obj in objects_before_cleanup:
        with pytest.raises(ObjectNotFoundError, match="removed by cleanup"):
            obj.set_note("x")
        with pytest.raises(ObjectNotFoundError):
            obj.set_status(RUNNING)
        with pytest.raises(ObjectNotFoundError):
            obj.report_status_change(None, PipelineTaskStatus.CANCELLED)
    assert path.read_bytes() == data
    still_works(small, path)


def test_an_event_over_max_event_bytes_writes_nothing(
    small: EventLogPipelineResultsStorage, path: Path
) -> None:
    execution = build(small)
    task_result = objects(execution)[3]
    data = path.read_bytes()
    with pytest.raises(EventTooLargeError, match="2048 bytes"):
        task_result.set_payload("x" * 4096)
    with pytest.raises(EventTooLargeError, match="'message'"):
        task_result.report_status_change(None, RUNNING, "y" * 4096)
    with pytest.raises(EventTooLargeError, match="nothing was written"):
        build(small, "run-2", input_data={"blob": "z" * 4096})
    assert path.read_bytes() == data
    assert task_result.get_status() is PipelineTaskStatus.PENDING
    assert task_result.get_started() is None
    assert execution.get_status() is PipelineTaskStatus.PENDING
    assert small.get_pipeline_execution("run-2") is None
    build(small, "run-2")
    still_works(small, path)


# -- the file -------------------------------------------------------------------------------


def test_the_log_file_is_private_by_default(path: Path) -> None:
    EventLogPipelineResultsStorage(path).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_mode_kwarg_sets_the_permissions(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    old = os.umask(0o022)
    try:
        EventLogPipelineResultsStorage(path, mode=0o640).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_missing_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "app" / "events.jsonl"
    storage = EventLogPipelineResultsStorage(path)
    build(storage)
    storage.close()
    assert path.is_file()
    assert len(list(read_events(path))) == 13


def test_opening_an_empty_log_gives_an_empty_storage(path: Path) -> None:
    storage = EventLogPipelineResultsStorage(path)
    assert path.read_bytes() == b""
    assert describe_storage(storage)["objects"] == {}
    storage.close()


def test_a_snapshot_write_removes_temporary_files_abandoned_by_dead_writers(
    tmp_path: Path,
) -> None:
    storage = EventLogPipelineResultsStorage(
        tmp_path / "log.jsonl", snapshot_every=1, log_options={"run_index": False}
    )
    abandoned = tmp_path / "log.jsonl.snapshot.dead01"
    in_progress = tmp_path / "log.jsonl.snapshot.busy02"
    unrelated = tmp_path / "log.jsonl.notes"
    for path in (abandoned, in_progress, unrelated):
        path.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(abandoned, (two_hours_ago, two_hours_ago))
    os.utime(unrelated, (two_hours_ago, two_hours_ago))
    storage.write_snapshot()
    storage.close()
    assert not abandoned.exists()
    assert in_progress.read_bytes() == b"partial"  # another writer's, maybe being written
    assert unrelated.read_bytes() == b"partial"
    assert storage.snapshot_path.exists()
