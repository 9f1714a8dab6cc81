"""State at a point of the log: ``view_at`` matches what the storage held at each moment."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from freezegun import freeze_time

from pipelines_events import audit
from pipelines_events.cli import main
from pipelines_events.cli.options import add_point_in_time_options, open_view, view_title
from pipelines_events.errors import InvalidValueError, LogOpenError, ObjectNotFoundError
from pipelines_events.events import parse_time
from pipelines_events.results.base import PipelineResultsStorage
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from tests.support.audit_support import (
    DONE,
    RUNNING,
    Snapshot,
    TinyPipeline,
    drive_run,
    fields_of,
    run_objects,
)


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, list[Snapshot]]:
    """A log with one run driven by hand, and the state after each of its batches."""
    path = tmp_path / "log.jsonl"
    with freeze_time("2026-11-05 12:00:00", tz_offset=0, auto_tick_seconds=1):
        storage = EventLogPipelineResultsStorage(path, durability="none")
        _, reporter = drive_run(storage)
        storage.close()
    return path, reporter.snapshots


def state_in(storage: EventLogPipelineResultsStorage, run_id: str = "run-1") -> dict[str, tuple]:
    execution = storage.get_pipeline_execution(run_id)
    assert execution is not None
    return {obj.get_id(): fields_of(obj) for obj in run_objects(execution)}


def test_view_at_each_recorded_seq_matches_the_live_state(
    recorded: tuple[Path, list[Snapshot]],
) -> None:
    path, snapshots = recorded
    assert len(snapshots) > 20
    assert len({s.seq for s in snapshots}) == len(snapshots)
    for snapshot in snapshots:
        view = audit.view_at(path, seq=snapshot.seq)
        assert view.seq == snapshot.seq
        assert state_in(view) == snapshot.objects, snapshot.seq


def test_view_as_of_each_recorded_time_matches_the_live_state(
    recorded: tuple[Path, list[Snapshot]],
) -> None:
    path, snapshots = recorded
    for snapshot in snapshots:
        moment = parse_time(snapshot.ts)
        view = audit.view_at(path, as_of=moment)
        assert view.seq == snapshot.seq
        assert view.time == moment
        assert state_in(view) == snapshot.objects, snapshot.ts
        # Half a second later nothing else had happened yet (the clock ticks by seconds).
        later = audit.view_at(path, as_of=moment + timedelta(milliseconds=500))
        assert later.seq == snapshot.seq


def test_a_seq_inside_a_batch_gives_the_state_after_that_batch(
    recorded: tuple[Path, list[Snapshot]],
) -> None:
    path, snapshots = recorded
    before, after = snapshots[3], snapshots[4]
    assert after.seq - before.seq >= 2  # a status change batch: status and its time
    view = audit.view_at(path, seq=before.seq + 1)
    assert view.requested_seq == before.seq + 1
    assert view.seq == after.seq
    assert state_in(view) == after.objects
    assert "the batch holding seq" in view_title("run-1", view)


def test_the_view_before_anything_and_before_the_run(
    recorded: tuple[Path, list[Snapshot]],
) -> None:
    path, snapshots = recorded
    empty = audit.view_at(path, seq=0)
    assert empty.seq == 0 and empty.time is None
    assert empty.get_pipeline_execution("run-1") is None
    assert empty.get_pipeline_executions() == []
    assert empty.get_pipeline_digest() == {}
    early = audit.view_at(path, as_of=datetime(2026, 11, 5, 11, 59, tzinfo=UTC))
    assert early.seq == 0
    whole = audit.view_at(path)
    assert whole.seq == snapshots[-1].seq
    assert state_in(whole) == snapshots[-1].objects


def test_the_view_answers_every_query_like_the_storage_did(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    storage = EventLogPipelineResultsStorage(path, durability="none")
    drive_run(storage, "run-1", fail=None)
    seq_after_first = storage.log.position.seq
    expected = {
        "digest": storage.get_pipeline_digest(),
        "executions": [e.get_id() for e in storage.get_pipeline_executions()],
        "by_pipeline": [
            e.get_id() for e in storage.get_pipeline_executions("tests.tiny.TinyPipeline")
        ],
        "results": [r.get_id() for r in storage.get_pipeline_results(run_id="run-1")],
        "task_executions": [t.get_id() for t in storage.get_task_executions(run_id="run-1")],
        "task_results": [t.get_id() for t in storage.get_task_results(run_id="run-1")],
    }
    drive_run(storage, "run-2")
    storage.close()

    view = audit.view_at(path, seq=seq_after_first)
    assert view.get_pipeline_digest() == expected["digest"]
    assert [e.get_id() for e in view.get_pipeline_executions()] == expected["executions"]
    assert [
        e.get_id() for e in view.get_pipeline_executions("tests.tiny.TinyPipeline")
    ] == expected["by_pipeline"]
    assert [r.get_id() for r in view.get_pipeline_results(run_id="run-1")] == expected["results"]
    assert [t.get_id() for t in view.get_task_executions(run_id="run-1")] == expected[
        "task_executions"
    ]
    assert [t.get_id() for t in view.get_task_results(run_id="run-1")] == expected["task_results"]
    assert view.get_pipeline_execution("run-2") is None
    # Objects behave like the storage's: relations, inherited fields, lookups by id.
    task_result = view.get_task_results(run_id="run-1")[0]
    assert view.get_task_result(task_result.get_id()) == task_result
    assert task_result.get_pipeline_task() == "extract"
    assert task_result.get_serializable_task_object() == "part-1"
    assert task_result.get_serializable_pipeline_object() == "oslo"
    assert task_result.get_input_data() == {"day": "2026-11-05"}
    assert task_result.get_status() is DONE
    assert task_result.get_task_execution().get_pipeline_result().get_pipeline_execution()
    # The whole log holds both runs.
    assert len(audit.view_at(path).get_pipeline_executions()) == 2


def test_writing_through_a_view_is_refused_and_writes_nothing(
    recorded: tuple[Path, list[Snapshot]],
) -> None:
    path, snapshots = recorded
    before = path.read_bytes()
    view = audit.view_at(path, seq=snapshots[0].seq)
    task_result = view.get_task_results(run_id="run-1")[0]
    with pytest.raises(audit.ReadOnlyStorageError, match=r"read-only view of .* at seq 13"):
        task_result.report_status_change(None, RUNNING)
    with pytest.raises(audit.ReadOnlyStorageError, match="cannot set 'status'"):
        task_result.set_status(DONE)
    with pytest.raises(audit.ReadOnlyStorageError, match="cannot set 'note'"):
        task_result.set_note("x")
    with pytest.raises(audit.ReadOnlyStorageError, match="cannot build run 'run-9'"):
        view.build_pipeline_execution(TinyPipeline(), "run-9", object(), object(), None)
    with pytest.raises(audit.ReadOnlyStorageError, match="cannot clean up"):
        view.cleanup()
    with pytest.raises(audit.ReadOnlyStorageError, match="cannot erase removed runs"):
        view.erase_removed()
    with pytest.raises(audit.ReadOnlyStorageError, match="cannot write a snapshot"):
        view.write_snapshot()
    with pytest.raises(audit.ReadOnlyStorageError), view.atomic():
        task_result.set_message("in a batch")
    assert task_result.get_status() is PipelineTaskStatus.PENDING
    assert path.read_bytes() == before


READ_ONLY_METHODS = {
    "close",
    "commit",
    "find_runs",
    "get_pipeline_digest",
    "get_pipeline_execution",
    "get_pipeline_executions",
    "get_pipeline_result",
    "get_pipeline_results",
    "get_task_execution",
    "get_task_executions",
    "get_task_result",
    "get_task_results",
    "log",
    "read_model",
    "readonly",
    "reads_are_held",
    "reads_held",
    "refresh",
    "results",
    "run_index",
    "snapshot_location",
    "snapshot_path",
}
WRITING_METHODS = {
    "atomic",
    "build_pipeline_execution",
    "cleanup",
    "erase_removed",
    "write_snapshot",
}


def test_every_storage_method_is_known_to_the_view() -> None:
    """A method added to the storage must be checked here: does it write? Then the view
    must refuse it (see StorageView)."""
    public = {name for name in dir(EventLogPipelineResultsStorage) if not name.startswith("_")}
    assert public == READ_ONLY_METHODS | WRITING_METHODS


POINT_IN_TIME = {"as_of", "describe", "location", "position", "requested_seq", "seq", "time"}


def test_the_view_shares_the_reads_not_the_storage_class() -> None:
    """The view is no event-log storage: it has the storage's public names through the
    read side both share, and defines each writing method itself, refusing it."""
    public = {name for name in dir(audit.StorageView) if not name.startswith("_")}
    assert public == READ_ONLY_METHODS | WRITING_METHODS | POINT_IN_TIME
    assert not issubclass(audit.StorageView, EventLogPipelineResultsStorage)
    assert issubclass(audit.StorageView, PipelineResultsStorage)
    assert sorted(WRITING_METHODS - set(vars(audit.StorageView))) == []


def test_bad_points_are_refused(recorded: tuple[Path, list[Snapshot]], tmp_path: Path) -> None:
    path, snapshots = recorded
    head = snapshots[-1].seq
    with pytest.raises(
        InvalidValueError, match=f"there is no seq {head + 1}: .* ends at seq {head}"
    ):
        audit.view_at(path, seq=head + 1)
    with pytest.raises(InvalidValueError, match="at least 0"):
        audit.view_at(path, seq=-1)
    with pytest.raises(InvalidValueError, match="not both"):
        audit.view_at(path, seq=1, as_of=datetime.now(UTC))
    with pytest.raises(InvalidValueError, match="aware datetime"):
        audit.view_at(path, as_of=datetime(2026, 11, 5, 12))
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(LogOpenError, match="no such log file"):
        audit.view_at(missing, seq=1)
    assert not missing.exists()


def test_run_state_gives_the_tree_with_context(recorded: tuple[Path, list[Snapshot]]) -> None:
    path, _ = recorded
    state = audit.run_state(audit.view_at(path), "run-1")
    assert state.kind == "pipeline_execution" and state.run_id == "run-1"
    assert state.status is PipelineTaskStatus.RUNTIME_ERROR
    assert [r.pipeline_object for r in state.children] == ["oslo", "lima"]
    extract = state.children[1].children[0]
    assert (extract.pipeline_task, extract.task_id) == ("extract", "tests.tiny.ExtractTask")
    assert [(t.task_object, t.status.name, t.message) for t in extract.children] == [
        ("part-1", "DONE", ""),
        ("part-2", "RUNTIME_ERROR", "boom: lima part-2"),
    ]
    with pytest.raises(ObjectNotFoundError, match="no run has the id 'nope'"):
        audit.run_state(audit.view_at(path), "nope")


# -- the options `show` takes -------------------------------------------------------------------


def show_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="show")
    parser.add_argument("--log", type=Path)
    add_point_in_time_options(parser)
    return parser


def test_open_view_from_the_show_options(recorded: tuple[Path, list[Snapshot]]) -> None:
    path, snapshots = recorded
    parser = show_parser()
    assert open_view(parser.parse_args(["--log", str(path)])) is None
    at = open_view(parser.parse_args(["--log", str(path), "--at-seq", str(snapshots[5].seq)]))
    assert at is not None and state_in(at) == snapshots[5].objects
    as_of = open_view(parser.parse_args(["--log", str(path), "--as-of", snapshots[5].ts]))
    assert as_of is not None and state_in(as_of) == snapshots[5].objects
    # A time without an offset is UTC.
    naive = snapshots[5].ts.replace("+00:00", "")
    same = open_view(parser.parse_args(["--log", str(path), "--as-of", naive]))
    assert same is not None and same.seq == snapshots[5].seq
    title = view_title("run-1", as_of)
    assert title.startswith(f"run run-1 as of seq {snapshots[5].seq}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--as-of", "yesterday"], "--as-of: 'yesterday' is not a time; give an ISO 8601 time"),
        (["--as-of", "2026-13-01"], "--as-of: '2026-13-01' is not a time"),
        (["--at-seq", "-3"], "--at-seq: '-3' is not a seq"),
        (["--at-seq", "ten"], "--at-seq: 'ten' is not a seq"),
    ],
)
def test_bad_show_options_are_refused(
    recorded: tuple[Path, list[Snapshot]], argv: list[str], message: str
) -> None:
    path, _ = recorded
    before = path.read_bytes()
    with pytest.raises(InvalidValueError) as info:
        open_view(show_parser().parse_args(["--log", str(path), *argv]))
    assert message in str(info.value)
    assert path.read_bytes() == before


def test_as_of_and_at_seq_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        show_parser().parse_args(["--as-of", "2026-11-05", "--at-seq", "3"])
    assert "not allowed with argument" in capsys.readouterr().err


# -- `show --as-of` / `--at-seq` on the command line ---------------------------------------------


def flatten(node: dict[str, Any]) -> dict[str, list[Any]]:
    """Every object of a `show --format json` tree: id -> [status, started, completed, message]."""
    out = {node["id"]: [node["status"], node["started"], node["completed"], node["message"]]}
    for child in node["children"]:
        out.update(flatten(child))
    return out


def as_json(objects: dict[str, tuple[Any, ...]]) -> dict[str, list[Any]]:
    """The snapshot's fields as `show --format json` writes them (real datetimes, not
    freezegun's)."""

    def real(value: Any) -> Any:
        return datetime.fromisoformat(value.isoformat()) if isinstance(value, datetime) else value

    plain = {key: [real(value) for value in fields] for key, fields in objects.items()}
    decoded: dict[str, list[Any]] = json.loads(msgspec.json.encode(plain))
    return decoded


def test_show_as_of_each_recorded_moment_matches_the_live_state(
    recorded: tuple[Path, list[Snapshot]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, snapshots = recorded
    for snapshot in snapshots:
        for option in (["--as-of", snapshot.ts], ["--at-seq", str(snapshot.seq)]):
            argv = ["show", "run-1", "--log", str(path), "--format", "json", *option]
            assert main(argv) == 0
            tree = json.loads(capsys.readouterr().out)
            assert flatten(tree) == as_json(snapshot.objects), option


def test_show_at_a_seq_draws_the_tree_under_its_point(
    recorded: tuple[Path, list[Snapshot]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, snapshots = recorded
    assert main(["show", "run-1", "--log", str(path), "--at-seq", str(snapshots[0].seq)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"run run-1 as of seq {snapshots[0].seq}, 2026-11-05 12:00:00.000 UTC")
    assert "RUNNING" not in out and "PENDING" in out


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--as-of", "noon"], "--as-of: 'noon' is not a time; give an ISO 8601 time"),
        (["--at-seq", "x"], "--at-seq: 'x' is not a seq"),
        (["--at-seq", "9999"], "there is no seq 9999: the log ends at seq"),
    ],
)
def test_show_refuses_a_bad_point(
    recorded: tuple[Path, list[Snapshot]],
    capsys: pytest.CaptureFixture[str],
    option: list[str],
    message: str,
) -> None:
    path, _ = recorded
    before = path.read_bytes()
    assert main(["show", "run-1", "--log", str(path), *option]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert path.read_bytes() == before
    # Nothing beside the log but the run index its writer may have left (a cache).
    names = sorted(p.name for p in path.parent.iterdir() if p.name != f"{path.name}.index")
    assert names == [path.name]
