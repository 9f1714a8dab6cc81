"""Export a run as a log of its own, replay it step by step, import it into another log."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from freezegun import freeze_time

from pipelines_events import audit
from pipelines_events.cli import main
from pipelines_events.conf import override_settings
from pipelines_events.demo import DemoPipeline
from pipelines_events.errors import InvalidValueError, LogOpenError, ObjectNotFoundError
from pipelines_events.events import GENESIS_HASH, AnyEvent
from pipelines_events.log import read_events
from pipelines_events.log.chain import decode_event, encode_event, seal
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.helpers import reset_storage_object
from pipelines_events.status import PipelineTaskStatus
from tests.support.audit_support import drive_run, log_lines, write_lines

START = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
STORAGE = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"


def shown(capsys: pytest.CaptureFixture[str], path: Path, run_id: str) -> str:
    """What ``pipelines-events show RUN_ID --log PATH`` prints."""
    capsys.readouterr()
    assert main(["show", run_id, "--log", str(path)]) == 0
    out = capsys.readouterr().out
    assert run_id in out
    return out


def state(path: Path, run_id: str) -> audit.ObjectState:
    storage = EventLogPipelineResultsStorage(path)
    try:
        return audit.run_state(storage, run_id)
    finally:
        storage.close()


def content(event: AnyEvent) -> AnyEvent:
    """What an event says, without where it sits in its log."""
    return msgspec.structs.replace(event, v=0, seq=0, more=0, hash="")


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    """run-1 and run-2 interleaved: run-2 is built while run-1 is half done."""
    path = tmp_path / "log.jsonl"
    with freeze_time(START, auto_tick_seconds=1):
        storage = EventLogPipelineResultsStorage(path, durability="none")
        drive_run(storage, "run-0", fail=None, cities=("oslo",))
        drive_run(storage, "run-1")
        drive_run(storage, "run-2", fail=None)
        storage.close()
    return path


@pytest.fixture
def demo_log(tmp_path: Path) -> Iterator[Path]:
    """The bundled demo pipeline, run once through the configured storage."""
    path = tmp_path / "demo.jsonl"
    with override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=(STORAGE, {"path": str(path)})):
        reset_storage_object()
        try:
            DemoPipeline().start("demo-1")
        finally:
            reset_storage_object()
    yield path


# -- export -------------------------------------------------------------------------------------


def test_an_exported_run_is_a_log_of_its_own(two_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "run-1.jsonl"
    summary = audit.export(two_runs, "run-1", out)
    exported = list(read_events(out))
    original = [e for e in read_events(two_runs) if e.run_id == "run-1"]
    assert [e.seq for e in exported] == list(range(1, len(original) + 1))
    assert [content(e) for e in exported] == [content(e) for e in original]
    assert exported[0].ts == original[0].ts  # times are kept
    report = audit.verify(out)
    assert report.ok and report.runs == 1 and report.events == len(original)
    assert (summary.events, summary.head_seq, summary.head_hash) == (
        len(original),
        report.head_seq,
        report.head_hash,
    )
    assert summary.batches == report.batches
    assert state(out, "run-1") == state(two_runs, "run-1")


def test_export_keeps_batches_whole_and_drops_other_runs_events(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    storage = EventLogPipelineResultsStorage(path, durability="none")
    drive_run(storage, "run-1", fail=None, cities=("oslo",))
    drive_run(storage, "run-2", cities=("lima",))
    assert storage.cleanup() == ["run-1", "run-2"]  # one batch removes both runs
    storage.close()

    def batches(path: Path) -> list[list[AnyEvent]]:
        return [batch for batch, _ in audit.iter_batches(path)]

    mixed = batches(path)[-1]
    assert [e.run_id for e in mixed] == ["run-1", "run-2"]
    out = tmp_path / "run-2.jsonl"
    audit.export(path, "run-2", out)
    expected = [[content(e) for e in b if e.run_id == "run-2"] for b in batches(path)]
    assert [[content(e) for e in b] for b in batches(out)] == [b for b in expected if b]
    last = batches(out)[-1]
    assert [(e.run_id, e.more, type(e).__name__) for e in last] == [("run-2", 0, "RunRemoved")]
    assert audit.verify(out).ok


def test_export_refuses_an_existing_file_unless_forced(
    two_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run-1.jsonl"
    out.write_text("keep me\n")
    with pytest.raises(audit.OutputExistsError, match="the file exists and was left as it is"):
        audit.export(two_runs, "run-1", out)
    assert out.read_text() == "keep me\n"
    assert main(["export", "run-1", "-o", str(out), "--log", str(two_runs)]) == 2
    err = capsys.readouterr().err
    assert f"pipelines-events: error: {out}: the file exists" in err and "--force" in err
    assert out.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "log.jsonl",
        "log.jsonl.index",  # the run index the writer of the log left
        "run-1.jsonl",
    ]

    assert main(["export", "run-1", "-o", str(out), "--log", str(two_runs), "--force"]) == 0
    assert capsys.readouterr().out.startswith("exported run run-1: ")
    assert audit.verify(out).ok
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "log.jsonl",
        "log.jsonl.index",  # the run index the writer of the log left
        "run-1.jsonl",
    ]


@pytest.mark.parametrize(
    ("run_id", "log", "output", "message"),
    [
        ("run-9", "log.jsonl", "out.jsonl", "no run has the id 'run-9'; nothing was written"),
        ("run-1", "missing.jsonl", "out.jsonl", "missing.jsonl: no such log file"),
        ("run-1", "log.jsonl", "nowhere/out.jsonl", "the directory"),
        ("run-1", "log.jsonl", ".", "is a directory"),
    ],
)
def test_export_refuses_bad_input_and_writes_nothing(
    two_runs: Path,
    capsys: pytest.CaptureFixture[str],
    run_id: str,
    log: str,
    output: str,
    message: str,
) -> None:
    directory = two_runs.parent
    before = two_runs.read_bytes()
    argv = ["export", run_id, "-o", str(directory / output), "--log", str(directory / log)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    # The run index its writer left; the refused export added nothing.
    assert sorted(p.name for p in directory.iterdir()) == ["log.jsonl", "log.jsonl.index"]
    assert two_runs.read_bytes() == before


def test_export_api_errors(two_runs: Path, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFoundError, match="no run has the id 'nope'"):
        audit.export(two_runs, "nope", tmp_path / "x.jsonl")
    with pytest.raises(LogOpenError, match="no such log file"):
        audit.export(tmp_path / "missing.jsonl", "run-1", tmp_path / "x.jsonl")
    with pytest.raises(InvalidValueError, match="give a run id"):
        audit.export(two_runs, "", tmp_path / "x.jsonl")
    with pytest.raises(InvalidValueError, match="cannot export onto the log being read"):
        audit.export(two_runs, "run-1", two_runs, force=True)
    assert not (tmp_path / "x.jsonl").exists()


# -- replay and import ---------------------------------------------------------------------------


def test_replaying_an_exported_demo_run_into_an_empty_log_gives_the_same_run(
    demo_log: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    exported = tmp_path / "demo-1.jsonl"
    into = tmp_path / "into.jsonl"
    assert main(["export", "demo-1", "-o", str(exported), "--log", str(demo_log)]) == 0
    capsys.readouterr()
    assert main(["replay", str(exported), "--into", str(into)]) == 0
    out = capsys.readouterr().out

    original = EventLogPipelineResultsStorage(demo_log)
    replayed = EventLogPipelineResultsStorage(into)
    assert audit.run_state(replayed, "demo-1") == audit.run_state(original, "demo-1")
    assert replayed.get_pipeline_digest() == original.get_pipeline_digest()
    statuses = {t.get_status() for t in replayed.get_task_results(run_id="demo-1")}
    assert statuses == {
        PipelineTaskStatus.DONE,
        PipelineTaskStatus.RUNTIME_ERROR,
        PipelineTaskStatus.CANCELLED,
    }
    original.close()
    replayed.close()
    # `show` draws the replayed run exactly as the original.
    assert shown(capsys, into, "demo-1") == shown(capsys, demo_log, "demo-1")

    # The replay printed each step, then the final state as `show` draws it, then what
    # it imported.
    events = len(log_lines(exported))
    assert out.startswith("step 1 · seq 1-")
    assert f"run demo-1: imported {events} events into {into}" in out
    final = out[out.index("final state") :]
    assert shown(capsys, demo_log, "demo-1").strip() in final
    assert audit.verify(into).ok


def test_importing_the_same_run_twice_adds_nothing(
    two_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported = tmp_path / "run-1.jsonl"
    into = tmp_path / "into.jsonl"
    audit.export(two_runs, "run-1", exported)
    first = audit.import_log(exported, into)
    assert [(o.run_id, o.action) for o in first] == [("run-1", "imported")]
    after_first = into.read_bytes()
    second = audit.import_log(exported, into)
    assert [(o.run_id, o.action, o.events) for o in second] == [("run-1", "already present", 0)]
    assert into.read_bytes() == after_first
    assert main(["replay", str(exported), "--into", str(into), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["imports"] == [
        {"run_id": "run-1", "action": "already present", "events": 0, "note": ""}
    ]
    assert into.read_bytes() == after_first
    # The whole log: run-1 is there already, run-0 and run-2 come in, in log order.
    outcomes = audit.import_log(two_runs, into)
    assert [(o.run_id, o.action) for o in outcomes] == [
        ("run-0", "imported"),
        ("run-1", "already present"),
        ("run-2", "imported"),
    ]
    for run_id in ("run-0", "run-1", "run-2"):
        assert state(into, run_id) == state(two_runs, run_id)
    assert audit.verify(into).ok


def test_a_different_run_with_the_same_id_is_refused(
    two_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported = tmp_path / "run-1.jsonl"
    audit.export(two_runs, "run-1", exported)
    into = tmp_path / "into.jsonl"
    other = EventLogPipelineResultsStorage(into, durability="none")
    drive_run(other, "run-1", fail=None)
    other.close()
    before = into.read_bytes()
    with pytest.raises(audit.ImportConflictError) as info:
        audit.import_log(exported, into)
    message = str(info.value)
    assert f"{into}: run 'run-1' already exists there with different events" in message
    assert "its event 1 differs (seq 1 in" in message and "nothing was imported" in message
    assert main(["replay", str(exported), "--into", str(into)]) == 2
    captured = capsys.readouterr()
    assert "already exists there with different events" in captured.err
    assert captured.out == ""
    assert into.read_bytes() == before


def test_a_run_whose_objects_exist_under_another_run_is_refused(
    two_runs: Path, tmp_path: Path
) -> None:
    exported = tmp_path / "run-1.jsonl"
    audit.export(two_runs, "run-1", exported)
    renamed = tmp_path / "renamed.jsonl"
    lines, prev = [], GENESIS_HASH
    for line in log_lines(exported):
        event = msgspec.structs.replace(decode_event(line), run_id="run-1b", hash="")
        sealed, prev = seal(encode_event(event), prev)
        lines.append(sealed[:-1])
    write_lines(renamed, lines)
    before = two_runs.read_bytes()
    with pytest.raises(audit.ImportConflictError, match="already exists there in run 'run-1'"):
        audit.import_log(renamed, two_runs)
    assert two_runs.read_bytes() == before


def test_a_run_imported_early_gets_the_rest_later(two_runs: Path, tmp_path: Path) -> None:
    exported = tmp_path / "run-1.jsonl"
    audit.export(two_runs, "run-1", exported)
    lines = log_lines(exported)
    ends = [i for i, line in enumerate(lines) if decode_event(line).more == 0]
    early = tmp_path / "early.jsonl"
    write_lines(early, lines[: ends[len(ends) // 2] + 1])
    into = tmp_path / "into.jsonl"
    assert [o.action for o in audit.import_log(early, into)] == ["imported"]
    have = len(log_lines(into))
    (outcome,) = audit.import_log(exported, into)
    assert (outcome.action, outcome.events) == ("extended", len(lines) - have)
    assert state(into, "run-1") == state(two_runs, "run-1")
    (again,) = audit.import_log(early, into)
    assert again.action == "already present"
    assert "also holds" in again.note


def test_replay_steps_are_the_batches_in_order(two_runs: Path) -> None:
    steps, final, outcomes = audit.replay(two_runs)
    batches = [batch for batch, _ in audit.iter_batches(two_runs)]
    assert [(s.first_seq, s.last_seq) for s in steps] == [(b[0].seq, b[-1].seq) for b in batches]
    assert [s.number for s in steps] == list(range(1, len(batches) + 1))
    assert outcomes == []
    assert sum(len(s.changes) for s in steps) == sum(len(b) for b in batches)
    assert final.seq == batches[-1][-1].seq
    assert audit.run_state(final, "run-1") == state(two_runs, "run-1")


def test_replay_waits_the_original_time_scaled(two_runs: Path) -> None:
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    player = audit.Replay(two_runs, speed=4, sleep=sleep, clock=lambda: clock[0])
    steps = list(player.steps())
    span = (steps[-1].time - steps[0].time).total_seconds()
    assert span > 10
    assert sum(waits) == pytest.approx(span / 4)
    gaps = [(b.time - a.time).total_seconds() / 4 for a, b in itertools.pairwise(steps)]
    assert waits == pytest.approx([g for g in gaps if g > 0])


def test_replay_command_with_a_real_clock_is_quick_at_high_speed(
    two_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(two_runs), "--speed", "1000", "--format", "jsonl"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["type"] for r in records} == {"step", "final"}
    finals = [r for r in records if r["type"] == "final"]
    assert [r["run_id"] for r in finals] == ["run-0", "run-1", "run-2"]
    assert finals[1]["status"] == "RUNTIME_ERROR"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--speed", "fast"], "--speed: 'fast' is not a number of at least 0"),
        (["--speed=-2"], "--speed: '-2' is not a number of at least 0"),
        (["--speed", "nan"], "--speed: 'nan' is not a number of at least 0"),
    ],
)
def test_replay_command_refuses_a_bad_speed(
    two_runs: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    into = tmp_path / "into.jsonl"
    assert main(["replay", str(two_runs), "--into", str(into), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not into.exists()
    with pytest.raises(InvalidValueError, match="speed: give a number of at least 0"):
        audit.Replay(two_runs, speed=-1)


def test_replay_command_on_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    into = tmp_path / "into.jsonl"
    assert main(["replay", str(missing), "--into", str(into)]) == 2
    assert f"{missing}: no such log file" in capsys.readouterr().err
    assert not missing.exists() and not into.exists()


def test_replay_command_defaults_to_the_log_option(
    two_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "--log", str(two_runs), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["steps"]) == len(list(audit.iter_batches(two_runs)))
    assert [r["run_id"] for r in data["final"]] == ["run-0", "run-1", "run-2"]


def test_an_import_interleaved_with_another_writes_each_event_once(
    two_runs: Path, tmp_path: Path
) -> None:
    exported = tmp_path / "run-1.jsonl"
    audit.export(two_runs, "run-1", exported)
    total = len(log_lines(exported))
    into = tmp_path / "into.jsonl"
    slow = audit.Replay(exported, into=into)
    steps = slow.steps()
    first = next(steps)  # the first batch is in `into`
    (fast,) = audit.import_log(exported, into)  # a second import runs to the end meanwhile
    assert (fast.action, fast.events) == ("extended", total - first.last_seq)
    rest = list(steps)  # the first import finds every later batch there already
    assert len(rest) == len(list(audit.iter_batches(exported))) - 1
    (outcome,) = slow.outcomes
    assert (outcome.action, outcome.events) == ("imported", first.last_seq)
    assert len(log_lines(into)) == total
    assert state(into, "run-1") == state(two_runs, "run-1")


def test_a_writer_changing_the_run_midway_stops_the_import_at_that_batch(
    two_runs: Path, tmp_path: Path
) -> None:
    exported = tmp_path / "run-1.jsonl"
    audit.export(two_runs, "run-1", exported)
    into = tmp_path / "into.jsonl"
    steps = audit.Replay(exported, into=into).steps()
    first = next(steps)
    storage = EventLogPipelineResultsStorage(into, durability="none")
    execution = storage.get_pipeline_execution("run-1")
    assert execution is not None
    execution.set_message("written by someone else")
    storage.close()
    before = into.read_bytes()
    with pytest.raises(audit.ImportConflictError) as info:
        next(steps)
    message = str(info.value)
    assert f"its event {first.last_seq + 1} differs" in message
    assert message.endswith(
        f"the import stopped there; the {first.last_seq} events it appended before, in "
        "whole batches, stay"
    )
    assert into.read_bytes() == before  # the first batch and the other writer's event
    assert audit.verify(into).ok
