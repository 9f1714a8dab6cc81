"""The eager runner: order, the objects tasks see, failures, cancellation, propagation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

from pipelines_events.conf import settings
from pipelines_events.pipeline import Pipeline
from pipelines_events.registry import register_pipeline
from pipelines_events.results import helpers
from pipelines_events.results.base import PipelineExecution, PipelineStorageObject
from pipelines_events.runners.eager import Runner
from pipelines_events.status import PipelineTaskStatus as S
from pipelines_events.task import Task
from pipelines_events.testing import ExamplePipeline, ExampleTask

EVENTLOG = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"
MEMORY = "pipelines_events.results.memory.MemoryPipelineResultsStorage"


@pytest.fixture(autouse=True, params=["eventlog", "postgres", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every test runs against the event-log storage (own log, a file or PostgreSQL) and
    the memory storage."""
    setting: Any = (EVENTLOG, {"path": tmp_path / "runs.jsonl"})
    if request.param == "memory":
        setting = MEMORY
    elif request.param == "postgres":
        setting = (EVENTLOG, {"path": request.getfixturevalue("pg").log_url})
    helpers.reset_storage_object()
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=setting):
        yield str(request.param)
        helpers.reset_storage_object()


class City:
    """Not JSON-able: only its name is stored."""

    def __init__(self, name: str) -> None:
        self.name = name


CITIES = [City("oslo"), City("lima"), City("rome")]

calls: list[tuple[str, Any, Any]] = []


@pytest.fixture(autouse=True)
def clear_calls() -> None:
    calls.clear()


class Step(Task):
    """Records its run; raises for the (city, item) pairs in ``fail_on``."""

    fail_on: ClassVar[set[tuple[str, Any]]] = set()

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        calls.append((self.pipeline_task, self.pipeline_object, self.task_object))
        key = (self.pipeline_object.name, self.task_object)
        if key in self.fail_on:
            raise ValueError(f"cannot do {key[1]} for {key[0]}")


class Items(Step):
    """Runs once per item; the items are objects, stored as their name."""

    def get_iterator(self) -> Any:
        return [Item("a"), Item("b"), Item("c")]

    def get_serializable_task_object(self, obj: Any) -> Any:
        return obj.name


class Item:
    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Item) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Item({self.name!r})"


class ByName(Pipeline):
    """Stores each pipeline object by its name."""

    def get_serializable_pipeline_object(self, obj: Any) -> Any:
        return obj.name


class Trip(ByName):
    summarise = Step()
    fetch = Step()
    items = Items()
    ordering: ClassVar[dict[str, list[str]]] = {"items": ["fetch"], "summarise": ["items"]}

    def get_iterator(self) -> Any:
        return CITIES


@pytest.fixture(autouse=True)
def no_failures() -> Iterator[None]:
    Step.fail_on = set()
    yield
    Step.fail_on = set()


def _by_city(execution: PipelineExecution) -> dict[str, Any]:
    return {r.get_serializable_pipeline_object(): r for r in execution.get_pipeline_results()}


def _task_results(result: Any) -> dict[tuple[str, Any], tuple[S, str]]:
    return {
        (te.get_pipeline_task(), tr.get_serializable_task_object()): (
            tr.get_status(),
            tr.get_message(),
        )
        for te in result.get_task_executions()
        for tr in te.get_task_results()
    }


def test_tasks_run_in_dependency_order_and_see_the_original_objects() -> None:
    Trip().start(run_id="order")

    expected: list[tuple[str, City, Item | None]] = []
    for city in CITIES:
        expected.append(("fetch", city, None))
        expected.extend(("items", city, Item(name)) for name in "abc")
        expected.append(("summarise", city, None))
    assert calls == expected
    assert all(call[1] is city for call, city in zip(calls[::5], CITIES, strict=True))


def test_the_runner_sees_the_pipeline_object_that_was_started() -> None:
    class Chosen(ByName):
        step = Step()

        def __init__(self, cities: list[City]) -> None:
            self.cities = cities

        def get_iterator(self) -> Any:
            return self.cities

    chosen = [City("quito"), City("bern")]

    execution = Chosen(chosen).start(run_id="chosen")

    assert execution.get_status() is S.DONE
    assert [call[1] for call in calls] == chosen
    assert [r.get_serializable_pipeline_object() for r in execution.get_pipeline_results()] == [
        "quito",
        "bern",
    ]


def test_the_task_objects_are_cleared_after_each_run() -> None:
    seen: list[Task] = []

    class Keep(Task):
        def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
            seen.append(self)

    class KeepPipeline(Pipeline):
        keep = Keep()

        def get_iterator(self) -> Any:
            return ["x"]

    KeepPipeline().start(run_id="cleared")

    assert len(seen) == 1
    assert seen[0].pipeline_object is None and seen[0].task_object is None
    assert KeepPipeline.get_tasks()["keep"] is not seen[0]


def test_a_successful_run_leaves_nothing_running() -> None:
    execution = Trip().start(run_id="done")

    for obj in _all(execution):
        assert obj.get_status() is S.DONE, obj
        started, completed = obj.get_started(), obj.get_completed()
        assert started is not None and completed is not None and started <= completed


def _all(execution: PipelineExecution) -> list[PipelineStorageObject]:
    objects: list[PipelineStorageObject] = [execution]
    for result in execution.get_pipeline_results():
        objects.append(result)
        for te in result.get_task_executions():
            objects.append(te)
            objects.extend(te.get_task_results())
    return objects


def test_a_runtime_error_fails_upwards_and_cancels_the_rest_of_its_pipeline_result() -> None:
    Step.fail_on = {("lima", Item("b"))}

    execution = Trip().start(run_id="fail")

    error = f"ValueError: cannot do {Item('b')} for lima"
    results = _by_city(execution)
    lima = results["lima"]
    assert _task_results(lima) == {
        ("fetch", None): (S.DONE, ""),
        ("items", "a"): (S.DONE, ""),
        ("items", "b"): (S.RUNTIME_ERROR, error),
        ("items", "c"): (S.CANCELLED, "cancelled: task 'items' failed"),
        ("summarise", None): (S.CANCELLED, "cancelled: task 'items' failed"),
    }
    task_executions = {te.get_pipeline_task(): te for te in lima.get_task_executions()}
    assert task_executions["fetch"].get_status() is S.DONE
    assert task_executions["items"].get_status() is S.RUNTIME_ERROR
    assert task_executions["items"].get_message() == error
    assert task_executions["summarise"].get_status() is S.CANCELLED
    assert task_executions["summarise"].get_message() == "cancelled: task 'items' failed"
    assert lima.get_status() is S.RUNTIME_ERROR
    assert lima.get_message() == error
    assert execution.get_status() is S.RUNTIME_ERROR
    assert execution.get_message() == error
    # the other pipeline results still ran to the end
    for city in ("oslo", "rome"):
        assert results[city].get_status() is S.DONE
        assert {status for status, _ in _task_results(results[city]).values()} == {S.DONE}
    assert [call for call in calls if call[1].name == "lima"] == [
        ("fetch", CITIES[1], None),
        ("items", CITIES[1], Item("a")),
        ("items", CITIES[1], Item("b")),
    ]
    stored = helpers.get_pipeline_execution("fail")
    assert stored is not None and stored.get_status() is S.RUNTIME_ERROR
    assert not any(obj.get_status() in (S.PENDING, S.RUNNING) for obj in _all(execution))


def test_an_exception_without_text_is_named_by_its_type() -> None:
    class Silent(Task):
        def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
            raise KeyError

    class SilentPipeline(Pipeline):
        silent = Silent()

    execution = SilentPipeline().start(run_id="silent")

    assert execution.get_status() is S.RUNTIME_ERROR
    assert execution.get_message() == "KeyError"


def test_empty_iterators_still_finish_their_objects() -> None:
    class Nothing(Task):
        def get_iterator(self) -> Any:
            return []

        def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
            raise AssertionError("never run")

    class EmptyTask(ByName):
        nothing = Nothing()
        after = Step()

        def get_iterator(self) -> Any:
            return [City("x")]

    class EmptyPipeline(ByName):
        nothing = Nothing()

        def get_iterator(self) -> Any:
            return iter(())

    execution = EmptyTask().start(run_id="empty-task")
    assert [obj.get_status() for obj in _all(execution)] == [S.DONE] * 5
    assert [call[0] for call in calls] == ["after"]

    execution = EmptyPipeline().start(run_id="empty-pipeline")
    assert execution.get_pipeline_results() == []
    assert execution.get_status() is S.DONE


def test_the_runner_can_run_an_execution_built_through_the_helpers() -> None:
    runner = Runner()
    execution = helpers.build_pipeline_execution(Trip(), "built", runner, None, None)
    assert execution.get_status() is S.PENDING

    runner.run(execution, None)  # type: ignore[arg-type]

    assert {obj.get_status() for obj in _all(execution)} == {S.DONE}
    assert len(calls) == 3 * 5


def test_an_iterator_that_changes_between_build_and_run_fails_the_run() -> None:
    class Shrinking(ByName):
        step = Step()
        cities: ClassVar[list[City]] = [City("a"), City("b")]

        def get_iterator(self) -> Any:
            return list(self.cities)

    register_pipeline(Shrinking, replace=True)
    execution = helpers.build_pipeline_execution(Shrinking(), "shrunk", Runner(), None, None)
    Shrinking.cities = [City("a")]

    Runner().run(execution, None)  # type: ignore[arg-type]

    assert execution.get_status() is S.RUNTIME_ERROR
    assert execution.get_message() == (
        "the pipeline iterator gave 1 objects, but the run was built with 2 pipeline results"
    )
    for obj in _all(execution)[1:]:
        assert obj.get_status() is S.CANCELLED
        assert obj.get_message() == "cancelled: the run failed"
    assert calls == []


def test_a_pipeline_that_cannot_be_loaded_fails_the_run() -> None:
    unknown = ExamplePipeline("tests.lost.Pipeline", [ExampleTask("step")])
    execution = helpers.build_pipeline_execution(unknown, "lost", Runner(), None, None)

    Runner().run(execution, None)  # type: ignore[arg-type]

    assert execution.get_status() is S.RUNTIME_ERROR
    assert execution.get_message().startswith("NotRegisteredError: no pipeline with id ")
    assert [obj.get_status() for obj in _all(execution)[1:]] == [S.CANCELLED] * 3
    assert calls == []


def test_a_finished_execution_is_not_run_again() -> None:
    execution = Trip().start(run_id="once")
    count = len(calls)

    Runner().run(execution, None)  # type: ignore[arg-type]

    assert len(calls) == count
    assert execution.get_status() is S.DONE


class Bounds(msgspec.Struct):
    low: int


class NeedsLow(Step):
    ConfigType = Bounds


class NeedsInput(Step):
    InputType = Bounds


def test_the_runner_checks_config_and_input_data_of_executions_it_is_given() -> None:
    class Checked(ByName):
        fine = Step()
        config = NeedsLow(config={"low": 1})
        data = NeedsInput()

        def get_iterator(self) -> Any:
            return [City("x")]

    register_pipeline(Checked, replace=True)
    execution = helpers.build_pipeline_execution(Checked(), "checked", Runner(), None, {"low": "?"})

    Runner().run(execution, None)  # type: ignore[arg-type]

    message = "input data of task 'data': Expected `int`, got `str` - at `$.low`"
    assert _task_results(execution.get_pipeline_results()[0]) == {
        ("fine", None): (S.DONE, ""),
        ("config", None): (S.DONE, ""),
        ("data", None): (S.VALIDATION_ERROR, message),
    }
    assert execution.get_status() is S.VALIDATION_ERROR
    assert execution.get_message() == message
