"""Every reading and writing command takes ``--log URL`` (the in-memory engine here, in
this process; PostgreSQL likewise): a URL is never treated as a path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines_events.cli import main
from pipelines_events.log.memory import drop_memory_store
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing import ExamplePipeline, ExampleReporter, ExampleRunner, ExampleTask

URL = "memory://cli-engines"


@pytest.fixture
def storage() -> Iterator[EventLogPipelineResultsStorage]:
    storage = EventLogPipelineResultsStorage(URL)
    for run_id in ("run-done", "run-open"):
        storage.build_pipeline_execution(
            ExamplePipeline("cli.P", [ExampleTask("t")]),
            run_id,
            ExampleRunner(),
            ExampleReporter(),
            None,
        )
    done = storage.get_pipeline_execution("run-done")
    assert done is not None
    done.set_status(PipelineTaskStatus.DONE)
    done.set_completed(datetime(2026, 1, 1, tzinfo=UTC))
    yield storage
    storage.close()
    drop_memory_store("cli-engines")


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["runs"], "run-open"),
        (["show", "run-d"], "run-done"),  # a prefix, resolved in the log
        (["history", "run-done"], "DONE"),
        (["head"], "10:"),
        (["verify"], "OK"),
        (["cleanup", "--all", "--dry-run"], "run-done"),
    ],
)
def test_a_reading_command_on_a_log_url(
    storage: EventLogPipelineResultsStorage,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    shown: str,
) -> None:
    assert main([args[0], "--log", URL, *args[1:]]) == 0
    out = capsys.readouterr().out
    assert shown in out


def test_cancel_and_cleanup_on_a_log_url(
    storage: EventLogPipelineResultsStorage, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cancel", "--log", URL, "run-open"]) == 0
    assert main(["cleanup", "--log", URL, "--all"]) == 0
    assert storage.get_pipeline_executions() == []


def test_replay_from_a_log_url_into_a_file(
    storage: EventLogPipelineResultsStorage, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    into = tmp_path / "into.jsonl"
    assert main(["replay", URL, "--into", str(into)]) == 0
    assert "run run-done: imported" in capsys.readouterr().out
    assert main(["runs", "--log", str(into)]) == 0
    out = capsys.readouterr().out
    assert "run-done" in out and "run-open" in out
    assert main(["replay", "memory://missing", "--into", str(into)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "pipelines-events: error: memory://missing: no such in-memory log in this process\n"
    )  # not "(the log of PIPELINES_PIPELINES_RESULTS_STORAGE ...; or pass --log)"
