"""An event that cannot be folded stops a live storage there: nothing after it is skipped."""

from __future__ import annotations

import re
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from pipelines_events.demo import DemoPipeline
from pipelines_events.errors import ProjectionError
from pipelines_events.events import TASK_RESULT, FieldSet
from pipelines_events.log import JsonlEventLog, read_events
from pipelines_events.registry import registry
from pipelines_events.reporters import PipelineReporter
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.runners.eager import Runner
from pipelines_events.status import PipelineTaskStatus

FULL_FOLD = {"run_index": False}
"""The storage folds the whole log when it opens (a storage reading through the run index
meets a fold error when it loads the run)."""


class Quiet(PipelineReporter):
    def report(self, *args: Any) -> None:
        pass


def run_demo(storage: EventLogPipelineResultsStorage, run_id: str) -> None:
    pipeline = DemoPipeline()
    registry.register_pipeline(DemoPipeline, pipeline_id=pipeline.get_id(), replace=True)
    execution = storage.build_pipeline_execution(pipeline, run_id, Runner(), Quiet(), None)
    with registry.using(pipeline):
        Runner().run(execution, Quiet())


def ghost_then_message(path: Path, result_id: str) -> int:
    """Append, as another writer, a set on an object never created, then a good event;
    returns the seq of the bad one."""
    with JsonlEventLog(path, durability="none") as other:
        list(other.read_new())
        for k in range(20):  # good events before it, read in the same chunk
            other.append(
                [
                    FieldSet(
                        run_id="run-1",
                        kind=TASK_RESULT,
                        id=result_id,
                        field="message",
                        value=f"before-{k}",
                    )
                ]
            )
        (bad,) = other.append(
            [FieldSet(run_id="ghost-run", kind=TASK_RESULT, id="ghost", field="x", value=1)]
        )
        other.append(
            [
                FieldSet(
                    run_id="run-1", kind=TASK_RESULT, id=result_id, field="message", value="late"
                )
            ]
        )
    return bad.seq


def test_a_live_storage_does_not_skip_events_after_a_fold_error(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    storage = EventLogPipelineResultsStorage(path, durability="none", log_options=FULL_FOLD)
    run_demo(storage, "run-1")
    result = storage.get_task_results(run_id="run-1")[0]
    message = result.get_message()
    bad = ghost_then_message(path, result.get_id())
    expected = re.escape(f"{path}: seq {bad}: sets 'x' on task_result ghost, which was never")
    for _ in range(3):  # every read meets it again: it is not skipped
        with pytest.raises(ProjectionError, match=f"^{expected}"):
            result.get_message()
        assert storage.log.position.seq == bad - 1
        # The events before it were folded, once.
        record = storage.results.get(result.get_id())
        assert record is not None
        assert record.get("message") == "before-19"
    with pytest.raises(ProjectionError, match=f"^{expected}"):
        storage.get_pipeline_executions()
    # A write folds what others appended first: it is refused and writes nothing.
    size = path.stat().st_size
    with pytest.raises(ProjectionError, match=f"^{expected}"):
        result.set_message("mine")
    with pytest.raises(ProjectionError, match=f"^{expected}"):
        result.report_status_change(Quiet(), PipelineTaskStatus.RUNNING)
    assert path.stat().st_size == size
    assert [e.seq for e in read_events(path)][-1] == bad + 1
    storage.close()
    assert message != "late"


def test_opening_a_log_with_an_event_that_cannot_be_folded_names_the_file_and_seq(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.jsonl"
    with closing(
        EventLogPipelineResultsStorage(path, durability="none", log_options=FULL_FOLD)
    ) as storage:
        run_demo(storage, "run-1")
        result_id = storage.get_task_results(run_id="run-1")[0].get_id()
    bad = ghost_then_message(path, result_id)
    size = path.stat().st_size
    with pytest.raises(ProjectionError, match=rf"^{re.escape(str(path))}: seq {bad}: .*ghost"):
        EventLogPipelineResultsStorage(
            path, durability="none", snapshots=False, log_options=FULL_FOLD
        )
    assert path.stat().st_size == size


def test_replaying_a_log_with_an_event_that_cannot_be_folded_names_the_file_and_seq(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``replay FILE`` (a view of the log, no target) names the file, as the storage does."""
    from pipelines_events.cli import main

    path = tmp_path / "log.jsonl"
    with closing(
        EventLogPipelineResultsStorage(path, durability="none", log_options=FULL_FOLD)
    ) as storage:
        run_demo(storage, "run-1")
        result_id = storage.get_task_results(run_id="run-1")[0].get_id()
    seq = ghost_then_message(path, result_id)
    data = path.read_bytes()
    capsys.readouterr()
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: seq {seq}: " in err
    assert "Traceback" not in err
    assert path.read_bytes() == data
