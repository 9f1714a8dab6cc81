"""What the in-memory storage shows beyond the conformance suite: it is the plain example of a
custom storage, whose properties are attributes that the ``get_``/``set_`` hooks reach."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipelines_events.errors import InvalidValueError
from pipelines_events.results.base import PipelineExecution
from pipelines_events.results.memory import (
    MemoryPipelineExecution,
    MemoryPipelineResultsStorage,
)
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing import ExamplePipeline, ExampleReporter, ExampleRunner, ExampleTask


def build(storage: MemoryPipelineResultsStorage, run_id: str = "run-1") -> PipelineExecution:
    return storage.build_pipeline_execution(
        ExamplePipeline("tests.P", [ExampleTask("a", objects=[1, 2])]),
        run_id,
        ExampleRunner(),
        ExampleReporter(),
        {"n": 1},
    )


def test_properties_are_plain_attributes() -> None:
    storage = MemoryPipelineResultsStorage()
    execution = build(storage)
    assert isinstance(execution, MemoryPipelineExecution)
    assert execution.status is PipelineTaskStatus.PENDING
    assert execution.run_id == "run-1"
    assert execution.input_data == {"n": 1}
    execution.set_colour("blue")
    assert vars(execution)["colour"] == "blue"
    vars(execution)["colour"] = "green"
    assert execution.get_colour() == "green"
    execution.report_status_change(None, PipelineTaskStatus.RUNNING)
    assert vars(execution)["status"] is PipelineTaskStatus.RUNNING
    assert vars(execution)["started"] is not None


def test_queries_return_the_stored_objects() -> None:
    storage = MemoryPipelineResultsStorage()
    execution = build(storage)
    assert storage.get_pipeline_execution("run-1") is execution
    (result,) = execution.get_pipeline_results()
    assert storage.get_pipeline_result(result.get_id()) is result
    task_result = storage.get_task_results()[1]
    assert task_result.get_task_execution() is storage.get_task_executions()[0]


class Audited(MemoryPipelineExecution):
    """A custom object: one defined getter, and hooks that record what goes through them."""

    def __init__(self, run_id: str, **attrs: Any) -> None:
        super().__init__(run_id, **attrs)
        self.calls: list[tuple[str, str]] = []

    def get_colour(self) -> str:
        return "always red"

    def getter(self, name: str) -> Callable[[], Any]:
        self.calls.append(("get", name))
        return super().getter(name)

    def setter(self, name: str) -> Callable[[Any], None]:
        self.calls.append(("set", name))
        return super().setter(name)


def test_the_fallback_goes_through_the_hooks_in_three_steps() -> None:
    obj = Audited("run-1", pipeline_id="tests.P")
    obj.set_colour("blue")
    obj.set_size(3)
    # 1. a defined get_ method wins over the attribute;
    assert obj.get_colour() == "always red"
    assert obj.colour == "blue"
    # 2. otherwise the getter hook returns the attribute;
    assert obj.get_size() == 3
    assert obj.get_pipeline_id() == "tests.P"
    # 3. otherwise AttributeError, naming what was looked for.
    with pytest.raises(AttributeError, match="get_weight"):
        obj.get_weight()
    assert obj.calls == [
        ("set", "colour"),
        ("set", "size"),
        ("get", "size"),
        ("get", "pipeline_id"),
        ("get", "weight"),
    ]


def test_the_setter_hook_checks_values() -> None:
    obj = Audited("run-1", pipeline_id="tests.P")
    with pytest.raises(InvalidValueError, match="'size'"):
        obj.set_size({1, 2})
    assert not hasattr(obj, "size")


def test_takes_no_kwargs_and_writes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(TypeError):
        MemoryPipelineResultsStorage(path="x.jsonl")  # type: ignore[call-arg]
    monkeypatch.chdir(tmp_path)
    storage = MemoryPipelineResultsStorage()
    build(storage).report_status_change(None, PipelineTaskStatus.DONE)
    storage.cleanup()
    storage.close()
    assert list(tmp_path.iterdir()) == []


def test_two_storages_share_nothing() -> None:
    first, second = MemoryPipelineResultsStorage(), MemoryPipelineResultsStorage()
    build(first)
    assert second.get_pipeline_execution("run-1") is None
    build(second)
    assert len(first.get_pipeline_executions()) == len(second.get_pipeline_executions()) == 1
