"""The storage tests of cleanup: finished runs leave every query, the others stay."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from freezegun import freeze_time

from pipelines_events.errors import InvalidValueError
from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResultsStorage,
)
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing.capabilities import StorageTestCase
from pipelines_events.testing.examples import (
    CANCELLED,
    DONE,
    RUNNING,
    RUNTIME_ERROR,
    T0,
    _build,
    _single_pipeline,
    _tree,
)

__all__ = ["CleanupTests"]


class CleanupTests(StorageTestCase):
    """``cleanup()`` removes finished runs only, wholly (``supports_cleanup``)."""

    __test__ = False

    def run_cleanup(
        self, storage: PipelineResultsStorage, before: datetime | None = None
    ) -> list[str] | None:
        """``storage.cleanup(before)``; None, once its refusal is checked, without
        :attr:`supports_cleanup`."""
        if self.supports_cleanup:
            return storage.cleanup() if before is None else storage.cleanup(before=before)
        self.assert_not_supported(storage, "cleanup", lambda: storage.cleanup(before=before))
        return None

    def _finish(self, execution: PipelineExecution, status: PipelineTaskStatus) -> None:
        for task_result in _tree(execution)[2]:
            task_result.report_status_change(None, RUNNING)
            task_result.report_status_change(None, status)

    def test_cleanup_removes_only_finished_runs(self, storage: PipelineResultsStorage) -> None:
        done = _build(storage, "run-done", _single_pipeline())
        failed = _build(storage, "run-failed", _single_pipeline())
        running = _build(storage, "run-running", _single_pipeline())
        _build(storage, "run-pending", _single_pipeline())
        self._finish(done, DONE)
        failed_results = _tree(failed)[2]
        failed_results[0].report_status_change(None, RUNTIME_ERROR, "boom")
        failed_results[1].report_status_change(None, CANCELLED, "cancelled")
        _tree(running)[2][0].report_status_change(None, RUNNING)
        removed = self.run_cleanup(storage)
        if removed is None:
            return  # the refusal is checked
        assert sorted(removed) == ["run-done", "run-failed"]
        assert [e.get_run_id() for e in storage.get_pipeline_executions()] == [
            "run-running",
            "run-pending",
        ]
        assert storage.cleanup() == []

    def test_cleanup_of_an_empty_storage(self, storage: PipelineResultsStorage) -> None:
        removed = self.run_cleanup(storage)
        if removed is None:
            return  # the refusal is checked
        assert removed == []
        assert storage.cleanup(before=T0) == []

    def test_cleanup_before(self, storage: PipelineResultsStorage) -> None:
        with freeze_time(T0) as frozen:
            for number in range(1, 4):
                self._finish(_build(storage, f"run-{number}", _single_pipeline()), DONE)
                frozen.tick(timedelta(minutes=10))
        # Completed at T0, T0 + 10 min and T0 + 20 min.
        removed = self.run_cleanup(storage, before=T0)
        if removed is None:
            return  # the refusal is checked
        assert removed == []
        assert storage.cleanup(before=T0 + timedelta(minutes=15)) == ["run-1", "run-2"]
        assert [e.get_run_id() for e in storage.get_pipeline_executions()] == ["run-3"]
        assert storage.cleanup(before=T0 + timedelta(days=1)) == ["run-3"]
        assert list(storage.get_pipeline_executions()) == []

    def test_removed_runs_leave_every_query_and_the_digest(
        self, storage: PipelineResultsStorage
    ) -> None:
        gone = _build(storage, "run-gone")
        kept = _build(storage, "run-kept")
        other = _build(storage, "run-other", _single_pipeline())
        self._finish(gone, DONE)
        self._finish(other, RUNTIME_ERROR)
        _tree(kept)[2][0].report_status_change(None, RUNNING)
        kept_state = {
            k: v for k, v in self.describe(storage)["objects"].items() if v["run_id"] == "run-kept"
        }
        gone_results, gone_tes, gone_trs = _tree(gone)
        removed = self.run_cleanup(storage)
        if removed is None:
            return  # the refusal is checked
        assert sorted(removed) == ["run-gone", "run-other"]

        assert storage.get_pipeline_execution("run-gone") is None
        assert storage.get_pipeline_execution("run-other") is None
        assert [e.get_run_id() for e in storage.get_pipeline_executions()] == ["run-kept"]
        assert list(storage.get_pipeline_executions("tests.SinglePipeline")) == []
        assert list(storage.get_pipeline_results(run_id="run-gone")) == []
        assert list(storage.get_task_executions(run_id="run-gone")) == []
        assert list(storage.get_task_results(run_id="run-gone")) == []
        for result in gone_results:
            assert storage.get_pipeline_result(result.get_id()) is None
            assert list(storage.get_task_executions(pipeline_result_id=result.get_id())) == []
            assert list(storage.get_task_results(pipeline_result_id=result.get_id())) == []
        for task_execution in gone_tes:
            assert storage.get_task_execution(task_execution.get_id()) is None
            assert list(storage.get_task_results(task_execution_id=task_execution.get_id())) == []
        for task_result in gone_trs:
            assert storage.get_task_result(task_result.get_id()) is None
        state = self.describe(storage)
        assert state["objects"] == kept_state
        assert set(state["runs"]) == {"run-kept"}
        if self.supports_digest:
            assert state["digest"].keys() == {"tests.ExamplePipeline"}
            item = state["digest"]["tests.ExamplePipeline"]
            assert (item.total_runs, item.total_success, item.total_failure) == (2, 0, 0)

    def test_cleanup_refuses_a_naive_before(self, storage: PipelineResultsStorage) -> None:
        self._finish(_build(storage, pipeline=_single_pipeline()), DONE)
        if not self.supports_cleanup:
            self.run_cleanup(storage)  # checks the refusal
            return
        before = self.describe(storage)
        with pytest.raises(InvalidValueError, match="aware datetime"):
            storage.cleanup(before=datetime(2100, 1, 1))
        with pytest.raises(InvalidValueError, match="before"):
            storage.cleanup(before="2100-01-01")  # type: ignore[arg-type]
        assert self.describe(storage) == before
