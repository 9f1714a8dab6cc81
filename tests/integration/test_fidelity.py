"""The seed's rules and the original's runtime names, beyond the ported tests: partial
custom storages, the attribute fallback, lenient and strict validation, ``parents``,
the runner's ``start()`` and graph, and classes found by id once defined."""

from __future__ import annotations

import gc
import graphlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar
from unittest.mock import Mock

import msgspec
import pytest

from pipelines_events.conf import settings
from pipelines_events.errors import InvalidValueError, PipelineDefinitionError
from pipelines_events.pipeline import Pipeline
from pipelines_events.registry import Registry, registry
from pipelines_events.results import helpers
from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResultsStorage,
    TaskExecution,
)
from pipelines_events.runners import PipelineRunner
from pipelines_events.runners.eager import Runner
from pipelines_events.status import PipelineTaskStatus as S
from pipelines_events.task import ConfigValidationError, Task, TaskConfig

EVENTLOG = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"


@pytest.fixture(autouse=True)
def log_storage(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "runs.jsonl"
    helpers.reset_storage_object()
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=(EVENTLOG, {"path": path})):
        yield path
        helpers.reset_storage_object()


ran: list[str] = []


class Step(Task):
    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        ran.append(self.pipeline_task)


# -- a partial custom storage -------------------------------------------------------------


class DashboardExecution(PipelineExecution):
    """Implements the getters a dashboard shows, nothing else."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.pipeline_id = "dashboard.Pipeline"
        self.status = S.DONE


class DashboardStorage(PipelineResultsStorage):
    """A read-only storage: only lists executions."""

    def get_pipeline_executions(self, pipeline_id: str | None = None) -> list[PipelineExecution]:
        return [DashboardExecution("run-1")]


def test_a_partial_custom_storage_loads_from_the_setting_and_names_what_it_lacks() -> None:
    with settings.override_settings(
        PIPELINES_PIPELINES_RESULTS_STORAGE=f"{__name__}.DashboardStorage"
    ):
        helpers.reset_storage_object()
        (execution,) = helpers.get_pipeline_executions()
        assert execution.get_run_id() == "run-1"
        assert execution.get_status() is S.DONE
        with pytest.raises(
            NotImplementedError, match=r"^DashboardStorage does not implement get_task_results\(\)"
        ):
            helpers.get_task_results(run_id="run-1")
        with pytest.raises(
            NotImplementedError,
            match=r"^DashboardExecution does not implement get_pipeline_results\(\)",
        ):
            execution.get_pipeline_results()
        helpers.reset_storage_object()


# -- the attribute fallback on the event log ----------------------------------------------


class Single(Pipeline):
    step = Step()


def test_the_event_log_falls_back_to_an_attribute_of_the_object_held(log_storage: Path) -> None:
    execution = Single().start(run_id="held", reporter=Mock())
    before = log_storage.read_bytes()

    execution.note = "x"  # type: ignore[attr-defined]

    assert execution.get_note() == "x"
    assert log_storage.read_bytes() == before  # a plain attribute is not stored
    again = helpers.get_pipeline_execution("held")
    assert again is not None
    with pytest.raises(AttributeError, match=r"no stored field 'note' and no attribute 'note'"):
        again.get_note()  # a lookup gives a new object: the attribute lived on the old one
    execution.set_note("stored")
    assert again.get_note() == "stored"
    assert execution.get_note() == "stored"  # the stored field comes first


def test_the_event_log_refuses_identifying_fields_with_its_own_message(log_storage: Path) -> None:
    execution = Single().start(run_id="fixed", reporter=Mock())
    before = log_storage.read_bytes()

    with pytest.raises(
        InvalidValueError,
        match=r"cannot set field 'run_id': it identifies the object, and the event-log "
        r"storage indexes it",
    ):
        execution.set_run_id("other")

    assert log_storage.read_bytes() == before


def test_the_memory_storage_sets_identifying_fields_as_the_seed_says() -> None:
    with settings.override_settings(
        PIPELINES_PIPELINES_RESULTS_STORAGE="pipelines_events.results.memory.MemoryPipelineResultsStorage"
    ):
        helpers.reset_storage_object()
        execution = Single().start(run_id="before", reporter=Mock())
        execution.set_run_id("after")
        assert execution.get_run_id() == "after"
        assert helpers.get_pipeline_execution("after") is execution
        with pytest.raises(InvalidValueError, match="field 'run_id'"):
            execution.set_run_id({1, 2})  # still a value the storage can hold
        helpers.reset_storage_object()


# -- validation ---------------------------------------------------------------------------


class Count(TaskConfig):
    value: int


class Flags(msgspec.Struct):
    verbose: bool = False
    level: int = 1


class Needed(msgspec.Struct):
    value: int


class Counting(Task):
    ConfigType = Count
    InputType = Flags
    seen: ClassVar[list[Any]] = []

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        self.seen.append((self.cleaned_config, cleaned_data))


class StrictCounting(Counting):
    strict_validation = True


class NeedsInput(Step):
    InputType = Needed


def test_config_and_input_are_lenient_by_default() -> None:
    class Lenient(Pipeline):
        count = Counting(config={"value": "7"})

    Counting.seen.clear()
    execution = Lenient().start(run_id="lenient", input_data={"level": "3"}, reporter=Mock())

    assert execution.get_status() is S.DONE
    assert Counting.seen == [(Count(value=7), Flags(verbose=False, level=3))]
    (result,) = execution.get_pipeline_results()
    assert result.get_task_executions()[0].get_config() == {"value": 7}


def test_strict_validation_asks_for_exact_types() -> None:
    class Strict(Pipeline):
        count = StrictCounting(config={"value": "7"})

    execution = Strict().start(run_id="strict", reporter=Mock())

    assert execution.get_status() is S.CONFIG_ERROR
    assert execution.get_message() == (
        "config of task 'count': Expected `int`, got `str` - at `$.value`"
    )
    with pytest.raises(ConfigValidationError, match="config of task 'count'") as caught:
        Strict.tasks["count"].cleaned_config  # noqa: B018
    assert caught.value.task is Strict.tasks["count"]


def test_strict_validation_must_be_a_bool() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"strict_validation: give True or False"):

        class Odd(Step):
            strict_validation = "yes"  # type: ignore[assignment]


def test_an_input_type_with_defaults_for_every_field_runs_without_input() -> None:
    class Defaults(Pipeline):
        count = Counting(config={"value": 1})

    Counting.seen.clear()
    execution = Defaults().start(run_id="no-input", reporter=Mock())

    assert execution.get_status() is S.DONE
    assert Counting.seen == [(Count(value=1), Flags())]


def test_an_input_type_with_required_fields_still_needs_input() -> None:
    class Required(Pipeline):
        needs = NeedsInput()

    execution = Required().start(run_id="needs-input", reporter=Mock())

    (task_result,) = helpers.get_task_results(run_id="needs-input")
    assert task_result.get_status() is S.VALIDATION_ERROR
    assert task_result.get_message() == (
        "input data of task 'needs': Object missing required field `value`"
    )
    assert execution.get_status() is S.VALIDATION_ERROR


# -- parents, the graph and the runner's start() --------------------------------------------


class Parents(Pipeline):
    last = Step(config={"parents": ["middle"]})
    middle = Step(config={"parents": ["first"]})
    first = Step()
    free = Step()


def test_config_parents_order_the_run() -> None:
    ran.clear()

    Parents().start(run_id="parents", reporter=Mock())

    assert ran == ["first", "middle", "last", "free"]
    assert Parents.get_dependencies() == {
        "last": ["middle"],
        "middle": ["first"],
        "first": [],
        "free": [],
    }


def test_parents_and_ordering_add_up() -> None:
    class Both(Pipeline):
        a = Step(config={"parents": ["b"]})
        b = Step()
        c = Step()
        ordering: ClassVar[dict[str, list[str]]] = {"a": ["c"], "b": ["c"]}

    assert Both.get_dependencies() == {"a": ["c", "b"], "b": ["c"], "c": []}
    assert [t.pipeline_task for t in Both().get_build_tasks()] == ["c", "b", "a"]


@pytest.mark.parametrize(
    ("parents", "problem"),
    [
        ("first", r"config 'parents': give a list of task names, not 'first'"),
        ([1], r"config 'parents': give task names, not 1"),
        (["nope"], r"config 'parents': unknown task 'nope' \(the tasks are 'first'\)"),
        (["bad"], r"config 'parents': unknown task 'bad'"),
    ],
)
def test_bad_parents_are_refused_when_the_class_is_defined(parents: Any, problem: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=problem):

        class Bad(Pipeline):
            first = Step()
            bad = Step(config={"parents": parents})


def test_a_cycle_through_parents_is_refused() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"cycle 'a' -> 'b' -> 'a'"):

        class Cycle(Pipeline):
            a = Step(config={"parents": ["b"]})
            b = Step(config={"parents": ["a"]})


def test_the_original_names_of_pipelines_and_tasks() -> None:
    assert list(Parents.tasks) == ["last", "middle", "first", "free"]
    assert Parents.tasks["first"].pipeline_task == "first"
    assert Step.get_id() == Step.task_id == f"{__name__}.Step"
    assert Parents.tasks["first"].cleaned_config == {}


def test_get_task_graph_is_a_topological_sorter_of_the_dependencies() -> None:
    execution = helpers.build_pipeline_execution(Parents(), "graph", object(), None, None)
    (result,) = execution.get_pipeline_results()

    graph = PipelineRunner.get_task_graph(result)

    assert isinstance(graph, graphlib.TopologicalSorter)
    order = list(graph.static_order())
    assert order.index("first") < order.index("middle") < order.index("last")
    flat: Sequence[TaskExecution] = PipelineRunner.get_flat_task_list(result)
    assert [te.get_pipeline_task() for te in flat] == order


def test_the_base_runner_names_the_missing_run() -> None:
    class Lazy(PipelineRunner):
        pass

    execution = helpers.build_pipeline_execution(Single(), "lazy", object(), None, None)
    with pytest.raises(NotImplementedError, match=r"^Lazy does not implement run\(\)"):
        Lazy().start(execution, reporter=Mock())


def test_start_returns_what_run_says_and_true_when_it_says_nothing() -> None:
    class Refusing(PipelineRunner):
        def run(self, execution: PipelineExecution, reporter: Any) -> bool:
            return False

    execution = helpers.build_pipeline_execution(Single(), "refused", object(), None, None)
    assert Refusing().start(execution, reporter=Mock()) is False
    assert Runner().start(execution, reporter=Mock()) is True
    assert execution.get_status() is S.DONE


def test_pipeline_start_goes_through_the_runner_start() -> None:
    class Counting(Runner):
        starts: ClassVar[int] = 0

        def start(self, pipeline_execution: PipelineExecution, reporter: Any) -> bool:
            type(self).starts += 1
            return super().start(pipeline_execution, reporter)

    execution = Single().start(run_id="through-start", runner=Counting(), reporter=Mock())

    assert Counting.starts == 1
    assert execution.get_status() is S.DONE


# -- classes are found by id once defined ---------------------------------------------------


def test_a_defined_class_is_found_by_id_and_registrations_win() -> None:
    class Defined(Pipeline):
        pipeline_id = "tests.fidelity.defined"
        step = Step()

    assert registry.get_pipeline_class("tests.fidelity.defined") is Defined

    class Replacement(Pipeline):
        pipeline_id = "tests.fidelity.defined"

    assert registry.get_pipeline_class("tests.fidelity.defined") is Replacement  # latest
    registry.register_pipeline(Defined, replace=True)
    try:

        class Later(Pipeline):
            pipeline_id = "tests.fidelity.defined"

        assert registry.get_pipeline_class("tests.fidelity.defined") is Defined
    finally:
        registry.unregister_pipeline("tests.fidelity.defined")


def test_a_defined_class_is_not_kept_alive_by_the_registry() -> None:
    def define() -> None:
        class Gone(Task):
            task_id = "tests.fidelity.gone"

            def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
                return None

        assert registry.get_task_class("tests.fidelity.gone") is Gone

    define()
    gc.collect()
    with pytest.raises(IndexError, match=r"no task with id 'tests\.fidelity\.gone'"):
        registry.get_task_class("tests.fidelity.gone")


def test_other_registries_do_not_see_defined_classes() -> None:
    with pytest.raises(LookupError):
        Registry().get_pipeline_class(Single.pipeline_id.replace("Single", "Nope"))
    assert Registry().get_task_class(Step.task_id) is Step  # importable by its dotted path


def test_a_task_cannot_be_named_tasks() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"a task cannot be named 'tasks'"):

        class Clash(Pipeline):
            tasks = Step()  # type: ignore[assignment]
