"""The stand-ins the suites build runs from, and the helpers their tests share.

:class:`ExamplePipeline` and :class:`ExampleTask` satisfy the storage's ``BuildablePipeline``
and ``BuildableTask`` protocols without the pipeline runtime; :class:`ExampleRunner` and
:class:`ExampleReporter` are what a build records as its runner and reporter.
:func:`describe_storage` gives everything a storage's queries show, to compare two states.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

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
    "T0",
    "ExamplePipeline",
    "ExampleReporter",
    "ExampleRunner",
    "ExampleTask",
    "describe_storage",
]

# The public path of this package: storages record the runner's and the reporter's class
# path, which stays ``pipelines_events.testing.ExampleRunner`` wherever the class is written.
PUBLIC_MODULE = "pipelines_events.testing"

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

    __module__ = PUBLIC_MODULE


class ExampleReporter(PipelineReporter):
    """A reporter for tests only: keeps every report it hears in ``reports``, as
    ``(context object, status, message)``."""

    __module__ = PUBLIC_MODULE

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


def describe_storage(storage: PipelineResultsStorage, *, digest: bool = True) -> dict[str, Any]:
    """Everything a storage's queries show, as plain data (to compare two states).

    ``digest=False`` leaves the digest out (``None``), for a storage that has none.
    """
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
        "digest": storage.get_pipeline_digest() if digest else None,
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
