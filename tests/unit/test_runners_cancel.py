"""Cancelling what is left of a run keeps the outcome of what already ended."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.memory import MemoryPipelineResultsStorage
from pipelines_events.runners import cancel_below
from pipelines_events.status import PipelineTaskStatus
from tests.support.cli_pipelines import Letters

S = PipelineTaskStatus


@pytest.mark.parametrize("kind", ["eventlog", "memory"])
def test_cancelling_a_task_execution_whose_results_all_ended_keeps_their_failure(
    tmp_path: Path, kind: str
) -> None:
    """The process runner's race: one task result failed, the others finished before
    the rest of the task was cancelled. The task execution, its pipeline result and
    the execution end RUNTIME_ERROR, never CANCELLED."""
    storage = (
        EventLogPipelineResultsStorage(tmp_path / "log.jsonl", durability="none")
        if kind == "eventlog"
        else MemoryPipelineResultsStorage()
    )
    execution = storage.build_pipeline_execution(Letters(), "run-1", None, None, {})
    execution.report_status_change(None, S.RUNNING)
    first, second = execution.get_pipeline_results()
    numbered, closing = first.get_task_executions()
    failed, done = numbered.get_task_results()
    numbered.report_status_change(None, S.RUNNING)
    failed.report_status_change(None, S.RUNNING, propagate=False)
    failed.report_status_change(None, S.RUNTIME_ERROR, "RuntimeError: a 2", propagate=False)
    done.report_status_change(None, S.RUNNING, propagate=False)
    done.report_status_change(None, S.DONE, propagate=False)
    assert numbered.get_status() is S.RUNNING  # nothing went up on its own

    cancel_below(numbered, None, "cancelled: task 'numbered' failed")
    cancel_below(closing, None, "cancelled: task 'numbered' failed")
    cancel_below(second, None, "cancelled: the run failed")

    assert failed.get_status() is S.RUNTIME_ERROR
    assert done.get_status() is S.DONE
    assert numbered.get_status() is S.RUNTIME_ERROR
    assert numbered.get_message() == "RuntimeError: a 2"
    assert closing.get_status() is S.CANCELLED
    assert first.get_status() is S.RUNTIME_ERROR
    assert second.get_status() is S.CANCELLED
    assert execution.get_status() is S.RUNTIME_ERROR
    assert execution.get_message() == "RuntimeError: a 2"
