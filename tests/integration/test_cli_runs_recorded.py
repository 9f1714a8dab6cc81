"""Runs recorded as they went (issue #12): interruption, crashed runners, tracebacks,
workers; and what the command line shows of them on pipes and 80-column terminals."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.runners import TRACEBACK_LIMIT, error_traceback
from pipelines_events.status import PipelineTaskStatus as S

ROOT = Path(__file__).resolve().parents[2]


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in ("PIPELINES_SETTINGS_MODULE", "COLUMNS")}
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), out.get("PYTHONPATH")]))
    out.update(extra)
    return out


def cli(*argv: str, cwd: Path | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines_events", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env(**extra),
        check=False,
    )


def on_a_terminal(*argv: str, cwd: Path, columns: int = 80) -> str:
    """What the command prints with stdout (and stderr) on a pseudo-terminal."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env(COLUMNS=str(columns), NO_COLOR="1", TERM="dumb"))
        os.execv(sys.executable, [sys.executable, "-m", "pipelines_events", *argv])
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def all_objects(storage: EventLogPipelineResultsStorage, run_id: str) -> list[Any]:
    execution = storage.get_pipeline_execution(run_id)
    assert execution is not None
    return [
        execution,
        *storage.get_pipeline_results(run_id=run_id),
        *storage.get_task_executions(run_id=run_id),
        *storage.get_task_results(run_id=run_id),
    ]


def start_sleepy(log: Path, run_id: str) -> subprocess.Popen[str]:
    """``run tests.support.cli_pipelines.Sleepy``, once its first task result is RUNNING."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines_events",
            "run",
            "tests.support.cli_pipelines.Sleepy",
            "--run-id",
            run_id,
            "--log",
            str(log),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists():
            storage = EventLogPipelineResultsStorage(log, readonly=True)
            try:
                results = storage.get_task_results(run_id=run_id)
                if results and results[0].get_status() is S.RUNNING:
                    return process
            finally:
                storage.close()
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the run did not start")


# -- what a run records -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_ends_cancelled_and_exits_130(tmp_path: Path, sig: int) -> None:
    log = tmp_path / "x.jsonl"
    process = start_sleepy(log, "nap")
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)

    assert process.returncode == 130, err
    assert "run nap interrupted; 9 objects cancelled" in err
    storage = EventLogPipelineResultsStorage(log, readonly=True)
    objects = all_objects(storage, "nap")
    assert all(obj.get_status() is S.CANCELLED for obj in objects)
    assert {obj.get_message() for obj in objects} == {"cancelled: the run was interrupted"}
    execution = objects[0]
    assert execution.get_completed() >= max(obj.get_completed() for obj in objects)
    assert cli("verify", "--log", str(log)).returncode == 0


@pytest.mark.slow
def test_a_killed_run_is_stale_and_cancel_ends_it(tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"
    process = start_sleepy(log, "killed-run")
    process.kill()
    process.wait(timeout=60)

    runs = cli("runs", "--log", str(log))
    header, row = runs.stdout.splitlines()
    cells = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert (cells["run_id"], cells["status"], cells["stale"]) == ("killed-run", "RUNNING", "stale")
    [record] = json.loads(cli("runs", "--log", str(log), "--format", "json").stdout)
    assert record["pid"] == process.pid and record["stale"] is True
    shown = on_a_terminal("runs", "--log", str(log), cwd=tmp_path)
    assert "RUNNING (stale)" in shown and "killed-run" in shown

    done = cli("cancel", "kill", "--reason", "runner died", "--log", str(log))
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout == "run killed-run: 9 objects cancelled\n"
    storage = EventLogPipelineResultsStorage(log, readonly=True)
    objects = all_objects(storage, "killed-run")
    assert all(obj.get_status() is S.CANCELLED for obj in objects)
    assert {obj.get_message() for obj in objects} == {"cancelled: runner died"}
    storage.close()
    size = log.stat().st_size
    again = cli("cancel", "killed-run", "--log", str(log))
    assert again.returncode == 2
    assert again.stderr == (
        "pipelines-events: error: run killed-run is already CANCELLED: nothing to cancel\n"
    )
    assert log.stat().st_size == size  # nothing written
    missing = cli("cancel", "nope", "--log", str(log))
    assert missing.returncode == 2 and "no run has the id 'nope'" in missing.stderr
    assert log.stat().st_size == size
    assert cli("runs", "--log", str(log)).stdout.splitlines()[1].split("\t")[10] == ""


def test_a_failed_run_ends_after_its_other_work(tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"
    assert cli("demo", "--log", str(log), "-q").returncode == 0
    storage = EventLogPipelineResultsStorage(log, readonly=True)
    [execution] = storage.get_pipeline_executions()
    objects = all_objects(storage, execution.get_run_id())
    assert execution.get_status() is S.RUNTIME_ERROR
    # cairo ran after lima failed; the execution ended after it.
    assert execution.get_completed() == max(obj.get_completed() for obj in objects)
    for obj in objects:
        for child in obj.get_children():
            assert child.get_completed() <= obj.get_completed()


def test_a_failure_keeps_its_traceback_with_its_status(tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"
    assert cli("demo", "--log", str(log), "-q").returncode == 0
    storage = EventLogPipelineResultsStorage(log, readonly=True)
    [failed] = [r for r in storage.get_task_results() if r.get_status() is S.RUNTIME_ERROR]
    traceback = failed.get_traceback()
    assert traceback.startswith("Traceback (most recent call last):")
    assert traceback.endswith("ValueError: lima rainfall reading 1: 'n/a' is not a number")
    assert "in _readings" in traceback
    assert storage.get_task_results()[0].get_traceback() == ""
    # One batch: the status, completed, message and traceback of the failure.
    events = [json.loads(line) for line in log.read_text().splitlines()]
    mine = [e for e in events if e["id"] == failed.get_id() and e.get("field")]
    status = next(e for e in mine if e["field"] == "status" and e["value"] == "RUNTIME_ERROR")
    tb = next(e for e in mine if e["field"] == "traceback")
    assert status["seq"] < tb["seq"] <= status["seq"] + status["more"]

    run_id = failed.get_run_id()
    shown = cli("show", run_id[:6], "--traceback", "--log", str(log))
    assert shown.returncode == 0
    assert (
        "│   │       └── ValueError: lima rainfall reading 1: 'n/a' is not a number" in shown.stdout
    )
    assert "Traceback (most recent call last):" not in cli("show", run_id, "--log", str(log)).stdout
    history = cli("history", run_id, "--log", str(log), "--field", "traceback")
    [_, row] = history.stdout.splitlines()
    assert "Traceback (most recent call last):\\n" in row.split("\t")[6]


def test_a_traceback_is_bounded_and_keeps_type_and_message() -> None:
    def fail() -> None:
        try:
            raise ValueError("y" * (2 * TRACEBACK_LIMIT))
        except ValueError as cause:
            raise KeyError("x" * 100) from cause

    try:
        fail()
    except KeyError as exc:
        text = error_traceback(exc)
    assert len(text) <= TRACEBACK_LIMIT
    assert text.startswith("[") and "characters of the traceback cut]\n" in text
    assert text.endswith("KeyError: '" + "x" * 100 + "'")


@pytest.mark.slow
def test_run_with_workers_uses_the_process_runner(tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"
    done = cli(
        "run",
        "tests.support.cli_pipelines.Letters",
        "--workers",
        "2",
        "--log",
        str(log),
        "-q",
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    storage = EventLogPipelineResultsStorage(log, readonly=True)
    [execution] = storage.get_pipeline_executions()
    assert execution.get_runner() == "pipelines_events.runners.process.Runner"
    assert execution.get_status() is S.DONE
    failing = cli(
        "run",
        "tests.support.cli_pipelines.Letters",
        "--workers",
        "2",
        "--run-id",
        "w-bad",
        "--input",
        '{"fail_on": "b"}',
        "--log",
        str(log),
        "-q",
        cwd=ROOT,
    )
    assert failing.returncode == 1, failing.stderr
    storage = EventLogPipelineResultsStorage(log, readonly=True)
    [failed] = [
        r for r in storage.get_task_results(run_id="w-bad") if r.get_status() is S.RUNTIME_ERROR
    ]
    assert failed.get_traceback().endswith("RuntimeError: b 2 refused")
    execution = storage.get_pipeline_execution("w-bad")
    assert execution is not None and execution.get_status() is S.RUNTIME_ERROR
    assert execution.get_completed() >= max(
        r.get_completed() for r in storage.get_task_results(run_id="w-bad")
    )
    bad = cli(
        "run", "tests.support.cli_pipelines.Letters", "--workers", "0", "--log", str(tmp_path / "y")
    )
    assert bad.returncode == 2
    assert "--workers: give a whole number of workers, 1 or more, not '0'" in bad.stderr
    assert "usage: pipelines-events run " in bad.stderr
    assert not (tmp_path / "y").exists()


# -- what a person sees -------------------------------------------------------------------


@pytest.fixture
def demo_log(tmp_path: Path) -> Path:
    log = tmp_path / "x.jsonl"
    for _ in range(2):
        assert cli("demo", "--log", str(log), "-q").returncode == 0
    return log


def test_piped_history_is_never_cut(demo_log: Path) -> None:
    run_id = json.loads(
        cli("runs", "--log", str(demo_log), "--format", "jsonl").stdout.split("\n")[0]
    )["run_id"]
    piped = subprocess.run(
        f"{sys.executable} -m pipelines_events history {run_id} --log {demo_log}"
        " | grep RUNTIME_ERROR",
        shell=True,
        capture_output=True,
        text=True,
        env=env(),
        check=False,
    )
    assert piped.returncode == 0
    lines = piped.stdout.splitlines()
    assert len(lines) == 4  # the task result, task execution, pipeline result, execution
    assert all("status: RUNNING → RUNTIME_ERROR" in line for line in lines)
    assert all(len(line.split("\t")) == 8 for line in lines)
    assert "…" not in piped.stdout


def test_runs_and_history_fit_80_columns(demo_log: Path) -> None:
    out = on_a_terminal("runs", "--log", str(demo_log), cwd=demo_log.parent)
    lines = [line for line in out.splitlines() if "reading" not in line and "counting" not in line]
    assert all(len(line) <= 80 for line in lines), lines
    header = next(line for line in lines if line.startswith("run id"))
    assert header.split() == ["run", "id", "pipeline", "status", "started", "(UTC)", "duration"]
    rows = [line for line in lines if "RUNTIME_ERROR" in line]
    assert len(rows) == 2
    for row in rows:
        run_id, pipeline, status, day, moment, *_ = row.split()
        assert len(run_id) == 8 and pipeline.startswith("pipelines_events.")
        assert len(day) == 10 and len(moment) == 8 and status == "RUNTIME_ERROR"

    run_id = rows[0].split()[0]  # a prefix every command takes
    out = on_a_terminal("history", run_id, "--log", str(demo_log), cwd=demo_log.parent)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    rows = [line for line in lines if line[:2].isdigit()]
    assert len(rows) > 50
    # Rows take two or three lines at most, but for the long messages of failures.
    assert len(lines) < 3 * len(rows)
    assert any("traceback" in line for line in lines)


def test_demo_hints_fit_80_columns(tmp_path: Path) -> None:
    out = on_a_terminal("demo", "-q", cwd=tmp_path)
    lines = out.splitlines()
    start = lines.index("recorded in pipelines-events.jsonl; try next:")
    hints = lines[start + 1 :]
    assert [h.split()[:2] for h in hints] == [
        ["pipelines-events", "history"],
        ["pipelines-events", "show"],
        ["pipelines-events", "runs"],
        ["pipelines-events", "verify"],
    ]
    assert all(len(line) <= 80 for line in hints)


def test_run_id_prefixes_for_every_command(tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"
    for run_id in ("csv-1", "csv-2", "json-1"):
        done = cli(
            "run",
            "tests.support.cli_pipelines.Single",
            "--run-id",
            run_id,
            "--log",
            str(log),
            "-q",
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
    size = log.stat().st_size
    for argv in (
        ["show", "csv-"],
        ["history", "csv-"],
        ["export", "csv-", "-o", "o.jsonl"],
        ["cancel", "csv-"],
        ["follow", "csv-", "--timeout", "0"],
    ):
        done = cli(*argv, "--log", str(log), cwd=tmp_path)
        assert done.returncode == 2, argv
        assert (
            f"2 runs have an id starting with 'csv-' in {log} (csv-1, csv-2); give more of it"
            in done.stderr
        ), argv
    assert log.stat().st_size == size and not (tmp_path / "o.jsonl").exists()
    assert cli("show", "json", "--log", str(log)).stdout.startswith("run json-1 ")
    assert "json-1" in cli("history", "json", "--log", str(log)).stdout
    done = cli("export", "json", "-o", str(tmp_path / "o.jsonl"), "--log", str(log))
    assert done.returncode == 0, done.stderr
    assert "json-1" in (tmp_path / "o.jsonl").read_text()


def test_runs_filter_and_page(tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"
    for run_id, argv in (("a", []), ("b", ["--input", '{"fail_on": "b"}']), ("c", [])):
        cli(
            "run",
            "tests.support.cli_pipelines.Letters",
            "--run-id",
            run_id,
            *argv,
            "--log",
            str(log),
            "-q",
            cwd=ROOT,
        )

    def ids(*argv: str) -> list[str]:
        done = cli("runs", "--log", str(log), *argv)
        assert done.returncode == 0, done.stderr
        return [line.split("\t")[0] for line in done.stdout.splitlines()[1:]]

    assert ids() == ["c", "b", "a"]
    assert ids("--status", "runtime_error") == ["b"]
    assert ids("--status", "DONE", "--pipeline", "tests.support.cli_pipelines.Letters") == [
        "c",
        "a",
    ]
    assert ids("--since", "2000-01-01", "--until", "2999-01-01") == ["c", "b", "a"]
    assert ids("--until", "2000-01-01") == []
    done = cli("runs", "--log", str(log), "--limit", "2")
    assert [line.split("\t")[0] for line in done.stdout.splitlines()[1:]] == ["c", "b"]
    assert done.stderr == "pipelines-events: showing the newest 2 of 3 runs; --limit N shows more\n"
    for argv, error in (
        (["--status", "FINE"], "--status: 'FINE' is not a status; give one of PENDING"),
        (["--limit", "-1"], "--limit: '-1' is not a number of runs; give a whole number"),
        (["--since", "soon"], "--since: 'soon' is not a time"),
    ):
        done = cli("runs", "--log", str(log), *argv)
        assert done.returncode == 2 and error in done.stderr, (argv, done.stderr)


def test_settings_are_found_the_same_way_by_the_console_script(tmp_path: Path) -> None:
    (tmp_path / "mysettings.py").write_text(
        "PIPELINES_PIPELINES_RESULTS_STORAGE = ("
        "'pipelines_events.results.eventlog.EventLogPipelineResultsStorage', "
        "{'path': 'kept.jsonl'})\n"
    )
    script = Path(sys.executable).with_name("pipelines-events")
    assert script.exists()
    run = lambda *argv: subprocess.run(  # noqa: E731
        [str(script), *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env(PIPELINES_SETTINGS_MODULE="mysettings"),
        check=False,
        timeout=120,
    )
    done = run("runs")
    assert done.returncode == 2
    assert done.stderr == (
        "pipelines-events: error: kept.jsonl: no such log file (the log of "
        "PIPELINES_PIPELINES_RESULTS_STORAGE, from settings module 'mysettings' "
        "(PIPELINES_SETTINGS_MODULE); or pass --log)\n"
    )
    assert not (tmp_path / "kept.jsonl").exists()
    assert run("demo", "-q").returncode == 0
    assert "RUNTIME_ERROR" in run("runs").stdout
    typo = run("hitsory", "x")
    assert typo.returncode == 2
    assert "unknown command 'hitsory'; did you mean 'history'?" in typo.stderr
    option = run("runs", "--bogus")
    assert option.returncode == 2
    assert option.stderr.startswith("usage: pipelines-events runs ")
    assert "pipelines-events runs: error: unrecognized arguments: --bogus" in option.stderr


def test_the_default_reporter_names_each_level(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines_events.demo import DemoPipeline

    monkeypatch.chdir(tmp_path)
    with caplog.at_level("INFO", logger="pipelines_events"):
        DemoPipeline().start(run_id="reported")
    failures = [
        r.getMessage() for r in caplog.records if "Changed state to RUNTIME_ERROR" in r.getMessage()
    ]
    assert len(failures) == 4 and len(set(failures)) == 4
    assert [f.split(" (")[0] for f in failures] == [
        "Task result",
        "Task execution",
        "Pipeline result",
        "Pipeline execution",
    ]
