"""The storage tests of the objects' getters: what a build's objects give back."""

from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time

from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResult,
    PipelineResultsStorage,
    TaskExecution,
    TaskResult,
)
from pipelines_events.testing.capabilities import StorageTestCase
from pipelines_events.testing.examples import (
    DONE,
    PENDING,
    REPORTER_PATH,
    RUNNER_PATH,
    RUNNING,
    T0,
    _build,
    _fresh,
    _ids,
    _tree,
)

__all__ = ["GetterTests"]


class GetterTests(StorageTestCase):
    """Each kind of object gives back what its build stored, also when read again."""

    __test__ = False

    # -- getters --------------------------------------------------------------------------

    def test_execution_getters(self, storage: PipelineResultsStorage) -> None:
        execution = _build(storage, input_data={"rows": [1, 2], "name": "ünï"})
        for obj in (execution, _fresh(storage, execution)):
            assert isinstance(obj, PipelineExecution)
            assert obj.get_run_id() == "run-1"
            assert obj.get_pipeline_id() == "tests.ExamplePipeline"
            assert obj.get_status() is PENDING
            assert obj.get_started() is None
            assert obj.get_completed() is None
            assert obj.get_message() == ""
            assert obj.get_input_data() == {"rows": [1, 2], "name": "ünï"}
            assert obj.get_runner() == RUNNER_PATH
            assert obj.get_reporter() == REPORTER_PATH
            assert obj.get_task_id() is None
            assert obj.get_parent() is None
            assert _ids(obj.get_children()) == _ids(obj.get_pipeline_results())
            assert len(obj.get_pipeline_results()) == 2

    def test_pipeline_result_getters(self, storage: PipelineResultsStorage) -> None:
        execution = _build(storage, input_data=[1, "two"])
        for index, result in enumerate(execution.get_pipeline_results(), start=1):
            for obj in (result, _fresh(storage, result)):
                assert isinstance(obj, PipelineResult)
                assert obj.get_run_id() == "run-1"
                assert obj.get_pipeline_id() == "tests.ExamplePipeline"
                assert obj.get_status() is PENDING
                assert obj.get_started() is None and obj.get_completed() is None
                assert obj.get_serializable_pipeline_object() == {"n": index}
                assert obj.get_input_data() == [1, "two"]
                assert obj.get_runner() == RUNNER_PATH
                assert obj.get_reporter() == REPORTER_PATH
                assert obj.get_task_id() is None
                assert obj.get_pipeline_execution().get_id() == execution.get_id()
                parent = obj.get_parent()
                assert parent is not None and parent.get_id() == execution.get_id()
                assert len(obj.get_task_executions()) == 2
                assert _ids(obj.get_children()) == _ids(obj.get_task_executions())

    def test_task_execution_getters(self, storage: PipelineResultsStorage) -> None:
        execution = _build(storage, input_data={"k": None})
        for result in execution.get_pipeline_results():
            first, second = result.get_task_executions()
            for obj in (first, _fresh(storage, first)):
                assert isinstance(obj, TaskExecution)
                assert obj.get_run_id() == "run-1"
                assert obj.get_pipeline_id() == "tests.ExamplePipeline"
                assert obj.get_task_id() == "tests.first"
                assert obj.get_pipeline_task() == "first"
                assert obj.get_config() == {"retries": 2}
                assert obj.get_status() is PENDING
                assert obj.get_started() is None and obj.get_completed() is None
                assert obj.get_input_data() == {"k": None}
                assert obj.get_serializable_pipeline_object() == (
                    result.get_serializable_pipeline_object()
                )
                assert obj.get_pipeline_result().get_id() == result.get_id()
                parent = obj.get_parent()
                assert parent is not None and parent.get_id() == result.get_id()
                assert len(obj.get_task_results()) == 1
                assert _ids(obj.get_children()) == _ids(obj.get_task_results())
            assert second.get_task_id() == "tests.second"
            assert second.get_config() is None
            assert len(second.get_task_results()) == 3

    def test_task_result_getters(self, storage: PipelineResultsStorage) -> None:
        execution = _build(storage, input_data={"k": 1})
        _, task_executions, _ = _tree(execution)
        second = task_executions[1]
        for index, task_result in enumerate(second.get_task_results()):
            for obj in (task_result, _fresh(storage, task_result)):
                assert isinstance(obj, TaskResult)
                assert obj.get_run_id() == "run-1"
                assert obj.get_pipeline_id() == "tests.ExamplePipeline"
                assert obj.get_task_id() == "tests.second"
                assert obj.get_pipeline_task() == "second"
                assert obj.get_config() is None
                assert obj.get_status() is PENDING
                assert obj.get_started() is None and obj.get_completed() is None
                assert obj.get_duration() is None
                assert obj.get_serializable_task_object() == {"letter": "abc"[index]}
                assert obj.get_serializable_pipeline_object() == {"n": 1}
                assert obj.get_input_data() == {"k": 1}
                assert obj.get_task_execution().get_id() == second.get_id()
                parent = obj.get_parent()
                assert parent is not None and parent.get_id() == second.get_id()
                assert list(obj.get_children()) == []
        first_result = task_executions[0].get_task_results()[0]
        assert first_result.get_config() == {"retries": 2}

    def test_task_result_duration(self, storage: PipelineResultsStorage) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        with freeze_time(T0) as frozen:
            task_result.report_status_change(None, RUNNING)
            assert task_result.get_duration() is None
            frozen.tick(timedelta(seconds=2.5))
            task_result.report_status_change(None, DONE)
        assert task_result.get_duration() == 2.5
        fresh = _fresh(storage, task_result)
        assert isinstance(fresh, TaskResult)
        assert fresh.get_duration() == 2.5
