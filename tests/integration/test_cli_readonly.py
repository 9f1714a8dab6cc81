"""Reading commands do not write: the read-only storage, and every reading command run on
a log its user cannot write, with a torn tail, and on a configured log that is missing."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines_events.audit import ReadOnlyStorageError
from pipelines_events.cli import main
from pipelines_events.conf import STORAGE_SETTING, settings
from pipelines_events.errors import LogOpenError
from pipelines_events.results import helpers
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus as S
from tests.support.cli_pipelines import Letters

LETTERS = "tests.support.cli_pipelines.Letters"
EVENTLOG = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"
NO_INDEX = {"run_index": False}
"""A storage that folds the whole log and keeps a snapshot."""
TORN = b'{"type":"FieldSet","v":1,"seq":'
"""The start of an event a writer was killed while writing."""

_WITHOUT_OVERRIDE = """
import ctypes, os, sys
if os.geteuid() == 0:  # root drops CAP_DAC_OVERRIDE, so file modes bind it too
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(24, 1, 0, 0, 0) != 0:  # PR_CAPBSET_DROP, CAP_DAC_OVERRIDE
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE)")
os.execv(sys.argv[1], sys.argv[1:])
"""
"""Runs its arguments as a program that file permissions bind, even as root: the
capability leaves the bounding set, so the program exec'd does not get it back."""


@pytest.fixture(autouse=True)
def fresh_storage() -> Iterator[None]:
    helpers.reset_storage_object()
    yield
    helpers.reset_storage_object()


def files(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its bytes."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def record(log: Path, *runs: tuple[str, str]) -> None:
    """Record the runs ``(run id, input JSON)`` of :class:`Letters` in ``log``."""
    for run_id, input_json in runs:
        main(["run", LETTERS, "--run-id", run_id, "--input", input_json, "--log", str(log), "-q"])


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """A log with the runs ``ok`` and ``bad`` and a torn tail, in a directory of its own."""
    log = tmp_path / "logs" / "x.jsonl"
    record(log, ("ok", "{}"), ("bad", '{"fail_on": "b"}'))
    with log.open("ab") as out:
        out.write(TORN)
    return log


def as_reader(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``argv`` in a new process that file permissions bind, even when run as root."""
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_OVERRIDE, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "pipelines_events", *argv]


@pytest.fixture
def unwritable(recorded: Path) -> Iterator[Path]:
    """``recorded``, its file and directory made read-only (mode 0444 and 0555)."""
    recorded.chmod(0o444)
    recorded.parent.chmod(0o555)
    yield recorded
    recorded.parent.chmod(0o755)
    recorded.chmod(0o644)


def reading_commands(log: Path, out: Path) -> list[list[str]]:
    where = ["--log", str(log)]
    return [
        ["runs", *where],
        ["runs", *where, "--format", "json"],
        ["show", "ok", *where],
        ["show", "ok", *where, "--at-seq", "3"],
        ["history", "ok", *where],
        ["export", "ok", "-o", str(out / "ok.jsonl"), *where],
        ["verify", *where],
        ["head", *where],
        ["follow", *where, "--from-seq", "1", "--timeout", "0"],
    ]


# -- the read-only storage ------------------------------------------------------------------


def test_a_read_only_storage_refuses_every_write_and_writes_nothing(recorded: Path) -> None:
    before = files(recorded.parent)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no TornWriteRepaired: the tail is skipped, not cut
        storage = EventLogPipelineResultsStorage(recorded, readonly=True, snapshot_every=1)
    assert storage.readonly
    execution = storage.get_pipeline_execution("ok")
    assert execution is not None and execution.get_status() is S.DONE
    task_result = storage.get_task_results(run_id="ok")[0]

    where = f"the storage of {recorded} was opened read-only; nothing was written"
    execution_id = execution.get_id()
    refusals = [
        (lambda: execution.set_message("x"), f"set 'message' on pipeline_execution {execution_id}"),
        (lambda: task_result.set_status(S.RUNNING), "cannot set 'status' on task_result"),
        (lambda: execution.set_custom_note({"a": 1}), "cannot set 'custom_note'"),
        (lambda: storage.build_pipeline_execution(Letters(), "new", None, None, {}), "build run"),
        (storage.cleanup, "cannot clean up runs"),
        (storage.write_snapshot, "cannot write a snapshot"),
    ]
    for write, message in refusals:
        with pytest.raises(ReadOnlyStorageError, match="read-only") as caught:
            write()
        assert message in str(caught.value) and where in str(caught.value)
    with pytest.raises(ReadOnlyStorageError), storage.atomic():
        execution.set_message("x")
    storage.close()  # 30+ events past no snapshot, snapshot_every=1: still none written
    assert files(recorded.parent) == before


def test_a_read_only_storage_never_creates_its_log(tmp_path: Path) -> None:
    missing = tmp_path / "deep" / "er" / "x.jsonl"
    with pytest.raises(LogOpenError, match=f"{missing}: no such log file"):
        EventLogPipelineResultsStorage(missing, readonly=True)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="readonly must be True or False, not 'yes'"):
        EventLogPipelineResultsStorage(missing, readonly="yes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_storage_reads_the_snapshot_and_follows_the_log(recorded: Path) -> None:
    with pytest.warns(UserWarning, match="removed 31 bytes"):  # a writer cuts the torn tail
        EventLogPipelineResultsStorage(recorded, snapshot_every=1, log_options=NO_INDEX).close()
    snapshot = recorded.with_name("x.jsonl.snapshot")
    assert snapshot.exists()
    record(recorded, ("later", "{}"))
    before = files(recorded.parent)
    reader = EventLogPipelineResultsStorage(
        recorded, readonly=True, snapshot_every=1, log_options=NO_INDEX
    )
    assert [e.get_run_id() for e in reader.get_pipeline_executions()] == ["ok", "bad", "later"]
    assert reader.log.position.offset == recorded.stat().st_size
    record(recorded, ("last", "{}"))
    assert reader.get_pipeline_execution("last") is not None  # it reads what writers append
    reader.close()
    assert files(recorded.parent)[snapshot.name] == before[snapshot.name]


# -- the commands ---------------------------------------------------------------------------


def test_reading_commands_work_on_a_log_they_cannot_write_and_change_nothing(
    unwritable: Path, tmp_path: Path
) -> None:
    # The set-up binds: this process cannot write the log or beside it.
    probe = as_reader([sys.executable, "-c", f"open({str(unwritable)!r}, 'ab')"], tmp_path)
    assert probe.returncode == 1 and "PermissionError" in probe.stderr
    out = tmp_path / "out"
    out.mkdir()
    before = files(unwritable.parent)
    for argv in reading_commands(unwritable, out):
        done = as_reader(cli(*argv), tmp_path)
        assert done.returncode == 0, (argv, done.stderr)
        assert done.stderr == "", argv  # no warning: the torn tail is skipped, not cut
        assert files(unwritable.parent) == before, argv
    assert list(out.iterdir()) == [out / "ok.jsonl"]


def test_reading_commands_skip_a_torn_tail_without_a_word(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    before = files(recorded.parent)
    for argv in reading_commands(recorded, out):
        done = subprocess.run(cli(*argv), capture_output=True, text=True, timeout=120)
        assert (done.returncode, done.stderr) == (0, ""), argv
        assert files(recorded.parent) == before, argv
    runs = subprocess.run(cli("runs", "--log", str(recorded)), capture_output=True, text=True)
    assert [line.split("\t")[:3:2] for line in runs.stdout.splitlines()[1:]] == [
        ["bad", "RUNTIME_ERROR"],  # newest first
        ["ok", "DONE"],
    ]


def test_reading_commands_never_write_a_snapshot_of_the_configured_log(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files(recorded.parent)
    setting = (EVENTLOG, {"path": str(recorded), "snapshot_every": 1})
    with settings.override_settings(**{STORAGE_SETTING: setting}):
        for argv in (["runs"], ["runs", "--format", "json"], ["show", "bad"]):
            helpers.reset_storage_object()
            assert main(argv) == 0, capsys.readouterr().err
            assert files(recorded.parent) == before, argv
    assert '"run_id":"bad"' in capsys.readouterr().out


def test_reading_commands_never_create_the_configured_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "deep" / "missing.jsonl"
    commands = [
        ["runs"],
        ["show", "ok"],
        ["history", "ok"],
        ["export", "ok", "-o", "out.jsonl"],
        ["verify"],
        ["head"],
        ["follow", "--timeout", "0"],
    ]
    with settings.override_settings(**{STORAGE_SETTING: (EVENTLOG, {"path": str(log)})}):
        for command in commands:
            helpers.reset_storage_object()
            assert main(command) == 2, command
            error = capsys.readouterr().err
            assert error == (
                f"pipelines-events: error: {log}: no such log file (the log of "
                f"{STORAGE_SETTING}, from settings.override_settings(); or pass --log)\n"
            ), command
            assert list(tmp_path.iterdir()) == [], command


def test_writing_commands_still_repair_and_say_so_in_one_line(
    recorded: Path, tmp_path: Path
) -> None:
    size = recorded.stat().st_size
    done = subprocess.run(
        cli("demo", "--log", str(recorded), "--quiet"), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        f"pipelines-events: warning: {recorded}: removed {len(TORN)} bytes after byte "
        f"{size - len(TORN)}: an unfinished batch left by a writer that stopped mid-write "
        "(it was never acknowledged)\n"
    )
    verified = subprocess.run(cli("verify", "--log", str(recorded)), capture_output=True, text=True)
    assert verified.returncode == 0 and "unfinished" not in verified.stdout
