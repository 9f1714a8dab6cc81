"""The four result objects of the seed: pipeline execution, pipeline result, task
execution and task result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pipelines_events.events import PIPELINE_EXECUTION, PIPELINE_RESULT, TASK_EXECUTION, TASK_RESULT
from pipelines_events.results.checks import not_implemented
from pipelines_events.results.storageobject import PipelineStorageObject

__all__ = ["PipelineExecution", "PipelineResult", "TaskExecution", "TaskResult"]


def _optional(obj: PipelineStorageObject, name: str) -> Any:
    """Field ``name`` of ``obj``, or None when it has none."""
    try:
        return obj.getter(name)()
    except AttributeError:
        return None


def _rebuilt(owner: Any, hook: str, stored: Any) -> Any:
    """``stored`` rebuilt by ``owner.<hook>(stored)``, or as it is when there is no hook."""
    method = getattr(owner, hook, None)
    return stored if method is None else method(stored)


class _OfAPipelineObject(PipelineStorageObject):
    """What the three objects below an execution share: the pipeline object they ran for."""

    def get_pipeline_object(self) -> Any:
        """The pipeline object, rebuilt from its stored form by the pipeline's
        ``deserialize_pipeline_object`` (as stored when the pipeline has none)."""
        return _rebuilt(
            self.get_pipeline(),
            "deserialize_pipeline_object",
            self.get_serializable_pipeline_object(),
        )


class PipelineExecution(PipelineStorageObject):
    """The overall state of one run of a pipeline (one per run)."""

    kind = PIPELINE_EXECUTION
    content_type_name: ClassVar[str] = "PipelineExecution"

    def get_input_data(self) -> Any:
        """The input data the run was started with."""
        return self.getter("input_data")()

    def get_runner(self) -> str:
        """The dotted path of the runner class."""
        return str(self.getter("runner")())

    def get_reporter(self) -> str:
        """The dotted path of the reporter class."""
        return str(self.getter("reporter")())

    def get_runner_host(self) -> str | None:
        """The host the run's runner ran on (None when not recorded)."""
        value = _optional(self, "runner_host")
        return value if isinstance(value, str) else None

    def set_runner_host(self, value: str) -> None:
        """Record the host the run's runner runs on."""
        self.setter("runner_host")(value)

    def get_runner_pid(self) -> int | None:
        """The process id of the run's runner (None when not recorded)."""
        value = _optional(self, "runner_pid")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def set_runner_pid(self, value: int) -> None:
        """Record the process id of the run's runner."""
        self.setter("runner_pid")(value)

    def get_pipeline_results(self) -> Sequence[PipelineResult]:
        """The pipeline results of the run."""
        raise not_implemented(self, "get_pipeline_results")

    def get_children(self) -> Sequence[PipelineStorageObject]:
        return self.get_pipeline_results()


class PipelineResult(_OfAPipelineObject):
    """The state of the pipeline for one object of the pipeline iterator."""

    kind = PIPELINE_RESULT
    content_type_name: ClassVar[str] = "PipelineResult"

    def get_serializable_pipeline_object(self) -> Any:
        """The pipeline object this result ran for, as stored."""
        return self.getter("serializable_pipeline_object")()

    def get_input_data(self) -> Any:
        """The input data of the run."""
        return self.get_pipeline_execution().get_input_data()

    def get_runner(self) -> str:
        """The dotted path of the runner class."""
        return self.get_pipeline_execution().get_runner()

    def get_reporter(self) -> str:
        """The dotted path of the reporter class."""
        return self.get_pipeline_execution().get_reporter()

    def get_pipeline_execution(self) -> PipelineExecution:
        """The execution this result belongs to."""
        raise not_implemented(self, "get_pipeline_execution")

    def get_task_executions(self) -> Sequence[TaskExecution]:
        """One task execution per task of the pipeline."""
        raise not_implemented(self, "get_task_executions")

    def get_parent(self) -> PipelineStorageObject | None:
        return self.get_pipeline_execution()

    def get_children(self) -> Sequence[PipelineStorageObject]:
        return self.get_task_executions()


class TaskExecution(_OfAPipelineObject):
    """The overall state of one task within a pipeline result."""

    kind = TASK_EXECUTION
    content_type_name: ClassVar[str] = "TaskExecution"

    def get_task_id(self) -> str:
        """The id of the task class."""
        return str(self.getter("task_id")())

    def get_pipeline_task(self) -> str:
        """The name of the task's attribute on the pipeline."""
        return str(self.getter("pipeline_task")())

    def get_config(self) -> Any:
        """The task's config, as stored."""
        return self.getter("config")()

    def get_input_data(self) -> Any:
        """The input data of the run."""
        return self.get_pipeline_result().get_input_data()

    def get_serializable_pipeline_object(self) -> Any:
        """The pipeline object of the pipeline result."""
        return self.get_pipeline_result().get_serializable_pipeline_object()

    def get_task(self) -> Any:
        """The task object, loaded by its id with its config."""
        return self.loader.load_task(
            self.get_task_id(), self.get_pipeline_task(), self.get_config() or {}
        )

    def get_pipeline_result(self) -> PipelineResult:
        """The pipeline result this task execution belongs to."""
        raise not_implemented(self, "get_pipeline_result")

    def get_task_results(self) -> Sequence[TaskResult]:
        """One task result per object of the task iterator."""
        raise not_implemented(self, "get_task_results")

    def get_parent(self) -> PipelineStorageObject | None:
        return self.get_pipeline_result()

    def get_children(self) -> Sequence[PipelineStorageObject]:
        return self.get_task_results()


class TaskResult(_OfAPipelineObject):
    """The state of one task for one object of the task iterator."""

    kind = TASK_RESULT
    content_type_name: ClassVar[str] = "TaskResult"

    def get_task_id(self) -> str:
        """The id of the task class."""
        return str(self.getter("task_id")())

    def get_pipeline_task(self) -> str:
        """The name of the task's attribute on the pipeline."""
        return self.get_task_execution().get_pipeline_task()

    def get_config(self) -> Any:
        """The task's config, as stored."""
        return self.get_task_execution().get_config()

    def get_serializable_task_object(self) -> Any:
        """The task object this result ran for, as stored."""
        return self.getter("serializable_task_object")()

    def get_serializable_pipeline_object(self) -> Any:
        """The pipeline object of the pipeline result."""
        return self.get_task_execution().get_serializable_pipeline_object()

    def get_input_data(self) -> Any:
        """The input data of the run."""
        return self.get_task_execution().get_input_data()

    def get_task(self) -> Any:
        """The task object, loaded by its id with its config."""
        return self.get_task_execution().get_task()

    def get_task_object(self) -> Any:
        """The task object, rebuilt from its stored form by the task's
        ``deserialize_task_object`` (as stored when the task has none)."""
        return _rebuilt(
            self.get_task(), "deserialize_task_object", self.get_serializable_task_object()
        )

    def get_duration(self) -> float | None:
        """Seconds from started to completed, or None until both are known."""
        started, completed = self.get_started(), self.get_completed()
        if started is None or completed is None:
            return None
        return (completed - started).total_seconds()

    def get_task_execution(self) -> TaskExecution:
        """The task execution this result belongs to."""
        raise not_implemented(self, "get_task_execution")

    def get_parent(self) -> PipelineStorageObject | None:
        return self.get_task_execution()
