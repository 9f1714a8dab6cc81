"""The registry: finding pipelines and tasks by id, and loading them for result objects."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines_events import registry as registry_module
from pipelines_events.conf import settings
from pipelines_events.demo import CleanTask, DemoPipeline, SummariseConfig, SummariseTask
from pipelines_events.pipeline import Pipeline
from pipelines_events.registry import NotRegisteredError, Registry, import_dotted
from pipelines_events.results import helpers
from pipelines_events.results.base import PipelineStorageObject
from pipelines_events.task import Task

EVENTLOG = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"


@pytest.fixture(autouse=True)
def log_storage(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "runs.jsonl"
    helpers.reset_storage_object()
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=(EVENTLOG, {"path": path})):
        yield path
        helpers.reset_storage_object()


class Hello(Task):
    task_id = "hello"

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        return None


class Greeting(Pipeline):
    pipeline_id = "greeting"
    hello = Hello(config={"who": "world"})


class OtherGreeting(Pipeline):
    pipeline_id = "greeting"


def test_importing_the_runtime_installs_the_registry_as_loader() -> None:
    assert PipelineStorageObject.loader is registry_module.registry


def test_a_registered_pipeline_is_found_by_id_with_its_tasks() -> None:
    registry = Registry()

    assert registry.register_pipeline(Greeting) is Greeting

    assert registry.get_pipeline_class("greeting") is Greeting
    loaded = registry.load_pipeline("greeting")
    assert type(loaded) is Greeting
    assert registry.get_task_class("hello") is Hello


def test_register_pipeline_works_as_a_decorator() -> None:
    registry = Registry()

    @registry.register_pipeline
    class Decorated(Pipeline):
        pipeline_id = "decorated"

    assert registry.get_pipeline_class("decorated") is Decorated


def test_a_registered_pipeline_object_is_loaded_as_it_is() -> None:
    registry = Registry()
    pipeline = Greeting()

    registry.register_pipeline(pipeline)

    assert registry.load_pipeline("greeting") is pipeline
    assert registry.get_pipeline_class("greeting") is Greeting


def test_using_lends_a_pipeline_object_to_this_thread_only() -> None:
    registry = Registry()
    registry.register_pipeline(Greeting)
    pipeline = Greeting()
    elsewhere: list[Pipeline] = []

    with registry.using(pipeline):
        assert registry.load_pipeline("greeting") is pipeline
        thread = threading.Thread(
            target=lambda: elsewhere.append(registry.load_pipeline("greeting"))
        )
        thread.start()
        thread.join()

    assert len(elsewhere) == 1 and elsewhere[0] is not pipeline
    assert registry.load_pipeline("greeting") is not pipeline


def test_registering_a_class_keeps_an_object_of_it_registered() -> None:
    registry = Registry()
    pipeline = Greeting()
    registry.register_pipeline(pipeline)

    registry.register_pipeline(Greeting)
    registry.register_pipeline(Greeting, replace=True)

    assert registry.load_pipeline("greeting") is pipeline


def test_a_pipeline_can_be_registered_under_another_id() -> None:
    registry = Registry()

    registry.register_pipeline(Greeting, pipeline_id="hi")

    assert registry.get_pipeline_class("hi") is Greeting


def test_two_classes_cannot_share_an_id_unless_replaced() -> None:
    registry = Registry()
    registry.register_pipeline(Greeting)
    registry.register_pipeline(Greeting)  # the same class again is fine

    with pytest.raises(ValueError, match=r"pipeline id 'greeting' is already registered to "):
        registry.register_pipeline(OtherGreeting)
    assert registry.get_pipeline_class("greeting") is Greeting

    registry.register_pipeline(OtherGreeting, replace=True)
    assert registry.get_pipeline_class("greeting") is OtherGreeting


def test_two_task_classes_cannot_share_an_id_unless_replaced() -> None:
    registry = Registry()
    registry.register_task(Hello)

    class OtherHello(Hello):
        task_id = "hello"

    with pytest.raises(ValueError, match="task id 'hello' is already registered to"):
        registry.register_task(OtherHello)
    assert registry.get_task_class("hello") is Hello
    registry.register_task(OtherHello, replace=True)
    assert registry.get_task_class("hello") is OtherHello


def test_registering_refuses_what_is_not_a_pipeline_or_task() -> None:
    registry = Registry()
    with pytest.raises(TypeError, match="register a Pipeline subclass or object"):
        registry.register_pipeline(Hello)  # type: ignore[type-var]
    with pytest.raises(TypeError, match="register a Task subclass"):
        registry.register_task(Greeting)  # type: ignore[type-var]


def test_unregistered_ids_are_imported_as_dotted_paths() -> None:
    registry = Registry()

    assert registry.get_pipeline_class("pipelines_events.demo.DemoPipeline") is DemoPipeline
    assert type(registry.load_pipeline("pipelines_events.demo.DemoPipeline")) is DemoPipeline
    task = registry.load_task("pipelines_events.demo.SummariseTask", "summary", {"decimals": 3})
    assert type(task) is SummariseTask
    assert task.pipeline_task == "summary"
    assert task.get_config() == SummariseConfig(decimals=3)


def test_nested_classes_are_imported_by_their_qualified_name() -> None:
    assert import_dotted("pipelines_events.registry.Registry.load_task") is Registry.load_task
    assert import_dotted(f"{__name__}.Greeting") is Greeting


@pytest.mark.parametrize(
    ("pipeline_id", "message"),
    [
        (
            "no.such.module.Pipeline",
            r"no pipeline with id 'no.such.module.Pipeline': it is not registered, and "
            r"importing it as a dotted path failed \(cannot import module 'no': "
            r"ModuleNotFoundError",
        ),
        (
            "pipelines_events.demo.NoSuchPipeline",
            r"importing it as a dotted path failed \("
            r"module 'pipelines_events.demo' has no attribute 'NoSuchPipeline'\)",
        ),
        (
            "pipelines_events.demo.CITIES",
            r"pipeline 'pipelines_events.demo.CITIES': the object at that path is not a "
            r"Pipeline subclass",
        ),
        ("greeting", r"no pipeline with id 'greeting'"),
        ("", r"no pipeline with id ''"),
        ("tests.test_x.<locals>.P", r"is not an importable dotted path"),
    ],
)
def test_unknown_pipeline_ids_raise_lookup_error(pipeline_id: str, message: str) -> None:
    registry = Registry()

    with pytest.raises(LookupError, match=message) as caught:
        registry.load_pipeline(pipeline_id)

    assert isinstance(caught.value, NotRegisteredError)


def test_unknown_task_ids_raise_lookup_error() -> None:
    registry = Registry()

    with pytest.raises(NotRegisteredError, match="no task with id 'hello'"):
        registry.load_task("hello", "hello", {})
    with pytest.raises(NotRegisteredError, match="not a Task subclass"):
        registry.get_task_class("pipelines_events.demo.DemoPipeline")


def test_a_path_to_a_class_with_another_id_is_refused() -> None:
    registry = Registry()

    with pytest.raises(NotRegisteredError, match="the class at that path has task_id 'hello'"):
        registry.get_task_class(f"{__name__}.Hello")
    with pytest.raises(NotRegisteredError, match="has pipeline_id 'greeting'"):
        registry.get_pipeline_class(f"{__name__}.Greeting")


def test_result_objects_load_the_pipeline_and_tasks_of_their_run() -> None:
    pipeline = Greeting()
    execution = pipeline.start(run_id="loaded")

    assert type(execution.get_pipeline()) is Greeting
    task_execution = helpers.get_task_executions(run_id="loaded")[0]
    task = task_execution.get_task()
    assert type(task) is Hello
    assert task is not Greeting.get_tasks()["hello"]
    assert task.pipeline_task == "hello"
    assert task.config == {"who": "world"}
    task_result = helpers.get_task_results(run_id="loaded")[0]
    assert type(task_result.get_task()) is Hello


def test_the_demo_tasks_load_from_a_stored_run() -> None:
    DemoPipeline().start(run_id="demo-loaded")

    loaded = [te.get_task() for te in helpers.get_task_executions(run_id="demo-loaded")]

    assert [type(task).__name__ for task in loaded[:3]] == [
        "FetchTask",
        "CleanTask",
        "SummariseTask",
    ]
    assert isinstance(loaded[1], CleanTask)
    assert [task.pipeline_task for task in loaded[:3]] == ["fetch", "clean", "summarise"]


def test_the_registry_is_wired_in_by_one_explicit_call_not_by_its_import() -> None:
    code = (
        "from pipelines_events.results.base import PipelineStorageObject\n"
        "import pipelines_events.registry as r\n"
        "assert PipelineStorageObject.loader is not r.registry, 'wired by the import'\n"
        "import pipelines_events.task\n"
        "assert PipelineStorageObject.loader is r.registry, 'task.py did not wire it'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_install_loader_makes_any_loader_the_one_result_objects_use() -> None:
    class Loader:
        def load_pipeline(self, pipeline_id: str) -> Any:
            return ("pipeline", pipeline_id)

        def load_task(self, task_id: str, pipeline_task: str, config: dict[str, Any]) -> Any:
            return ("task", task_id)

    execution = Greeting().start(run_id="wired")
    try:
        registry_module.install_loader(Loader())
        assert execution.get_pipeline() == ("pipeline", "greeting")
    finally:
        registry_module.install_loader()
    assert PipelineStorageObject.loader is registry_module.registry
    assert type(execution.get_pipeline()) is Greeting
