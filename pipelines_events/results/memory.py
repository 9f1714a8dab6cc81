"""A plain storage that keeps result objects in memory: the example of a custom storage.

It is written the way ``docs/howto/custom-storage.rst`` tells users to write their own:
extend :class:`PipelineResultsStorage`, return objects that extend the four base classes,
and keep each property as an attribute so the ``get_``/``set_`` fallback finds it. It is
not event-sourced and keeps nothing after the process ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pipelines_events.errors import InvalidValueError
from pipelines_events.events import copy_value
from pipelines_events.results.base import (
    BuildablePipeline,
    PipelineExecution,
    PipelineResult,
    PipelineResultsStorage,
    PipelineStorageObject,
    TaskExecution,
    TaskResult,
    plan_build,
)
from pipelines_events.status import PipelineTaskStatus


class _MemoryObject(PipelineStorageObject):
    """Properties are plain attributes; the base class's hooks read and write them (and
    copy lists and dicts on the way in and out, so callers never share stored state)."""

    def __init__(self, run_id: str, **attrs: Any) -> None:
        self.id = str(uuid.uuid4())
        self.run_id = run_id
        self.status = PipelineTaskStatus.PENDING
        self.started: datetime | None = None
        self.completed: datetime | None = None
        self.message = ""
        for name, value in attrs.items():
            setattr(self, name, copy_value(value))


class MemoryPipelineExecution(_MemoryObject, PipelineExecution):
    """A pipeline execution held in memory."""

    def __init__(self, run_id: str, **attrs: Any) -> None:
        super().__init__(run_id, **attrs)
        self.pipeline_results: list[MemoryPipelineResult] = []

    def get_pipeline_results(self) -> Sequence[PipelineResult]:
        return list(self.pipeline_results)


class MemoryPipelineResult(_MemoryObject, PipelineResult):
    """A pipeline result held in memory."""

    def __init__(self, execution: MemoryPipelineExecution, **attrs: Any) -> None:
        super().__init__(execution.run_id, pipeline_id=execution.pipeline_id, **attrs)
        self.execution = execution
        self.task_executions: list[MemoryTaskExecution] = []

    def get_pipeline_execution(self) -> PipelineExecution:
        return self.execution

    def get_task_executions(self) -> Sequence[TaskExecution]:
        return list(self.task_executions)


class MemoryTaskExecution(_MemoryObject, TaskExecution):
    """A task execution held in memory."""

    def __init__(self, pipeline_result: MemoryPipelineResult, **attrs: Any) -> None:
        super().__init__(pipeline_result.run_id, pipeline_id=pipeline_result.pipeline_id, **attrs)
        self.pipeline_result = pipeline_result
        self.task_results: list[MemoryTaskResult] = []

    def get_pipeline_result(self) -> PipelineResult:
        return self.pipeline_result

    def get_task_results(self) -> Sequence[TaskResult]:
        return list(self.task_results)


class MemoryTaskResult(_MemoryObject, TaskResult):
    """A task result held in memory."""

    def __init__(self, task_execution: MemoryTaskExecution, **attrs: Any) -> None:
        super().__init__(
            task_execution.run_id,
            pipeline_id=task_execution.pipeline_id,
            task_id=task_execution.task_id,
            **attrs,
        )
        self.task_execution = task_execution

    def get_task_execution(self) -> TaskExecution:
        return self.task_execution


class MemoryPipelineResultsStorage(PipelineResultsStorage):
    """Result objects in process memory; queries scan lists. Takes no kwargs."""

    def __init__(self) -> None:
        self.executions: list[MemoryPipelineExecution] = []

    def build_pipeline_execution(
        self,
        pipeline: BuildablePipeline,
        run_id: str,
        runner: object,
        reporter: object,
        input_data: Any,
        build_all: bool = True,
    ) -> PipelineExecution:
        plan = plan_build(pipeline, run_id, runner, reporter, input_data, build_all)
        if self.get_pipeline_execution(run_id) is not None:
            raise InvalidValueError(
                f"run {run_id!r} already has an execution; give every run a new id"
            )
        execution = MemoryPipelineExecution(
            run_id,
            pipeline_id=plan.pipeline_id,
            runner=plan.runner,
            reporter=plan.reporter,
            input_data=plan.input_data,
        )
        for planned_result in plan.pipeline_results:
            result = MemoryPipelineResult(
                execution, serializable_pipeline_object=planned_result.pipeline_object
            )
            execution.pipeline_results.append(result)
            for planned in planned_result.task_executions:
                task_execution = MemoryTaskExecution(
                    result,
                    task_id=planned.task_id,
                    pipeline_task=planned.pipeline_task,
                    config=planned.config,
                )
                result.task_executions.append(task_execution)
                for task_object in planned.task_objects:
                    task_execution.task_results.append(
                        MemoryTaskResult(task_execution, serializable_task_object=task_object)
                    )
        self.executions.append(execution)
        return execution

    def get_pipeline_executions(self, pipeline_id: str | None = None) -> list[PipelineExecution]:
        return [
            e for e in self.executions if pipeline_id is None or e.get_pipeline_id() == pipeline_id
        ]

    def get_pipeline_execution(self, run_id: str) -> PipelineExecution | None:
        return next((e for e in self.executions if e.run_id == run_id), None)

    def get_pipeline_results(
        self, run_id: str | None = None, pipeline_id: str | None = None
    ) -> list[PipelineResult]:
        return [
            result
            for execution in self.get_pipeline_executions(pipeline_id)
            if run_id is None or execution.run_id == run_id
            for result in execution.get_pipeline_results()
        ]

    def get_pipeline_result(self, _id: str) -> PipelineResult | None:
        return next((r for r in self.get_pipeline_results() if r.get_id() == _id), None)

    def get_task_executions(
        self, run_id: str | None = None, pipeline_result_id: str | None = None
    ) -> list[TaskExecution]:
        return [
            task_execution
            for result in self.get_pipeline_results(run_id)
            if pipeline_result_id is None or result.get_id() == pipeline_result_id
            for task_execution in result.get_task_executions()
        ]

    def get_task_execution(self, _id: str) -> TaskExecution | None:
        return next((t for t in self.get_task_executions() if t.get_id() == _id), None)

    def get_task_results(
        self,
        run_id: str | None = None,
        pipeline_result_id: str | None = None,
        task_execution_id: str | None = None,
    ) -> list[TaskResult]:
        return [
            task_result
            for task_execution in self.get_task_executions(run_id, pipeline_result_id)
            if task_execution_id is None or task_execution.get_id() == task_execution_id
            for task_result in task_execution.get_task_results()
        ]

    def get_task_result(self, _id: str) -> TaskResult | None:
        return next((t for t in self.get_task_results() if t.get_id() == _id), None)

    def _cleanup(self, before: datetime | None) -> list[str]:
        removed: list[str] = []
        for execution in list(self.executions):
            completed = execution.get_completed()
            if not execution.get_status().is_final:
                continue
            if before is not None and (completed is None or completed >= before):
                continue
            self.executions.remove(execution)
            removed.append(execution.run_id)
        return removed
