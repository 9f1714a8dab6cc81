"""The build of a run's events: the :class:`~pipelines_events.events.ObjectCreated` events
of all the objects of a run's build plan, as the event-log storage appends them in one
batch."""

from __future__ import annotations

import uuid
from typing import Any, Final

from pipelines_events.events import (
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    STATUS,
    TASK_EXECUTION,
    TASK_RESULT,
    AnyEvent,
    ObjectCreated,
    encode_value,
)
from pipelines_events.results.eventlog_objects import _CONTAINERS, _detached
from pipelines_events.results.planning import BuildPlan, PlannedPipelineResult
from pipelines_events.status import PipelineTaskStatus

_PENDING: Final = PipelineTaskStatus.PENDING.value
_STATUS_TYPES: Final = {"status": STATUS}


def run_drafts(plan: BuildPlan, run_id: str) -> tuple[str, list[AnyEvent]]:
    """The id of the run's new execution and the drafts of the events creating every
    object of ``plan``, parents before their children."""
    execution_id = _new_id()
    attrs: dict[str, Any] = {
        "pipeline_id": plan.pipeline_id,
        "status": _PENDING,
        "runner": plan.runner,
        "reporter": plan.reporter,
    }
    drafts: list[AnyEvent] = [
        ObjectCreated(
            run_id=run_id,
            kind=PIPELINE_EXECUTION,
            id=execution_id,
            attrs=attrs,
            types=_put_value(attrs, "input_data", plan.input_data),
        )
    ]
    for planned_result in plan.pipeline_results:
        result_id = _new_id()
        attrs = {"pipeline_id": plan.pipeline_id, "status": _PENDING}
        types = _put_value(attrs, "serializable_pipeline_object", planned_result.pipeline_object)
        drafts.append(
            ObjectCreated(
                run_id=run_id,
                kind=PIPELINE_RESULT,
                id=result_id,
                parent_id=execution_id,
                attrs=attrs,
                types=types,
            )
        )
        drafts.extend(_task_drafts(run_id, result_id, planned_result))
    return execution_id, drafts


def _task_drafts(
    run_id: str, result_id: str, planned_result: PlannedPipelineResult
) -> list[AnyEvent]:
    """The drafts creating the task executions of a pipeline result and their task
    results, each execution before its results."""
    drafts: list[AnyEvent] = []
    for planned_execution in planned_result.task_executions:
        task_execution_id = _new_id()
        attrs = {
            "task_id": planned_execution.task_id,
            "pipeline_task": planned_execution.pipeline_task,
            "status": _PENDING,
        }
        types = _put_value(attrs, "config", planned_execution.config)
        drafts.append(
            ObjectCreated(
                run_id=run_id,
                kind=TASK_EXECUTION,
                id=task_execution_id,
                parent_id=result_id,
                attrs=attrs,
                types=types,
            )
        )
        for task_object in planned_execution.task_objects:
            attrs = {"status": _PENDING}
            types = _put_value(attrs, "serializable_task_object", task_object)
            drafts.append(
                ObjectCreated(
                    run_id=run_id,
                    kind=TASK_RESULT,
                    id=_new_id(),
                    parent_id=task_execution_id,
                    attrs=attrs,
                    types=types,
                )
            )
    return drafts


def _new_id() -> str:
    return str(uuid.uuid4())


def _put_value(attrs: dict[str, Any], name: str, value: Any) -> dict[str, str]:
    """Put a value ``plan_build`` checked in ``attrs`` as the log stores it (statuses and
    datetimes tagged, as ``set_`` stores them); returns the created event's type tags."""
    if type(value) in _CONTAINERS:
        attrs[name] = _detached(value)
        return _STATUS_TYPES
    stored, vtype = encode_value(name, value)
    attrs[name] = stored
    return _STATUS_TYPES if vtype is None else {**_STATUS_TYPES, name: vtype}
