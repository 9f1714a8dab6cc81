"""History: every change of a run or object, in order, with old and new values and context."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from freezegun import freeze_time

from pipelines_events import audit
from pipelines_events.cli import main
from pipelines_events.conf import override_settings
from pipelines_events.errors import InvalidValueError, LogOpenError, ObjectNotFoundError
from pipelines_events.events import (
    PIPELINE_EXECUTION,
    TASK_RESULT,
    FieldSet,
    ObjectCreated,
    encode_attrs,
    encode_value,
)
from pipelines_events.log import JsonlEventLog
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.helpers import reset_storage_object
from pipelines_events.status import PipelineTaskStatus
from tests.support.audit_support import drive_run

START = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    """A log holding run-1 (lima part-2 fails) then run-2 (all done), one second a read."""
    path = tmp_path / "log.jsonl"
    with freeze_time(START, auto_tick_seconds=1):
        storage = EventLogPipelineResultsStorage(path, durability="none")
        drive_run(storage, "run-1")
        drive_run(storage, "run-2", fail=None, cities=("oslo",))
        storage.close()
    return path


def failed_task_result(path: Path) -> str:
    view = audit.view_at(path)
    (failed,) = [
        t
        for t in view.get_task_results(run_id="run-1")
        if t.get_status() is PipelineTaskStatus.RUNTIME_ERROR
    ]
    return failed.get_id()


def test_the_history_of_a_run_lists_every_change_in_order(logged: Path) -> None:
    changes = audit.history(logged, "run-1")
    run_events = [e for e in audit.iter_batches(logged) for e in e[0] if e.run_id == "run-1"]
    assert [c.seq for c in changes] == [e.seq for e in run_events]
    assert {c.run_id for c in changes} == {"run-1"}
    first = changes[0]
    assert (first.action, first.kind, first.field, first.old) == (
        "created",
        PIPELINE_EXECUTION,
        None,
        None,
    )
    assert first.new["status"] is PipelineTaskStatus.PENDING
    assert first.new["input_data"] == {"day": "2026-11-05"}
    assert first.time == START

    (failure,) = [
        c
        for c in changes
        if c.kind == TASK_RESULT
        and c.field == "status"
        and c.new is PipelineTaskStatus.RUNTIME_ERROR
    ]
    assert failure.old is PipelineTaskStatus.RUNNING
    assert failure.message == "boom: lima part-2"
    assert (failure.pipeline_task, failure.task_id) == ("extract", "tests.tiny.ExtractTask")
    assert (failure.pipeline_object, failure.task_object) == ("lima", "part-2")
    # The completed time and the message are changes of their own, in the same batch.
    same_batch = [c for c in changes if c.time == failure.time and c.id == failure.id]
    assert [c.field for c in same_batch] == ["status", "completed", "message"]
    assert same_batch[2].new == "boom: lima part-2"
    # Status changes of a batch without a message carry none.
    running = [c for c in changes if c.field == "status" and c.new is PipelineTaskStatus.RUNNING]
    assert running and all(c.message is None for c in running)


def test_the_history_of_one_object_carries_its_context(logged: Path) -> None:
    object_id = failed_task_result(logged)
    changes = audit.history(logged, object_id)
    assert [(c.action, c.field) for c in changes] == [
        ("created", None),
        ("set", "status"),
        ("set", "started"),
        ("set", "status"),
        ("set", "completed"),
        ("set", "message"),
    ]
    assert [c.new for c in changes if c.field == "status"] == [
        PipelineTaskStatus.RUNNING,
        PipelineTaskStatus.RUNTIME_ERROR,
    ]
    assert {(c.pipeline_task, c.pipeline_object, c.task_object) for c in changes} == {
        ("extract", "lima", "part-2")
    }
    # The start of an id is enough when no other id starts that way.
    assert audit.history(logged, object_id[:8]) == changes


def test_filters(logged: Path) -> None:
    everything = audit.history(logged, "run-1")
    kinds = audit.history(logged, "run-1", kind=TASK_RESULT)
    assert kinds == [c for c in everything if c.kind == TASK_RESULT]

    statuses = audit.history(logged, "run-1", field="status")
    assert {c.field for c in statuses} == {"status"}
    created = [c for c in statuses if c.action == "created"]
    assert len(created) == 13  # every object: created with its first status
    assert all(c.new is PipelineTaskStatus.PENDING and c.old is None for c in created)

    failures = audit.history(logged, "run-1", status="RUNTIME_ERROR")
    assert [c.kind for c in failures] == [
        "task_result",
        "task_execution",
        "pipeline_result",
        "pipeline_execution",
    ]
    assert all(c.message == "boom: lima part-2" for c in failures)
    assert audit.history(logged, "run-1", status="cancelled", kind=TASK_RESULT)
    assert audit.history(logged, "run-1", status="DONE", field="message") == []

    middle = everything[len(everything) // 2].time
    since = audit.history(logged, "run-1", since=middle)
    until = audit.history(logged, "run-1", until=middle)
    assert since and until
    assert all(c.time >= middle for c in since) and all(c.time <= middle for c in until)
    assert len(since) + len(until) == len(everything) + sum(c.time == middle for c in everything)
    later = middle + timedelta(hours=1)
    assert audit.history(logged, "run-1", since=later) == []


def test_a_batch_holding_several_runs_keeps_each_message_with_its_own_run(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.jsonl"
    attrs, types = encode_attrs({"status": PipelineTaskStatus.PENDING})
    status, vtype = encode_value("status", PipelineTaskStatus.RUNNING)
    with JsonlEventLog(path) as log:
        for run in ("a", "b"):
            log.append(
                [
                    ObjectCreated(
                        run_id=run,
                        kind=PIPELINE_EXECUTION,
                        id=f"ex-{run}",
                        attrs=attrs,
                        types=types,
                    )
                ]
            )
        log.append(
            [
                FieldSet(
                    run_id="a",
                    kind=PIPELINE_EXECUTION,
                    id="ex-a",
                    field="status",
                    value=status,
                    vtype=vtype,
                ),
                FieldSet(
                    run_id="b", kind=PIPELINE_EXECUTION, id="ex-b", field="message", value="for b"
                ),
                FieldSet(
                    run_id="a", kind=PIPELINE_EXECUTION, id="ex-a", field="message", value="for a"
                ),
            ]
        )
    (change,) = audit.history(path, "a", field="status", since=datetime(2000, 1, 1, tzinfo=UTC))[1:]
    assert change.message == "for a"
    assert [c.new for c in audit.history(path, "b", field="message")] == ["for b"]


def test_an_ambiguous_id_start_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    attrs, types = encode_attrs({"status": PipelineTaskStatus.PENDING})
    with JsonlEventLog(path) as log:
        for suffix in ("1", "2"):
            log.append(
                [
                    ObjectCreated(
                        run_id=f"r{suffix}",
                        kind=PIPELINE_EXECUTION,
                        id=f"object-{suffix}",
                        attrs=attrs,
                        types=types,
                    )
                ]
            )
    with pytest.raises(
        InvalidValueError,
        match=r"'object-' is the beginning of 2 object ids \(object-1, object-2\)",
    ):
        audit.history(path, "object-")
    assert len(audit.history(path, "object-2")) == 1
    # Below six characters only whole ids match.
    with pytest.raises(ObjectNotFoundError):
        audit.history(path, "objec")


def test_a_removed_run_ends_with_its_removal(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    storage = EventLogPipelineResultsStorage(path, durability="none")
    drive_run(storage, "run-1")
    assert storage.cleanup() == ["run-1"]
    storage.close()
    last = audit.history(path, "run-1")[-1]
    assert (last.action, last.kind) == ("removed", PIPELINE_EXECUTION)


def test_bad_arguments_are_refused_and_nothing_is_written(logged: Path, tmp_path: Path) -> None:
    before = logged.read_bytes()
    with pytest.raises(ObjectNotFoundError, match="no run and no object has the id 'run-9'"):
        audit.history(logged, "run-9")
    with pytest.raises(InvalidValueError, match="'task' is not a kind of result object"):
        audit.history(logged, "run-1", kind="task")
    with pytest.raises(InvalidValueError, match="'FINE' is not a status; the statuses are"):
        audit.history(logged, "run-1", status="FINE")
    with pytest.raises(InvalidValueError, match="since: give an aware datetime"):
        audit.history(logged, "run-1", since=datetime(2026, 11, 5))
    with pytest.raises(InvalidValueError, match="give a run id or an object id"):
        audit.history(logged, "")
    assert logged.read_bytes() == before
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(LogOpenError, match="no such log file"):
        audit.history(missing, "run-1")
    assert not missing.exists()


# -- the command --------------------------------------------------------------------------------


def test_history_command_table(
    logged: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "240")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: stdout is a terminal, so a table
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["history", "run-1", "--log", str(logged), "--status", "RUNTIME_ERROR"]) == 0
    out = capsys.readouterr().out
    assert "history of run-1" in out
    assert "task result" in out and "extract · lima · part-2" in out
    assert "status: RUNNING → RUNTIME_ERROR" in out
    assert out.count("boom: lima part-2") == 4
    assert "2026-11-05 12:00:" in out


def test_history_command_json_and_jsonl_match_the_api(
    logged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = json.loads(msgspec.json.encode(audit.history(logged, "run-1", kind=TASK_RESULT)))
    assert (
        main(["history", "run-1", "--log", str(logged), "--kind", TASK_RESULT, "--format", "json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out) == expected
    assert (
        main(["history", "run-1", "--log", str(logged), "--kind", TASK_RESULT, "--format", "jsonl"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == expected
    failed = [c for c in expected if c["new"] == "RUNTIME_ERROR"]
    assert failed[0]["pipeline_task"] == "extract" and failed[0]["message"] == "boom: lima part-2"
    assert failed[0]["time"].endswith("Z")


def test_history_command_with_a_time_range(
    logged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["history", "run-1", "--log", str(logged), "--format", "json"]
    # A time without an offset is UTC.
    assert main([*argv, "--since", "2026-11-05T12:00:05", "--until", "2026-11-05T12:00:09Z"]) == 0
    shown = json.loads(capsys.readouterr().out)
    expected = audit.history(
        logged, "run-1", since=START + timedelta(seconds=5), until=START + timedelta(seconds=9)
    )
    assert [c["seq"] for c in shown] == [c.seq for c in expected]
    assert shown
    assert all("2026-11-05T12:00:05Z" <= c["time"] <= "2026-11-05T12:00:09Z" for c in shown)


def test_history_command_uses_the_configured_storage(
    logged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setting = (
        "pipelines_events.results.eventlog.EventLogPipelineResultsStorage",
        {"path": str(logged)},
    )
    with override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=setting):
        reset_storage_object()
        try:
            assert main(["history", "run-2", "--format", "jsonl", "--field", "status"]) == 0
        finally:
            reset_storage_object()
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(json.loads(line)["run_id"] == "run-2" for line in lines)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run-9"], "no run and no object has the id 'run-9'"),
        (["run-1", "--since", "last tuesday"], "--since: 'last tuesday' is not a time"),
        (["run-1", "--until", "2026-11-99"], "--until: '2026-11-99' is not a time"),
        (["run-1", "--kind", "job"], "'job' is not a kind of result object; the kinds are"),
        (["run-1", "--status", "OK"], "'OK' is not a status"),
    ],
)
def test_history_command_refuses_bad_input(
    logged: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    before = logged.read_bytes()
    assert main(["history", *argv, "--log", str(logged)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("pipelines-events: error: ")
    assert message in captured.err
    assert logged.read_bytes() == before


def test_history_command_on_a_missing_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    assert main(["history", "run-1", "--log", str(missing)]) == 2
    assert f"{missing}: no such log file" in capsys.readouterr().err
    assert not missing.exists()


def test_an_object_gets_its_context_from_ancestors_created_earlier(tmp_path: Path) -> None:
    """Objects created one batch at a time: the history of the last finds its ancestors."""
    path = tmp_path / "log.jsonl"
    chain = [
        ("pipeline_execution", "ex-1", None, {"pipeline_id": "p"}),
        ("pipeline_result", "pr-1", "ex-1", {"serializable_pipeline_object": {"city": "oslo"}}),
        ("task_execution", "te-1", "pr-1", {"pipeline_task": "load", "task_id": "t.Load"}),
        ("task_result", "tr-1", "te-1", {"serializable_task_object": 7}),
    ]
    with JsonlEventLog(path) as log:
        for kind, object_id, parent, extra in chain:
            attrs, types = encode_attrs({"status": PipelineTaskStatus.PENDING, **extra})
            log.append(
                [
                    ObjectCreated(
                        run_id="r",
                        kind=kind,
                        id=object_id,
                        parent_id=parent,
                        attrs=attrs,
                        types=types,
                    )
                ]
            )
            log.append([FieldSet(run_id="other", kind=kind, id="x", field="f", value=1)])
    (change,) = audit.history(path, "tr-1")
    assert (change.pipeline_task, change.task_id) == ("load", "t.Load")
    assert (change.pipeline_object, change.task_object) == ({"city": "oslo"}, 7)
    (result,) = audit.history(path, "pr-1")
    assert (result.pipeline_task, result.pipeline_object, result.task_object) == (
        None,
        {"city": "oslo"},
        None,
    )
