"""The storage tests of the propagation of a status to the parents of an object."""

from __future__ import annotations

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
    ERRORS,
    PENDING,
    RUNNING,
    RUNTIME_ERROR,
    T0,
    ExamplePipeline,
    ExampleTask,
    _all_objects,
    _build,
    _fresh,
    _single_pipeline,
    _status,
    _tree,
)

__all__ = ["PropagationTests"]


class PropagationTests(StorageTestCase):
    """A change reaches the parents; a parent ends once its children have, with their outcome."""

    __test__ = False

    # -- propagation ------------------------------------------------------------------

    def test_running_propagates_up_at_once(self, storage: PipelineResultsStorage) -> None:
        execution = _build(storage)
        results, task_executions, task_results = _tree(execution)
        with freeze_time(T0):
            task_results[5].report_status_change(None, RUNNING)
        for obj in (task_results[5], task_executions[3], results[1], execution):
            fresh = _fresh(storage, obj)
            assert fresh.get_status() is RUNNING, obj
            assert fresh.get_started() == T0
        for obj in (task_results[4], task_executions[2], results[0], task_executions[0]):
            assert _status(storage, obj) is PENDING, obj

    @pytest.mark.parametrize("failure", ERRORS, ids=lambda s: s.name)
    def test_a_failure_ends_its_parents_once_their_children_have_ended(
        self, storage: PipelineResultsStorage, failure: PipelineTaskStatus
    ) -> None:
        execution = _build(storage)
        results, task_executions, task_results = _tree(execution)
        task_results[5].report_status_change(None, RUNNING)
        assert task_results[5].report_status_change(None, failure, "boom") is True
        # The failure is recorded; its parents go on while their other children do.
        assert _status(storage, task_results[5]) is failure
        for obj in (task_executions[3], results[1], execution):
            fresh = _fresh(storage, obj)
            assert fresh.get_status() is RUNNING, obj
            assert fresh.get_completed() is None
        for task_result in task_results:
            if task_result is task_results[5]:
                continue
            with freeze_time(T0):
                task_result.report_status_change(None, CANCELLED, "cancelled")
        # Once all children of a parent have ended, the failure decides its outcome.
        for obj in (task_executions[3], results[1], execution):
            fresh = _fresh(storage, obj)
            assert fresh.get_status() is failure, obj
            assert fresh.get_message() == "boom"
            assert fresh.get_completed() == T0
        assert _status(storage, task_results[6]) is CANCELLED
        assert _status(storage, task_executions[2]) is CANCELLED
        assert _status(storage, results[0]) is CANCELLED

    def test_a_failure_keeps_its_traceback_with_its_status(
        self, storage: PipelineResultsStorage
    ) -> None:
        execution = _build(storage, pipeline=_single_pipeline())
        failed, other = _tree(execution)[2]
        failed.report_status_change(None, RUNNING)
        text = 'Traceback (most recent call last):\n  File "x.py"\nValueError: boom'
        assert failed.report_status_change(None, RUNTIME_ERROR, "ValueError: boom", traceback=text)
        fresh = _fresh(storage, failed)
        assert fresh.get_status() is RUNTIME_ERROR
        assert fresh.get_traceback() == text
        assert _fresh(storage, other).get_traceback() == ""
        with pytest.raises(InvalidValueError, match="traceback: give a str, not int"):
            other.report_status_change(None, RUNTIME_ERROR, "x", traceback=1)  # type: ignore[arg-type]
        assert _status(storage, other) is PENDING

    def test_no_parent_is_final_before_its_children(self, storage: PipelineResultsStorage) -> None:
        execution = _build(storage)
        task_results = _tree(execution)[2]
        statuses = [DONE, *ERRORS, CANCELLED]
        for number, task_result in enumerate(task_results):
            task_result.report_status_change(None, RUNNING)
            task_result.report_status_change(None, statuses[number % len(statuses)], "end")
            for obj in _all_objects(execution):
                fresh = _fresh(storage, obj)
                if fresh.get_status().is_final:
                    assert all(c.get_status().is_final for c in fresh.get_children()), obj
        assert _status(storage, execution).is_final

    def test_done_propagates_once_all_siblings_are_final(
        self, storage: PipelineResultsStorage
    ) -> None:
        execution = _build(storage, pipeline=_single_pipeline(items=3))
        (result,), (task_execution,), task_results = _tree(execution)
        task_results[0].report_status_change(None, RUNNING)
        task_results[0].report_status_change(None, DONE)
        assert _status(storage, task_execution) is RUNNING
        task_results[1].report_status_change(None, DONE)
        assert _status(storage, task_execution) is RUNNING
        assert _status(storage, execution) is RUNNING
        with freeze_time(T0):
            task_results[2].report_status_change(None, DONE)
        for obj in (task_execution, result, execution):
            fresh = _fresh(storage, obj)
            assert fresh.get_status() is DONE, obj
            assert fresh.get_completed() == T0

    def test_all_children_done_make_every_parent_done(
        self, storage: PipelineResultsStorage
    ) -> None:
        execution = _build(storage)
        results, task_executions, task_results = _tree(execution)
        for task_result in task_results[:-1]:
            task_result.report_status_change(None, RUNNING)
            task_result.report_status_change(None, DONE)
        assert _status(storage, execution) is RUNNING
        assert _status(storage, results[1]) is RUNNING
        assert _status(storage, task_executions[3]) is RUNNING
        assert [_status(storage, te) for te in task_executions[:3]] == [DONE] * 3
        assert _status(storage, results[0]) is DONE
        task_results[-1].report_status_change(None, DONE)
        assert {_status(storage, obj) for obj in _all_objects(execution)} == {DONE}

    def test_propagate_false_leaves_the_parents(self, storage: PipelineResultsStorage) -> None:
        execution = _build(storage, pipeline=_single_pipeline(items=1))
        (result,), (task_execution,), (task_result,) = _tree(execution)
        task_result.report_status_change(None, RUNNING, propagate=False)
        task_result.report_status_change(None, RUNTIME_ERROR, "boom", propagate=False)
        assert _status(storage, task_result) is RUNTIME_ERROR
        for obj in (task_execution, result, execution):
            fresh = _fresh(storage, obj)
            assert fresh.get_status() is PENDING
            assert fresh.get_message() == ""

    def test_propagate_false_on_done(self, storage: PipelineResultsStorage) -> None:
        execution = _build(storage, pipeline=_single_pipeline(items=1))
        (_, (task_execution,), (task_result,)) = _tree(execution)
        task_result.report_status_change(None, RUNNING)
        task_result.report_status_change(None, DONE, propagate=False)
        assert _status(storage, task_execution) is RUNNING
        assert _status(storage, execution) is RUNNING

    def test_cancelled_and_done_children_make_the_parent_cancelled(
        self, storage: PipelineResultsStorage
    ) -> None:
        pipeline = ExamplePipeline(
            "tests.P", [ExampleTask("a", objects=[1, 2]), ExampleTask("b", objects=[1])]
        )
        execution = _build(storage, pipeline=pipeline)
        (result,), (task_a, task_b), task_results = _tree(execution)
        task_results[0].report_status_change(None, RUNNING)
        task_results[0].report_status_change(None, DONE)
        task_results[1].report_status_change(None, CANCELLED, "not needed")
        assert _status(storage, task_a) is CANCELLED
        assert _status(storage, result) is RUNNING
        task_results[2].report_status_change(None, DONE)
        assert _status(storage, task_b) is DONE
        assert _status(storage, result) is CANCELLED
        assert _status(storage, execution) is CANCELLED

    def test_a_failed_child_decides_the_outcome_once_all_are_final(
        self, storage: PipelineResultsStorage
    ) -> None:
        execution = _build(storage, pipeline=_single_pipeline(items=3))
        (result,), (task_execution,), task_results = _tree(execution)
        task_results[0].report_status_change(None, RUNNING)
        task_results[0].report_status_change(None, CANCELLED, propagate=False)
        task_results[1].report_status_change(None, RUNTIME_ERROR, "boom", propagate=False)
        assert _status(storage, task_execution) is RUNNING
        task_results[2].report_status_change(None, DONE, "last")
        for obj in (task_execution, result, execution):
            fresh = _fresh(storage, obj)
            assert fresh.get_status() is RUNTIME_ERROR, obj
            assert fresh.get_message() == "boom"  # the failure's message, not the last child's

    def test_cancelling_after_a_failure_keeps_the_failure(
        self, storage: PipelineResultsStorage
    ) -> None:
        execution = _build(storage, pipeline=_single_pipeline(items=2))
        (result,), (task_execution,), task_results = _tree(execution)
        task_results[0].report_status_change(None, RUNNING)
        task_results[0].report_status_change(None, RUNTIME_ERROR, "boom")
        assert task_results[1].report_status_change(None, CANCELLED, "cancelled") is True
        for obj in (task_execution, result, execution):
            fresh = _fresh(storage, obj)
            assert fresh.get_status() is RUNTIME_ERROR
            assert fresh.get_message() == "boom"
