"""Build planning: every object a run's ``build_pipeline_execution`` creates, checked
before anything is stored."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipelines_events.errors import InvalidValueError
from pipelines_events.events import encode_value
from pipelines_events.results.checks import class_path

__all__ = [
    "BuildPlan",
    "BuildablePipeline",
    "BuildableTask",
    "PlannedPipelineResult",
    "PlannedTaskExecution",
    "plan_build",
]


class BuildablePipeline(Protocol):
    """What ``build_pipeline_execution`` needs of a pipeline."""

    def get_id(self) -> str: ...

    def get_iterator(self) -> Any: ...

    def get_serializable_pipeline_object(self, obj: Any) -> Any: ...

    def get_build_tasks(self) -> Sequence[BuildableTask]: ...


class BuildableTask(Protocol):
    """What ``build_pipeline_execution`` needs of a task."""

    task_id: str
    pipeline_task: str

    def get_serializable_config(self) -> Any: ...

    def get_iterator(self) -> Any: ...

    def get_serializable_task_object(self, obj: Any) -> Any: ...


@dataclass
class PlannedTaskExecution:
    """A task execution to create, with the stored objects of its task results."""

    pipeline_task: str
    task_id: str
    config: Any
    task_objects: list[Any] = field(default_factory=list)


@dataclass
class PlannedPipelineResult:
    """A pipeline result to create, with its task executions."""

    pipeline_object: Any
    task_executions: list[PlannedTaskExecution] = field(default_factory=list)


@dataclass
class BuildPlan:
    """Every object ``build_pipeline_execution`` creates, with validated values."""

    pipeline_id: str
    run_id: str
    runner: str
    reporter: str
    input_data: Any
    pipeline_results: list[PlannedPipelineResult] = field(default_factory=list)

    def count(self) -> int:
        """How many objects the plan creates."""
        total = 1
        for result in self.pipeline_results:
            total += 1
            for execution in result.task_executions:
                total += 1 + len(execution.task_objects)
        return total


def _objects(iterator: Any) -> Iterator[Any]:
    """The objects of an iterator; ``None`` means a single ``None`` object."""
    if iterator is None:
        yield None
    else:
        yield from iterator


def plan_build(
    pipeline: BuildablePipeline,
    run_id: str,
    runner: object,
    reporter: object,
    input_data: Any,
    build_all: bool = True,
) -> BuildPlan:
    """Work out and validate every object of a run before anything is stored.

    One pipeline result per object of the pipeline iterator (one when it is None), one
    task execution per task, one task result per object of the task iterator (one when
    it is None). Raises :class:`InvalidValueError` for a run id or value that cannot be
    stored.
    """
    if not isinstance(run_id, str) or not run_id:
        raise InvalidValueError(f"run_id: give a non-empty str, not {run_id!r}")
    encode_value("input_data", input_data)
    plan = BuildPlan(
        pipeline_id=pipeline.get_id(),
        run_id=run_id,
        runner=class_path(runner),
        reporter=class_path(reporter),
        input_data=input_data,
    )
    if not build_all:
        return plan
    tasks = list(pipeline.get_build_tasks())
    for pipeline_object in _objects(pipeline.get_iterator()):
        stored = pipeline.get_serializable_pipeline_object(pipeline_object)
        encode_value("serializable_pipeline_object", stored)
        result = PlannedPipelineResult(stored)
        for task in tasks:
            config = task.get_serializable_config()
            encode_value("config", config)
            execution = PlannedTaskExecution(task.pipeline_task, task.task_id, config)
            for task_object in _objects(task.get_iterator()):
                stored_task_object = task.get_serializable_task_object(task_object)
                encode_value("serializable_task_object", stored_task_object)
                execution.task_objects.append(stored_task_object)
            result.task_executions.append(execution)
        plan.pipeline_results.append(result)
    return plan
