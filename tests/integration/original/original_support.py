"""What the ported tests share: stand-ins for the original's model_bakery recipes."""

from __future__ import annotations

import uuid
from typing import Any

from pipelines_events.pipeline import Pipeline
from pipelines_events.results import helpers
from pipelines_events.results.base import PipelineExecution, TaskResult
from pipelines_events.task import Task


def pipeline_of(*tasks: Task, objects: list[Any] | None = None) -> Pipeline:
    """A pipeline object whose class declares ``tasks`` (named ``t0``, ``t1``...) and whose
    iterator gives ``objects`` (None: one pipeline result)."""
    attrs: dict[str, Any] = {f"t{i}": task for i, task in enumerate(tasks)}
    attrs["get_iterator"] = lambda self: objects
    cls = type(f"Pipeline_{uuid.uuid4().hex}", (Pipeline,), attrs)
    return cls()  # type: ignore[no-any-return]


def build(
    pipeline: Pipeline, input_data: Any = None, run_id: str | None = None
) -> PipelineExecution:
    """The execution of a new run of ``pipeline``, built through the helpers."""
    return helpers.build_pipeline_execution(
        pipeline, run_id or str(uuid.uuid4()), object(), None, input_data
    )


def first_task_result(execution: PipelineExecution) -> TaskResult:
    (result, *_) = execution.get_pipeline_results()
    (task_execution, *_) = result.get_task_executions()
    (task_result, *_) = task_execution.get_task_results()
    return task_result
