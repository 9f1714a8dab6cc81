"""The storage tests of status changes: what a change records, and what the reporter hears."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time

from pipelines_events.errors import InvalidValueError
from pipelines_events.results.base import (
    PipelineResultsStorage,
)
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing.capabilities import StorageTestCase
from pipelines_events.testing.examples import (
    CANCELLED,
    DONE,
    FINAL,
    PENDING,
    RUNNING,
    RUNTIME_ERROR,
    T0,
    ExampleReporter,
    _build,
    _fresh,
    _single_pipeline,
    _status,
    _tree,
)

__all__ = ["StatusTests"]


class StatusTests(StorageTestCase):
    """A status only advances; a change sets its times and message and is reported once."""

    __test__ = False

    # -- status changes ---------------------------------------------------------------

    def test_running_sets_started(self, storage: PipelineResultsStorage) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        with freeze_time(T0):
            assert task_result.report_status_change(None, RUNNING) is True
        fresh = _fresh(storage, task_result)
        assert fresh.get_status() is RUNNING
        assert fresh.get_started() == T0
        assert fresh.get_completed() is None

    @pytest.mark.parametrize("final", FINAL, ids=lambda s: s.name)
    def test_final_status_sets_completed(
        self, storage: PipelineResultsStorage, final: PipelineTaskStatus
    ) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        with freeze_time(T0) as frozen:
            task_result.report_status_change(None, RUNNING)
            frozen.tick(timedelta(seconds=3))
            assert task_result.report_status_change(None, final, propagate=False) is True
        fresh = _fresh(storage, task_result)
        assert fresh.get_status() is final
        assert fresh.get_started() == T0
        assert fresh.get_completed() == T0 + timedelta(seconds=3)

    def test_pending_can_go_straight_to_a_final_status(
        self, storage: PipelineResultsStorage
    ) -> None:
        _, _, task_results = _tree(_build(storage))
        with freeze_time(T0):
            assert task_results[0].report_status_change(None, CANCELLED, "skipped") is True
        fresh = _fresh(storage, task_results[0])
        assert fresh.get_status() is CANCELLED
        assert fresh.get_started() is None
        assert fresh.get_completed() == T0
        assert fresh.get_message() == "skipped"

    def test_same_status_twice_is_recorded_once(self, storage: PipelineResultsStorage) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        with freeze_time(T0) as frozen:
            assert task_result.report_status_change(None, RUNNING, "first") is True
            frozen.tick(timedelta(seconds=5))
            before = self.describe(storage)
            assert task_result.report_status_change(None, RUNNING, "second") is False
        assert self.describe(storage) == before
        fresh = _fresh(storage, task_result)
        assert fresh.get_started() == T0
        assert fresh.get_message() == "first"

    def test_a_status_never_goes_back(self, storage: PipelineResultsStorage) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        task_result.report_status_change(None, RUNNING)
        before = self.describe(storage)
        assert task_result.report_status_change(None, PENDING) is False
        assert self.describe(storage) == before
        assert _status(storage, task_result) is RUNNING

    @pytest.mark.parametrize("final", FINAL, ids=lambda s: s.name)
    def test_a_final_status_is_never_left(
        self, storage: PipelineResultsStorage, final: PipelineTaskStatus
    ) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        assert task_result.report_status_change(None, final, "end") is True
        before = self.describe(storage)
        for status in PipelineTaskStatus:
            assert task_result.report_status_change(None, status, "again") is False, status
        assert self.describe(storage) == before
        fresh = _fresh(storage, task_result)
        assert fresh.get_status() is final
        assert fresh.get_message() == "end"

    def test_message_is_recorded_with_the_status(self, storage: PipelineResultsStorage) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        task_result.report_status_change(None, RUNNING, "working on it ✓", propagate=False)
        assert _fresh(storage, task_result).get_message() == "working on it ✓"
        task_result.report_status_change(None, DONE, propagate=False)
        assert _fresh(storage, task_result).get_message() == ""

    def test_status_given_by_name(self, storage: PipelineResultsStorage) -> None:
        _, _, task_results = _tree(_build(storage))
        assert task_results[0].report_status_change(None, "running") is True
        assert task_results[0].report_status_change(None, "RUNTIME_ERROR", "x") is True
        assert _status(storage, task_results[0]) is RUNTIME_ERROR

    def test_unknown_status_is_refused(self, storage: PipelineResultsStorage) -> None:
        _, _, task_results = _tree(_build(storage))
        before = self.describe(storage)
        with pytest.raises(InvalidValueError, match="'BOGUS' is not a status"):
            task_results[0].report_status_change(None, "BOGUS")
        with pytest.raises(InvalidValueError, match="message"):
            task_results[0].report_status_change(None, RUNNING, 42)  # type: ignore[arg-type]
        assert self.describe(storage) == before

    def test_reporter_hears_recorded_changes_only(self, storage: PipelineResultsStorage) -> None:
        execution = _build(storage, pipeline=_single_pipeline())
        (result,), (task_execution,), task_results = _tree(execution)
        reporter = ExampleReporter()
        task_results[0].report_status_change(reporter, RUNNING, "go")
        heard = [(obj.get_id(), status, message) for obj, status, message in reporter.reports]
        te_id, tr_id = task_execution.get_id(), task_results[0].get_id()
        assert heard == [
            (
                tr_id,
                RUNNING,
                f"Task result ({tr_id}) only (tests.only): Changed state to RUNNING - go",
            ),
            (
                te_id,
                RUNNING,
                f"Task execution ({te_id}) only (tests.only): Changed state to RUNNING - go",
            ),
            (
                result.get_id(),
                RUNNING,
                f"Pipeline result ({result.get_id()}) tests.SinglePipeline: "
                "Changed state to RUNNING - go",
            ),
            (
                execution.get_id(),
                RUNNING,
                "Pipeline execution (run-1) tests.SinglePipeline: Changed state to RUNNING - go",
            ),
        ]
        reporter.reports.clear()
        task_results[0].report_status_change(reporter, RUNNING, "again")
        task_execution.report_status_change(reporter, PENDING)
        assert reporter.reports == []

    def test_reporter_hears_the_objects_and_their_stored_objects(
        self, storage: PipelineResultsStorage
    ) -> None:
        execution = _build(storage)
        results, task_executions, task_results = _tree(execution)
        reporter = ExampleReporter()
        for task_result in task_results:
            if task_result is not task_results[5]:
                task_result.report_status_change(None, CANCELLED)
        task_results[5].report_status_change(reporter, RUNTIME_ERROR, "boom")
        objects = [obj for obj, _, _ in reporter.reports]
        assert [obj.get_id() for obj in objects] == [
            task_results[5].get_id(),
            task_executions[3].get_id(),
            results[1].get_id(),
            execution.get_id(),
        ]
        tr_id = task_results[5].get_id()
        assert reporter.reports[0][2] == (
            f"Task result ({tr_id}) second (tests.second): Changed state to RUNTIME_ERROR - boom"
            " | pipeline object: {'n': 2} | task object: {'letter': 'a'}"
        )
