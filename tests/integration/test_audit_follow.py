"""Follow: status changes printed as another process appends them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines_events import audit
from pipelines_events.cli import main
from pipelines_events.errors import InvalidValueError, LogOpenError
from pipelines_events.log import JsonlEventLog
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from tests.support.audit_support import drive_run

ROOT = str(Path(__file__).resolve().parents[2])
WAIT = 30.0
"""Seconds before a test gives up on the other process: no test can hang."""


class Writer:
    """A second process that writes run ``noise`` then ``run_id`` once told to go."""

    def __init__(self, path: Path, run_id: str, *, fail: bool, pause: float = 0.04) -> None:
        self.go = path.parent / "go"
        code = (
            f"import sys; sys.path.insert(0, {ROOT!r}); "
            "from tests.support.audit_support import write_slowly; "
            f"write_slowly({str(path)!r}, {str(self.go)!r}, {run_id!r}, {pause!r}, {fail!r})"
        )
        self.process = subprocess.Popen([sys.executable, "-c", code])

    def start(self) -> None:
        self.go.touch()

    def running(self) -> bool:
        return self.process.poll() is None

    def finish(self) -> None:
        try:
            assert self.process.wait(timeout=WAIT) == 0
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def empty_log(tmp_path: Path) -> Path:
    path = tmp_path / "log.jsonl"
    JsonlEventLog(path).close()
    return path


@pytest.fixture
def writer_factory(empty_log: Path) -> Iterator[list[Writer]]:
    writers: list[Writer] = []
    yield writers
    for writer in writers:
        if writer.process.poll() is None:
            writer.process.kill()
            writer.process.wait()


def status_history(path: Path, run_id: str) -> list[audit.AuditChange]:
    return audit.history(path, run_id, field="status")


def test_follow_sees_changes_while_another_process_writes(
    empty_log: Path, writer_factory: list[Writer]
) -> None:
    writer = Writer(empty_log, "run-1", fail=True)
    writer_factory.append(writer)
    follower = audit.Follower(empty_log, "run-1", until_done=True, timeout=WAIT, poll_interval=0.05)
    writer.start()
    seen: list[audit.AuditChange] = []
    while_writing: list[bool] = []
    for change in follower:
        seen.append(change)
        while_writing.append(writer.running())
    writer.finish()

    assert not follower.timed_out
    assert follower.status is PipelineTaskStatus.RUNTIME_ERROR
    assert any(while_writing), "every change was read after the writer had finished"
    assert {c.run_id for c in seen} == {"run-1"}  # the other run is left out
    # Every status change, in order, up to the execution's final status.
    expected = status_history(empty_log, "run-1")
    assert seen == expected[: len(seen)]
    first, last = seen[0], seen[-1]
    assert (first.kind, first.action, first.new) == (
        "pipeline_execution",
        "created",
        PipelineTaskStatus.PENDING,
    )
    assert (last.kind, last.new, last.message) == (
        "pipeline_execution",
        PipelineTaskStatus.RUNTIME_ERROR,
        "boom: lima part-2",
    )
    assert len(seen) == len(expected)  # the execution ends last, once every object has


def test_follow_command_until_done_against_a_writer(
    empty_log: Path, writer_factory: list[Writer], capsys: pytest.CaptureFixture[str]
) -> None:
    writer = Writer(empty_log, "run-1", fail=False, pause=0.02)
    writer_factory.append(writer)
    writer.start()
    argv = ["follow", "run-1", "--until-done", "--timeout", str(WAIT), "--log", str(empty_log)]
    assert main([*argv, "--format", "jsonl"]) == 0
    writer.finish()
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert records, "nothing was printed"
    assert {r["run_id"] for r in records} == {"run-1"}
    assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)
    assert (records[-1]["kind"], records[-1]["new"]) == ("pipeline_execution", "DONE")
    assert "run run-1 finished: DONE" in captured.err


def test_follow_from_a_seq_prints_what_is_logged_already(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log.jsonl"
    storage = EventLogPipelineResultsStorage(path, durability="none")
    drive_run(storage, "run-1")
    storage.cleanup()
    storage.close()
    everything = [*status_history(path, "run-1"), audit.history(path, "run-1")[-1]]
    assert everything[-1].action == "removed"

    follower = audit.Follower(path, "run-1", from_seq=1, until_done=True, timeout=WAIT)
    started = time.monotonic()
    assert list(follower) == everything
    assert time.monotonic() - started < 5
    assert follower.status is PipelineTaskStatus.RUNTIME_ERROR

    middle = everything[len(everything) // 2].seq
    later = list(audit.Follower(path, from_seq=middle, timeout=0.2))
    assert later == [c for c in everything if c.seq >= middle]
    # Without --from-seq only new changes are printed: a finished run ends at once.
    assert list(audit.Follower(path, "run-1", until_done=True, timeout=WAIT)) == []

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["follow", "run-1", "--from-seq", "1", "--until-done", "--log", str(path)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == len(everything)
    assert "status: RUNNING → RUNTIME_ERROR" in captured.out
    assert "«boom: lima part-2»" in captured.out
    assert lines[-1].endswith("run removed")
    assert "run run-1 finished: RUNTIME_ERROR" in captured.err


def test_follow_gives_up_after_the_timeout(
    empty_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    follower = audit.Follower(empty_log, "run-9", until_done=True, timeout=0.3)
    started = time.monotonic()
    assert list(follower) == []
    assert 0.25 < time.monotonic() - started < 5
    assert follower.timed_out and follower.status is None

    argv = ["follow", "run-9", "--until-done", "--timeout", "0.2", "--log", str(empty_log)]
    assert main(argv) == 124
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "timed out after 0.2 s; run run-9 is not started yet" in captured.err
    assert main(["follow", "--timeout", "0.1", "--log", str(empty_log), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--until-done"], "--until-done needs the RUN_ID of the run to wait for"),
        (["--from-seq", "abc"], "--from-seq: 'abc' is not a seq"),
        (["--timeout=-1"], "--timeout: '-1' is not a number of at least 0"),
        (["--timeout", "soon"], "--timeout: 'soon' is not a number of at least 0"),
    ],
)
def test_follow_command_refuses_bad_input(
    empty_log: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["follow", *argv, "--log", str(empty_log)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert empty_log.read_bytes() == b""


def test_follow_on_a_missing_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.jsonl"
    assert main(["follow", "--timeout", "0.1", "--log", str(missing)]) == 2
    assert f"{missing}: no such log file" in capsys.readouterr().err
    assert not missing.exists()
    with pytest.raises(LogOpenError):
        audit.Follower(missing)
    with pytest.raises(InvalidValueError, match="until_done needs the run id"):
        audit.Follower(tmp_path, until_done=True)
    assert not missing.exists()
