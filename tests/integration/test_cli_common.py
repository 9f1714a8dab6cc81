"""What every command shares: where the log is when --log is not given."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines_events.cli import main
from pipelines_events.conf import settings
from pipelines_events.results.helpers import reset_storage_object

EVENTLOG = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"
MEMORY = "pipelines_events.results.memory.MemoryPipelineResultsStorage"


@pytest.mark.parametrize("command", [["verify"], ["head"], ["history", "some-run"]])
def test_read_only_commands_never_create_the_configured_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    log = tmp_path / "deep" / "missing.jsonl"
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=(EVENTLOG, {"path": log})):
        reset_storage_object()
        assert main(command) == 2
    reset_storage_object()
    assert "missing.jsonl" in capsys.readouterr().err
    assert not log.exists()
    assert not log.parent.exists()


def test_a_storage_without_a_log_file_asks_for_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=MEMORY):
        reset_storage_object()
        assert main(["verify"]) == 2
    reset_storage_object()
    error = capsys.readouterr().err
    assert "not an event-log storage" in error
    assert "--log PATH" in error
    assert list(tmp_path.iterdir()) == []
