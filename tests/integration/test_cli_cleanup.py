"""The ``cleanup`` command: the original's ``clear_tasks_and_logs``, with a dry run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from pipelines_events.cli.app import main
from pipelines_events.results import helpers
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus as S
from pipelines_events.testing import ExamplePipeline, ExampleTask
from tests.support.cli_support import fresh_storage, run_cli  # noqa: F401  (a fixture)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


pytestmark = pytest.mark.usefixtures("fresh_storage")


def _run(storage: EventLogPipelineResultsStorage, run_id: str, final: S | None) -> None:
    pipeline = ExamplePipeline("tests.Cleaned", [ExampleTask("only")])
    execution = storage.build_pipeline_execution(pipeline, run_id, object(), None, None)
    if final is not None:
        (task_result,) = (
            execution.get_pipeline_results()[0].get_task_executions()[0].get_task_results()
        )
        task_result.report_status_change(None, S.RUNNING)
        task_result.report_status_change(None, final)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """Runs finished 11 and 9 days before T0 + 20 days, one failed 11 days before, one
    still running and one pending."""
    path = tmp_path / "runs.jsonl"
    storage = EventLogPipelineResultsStorage(path)
    with freeze_time(T0):
        _run(storage, "old-done", S.DONE)
        _run(storage, "old-failed", S.RUNTIME_ERROR)
        _run(storage, "old-running", S.RUNNING)
        _run(storage, "old-pending", None)
    with freeze_time(T0 + timedelta(days=2)):
        _run(storage, "recent-done", S.DONE)
    storage.close()
    return path


def _runs(path: Path) -> list[str]:
    storage = EventLogPipelineResultsStorage(path)
    try:
        return [e.get_run_id() for e in storage.get_pipeline_executions()]
    finally:
        storage.close()


ALL_RUNS = ["old-done", "old-failed", "old-running", "old-pending", "recent-done"]


def test_before_removes_the_runs_finished_earlier_and_keeps_the_unfinished(
    capsys: pytest.CaptureFixture[str], log: Path
) -> None:
    before = (T0 + timedelta(days=1)).isoformat()

    status, out, _ = run_cli(capsys, "cleanup", "--log", str(log), "--before", before)

    assert status == 0
    assert out.startswith("removed 2 runs:")
    assert "old-done" in out and "old-failed" in out and "recent-done" not in out
    assert _runs(log) == ["old-running", "old-pending", "recent-done"]


def test_dry_run_lists_what_would_go_and_removes_nothing(
    capsys: pytest.CaptureFixture[str], log: Path
) -> None:
    before_bytes = log.read_bytes()

    status, out, _ = run_cli(
        capsys, "cleanup", "--log", str(log), "--all", "--dry-run", "--format", "json"
    )

    assert status == 0
    listed = json.loads(out)
    assert listed["dry_run"] is True
    assert [run["run_id"] for run in listed["runs"]] == ["old-done", "old-failed", "recent-done"]
    assert [run["status"] for run in listed["runs"]] == ["DONE", "RUNTIME_ERROR", "DONE"]
    assert log.read_bytes() == before_bytes
    assert _runs(log) == ALL_RUNS


def test_days_counts_back_from_now_as_the_original_did(
    capsys: pytest.CaptureFixture[str], log: Path
) -> None:
    with freeze_time(T0 + timedelta(days=12)):
        status, out, _ = run_cli(capsys, "cleanup", "--log", str(log), "--days", "10")
    assert status == 0 and out.startswith("removed 2 runs:")
    assert _runs(log) == ["old-running", "old-pending", "recent-done"]
    with freeze_time(T0 + timedelta(days=12)):
        status, out, _ = run_cli(capsys, "cleanup", "--log", str(log), "--days", "10")
    assert status == 0 and out.strip() == "removed no runs"


def test_nothing_old_enough_removes_nothing(capsys: pytest.CaptureFixture[str], log: Path) -> None:
    before_bytes = log.read_bytes()

    status, out, _ = run_cli(capsys, "cleanup", "--log", str(log), "--before", "2026-01-01")

    assert (status, out.strip()) == (0, "removed no runs")
    assert log.read_bytes() == before_bytes


def test_cleanup_uses_the_configured_storage(
    capsys: pytest.CaptureFixture[str], log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_module = log.parent / "cleanup_settings.py"
    settings_module.write_text(
        "PIPELINES_PIPELINES_RESULTS_STORAGE = (\n"
        "    'pipelines_events.results.eventlog.EventLogPipelineResultsStorage',\n"
        f"    {{'path': {str(log)!r}}},\n"
        ")\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(log.parent))
    monkeypatch.setenv("PIPELINES_SETTINGS_MODULE", "cleanup_settings")

    status, out, _ = run_cli(capsys, "cleanup", "--all", "--format", "jsonl")

    assert status == 0
    assert [json.loads(line)["run_id"] for line in out.splitlines()] == [
        "old-done",
        "old-failed",
        "recent-done",
    ]
    helpers.reset_storage_object()
    assert _runs(log) == ["old-running", "old-pending"]


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--before", "last week"], "--before: 'last week' is not a time"),
        (["--days", "ten"], "--days: 'ten' is not a number of days"),
        (["--days", "-1"], "--days: '-1' is not a number of days"),
        (["--days", "99999999999"], "--days: '99999999999' is too many days"),
    ],
)
def test_bad_options_are_refused_and_nothing_is_removed(
    capsys: pytest.CaptureFixture[str], log: Path, argv: list[str], problem: str
) -> None:
    before_bytes = log.read_bytes()

    status, _, err = run_cli(capsys, "cleanup", "--log", str(log), *argv)

    assert status == 2
    assert problem in err
    assert log.read_bytes() == before_bytes


def test_one_of_before_days_or_all_is_required(
    capsys: pytest.CaptureFixture[str], log: Path
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["cleanup", "--log", str(log)])
    assert caught.value.code == 2
    assert "one of the arguments --before --days --all is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["cleanup", "--log", str(log), "--all", "--days", "3"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_missing_log_is_refused_and_not_created(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.jsonl"

    status, _, err = run_cli(capsys, "cleanup", "--log", str(missing), "--all")

    assert status == 2 and "no such log file" in err
    assert not missing.exists()


def test_run_ids_are_shown_without_markup_or_control_characters(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "odd.jsonl"
    storage = EventLogPipelineResultsStorage(path)
    _run(storage, "[red]x\x1b[2J", S.DONE)
    storage.close()

    status, out, _ = run_cli(capsys, "cleanup", "--log", str(path), "--all", "--dry-run")

    assert status == 0
    assert "[red]x\\x1b[2J" in out and "\x1b" not in out
