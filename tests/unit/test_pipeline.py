"""Pipeline and Task: declaration, ordering, validation and Pipeline.start()."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

import pipelines_events
from pipelines_events.conf import settings
from pipelines_events.demo import DemoPipeline
from pipelines_events.errors import InvalidValueError, PipelineDefinitionError
from pipelines_events.pipeline import Pipeline
from pipelines_events.reporters import LoggingReporter
from pipelines_events.results import helpers
from pipelines_events.results.base import PipelineExecution, StatusReporter, class_path
from pipelines_events.runners import PipelineRunner
from pipelines_events.runners.eager import Runner
from pipelines_events.status import PipelineTaskStatus as S
from pipelines_events.task import Task

EVENTLOG = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"


@pytest.fixture(autouse=True)
def log_storage(tmp_path: Path) -> Iterator[Path]:
    """Every test stores into its own event log."""
    path = tmp_path / "runs.jsonl"
    helpers.reset_storage_object()
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=(EVENTLOG, {"path": path})):
        yield path
        helpers.reset_storage_object()


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


class Noop(Task):
    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        return None


class Recorder(Task):
    """Appends (pipeline_task, pipeline_object, task_object, cleaned_data) to ``calls``."""

    calls: ClassVar[list[tuple[str, Any, Any, Any]]] = []

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        self.calls.append(
            (self.pipeline_task, self.pipeline_object, self.task_object, cleaned_data)
        )


@pytest.fixture(autouse=True)
def clear_calls() -> None:
    Recorder.calls.clear()


class Pair(Recorder):
    def get_iterator(self) -> Any:
        return ["x", "y"]


# -- declaration -----------------------------------------------------------------------


class Base(Pipeline):
    first = Noop()
    second = Noop()


class Child(Base):
    third = Noop()
    second = Noop(config={"replaced": True})


class Custom(Pipeline):
    pipeline_id = "custom-pipeline"
    only = Noop()


class CustomIdTask(Noop):
    task_id = "custom-task"


def test_tasks_are_found_in_declaration_order_with_their_names() -> None:
    assert list(Base.get_tasks()) == ["first", "second"]
    assert [task.pipeline_task for task in Base().get_build_tasks()] == ["first", "second"]


def test_inherited_tasks_come_first_and_an_override_keeps_its_place() -> None:
    tasks = Child.get_tasks()
    assert list(tasks) == ["first", "second", "third"]
    assert tasks["second"].config == {"replaced": True}
    assert tasks["first"] is Base.get_tasks()["first"]


def test_a_subclass_can_remove_a_task() -> None:
    class Smaller(Base):
        second = None  # type: ignore[assignment]

    assert list(Smaller.get_tasks()) == ["first"]


def test_ids_default_to_dotted_paths_unless_set() -> None:
    assert Base().get_id() == f"{__name__}.Base" == Base.pipeline_id
    assert Child().get_id() == f"{__name__}.Child"
    assert Custom().get_id() == "custom-pipeline"
    assert Noop.task_id == f"{__name__}.Noop"
    assert CustomIdTask.task_id == "custom-task"

    class AfterCustom(CustomIdTask):
        pass

    assert AfterCustom.task_id == class_path(AfterCustom)


def test_the_package_exports_pipeline_and_task() -> None:
    assert pipelines_events.Pipeline is Pipeline
    assert pipelines_events.Task is Task


def test_task_run_is_abstract() -> None:
    class NoRun(Task):
        pass

    with pytest.raises(TypeError, match="run"):
        NoRun()  # type: ignore[abstract]


def test_the_same_task_object_under_two_names_is_refused() -> None:
    shared = Noop()
    with pytest.raises(PipelineDefinitionError, match="task 'a' is the same Task object as 'b'"):

        class Twice(Pipeline):
            a = shared
            b = shared


def test_a_task_object_shared_by_pipelines_must_keep_its_name() -> None:
    shared = Noop()

    class One(Pipeline):
        a = shared

    class Two(Pipeline):
        a = shared

    assert One.get_tasks()["a"] is Two.get_tasks()["a"]
    with pytest.raises(PipelineDefinitionError, match="task 'c' is the same Task object as 'a'"):

        class Three(Pipeline):
            c = shared


def test_config_and_input_types_must_be_structs() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"ConfigType: give a msgspec\.Struct"):

        class BadConfig(Noop):
            ConfigType = dict  # type: ignore[assignment]

    with pytest.raises(PipelineDefinitionError, match="task_id: give a non-empty str"):

        class BadId(Noop):
            task_id = ""


# -- ordering --------------------------------------------------------------------------


def _order(cls: type[Pipeline]) -> list[str]:
    return [task.pipeline_task for task in cls().get_build_tasks()]


def test_without_ordering_tasks_run_in_declaration_order() -> None:
    assert _order(Child) == ["first", "second", "third"]


def test_ordering_runs_tasks_after_their_dependencies_and_keeps_declaration_order() -> None:
    class Ordered(Pipeline):
        a = Noop()
        b = Noop()
        c = Noop()
        d = Noop()
        ordering: ClassVar[dict[str, list[str]]] = {"a": ["c"], "b": ["d"]}

    assert _order(Ordered) == ["c", "a", "d", "b"]


def test_ordering_chain_declared_backwards() -> None:
    class Backwards(Pipeline):
        summarise = Noop()
        clean = Noop()
        fetch = Noop()
        ordering: ClassVar[dict[str, list[str]]] = {"summarise": ["clean"], "clean": ["fetch"]}

    assert _order(Backwards) == ["fetch", "clean", "summarise"]


def test_an_ordering_cycle_is_refused_at_class_definition_naming_it() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"ordering: cycle 'a' -> 'b' -> 'c' -> 'a'"):

        class Cycle(Pipeline):
            a = Noop()
            b = Noop()
            c = Noop()
            ordering: ClassVar[dict[str, list[str]]] = {"b": ["a"], "c": ["b"], "a": ["c"]}


def test_a_task_ordered_after_itself_is_a_cycle() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"cycle 'a' -> 'a'"):

        class Itself(Pipeline):
            a = Noop()
            ordering: ClassVar[dict[str, list[str]]] = {"a": ["a"]}


@pytest.mark.parametrize(
    ("ordering", "message"),
    [
        ({"nope": ["a"]}, r"ordering: unknown task 'nope' \(the tasks are 'a', 'b'\)"),
        ({"b": ["nope"]}, r"ordering\['b'\]: unknown task 'nope' \(the tasks are 'a', 'b'\)"),
        ({"b": "a"}, r"ordering\['b'\]: give a list of task names, not 'a'"),
        (["b", "a"], r"ordering: give a dict of task name"),
    ],
)
def test_a_bad_ordering_is_refused_when_the_class_is_defined(ordering: Any, message: str) -> None:
    namespace = {"a": Noop(), "b": Noop(), "ordering": ordering}
    with pytest.raises(PipelineDefinitionError, match=message):
        type("Bad", (Pipeline,), namespace)


# -- task config and input data ----------------------------------------------------------


class Limits(msgspec.Struct, forbid_unknown_fields=True):
    low: int
    high: int = 10


class Window(msgspec.Struct):
    days: int


class Configured(Recorder):
    ConfigType = Limits


class NeedsWindow(Recorder):
    InputType = Window


def test_get_config_validates_with_the_config_type() -> None:
    assert Configured(config={"low": 1}).get_config() == Limits(low=1, high=10)
    assert Noop(config={"any": [1]}).get_config() == {"any": [1]}
    assert Noop().get_config() == {}
    with pytest.raises(msgspec.ValidationError, match=r"Expected `int`, got `str` - at `\$.low`"):
        Configured(config={"low": "one"}).get_config()
    with pytest.raises(msgspec.ValidationError, match="Expected `object`, got `int`"):
        Noop(config=5).get_config()  # type: ignore[arg-type]


def test_the_serializable_config_is_the_validated_config_with_defaults() -> None:
    assert Configured(config={"low": 1}).get_serializable_config() == {"low": 1, "high": 10}
    assert Noop(config={"a": 1}).get_serializable_config() == {"a": 1}


def test_clean_input_data_validates_with_the_input_type() -> None:
    assert NeedsWindow().clean_input_data({"days": 3}) == Window(days=3)
    assert Noop().clean_input_data({"anything": 1}) == {"anything": 1}
    with pytest.raises(msgspec.ValidationError, match="Object missing required field `days`"):
        NeedsWindow().clean_input_data({})


# -- start -------------------------------------------------------------------------------


class Cities(Pipeline):
    """Three pipeline objects; one task with an iterator of two, one without."""

    load = Recorder()
    pair = Pair()
    ordering: ClassVar[dict[str, list[str]]] = {"load": ["pair"]}

    def get_iterator(self) -> Any:
        return ["oslo", "lima", "rome"]

    def get_serializable_pipeline_object(self, obj: Any) -> Any:
        return {"city": obj}


def _tree(execution: PipelineExecution) -> list[tuple[Any, list[tuple[str, list[Any]]]]]:
    return [
        (
            result.get_serializable_pipeline_object(),
            [
                (
                    te.get_pipeline_task(),
                    [tr.get_serializable_task_object() for tr in te.get_task_results()],
                )
                for te in result.get_task_executions()
            ],
        )
        for result in execution.get_pipeline_results()
    ]


def test_start_builds_one_object_per_iterator_object_and_runs_in_dependency_order() -> None:
    execution = Cities().start(run_id="run-cities")

    assert _tree(execution) == [
        ({"city": city}, [("pair", ["x", "y"]), ("load", [None])])
        for city in ["oslo", "lima", "rome"]
    ]
    assert len(helpers.get_pipeline_results(run_id="run-cities")) == 3
    assert len(helpers.get_task_executions(run_id="run-cities")) == 6
    assert len(helpers.get_task_results(run_id="run-cities")) == 9
    assert Recorder.calls == [
        call
        for city in ["oslo", "lima", "rome"]
        for call in [
            ("pair", city, "x", None),
            ("pair", city, "y", None),
            ("load", city, None, None),
        ]
    ]


def test_none_iterators_give_one_result_each() -> None:
    class Single(Pipeline):
        only = Recorder()

    execution = Single().start(run_id="run-single")

    assert _tree(execution) == [(None, [("only", [None])])]
    assert Recorder.calls == [("only", None, None, None)]


def test_a_successful_run_makes_everything_done() -> None:
    execution = Cities().start(run_id="run-ok", input_data={"days": 2})

    stored = helpers.get_pipeline_execution("run-ok")
    assert stored is not None and stored.get_id() == execution.get_id()
    objects = [
        stored,
        *helpers.get_pipeline_results(run_id="run-ok"),
        *helpers.get_task_executions(run_id="run-ok"),
        *helpers.get_task_results(run_id="run-ok"),
    ]
    assert len(objects) == 1 + 3 + 6 + 9
    for obj in objects:
        assert obj.get_status() is S.DONE, obj
        started, completed = obj.get_started(), obj.get_completed()
        assert started is not None and completed is not None
        assert started <= completed
        assert obj.get_message() == ""
    assert stored.get_input_data() == {"days": 2}
    assert [call[3] for call in Recorder.calls] == [{"days": 2}] * 9


def test_start_defaults_run_id_runner_and_reporter() -> None:
    execution = Cities().start()

    assert uuid.UUID(execution.get_run_id()).version == 4
    assert execution.get_runner() == class_path(Runner)
    assert execution.get_reporter() == class_path(LoggingReporter)
    assert execution.get_pipeline_id() == Cities.pipeline_id
    assert execution.get_status() is S.DONE


def test_a_run_id_that_exists_raises_before_anything_is_written(log_storage: Path) -> None:
    Cities().start(run_id="twice")
    lines = _lines(log_storage)
    calls = len(Recorder.calls)

    with pytest.raises(InvalidValueError, match="'twice'"):
        Cities().start(run_id="twice")

    assert _lines(log_storage) == lines
    assert len(Recorder.calls) == calls


def test_input_data_that_cannot_be_stored_raises_before_anything_is_written(
    log_storage: Path,
) -> None:
    with pytest.raises(InvalidValueError, match="input_data"):
        Cities().start(run_id="bad-input", input_data={"when": object()})

    assert _lines(log_storage) == 0
    assert Recorder.calls == []


class RecordingRunner(PipelineRunner):
    def __init__(self) -> None:
        self.runs: list[PipelineExecution] = []

    def run(self, execution: PipelineExecution, reporter: StatusReporter) -> None:
        self.runs.append(execution)


def test_start_hands_the_built_execution_to_the_runner() -> None:
    runner = RecordingRunner()

    execution = Cities().start(run_id="handed", runner=runner)

    assert [run.get_id() for run in runner.runs] == [execution.get_id()]
    assert execution.get_status() is S.PENDING
    assert execution.get_runner() == class_path(RecordingRunner)
    assert Recorder.calls == []


class BadlyConfigured(Pipeline):
    good = Configured(config={"low": 1})
    bad = Configured(config={"low": "one"})
    worse = Configured(config={"low": 1, "extra": True})

    def get_iterator(self) -> Any:
        return [1, 2]


def test_a_config_error_records_only_the_execution_as_config_error() -> None:
    runner = RecordingRunner()

    execution = BadlyConfigured().start(run_id="run-config", runner=runner)

    assert execution.get_status() is S.CONFIG_ERROR
    assert execution.get_message() == (
        "config of task 'bad': Expected `int`, got `str` - at `$.low`; "
        "config of task 'worse': Object contains unknown field `extra`"
    )
    assert execution.get_completed() is not None
    assert helpers.get_pipeline_results(run_id="run-config") == []
    assert helpers.get_task_results(run_id="run-config") == []
    assert runner.runs == []
    stored = helpers.get_pipeline_execution("run-config")
    assert stored is not None and stored.get_status() is S.CONFIG_ERROR


class Windowed(Pipeline):
    first = Recorder()
    needs = NeedsWindow()
    also = Pair()

    def get_iterator(self) -> Any:
        return ["a", "b"]


def test_a_validation_error_fails_the_tasks_that_refuse_the_input_and_cancels_the_rest() -> None:
    runner = RecordingRunner()

    execution = Windowed().start(run_id="run-invalid", input_data={"days": "many"}, runner=runner)

    message = "input data of task 'needs': Expected `int`, got `str` - at `$.days`"
    assert runner.runs == []
    assert Recorder.calls == []
    assert execution.get_status() is S.VALIDATION_ERROR
    assert execution.get_message() == message
    results = helpers.get_pipeline_results(run_id="run-invalid")
    assert len(results) == 2
    for result in results:
        assert result.get_status() is S.VALIDATION_ERROR
        by_task = {te.get_pipeline_task(): te for te in result.get_task_executions()}
        assert by_task["needs"].get_status() is S.VALIDATION_ERROR
        for task_result in by_task["needs"].get_task_results():
            assert task_result.get_status() is S.VALIDATION_ERROR
            assert task_result.get_message() == message
        for name in ("first", "also"):
            assert by_task[name].get_status() is S.CANCELLED
            for task_result in by_task[name].get_task_results():
                assert task_result.get_status() is S.CANCELLED
                assert task_result.get_message() == "cancelled: task 'needs' failed"
    assert len(helpers.get_task_results(run_id="run-invalid")) == 2 * (1 + 1 + 2)


def test_valid_input_data_reaches_run_cleaned() -> None:
    class WithWindow(Pipeline):
        needs = NeedsWindow()

    execution = WithWindow().start(run_id="run-window", input_data={"days": 3})

    assert execution.get_status() is S.DONE
    assert Recorder.calls == [("needs", None, None, Window(days=3))]


# -- the demo ---------------------------------------------------------------------------


def test_the_demo_pipeline_gives_done_runtime_error_and_cancelled_objects() -> None:
    execution = DemoPipeline().start(run_id="demo")

    assert execution.get_status() is S.RUNTIME_ERROR
    assert execution.get_message() == "ValueError: lima rainfall reading 1: 'n/a' is not a number"
    results = {r.get_serializable_pipeline_object(): r for r in execution.get_pipeline_results()}
    assert {city: r.get_status() for city, r in results.items()} == {
        "oslo": S.DONE,
        "lima": S.RUNTIME_ERROR,
        "cairo": S.DONE,
    }
    lima = {
        (te.get_pipeline_task(), tr.get_serializable_task_object()): (
            tr.get_status(),
            tr.get_message(),
        )
        for te in results["lima"].get_task_executions()
        for tr in te.get_task_results()
    }
    assert lima == {
        ("fetch", None): (S.DONE, ""),
        ("clean", "temperature"): (S.DONE, ""),
        ("clean", "rainfall"): (
            S.RUNTIME_ERROR,
            "ValueError: lima rainfall reading 1: 'n/a' is not a number",
        ),
        ("summarise", None): (S.CANCELLED, "cancelled: task 'clean' failed"),
    }
    statuses = {tr.get_status() for tr in helpers.get_task_results(run_id="demo")}
    assert statuses == {S.DONE, S.RUNTIME_ERROR, S.CANCELLED}
    assert len(helpers.get_task_results(run_id="demo")) == 3 * 4
