"""A conformance suite for results storages, and the stand-ins it builds runs from.

Every storage must behave as :mod:`pipelines_events.results.base` documents. To check a
storage of your own, subclass :class:`StorageConformanceTests` in a test module and give
the class a fixture named ``storage`` that returns a fresh, empty storage::

    import pytest

    from pipelines_events.testing import StorageConformanceTests
    from myapp.storage import MyStorage


    class TestMyStorage(StorageConformanceTests):
        @pytest.fixture
        def storage(self, tmp_path):
            return MyStorage(path=tmp_path / "results.db")

Run it with ``pytest``: every test of the suite runs against ``MyStorage``. A fixture
that holds files or connections can ``yield`` the storage and close it afterwards. The
suite needs the ``test`` extra (pytest and freezegun), not the pipeline runtime: it
builds runs from :class:`ExamplePipeline` and :class:`ExampleTask`, stand-ins for tests
only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest
from freezegun import freeze_time

from pipelines_events.errors import InvalidValueError
from pipelines_events.events import MAX_DEPTH
from pipelines_events.reporters import PipelineReporter
from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResult,
    PipelineResultsStorage,
    PipelineStorageObject,
    TaskExecution,
    TaskResult,
)
from pipelines_events.status import PipelineTaskStatus

__all__ = [
    "ExamplePipeline",
    "ExampleReporter",
    "ExampleRunner",
    "ExampleTask",
    "StorageConformanceTests",
    "describe_storage",
]

PENDING = PipelineTaskStatus.PENDING
RUNNING = PipelineTaskStatus.RUNNING
DONE = PipelineTaskStatus.DONE
CANCELLED = PipelineTaskStatus.CANCELLED
RUNTIME_ERROR = PipelineTaskStatus.RUNTIME_ERROR
FINAL = sorted(PipelineTaskStatus.final_statuses(), key=lambda s: s.value)
FAILED = sorted(PipelineTaskStatus.failed_statuses(), key=lambda s: s.value)
ERRORS = sorted(PipelineTaskStatus.error_statuses(), key=lambda s: s.value)


def _identity(obj: Any) -> Any:
    return obj


class ExampleTask:
    """A stand-in for a task, for tests only: satisfies ``BuildableTask``.

    ``objects`` is the task iterator (None: one task result); ``serialize`` turns each
    object into what is stored.
    """

    def __init__(
        self,
        pipeline_task: str,
        *,
        task_id: str | None = None,
        config: Any = None,
        objects: Sequence[Any] | None = None,
        serialize: Callable[[Any], Any] = _identity,
    ) -> None:
        self.pipeline_task = pipeline_task
        self.task_id = task_id if task_id is not None else f"tests.{pipeline_task}"
        self.config = config
        self.objects = objects
        self.serialize = serialize

    def get_serializable_config(self) -> Any:
        return self.config

    def get_iterator(self) -> Any:
        return None if self.objects is None else iter(list(self.objects))

    def get_serializable_task_object(self, obj: Any) -> Any:
        return self.serialize(obj)


class ExamplePipeline:
    """A stand-in for a pipeline, for tests only: satisfies ``BuildablePipeline``.

    ``objects`` is the pipeline iterator (None: one pipeline result); ``serialize`` turns
    each object into what is stored.
    """

    def __init__(
        self,
        pipeline_id: str = "tests.ExamplePipeline",
        tasks: Sequence[ExampleTask] = (),
        *,
        objects: Sequence[Any] | None = None,
        serialize: Callable[[Any], Any] = _identity,
    ) -> None:
        self.pipeline_id = pipeline_id
        self.tasks = list(tasks)
        self.objects = objects
        self.serialize = serialize

    def get_id(self) -> str:
        return self.pipeline_id

    def get_iterator(self) -> Any:
        return None if self.objects is None else iter(list(self.objects))

    def get_serializable_pipeline_object(self, obj: Any) -> Any:
        return self.serialize(obj)

    def get_build_tasks(self) -> Sequence[ExampleTask]:
        return list(self.tasks)


class ExampleRunner:
    """A stand-in runner, for tests only: its class path is what a storage records."""


class ExampleReporter(PipelineReporter):
    """A reporter for tests only: keeps every report it hears in ``reports``, as
    ``(context object, status, message)``."""

    def __init__(self) -> None:
        self.reports: list[tuple[PipelineStorageObject, PipelineTaskStatus, str]] = []

    def report(
        self,
        context_object: PipelineStorageObject,
        status: PipelineTaskStatus,
        message: str,
    ) -> None:
        self.reports.append((context_object, status, message))


RUNNER_PATH = "pipelines_events.testing.ExampleRunner"
REPORTER_PATH = "pipelines_events.testing.ExampleReporter"


def describe_storage(storage: PipelineResultsStorage) -> dict[str, Any]:
    """Everything a storage's queries show, as plain data (to compare two states)."""
    objects: dict[str, dict[str, Any]] = {}

    def add(obj: PipelineStorageObject, extra: dict[str, Any]) -> None:
        parent = obj.get_parent()
        objects[obj.get_id()] = {
            "kind": obj.kind,
            "run_id": obj.get_run_id(),
            "pipeline_id": obj.get_pipeline_id(),
            "task_id": obj.get_task_id(),
            "status": obj.get_status(),
            "started": obj.get_started(),
            "completed": obj.get_completed(),
            "message": obj.get_message(),
            "parent": None if parent is None else parent.get_id(),
            "children": [child.get_id() for child in obj.get_children()],
            **extra,
        }

    for execution in storage.get_pipeline_executions():
        add(
            execution,
            {
                "input_data": execution.get_input_data(),
                "runner": execution.get_runner(),
                "reporter": execution.get_reporter(),
            },
        )
        for result in execution.get_pipeline_results():
            add(result, {"pipeline_object": result.get_serializable_pipeline_object()})
            for task_execution in result.get_task_executions():
                add(
                    task_execution,
                    {
                        "pipeline_task": task_execution.get_pipeline_task(),
                        "config": task_execution.get_config(),
                    },
                )
                for task_result in task_execution.get_task_results():
                    add(
                        task_result,
                        {
                            "task_object": task_result.get_serializable_task_object(),
                            "duration": task_result.get_duration(),
                        },
                    )
    return {
        "objects": objects,
        "runs": [e.get_run_id() for e in storage.get_pipeline_executions()],
        "pipeline_results": _ids(storage.get_pipeline_results()),
        "task_executions": _ids(storage.get_task_executions()),
        "task_results": _ids(storage.get_task_results()),
        "digest": storage.get_pipeline_digest(),
    }


def _ids(objects: Sequence[PipelineStorageObject]) -> list[str]:
    return [obj.get_id() for obj in objects]


def _example_pipeline(pipeline_id: str = "tests.ExamplePipeline") -> ExamplePipeline:
    """Two pipeline objects; task ``first`` without an iterator, ``second`` with three."""
    return ExamplePipeline(
        pipeline_id,
        [
            ExampleTask("first", config={"retries": 2}),
            ExampleTask("second", objects=["a", "b", "c"], serialize=lambda o: {"letter": o}),
        ],
        objects=[1, 2],
        serialize=lambda o: {"n": o},
    )


def _single_pipeline(pipeline_id: str = "tests.SinglePipeline", items: int = 2) -> ExamplePipeline:
    """One pipeline result, one task execution with ``items`` task results."""
    return ExamplePipeline(pipeline_id, [ExampleTask("only", objects=list(range(items)))])


def _build(
    storage: PipelineResultsStorage,
    run_id: str = "run-1",
    pipeline: ExamplePipeline | None = None,
    input_data: Any = None,
    build_all: bool = True,
) -> PipelineExecution:
    return storage.build_pipeline_execution(
        pipeline if pipeline is not None else _example_pipeline(),
        run_id,
        ExampleRunner(),
        ExampleReporter(),
        {"source": "tests"} if input_data is None else input_data,
        build_all,
    )


def _tree(
    execution: PipelineExecution,
) -> tuple[list[PipelineResult], list[TaskExecution], list[TaskResult]]:
    results = list(execution.get_pipeline_results())
    task_executions = [te for r in results for te in r.get_task_executions()]
    task_results = [tr for te in task_executions for tr in te.get_task_results()]
    return results, task_executions, task_results


def _all_objects(execution: PipelineExecution) -> list[PipelineStorageObject]:
    results, task_executions, task_results = _tree(execution)
    return [execution, *results, *task_executions, *task_results]


def _fresh(storage: PipelineResultsStorage, obj: PipelineStorageObject) -> PipelineStorageObject:
    """The object with ``obj``'s id, read back from the storage."""
    lookups: dict[str, Callable[[str], PipelineStorageObject | None]] = {
        PipelineResult.kind: storage.get_pipeline_result,
        TaskExecution.kind: storage.get_task_execution,
        TaskResult.kind: storage.get_task_result,
    }
    if isinstance(obj, PipelineExecution):
        found: PipelineStorageObject | None = storage.get_pipeline_execution(obj.get_run_id())
    else:
        found = lookups[obj.kind](obj.get_id())
    assert found is not None, f"{obj.kind} {obj.get_id()} is not in the storage"
    assert found.get_id() == obj.get_id()
    return found


def _status(storage: PipelineResultsStorage, obj: PipelineStorageObject) -> PipelineTaskStatus:
    return _fresh(storage, obj).get_status()


def _counts(storage: PipelineResultsStorage) -> tuple[int, int, int, int]:
    return (
        len(storage.get_pipeline_executions()),
        len(storage.get_pipeline_results()),
        len(storage.get_task_executions()),
        len(storage.get_task_results()),
    )


T0 = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)


def _nested(levels: int) -> Any:
    """A value of ``levels`` lists and dicts inside one another, alternating."""
    value: Any = "bottom"
    for level in range(levels):
        value = [value] if level % 2 else {"down": value}
    return value


class StorageConformanceTests:
    """Tests every results storage must pass; subclass it and provide a ``storage`` fixture.

    The fixture returns a fresh, empty :class:`PipelineResultsStorage`. A storage that
    indexes the fields identifying an object and refuses ``set_`` of them sets
    ``refuses_identifying_fields = True`` (the seed's rule is that ``set_foo`` sets them).
    """

    refuses_identifying_fields: ClassVar[bool] = False

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
            before = describe_storage(storage)
            assert task_result.report_status_change(None, RUNNING, "second") is False
        assert describe_storage(storage) == before
        fresh = _fresh(storage, task_result)
        assert fresh.get_started() == T0
        assert fresh.get_message() == "first"

    def test_a_status_never_goes_back(self, storage: PipelineResultsStorage) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        task_result.report_status_change(None, RUNNING)
        before = describe_storage(storage)
        assert task_result.report_status_change(None, PENDING) is False
        assert describe_storage(storage) == before
        assert _status(storage, task_result) is RUNNING

    @pytest.mark.parametrize("final", FINAL, ids=lambda s: s.name)
    def test_a_final_status_is_never_left(
        self, storage: PipelineResultsStorage, final: PipelineTaskStatus
    ) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        assert task_result.report_status_change(None, final, "end") is True
        before = describe_storage(storage)
        for status in PipelineTaskStatus:
            assert task_result.report_status_change(None, status, "again") is False, status
        assert describe_storage(storage) == before
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
        before = describe_storage(storage)
        with pytest.raises(InvalidValueError, match="'BOGUS' is not a status"):
            task_results[0].report_status_change(None, "BOGUS")
        with pytest.raises(InvalidValueError, match="message"):
            task_results[0].report_status_change(None, RUNNING, 42)  # type: ignore[arg-type]
        assert describe_storage(storage) == before

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

    # -- the get_/set_ fallback ---------------------------------------------------------

    def test_a_defined_getter_answers_with_its_type(self, storage: PipelineResultsStorage) -> None:
        """``get_status`` is defined: it gives the status member back, on the object that
        set it and on a fresh one, never the stored text the fallback would give."""
        for obj in _all_objects(_build(storage)):
            assert obj.get_status() is PENDING
            obj.set_status(RUNNING)
            assert obj.get_status() is RUNNING
            assert _fresh(storage, obj).get_status() is RUNNING

    def test_get_falls_back_to_the_attribute(self, storage: PipelineResultsStorage) -> None:
        for obj in _all_objects(_build(storage)):
            assert not hasattr(obj, "get_colour")
            obj.set_colour("blue")
            assert obj.get_colour() == "blue"
            assert _fresh(storage, obj).get_colour() == "blue"

    def test_unknown_attribute_raises_attribute_error(
        self, storage: PipelineResultsStorage
    ) -> None:
        execution = _build(storage)
        results, task_executions, _ = _tree(execution)
        for obj in _all_objects(execution):
            with pytest.raises(AttributeError, match="no_such_field"):
                obj.get_no_such_field()
            with pytest.raises(AttributeError):
                obj.no_such_attribute  # noqa: B018
            with pytest.raises(AttributeError):
                obj.get_  # noqa: B018
        missing: list[tuple[PipelineStorageObject, str]] = [
            (execution, "get_config"),
            (execution, "get_pipeline_task"),
            (execution, "get_serializable_pipeline_object"),
            (results[0], "get_config"),
            (results[0], "get_serializable_task_object"),
            (task_executions[0], "get_serializable_task_object"),
        ]
        for obj, name in missing:
            with pytest.raises(AttributeError):
                getattr(obj, name)()

    @pytest.mark.parametrize(
        "value",
        [
            "text ünïcødé ✓",
            "",
            0,
            -(2**53),
            2**64,
            -(2**63) - 1,
            2**200,
            1.5,
            -0.0,
            5e-324,
            1.7976931348623157e308,
            True,
            False,
            None,
            [1, "two", [3.25, None]],
            {"nested": {"list": [1, 2], "flag": False}, "empty": {}},
            [],
        ],
        ids=repr,
    )
    def test_set_then_get_round_trips_json_values(
        self, storage: PipelineResultsStorage, value: Any
    ) -> None:
        for obj in _all_objects(_build(storage, pipeline=_single_pipeline(items=1))):
            obj.set_payload(value)
            for source in (obj, _fresh(storage, obj)):
                got = source.get_payload()
                assert got == value and type(got) is type(value)

    def test_set_then_get_round_trips_aware_datetimes(
        self, storage: PipelineResultsStorage
    ) -> None:
        moment = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5)))
        for obj in _all_objects(_build(storage, pipeline=_single_pipeline(items=1))):
            obj.set_deadline(moment)
            obj.set_started(moment)
            for source in (obj, _fresh(storage, obj)):
                assert source.get_deadline() == moment
                assert source.get_deadline().utcoffset() is not None
                assert source.get_started() == moment

    def test_set_overwrites_and_stays_on_its_object(self, storage: PipelineResultsStorage) -> None:
        _, _, task_results = _tree(_build(storage))
        task_results[0].set_payload(1)
        task_results[0].set_payload({"v": 2})
        assert _fresh(storage, task_results[0]).get_payload() == {"v": 2}
        with pytest.raises(AttributeError):
            _fresh(storage, task_results[1]).get_payload()

    def test_set_status_and_times_directly(self, storage: PipelineResultsStorage) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        task_result.set_status(RUNNING)
        task_result.set_started(T0)
        task_result.set_completed(T0 + timedelta(seconds=1))
        task_result.set_message("by hand")
        task_result.save()
        fresh = _fresh(storage, task_result)
        assert fresh.get_status() is RUNNING
        assert fresh.get_started() == T0
        assert fresh.get_completed() == T0 + timedelta(seconds=1)
        assert fresh.get_message() == "by hand"
        assert isinstance(fresh, TaskResult) and fresh.get_duration() == 1.0

    # -- what a get_ returns is the caller's ------------------------------------------

    def test_changing_what_a_get_returns_changes_nothing(
        self, storage: PipelineResultsStorage
    ) -> None:
        execution = _build(storage, input_data={"source": "tests", "rows": [1, 2]})
        results, task_executions, task_results = _tree(execution)
        for obj in _all_objects(execution):
            obj.set_payload({"rows": [1, {"deep": [2]}], "flag": True})
            obj.set_items([{"n": 1}])
        before = describe_storage(storage)
        for obj in _all_objects(execution):
            payload = obj.get_payload()
            payload["rows"][1]["deep"].append(3)
            payload["rows"].append("more")
            payload["added"] = 1
            obj.get_items()[0]["n"] = 99
            obj.get_items().append("x")
        for obj in [execution, *results, *task_executions, *task_results]:
            data = obj.get_input_data()
            data["rows"].append(3)
            data.setdefault("retries", 3)
        for obj in [*results, *task_executions, *task_results]:
            obj.get_serializable_pipeline_object()["n"] = -1
        for obj in [*task_executions, *task_results]:
            config = obj.get_config()
            if config is not None:
                config.setdefault("retries", 3)
                config["added"] = True
        for task_result in task_results:
            task_object = task_result.get_serializable_task_object()
            if isinstance(task_object, dict):
                task_object["letter"] = "changed"
        assert describe_storage(storage) == before
        for obj in _all_objects(execution):
            fresh = _fresh(storage, obj)
            assert fresh.get_payload() == {"rows": [1, {"deep": [2]}], "flag": True}
            assert fresh.get_items() == [{"n": 1}]

    def test_changing_a_value_after_storing_it_changes_nothing(
        self, storage: PipelineResultsStorage
    ) -> None:
        config: dict[str, Any] = {"retries": 2, "steps": ["a"]}
        task_object: dict[str, Any] = {"letter": "a", "tags": ["x"]}
        pipeline_object: dict[str, Any] = {"n": 1, "path": [0]}
        input_data: dict[str, Any] = {"source": "tests", "rows": [1]}
        pipeline = ExamplePipeline(
            "tests.P",
            [ExampleTask("only", config=config, objects=[task_object])],
            objects=[pipeline_object],
        )
        execution = _build(storage, pipeline=pipeline, input_data=input_data)
        _, (task_execution,), (task_result,) = _tree(execution)
        payload: dict[str, Any] = {"rows": [1]}
        task_result.set_payload(payload)
        config["steps"].append("b")
        config["retries"] = 5
        task_object["tags"].append("y")
        pipeline_object["path"].append(1)
        input_data["rows"].append(2)
        payload["rows"].append(2)
        fresh = _fresh(storage, task_result)
        assert isinstance(fresh, TaskResult)
        assert fresh.get_config() == {"retries": 2, "steps": ["a"]}
        assert fresh.get_serializable_task_object() == {"letter": "a", "tags": ["x"]}
        assert fresh.get_serializable_pipeline_object() == {"n": 1, "path": [0]}
        assert fresh.get_input_data() == {"source": "tests", "rows": [1]}
        assert fresh.get_payload() == {"rows": [1]}
        assert _fresh(storage, task_execution).get_config() == {"retries": 2, "steps": ["a"]}

    # -- nesting ------------------------------------------------------------------------

    def test_values_nested_to_the_limit_round_trip_and_deeper_are_refused(
        self, storage: PipelineResultsStorage
    ) -> None:
        at_limit = _nested(MAX_DEPTH)
        execution = _build(
            storage,
            pipeline=ExamplePipeline(
                "tests.P",
                [ExampleTask("only", config={"deep": _nested(MAX_DEPTH - 1)})],
                objects=[_nested(MAX_DEPTH)],
            ),
            input_data=_nested(MAX_DEPTH),
        )
        _, (task_execution,), (task_result,) = _tree(execution)
        task_result.set_payload(at_limit)
        assert _fresh(storage, task_result).get_payload() == at_limit
        assert _fresh(storage, execution).get_input_data() == at_limit
        config = _fresh(storage, task_execution).get_config()
        assert config == {"deep": _nested(MAX_DEPTH - 1)}
        before = describe_storage(storage)
        too_deep = _nested(MAX_DEPTH + 1)
        for value in (too_deep, {"key": _nested(MAX_DEPTH)}, (_nested(MAX_DEPTH),)):
            with pytest.raises(InvalidValueError, match="'payload'") as caught:
                task_result.set_payload(value)
            caught.match(f"more than {MAX_DEPTH} levels deep")
        with pytest.raises(InvalidValueError, match=r"'input_data'.*more than 64 levels deep"):
            _build(storage, "run-2", input_data=too_deep)
        too_deep_config = ExamplePipeline("tests.P", [ExampleTask("a", config=too_deep)])
        with pytest.raises(InvalidValueError, match=r"'config'.*more than 64 levels deep"):
            _build(storage, "run-3", too_deep_config)
        assert describe_storage(storage) == before
        assert _fresh(storage, task_result).get_payload() == at_limit

    # -- bad values ---------------------------------------------------------------------

    def test_set_status_refuses_what_is_not_a_status(self, storage: PipelineResultsStorage) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        before = describe_storage(storage)
        with pytest.raises(InvalidValueError, match="'BOGUS' is not a status"):
            task_result.set_status("BOGUS")  # type: ignore[arg-type]
        for value in ("DONE", 3, None):
            with pytest.raises(InvalidValueError, match="status"):
                task_result.set_status(value)  # type: ignore[arg-type]
        assert describe_storage(storage) == before

    def test_set_times_refuse_what_is_not_an_aware_datetime(
        self, storage: PipelineResultsStorage
    ) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        before = describe_storage(storage)
        with pytest.raises(InvalidValueError, match="'started'"):
            task_result.set_started("yesterday")  # type: ignore[arg-type]
        with pytest.raises(InvalidValueError, match="'completed'"):
            task_result.set_completed(1700000000)  # type: ignore[arg-type]
        with pytest.raises(InvalidValueError, match="naive datetime"):
            task_result.set_started(datetime(2026, 1, 1, 12, 0))
        with pytest.raises(InvalidValueError, match="'message'"):
            task_result.set_message(["not", "a", "str"])  # type: ignore[arg-type]
        assert describe_storage(storage) == before

    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            ({1, 2}, "set"),
            (float("nan"), "NaN"),
            (float("inf"), "infinity"),
            ({"rows": [1.0, math.nan]}, r"payload\['rows'\]\[1\]"),
            ({1: "int key"}, "key"),
            (object(), "object"),
            ("lone \ud800 surrogate", "surrogate"),
        ],
        ids=["set", "nan", "inf", "nested-nan", "int-key", "object", "surrogate"],
    )
    def test_unstorable_values_are_refused(
        self, storage: PipelineResultsStorage, value: Any, problem: str
    ) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        task_result.set_payload("kept")
        before = describe_storage(storage)
        with pytest.raises(InvalidValueError, match="'payload'") as caught:
            task_result.set_payload(value)
        caught.match(problem)
        assert describe_storage(storage) == before
        assert _fresh(storage, task_result).get_payload() == "kept"
        with pytest.raises(InvalidValueError, match="'fresh_field'"):
            task_result.set_fresh_field(value)
        with pytest.raises(AttributeError):
            _fresh(storage, task_result).get_fresh_field()

    @pytest.mark.parametrize(
        "field", ["id", "run_id", "pipeline_id", "task_id", "pipeline_task", "parent_id"]
    )
    def test_identifying_fields_follow_the_seed_or_are_refused(
        self, storage: PipelineResultsStorage, field: str
    ) -> None:
        """The seed: ``set_foo`` sets ``foo``. A storage that indexes the fields that
        identify an object (``refuses_identifying_fields``) refuses instead, naming the
        field, and changes nothing."""
        execution = _build(storage)
        _, _, task_results = _tree(execution)
        if not self.refuses_identifying_fields:
            # (An execution has no task id, and a task result's task name is its task
            # execution's: those getters are defined, so they do not read the field.)
            derived = {(PipelineExecution.kind, "task_id"), (TaskResult.kind, "pipeline_task")}
            for obj in (execution, task_results[0]):
                getattr(obj, f"set_{field}")(f"changed-{field}")
                if (obj.kind, field) not in derived:
                    assert getattr(obj, f"get_{field}")() == f"changed-{field}"
            return
        before = describe_storage(storage)
        for obj in (execution, task_results[0]):
            with pytest.raises(InvalidValueError, match=f"cannot set field '{field}'"):
                getattr(obj, f"set_{field}")("changed")
        assert describe_storage(storage) == before

    # -- the seed's get_/set_ rules on the objects users hold -------------------------------

    def test_get_falls_back_to_a_plain_attribute_of_the_object_held(
        self, storage: PipelineResultsStorage
    ) -> None:
        for obj in _all_objects(_build(storage)):
            try:
                obj.note = "x"  # type: ignore[attr-defined]
            except AttributeError:
                continue  # objects with __slots__ take no new attributes: nothing to find
            assert obj.get_note() == "x"

    def test_get_falls_back_to_a_property_of_a_subclass(
        self, storage: PipelineResultsStorage
    ) -> None:
        for obj in _all_objects(_build(storage)):
            base = type(obj)
            with_property = type(
                f"Coloured{base.__name__}",
                (base,),
                {"colour": property(lambda self: f"red {self.get_id()}")},
            )
            obj.__class__ = with_property
            assert obj.get_colour() == f"red {obj.get_id()}"

    def test_a_defined_set_method_is_used_instead_of_the_fallback(
        self, storage: PipelineResultsStorage
    ) -> None:
        for obj in _all_objects(_build(storage)):
            base = type(obj)
            heard: list[Any] = []
            with_setter = type(
                f"Noted{base.__name__}",
                (base,),
                {"set_note": lambda self, value, heard=heard: heard.append(value)},
            )
            obj.__class__ = with_setter
            obj.set_note("by the method")
            assert heard == ["by the method"]
            with pytest.raises(AttributeError, match="note"):
                _fresh(storage, obj).get_note()

    def test_a_defined_get_method_is_used_before_the_fallback(
        self, storage: PipelineResultsStorage
    ) -> None:
        for obj in _all_objects(_build(storage)):
            base = type(obj)
            obj.set_note("stored")
            with_getter = type(
                f"Read{base.__name__}", (base,), {"get_note": lambda self: "from the method"}
            )
            obj.__class__ = with_getter
            assert obj.get_note() == "from the method"

    # -- refused builds -----------------------------------------------------------------

    def test_a_run_id_is_used_once(self, storage: PipelineResultsStorage) -> None:
        execution = _build(storage, "run-1")
        before = describe_storage(storage)
        with pytest.raises(InvalidValueError, match="run-1"):
            _build(storage, "run-1", _single_pipeline("tests.Other"))
        assert describe_storage(storage) == before
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
        before = describe_storage(storage)
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
        assert describe_storage(storage) == before
        for run_id in ("run-1", "run-2", "run-3", "run-4"):
            assert storage.get_pipeline_execution(run_id) is None

    # -- digest -------------------------------------------------------------------------

    def test_digest_of_an_empty_storage(self, storage: PipelineResultsStorage) -> None:
        assert storage.get_pipeline_digest() == {}

    def test_digest_counts_pending_results(self, storage: PipelineResultsStorage) -> None:
        _build(storage)
        item = storage.get_pipeline_digest()["tests.ExamplePipeline"]
        assert (item.total_runs, item.total_success, item.total_failure) == (2, 0, 0)
        assert item.last_ran is None
        assert item.average_runtime is None

    def test_digest_per_pipeline(self, storage: PipelineResultsStorage) -> None:
        with freeze_time(T0) as frozen:
            # tests.Single, run-1: one result, done in 10 s.
            (_, _, (a1, a2)) = _tree(_build(storage, "run-1", _single_pipeline()))
            a1.report_status_change(None, RUNNING)
            frozen.tick(timedelta(seconds=10))
            a1.report_status_change(None, DONE)
            a2.report_status_change(None, DONE)
            # tests.Single, run-2: one result failing after 20 s, started later.
            frozen.tick(timedelta(seconds=50))
            (_, _, (b1, b2)) = _tree(_build(storage, "run-2", _single_pipeline()))
            b1.report_status_change(None, RUNNING)
            frozen.tick(timedelta(seconds=20))
            b1.report_status_change(None, RUNTIME_ERROR, "boom")
            b2.report_status_change(None, CANCELLED)
            # tests.Single, run-3: one result still running, started last.
            frozen.tick(timedelta(seconds=30))
            (_, _, (c1, _c2)) = _tree(_build(storage, "run-3", _single_pipeline()))
            c1.report_status_change(None, RUNNING)
            # tests.ExamplePipeline, run-4: two results, one done in 4 s, one cancelled.
            frozen.tick(timedelta(seconds=10))
            (results, _, task_results) = _tree(_build(storage, "run-4"))
            for task_result in task_results[:4]:
                task_result.report_status_change(None, RUNNING)
            frozen.tick(timedelta(seconds=4))
            for task_result in task_results[:4]:
                task_result.report_status_change(None, DONE)
            task_results[4].report_status_change(None, CANCELLED)
            for task_result in task_results[5:]:
                task_result.report_status_change(None, DONE)
        assert [_status(storage, r) for r in results] == [DONE, CANCELLED]
        digest = storage.get_pipeline_digest()
        assert set(digest) == {"tests.SinglePipeline", "tests.ExamplePipeline"}
        single = digest["tests.SinglePipeline"]
        assert (single.total_runs, single.total_success, single.total_failure) == (3, 1, 1)
        assert single.last_ran == T0 + timedelta(seconds=110)
        assert single.average_runtime == 15.0
        example = digest["tests.ExamplePipeline"]
        # A cancelled pipeline result is a failure, as in the original.
        assert (example.total_runs, example.total_success, example.total_failure) == (2, 1, 1)
        assert example.last_ran == T0 + timedelta(seconds=120)
        assert example.average_runtime == 4.0

    @pytest.mark.parametrize("failure", FAILED, ids=lambda s: s.name)
    def test_digest_counts_every_failed_status_cancelled_included(
        self, storage: PipelineResultsStorage, failure: PipelineTaskStatus
    ) -> None:
        (results, _, _) = _tree(_build(storage, pipeline=_single_pipeline()))
        results[0].report_status_change(None, failure, propagate=False)
        item = storage.get_pipeline_digest()["tests.SinglePipeline"]
        assert (item.total_runs, item.total_success, item.total_failure) == (1, 0, 1)

    def test_digest_follows_set_calls(self, storage: PipelineResultsStorage) -> None:
        (results, _, _) = _tree(_build(storage, pipeline=_single_pipeline()))
        result = results[0]
        result.set_started(T0 + timedelta(hours=1))
        result.set_completed(T0 + timedelta(hours=1, seconds=8))
        result.set_status(DONE)
        item = storage.get_pipeline_digest()["tests.SinglePipeline"]
        assert (item.total_success, item.total_failure) == (1, 0)
        assert item.last_ran == T0 + timedelta(hours=1)
        assert item.average_runtime == 8.0
        result.set_started(T0)
        result.set_completed(T0 + timedelta(seconds=2))
        item = storage.get_pipeline_digest()["tests.SinglePipeline"]
        assert item.last_ran == T0
        assert item.average_runtime == 2.0

    # -- cleanup ------------------------------------------------------------------------

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
        removed = storage.cleanup()
        assert sorted(removed) == ["run-done", "run-failed"]
        assert [e.get_run_id() for e in storage.get_pipeline_executions()] == [
            "run-running",
            "run-pending",
        ]
        assert storage.cleanup() == []

    def test_cleanup_of_an_empty_storage(self, storage: PipelineResultsStorage) -> None:
        assert storage.cleanup() == []
        assert storage.cleanup(before=T0) == []

    def test_cleanup_before(self, storage: PipelineResultsStorage) -> None:
        with freeze_time(T0) as frozen:
            for number in range(1, 4):
                self._finish(_build(storage, f"run-{number}", _single_pipeline()), DONE)
                frozen.tick(timedelta(minutes=10))
        # Completed at T0, T0 + 10 min and T0 + 20 min.
        assert storage.cleanup(before=T0) == []
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
            k: v
            for k, v in describe_storage(storage)["objects"].items()
            if v["run_id"] == "run-kept"
        }
        gone_results, gone_tes, gone_trs = _tree(gone)
        assert sorted(storage.cleanup()) == ["run-gone", "run-other"]

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
        state = describe_storage(storage)
        assert state["objects"] == kept_state
        assert set(state["runs"]) == {"run-kept"}
        assert state["digest"].keys() == {"tests.ExamplePipeline"}
        item = state["digest"]["tests.ExamplePipeline"]
        assert (item.total_runs, item.total_success, item.total_failure) == (2, 0, 0)

    def test_cleanup_refuses_a_naive_before(self, storage: PipelineResultsStorage) -> None:
        self._finish(_build(storage, pipeline=_single_pipeline()), DONE)
        before = describe_storage(storage)
        with pytest.raises(InvalidValueError, match="aware datetime"):
            storage.cleanup(before=datetime(2100, 1, 1))
        with pytest.raises(InvalidValueError, match="before"):
            storage.cleanup(before="2100-01-01")  # type: ignore[arg-type]
        assert describe_storage(storage) == before
