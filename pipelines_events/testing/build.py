"""The storage tests of a build: how many objects it creates, and the builds refused."""

from __future__ import annotations

import math

import pytest

from pipelines_events.errors import InvalidValueError
from pipelines_events.results.base import (
    PipelineResultsStorage,
)
from pipelines_events.testing.capabilities import StorageTestCase
from pipelines_events.testing.examples import (
    PENDING,
    ExamplePipeline,
    ExampleTask,
    _all_objects,
    _build,
    _counts,
    _single_pipeline,
    _tree,
)

__all__ = ["BuildTests"]


class BuildTests(StorageTestCase):
    """A build creates the objects the seed describes, and refuses a bad run id or value whole."""

    __test__ = False

    # -- how many objects a build creates -------------------------------------------------

    def test_none_iterators_build_one_of_each(self, storage: PipelineResultsStorage) -> None:
        pipeline = ExamplePipeline("tests.Plain", [ExampleTask("a"), ExampleTask("b")])
        execution = _build(storage, pipeline=pipeline)
        results, task_executions, task_results = _tree(execution)
        assert len(results) == 1
        assert [te.get_pipeline_task() for te in task_executions] == ["a", "b"]
        assert [len(te.get_task_results()) for te in task_executions] == [1, 1]
        assert results[0].get_serializable_pipeline_object() is None
        assert [tr.get_serializable_task_object() for tr in task_results] == [None, None]
        assert _counts(storage) == (1, 1, 2, 2)

    def test_pipeline_iterator_gives_one_pipeline_result_per_object(
        self, storage: PipelineResultsStorage
    ) -> None:
        pipeline = ExamplePipeline("tests.P", [ExampleTask("a")], objects=["x", "y", "z"])
        execution = _build(storage, pipeline=pipeline)
        results = execution.get_pipeline_results()
        assert [r.get_serializable_pipeline_object() for r in results] == ["x", "y", "z"]
        assert _counts(storage) == (1, 3, 3, 3)

    def test_task_iterator_gives_one_task_result_per_object(
        self, storage: PipelineResultsStorage
    ) -> None:
        execution = _build(storage)
        _, task_executions, _ = _tree(execution)
        objects = [
            [tr.get_serializable_task_object() for tr in te.get_task_results()]
            for te in task_executions
        ]
        letters = [{"letter": "a"}, {"letter": "b"}, {"letter": "c"}]
        assert objects == [[None], letters, [None], letters]
        assert _counts(storage) == (1, 2, 4, 8)

    def test_one_task_execution_per_task_per_pipeline_result(
        self, storage: PipelineResultsStorage
    ) -> None:
        execution = _build(storage)
        for result in execution.get_pipeline_results():
            tasks = [te.get_pipeline_task() for te in result.get_task_executions()]
            assert tasks == ["first", "second"]

    def test_empty_pipeline_iterator_builds_only_the_execution(
        self, storage: PipelineResultsStorage
    ) -> None:
        pipeline = ExamplePipeline("tests.Empty", [ExampleTask("a")], objects=[])
        execution = _build(storage, pipeline=pipeline)
        assert list(execution.get_pipeline_results()) == []
        assert _counts(storage) == (1, 0, 0, 0)

    def test_build_all_false_builds_only_the_execution(
        self, storage: PipelineResultsStorage
    ) -> None:
        execution = _build(storage, build_all=False)
        assert execution.get_status() is PENDING
        assert list(execution.get_pipeline_results()) == []
        assert _counts(storage) == (1, 0, 0, 0)

    def test_every_object_has_its_own_id(self, storage: PipelineResultsStorage) -> None:
        objects = _all_objects(_build(storage)) + _all_objects(_build(storage, "run-2"))
        ids = [obj.get_id() for obj in objects]
        assert all(isinstance(i, str) and i for i in ids)
        assert len(set(ids)) == len(ids) == 30

    # -- refused builds -----------------------------------------------------------------

    def test_a_run_id_is_used_once(self, storage: PipelineResultsStorage) -> None:
        execution = _build(storage, "run-1")
        before = self.describe(storage)
        with pytest.raises(InvalidValueError, match="run-1"):
            _build(storage, "run-1", _single_pipeline("tests.Other"))
        assert self.describe(storage) == before
        found = storage.get_pipeline_execution("run-1")
        assert found is not None and found.get_id() == execution.get_id()
        assert found.get_pipeline_id() == "tests.ExamplePipeline"

    def test_a_run_id_must_be_a_non_empty_str(self, storage: PipelineResultsStorage) -> None:
        for run_id in ("", None, 7):
            with pytest.raises(InvalidValueError, match="run_id"):
                _build(storage, run_id)  # type: ignore[arg-type]
        assert _counts(storage) == (0, 0, 0, 0)

    def test_unstorable_build_values_create_nothing(self, storage: PipelineResultsStorage) -> None:
        _build(storage, "run-0")
        before = self.describe(storage)
        with pytest.raises(InvalidValueError, match="'input_data'"):
            _build(storage, "run-1", input_data={"when": {1, 2}})
        bad_pipeline_object = ExamplePipeline("tests.P", [ExampleTask("a")], objects=[{1}])
        with pytest.raises(InvalidValueError, match="'serializable_pipeline_object'"):
            _build(storage, "run-2", bad_pipeline_object)
        bad_task_object = ExamplePipeline(
            "tests.P", [ExampleTask("a"), ExampleTask("b", objects=[1, math.nan])]
        )
        with pytest.raises(InvalidValueError, match="'serializable_task_object'"):
            _build(storage, "run-3", bad_task_object)
        bad_config = ExamplePipeline("tests.P", [ExampleTask("a", config={"x": object()})])
        with pytest.raises(InvalidValueError, match="'config'"):
            _build(storage, "run-4", bad_config)
        assert self.describe(storage) == before
        for run_id in ("run-1", "run-2", "run-3", "run-4"):
            assert storage.get_pipeline_execution(run_id) is None
