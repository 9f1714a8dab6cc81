"""The storage tests of the queries: the lists, their filters and the lookups by id."""

from __future__ import annotations

from collections.abc import Callable

from pipelines_events.results.base import (
    PipelineResultsStorage,
    PipelineStorageObject,
)
from pipelines_events.testing.capabilities import StorageTestCase
from pipelines_events.testing.examples import (
    _build,
    _ids,
    _single_pipeline,
    _tree,
)

__all__ = ["QueryTests"]


class QueryTests(StorageTestCase):
    """The storage's queries list objects oldest first, filter them and look them up by id."""

    __test__ = False

    # -- queries --------------------------------------------------------------------------

    def test_get_pipeline_executions(self, storage: PipelineResultsStorage) -> None:
        assert list(storage.get_pipeline_executions()) == []
        _build(storage, "run-1")
        _build(storage, "run-2", _single_pipeline("tests.Other"))
        _build(storage, "run-3")

        def runs(pipeline_id: str | None = None) -> list[str]:
            return [e.get_run_id() for e in storage.get_pipeline_executions(pipeline_id)]

        assert runs() == ["run-1", "run-2", "run-3"]
        assert runs("tests.ExamplePipeline") == ["run-1", "run-3"]
        assert runs("tests.Other") == ["run-2"]
        assert runs("tests.Unknown") == []

    def test_get_pipeline_execution(self, storage: PipelineResultsStorage) -> None:
        one = _build(storage, "run-1")
        two = _build(storage, "run-2")
        found = storage.get_pipeline_execution("run-2")
        assert found is not None
        assert found.get_id() == two.get_id() != one.get_id()
        assert found.get_run_id() == "run-2"
        assert storage.get_pipeline_execution("run-unknown") is None
        assert storage.get_pipeline_execution(one.get_id()) is None

    def test_get_pipeline_results_filters(self, storage: PipelineResultsStorage) -> None:
        one = _build(storage, "run-1")
        two = _build(storage, "run-2", _single_pipeline("tests.Other"))
        three = _build(storage, "run-3")

        def ids(**filters: str) -> list[str]:
            return _ids(storage.get_pipeline_results(**filters))

        results = {e.get_run_id(): _ids(e.get_pipeline_results()) for e in (one, two, three)}
        assert ids() == results["run-1"] + results["run-2"] + results["run-3"]
        assert ids(run_id="run-2") == results["run-2"]
        assert ids(pipeline_id="tests.ExamplePipeline") == results["run-1"] + results["run-3"]
        assert ids(run_id="run-3", pipeline_id="tests.ExamplePipeline") == results["run-3"]
        assert ids(run_id="run-3", pipeline_id="tests.Other") == []
        assert ids(run_id="run-unknown") == []
        assert ids(pipeline_id="tests.Unknown") == []

    def test_get_task_executions_filters(self, storage: PipelineResultsStorage) -> None:
        one = _build(storage, "run-1")
        two = _build(storage, "run-2")
        results_one, te_one, _ = _tree(one)
        _, te_two, _ = _tree(two)

        def ids(**filters: str) -> list[str]:
            return _ids(storage.get_task_executions(**filters))

        first = results_one[0].get_id()
        assert ids() == _ids(te_one) + _ids(te_two)
        assert ids(run_id="run-2") == _ids(te_two)
        assert ids(pipeline_result_id=first) == _ids(te_one[:2])
        assert ids(run_id="run-1", pipeline_result_id=first) == _ids(te_one[:2])
        assert ids(run_id="run-2", pipeline_result_id=first) == []
        assert ids(run_id="run-unknown") == []
        assert ids(pipeline_result_id="no-such-id") == []

    def test_get_task_results_filters(self, storage: PipelineResultsStorage) -> None:
        one = _build(storage, "run-1")
        two = _build(storage, "run-2")
        results_one, te_one, tr_one = _tree(one)
        _, _, tr_two = _tree(two)

        def ids(**filters: str) -> list[str]:
            return _ids(storage.get_task_results(**filters))

        result = results_one[1].get_id()
        second = te_one[3].get_id()
        in_result = _ids(tr_one[4:])
        in_second = _ids(te_one[3].get_task_results())
        assert len(in_result) == 4 and len(in_second) == 3
        assert ids() == _ids(tr_one) + _ids(tr_two)
        assert ids(run_id="run-1") == _ids(tr_one)
        assert ids(pipeline_result_id=result) == in_result
        assert ids(task_execution_id=second) == in_second
        assert ids(run_id="run-1", pipeline_result_id=result) == in_result
        assert ids(run_id="run-1", task_execution_id=second) == in_second
        assert ids(pipeline_result_id=result, task_execution_id=second) == in_second
        assert ids(run_id="run-1", pipeline_result_id=result, task_execution_id=second) == (
            in_second
        )
        other_result = results_one[0].get_id()
        assert ids(pipeline_result_id=other_result, task_execution_id=second) == []
        assert ids(run_id="run-2", task_execution_id=second) == []
        assert ids(run_id="run-2", pipeline_result_id=result) == []
        assert ids(task_execution_id="no-such-id") == []

    def test_lookups_by_id(self, storage: PipelineResultsStorage) -> None:
        results, task_executions, task_results = _tree(_build(storage))
        for result in results:
            found_result = storage.get_pipeline_result(result.get_id())
            assert found_result is not None and found_result.get_id() == result.get_id()
        for task_execution in task_executions:
            found_te = storage.get_task_execution(task_execution.get_id())
            assert found_te is not None and found_te.get_id() == task_execution.get_id()
            assert found_te.get_pipeline_task() == task_execution.get_pipeline_task()
        for task_result in task_results:
            found_tr = storage.get_task_result(task_result.get_id())
            assert found_tr is not None and found_tr.get_id() == task_result.get_id()
        assert storage.get_pipeline_result("no-such-id") is None
        assert storage.get_task_execution("no-such-id") is None
        assert storage.get_task_result("no-such-id") is None

    def test_lookups_with_an_id_of_another_kind_give_none(
        self, storage: PipelineResultsStorage
    ) -> None:
        execution = _build(storage)
        results, task_executions, task_results = _tree(execution)
        ids = {
            "execution": execution.get_id(),
            "result": results[0].get_id(),
            "task_execution": task_executions[0].get_id(),
            "task_result": task_results[0].get_id(),
        }
        lookups: dict[str, Callable[[str], PipelineStorageObject | None]] = {
            "result": storage.get_pipeline_result,
            "task_execution": storage.get_task_execution,
            "task_result": storage.get_task_result,
        }
        for kind, lookup in lookups.items():
            for other_kind, other_id in ids.items():
                if other_kind != kind:
                    assert lookup(other_id) is None, (kind, other_kind)
        for object_id in ids.values():
            assert storage.get_pipeline_execution(object_id) is None

    def test_filters_with_an_id_of_another_kind_give_nothing(
        self, storage: PipelineResultsStorage
    ) -> None:
        results, task_executions, task_results = _tree(_build(storage))
        te_id, tr_id, result_id = (
            task_executions[0].get_id(),
            task_results[0].get_id(),
            results[0].get_id(),
        )
        assert list(storage.get_task_executions(pipeline_result_id=te_id)) == []
        assert list(storage.get_task_results(pipeline_result_id=tr_id)) == []
        assert list(storage.get_task_results(task_execution_id=result_id)) == []
        assert list(storage.get_task_results(task_execution_id=tr_id)) == []
