"""Ported from the original's ``tests/pipelines/reporters``: the logging reporter, the
messages its ``PipelineReporter`` builds for each kind of object, and the fields its ORM
reporter logged (tested here as what a reporter hears, on our storages)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from unittest.mock import Mock

import pytest

from pipelines_events.reporters import LoggingReporter, PipelineReporter
from pipelines_events.results.base import PipelineStorageObject
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.task import Task
from tests.integration.original.original_support import build, pipeline_of


class Noop(Task):
    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        return None


class SomeTask(Noop):
    task_id = "task_id"


class Reporter(PipelineReporter):
    def __init__(self) -> None:
        self.report_body = Mock()

    def report(self, *args: Any, **kwargs: Any) -> None:
        self.report_body(*args, **kwargs)


# -- test_logging_reporter.py -------------------------------------------------------------


def test_report_writes_the_message_to_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    LoggingReporter().report(Mock(), PipelineTaskStatus.DONE, "The Message")

    assert "The Message" in caplog.text
    assert caplog.records[-1].levelno == logging.INFO


# -- test_pipeline_report.py ----------------------------------------------------------------

Factory = Callable[[], tuple[str, PipelineStorageObject]]


def _objects(pipeline_object: Any = None, task_object: Any = None) -> dict[str, Any]:
    task = SomeTask()
    if task_object is not None:
        task.get_iterator = lambda: [task_object]  # type: ignore[method-assign]
    pipeline = pipeline_of(task, objects=None if pipeline_object is None else [pipeline_object])
    type(pipeline).pipeline_id = "pipeline_id"
    execution = build(pipeline, run_id="run_id")
    (result,) = execution.get_pipeline_results()
    (task_execution,) = result.get_task_executions()
    (task_result,) = task_execution.get_task_results()
    return {
        "pipeline_execution": execution,
        "pipeline_result": result,
        "task_execution": task_execution,
        "task_result": task_result,
    }


def factory(kind: str, pipeline_object: Any = None, task_object: Any = None) -> Factory:
    return lambda: (kind, _objects(pipeline_object, task_object)[kind])


def pe(message: str) -> Callable[[Any], str]:
    return lambda o: f"Pipeline execution ({o.get_run_id()}) pipeline_id: {message}"


def pr(message: str) -> Callable[[Any], str]:
    return lambda o: f"Pipeline result ({o.get_id()}) pipeline_id: {message}"


def te(message: str) -> Callable[[Any], str]:
    return lambda o: f"Task execution ({o.get_id()}) t0 (task_id): {message}"


def tr(message: str) -> Callable[[Any], str]:
    return lambda o: f"Task result ({o.get_id()}) t0 (task_id): {message}"


FOO = {"foo": "bar"}
CASES = [
    (factory("pipeline_execution"), "", pe("Pending")),
    (factory("pipeline_execution"), "message", pe("message")),
    (factory("pipeline_result"), "", pr("Pending")),
    (factory("pipeline_result"), "message", pr("message")),
    (factory("pipeline_result", FOO), "", pr("Pending | pipeline object: {'foo': 'bar'}")),
    (factory("pipeline_result", FOO), "message", pr("message | pipeline object: {'foo': 'bar'}")),
    (factory("task_execution"), "", te("Pending")),
    (factory("task_execution"), "message", te("message")),
    (factory("task_execution", FOO), "", te("Pending | pipeline object: {'foo': 'bar'}")),
    (factory("task_execution", FOO), "message", te("message | pipeline object: {'foo': 'bar'}")),
    (factory("task_result"), "", tr("Pending")),
    (factory("task_result"), "message", tr("message")),
    (factory("task_result", None, FOO), "", tr("Pending | task object: {'foo': 'bar'}")),
    (factory("task_result", None, FOO), "message", tr("message | task object: {'foo': 'bar'}")),
    (factory("task_result", FOO), "", tr("Pending | pipeline object: {'foo': 'bar'}")),
    (factory("task_result", FOO), "message", tr("message | pipeline object: {'foo': 'bar'}")),
    (
        factory("task_result", FOO, {"boo": "far"}),
        "",
        tr("Pending | pipeline object: {'foo': 'bar'} | task object: {'boo': 'far'}"),
    ),
    (
        factory("task_result", FOO, {"boo": "far"}),
        "message",
        tr("message | pipeline object: {'foo': 'bar'} | task object: {'boo': 'far'}"),
    ),
]


@pytest.mark.parametrize(("factory", "message", "expected_message"), CASES)
def test_report(factory: Factory, message: str, expected_message: Callable[[Any], str]) -> None:
    context_object_type, context_object = factory()

    reporter = Reporter()
    getattr(reporter, f"report_{context_object_type}")(
        context_object, PipelineTaskStatus.PENDING, message
    )

    reporter.report_body.assert_called_once_with(
        context_object, PipelineTaskStatus.PENDING, expected_message(context_object)
    )


# -- test_orm_reporter.py: what the ORM reporter stored, as a reporter hears it ------------


class Recorder(PipelineReporter):
    """Keeps what the original's ORMReporter wrote to its PipelineLog rows."""

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []

    def report(
        self, context_object: PipelineStorageObject, status: PipelineTaskStatus, message: str
    ) -> None:
        self.logs.append(
            {
                "context_type": context_object.content_type_name,  # type: ignore[attr-defined]
                "context_id": str(context_object.get_id()),
                "log_message": message,
                "pipeline_id": context_object.get_pipeline_id(),
                "run_id": context_object.get_run_id(),
                "status": status.value,
            }
        )


def _check(log: dict[str, Any], obj: Any, context_type: str, message: str) -> None:
    assert log == {
        "context_type": context_type,
        "context_id": str(obj.get_id()),
        "log_message": message,
        "pipeline_id": obj.get_pipeline_id(),
        "run_id": obj.get_run_id(),
        "status": PipelineTaskStatus.DONE.value,
    }


def test_report_pipeline_execution_saves_message_to_db() -> None:
    execution = _objects()["pipeline_execution"]
    recorder = Recorder()
    recorder.report_pipeline_execution(execution, status=PipelineTaskStatus.DONE, message="Done")
    _check(
        recorder.logs[-1],
        execution,
        "PipelineExecution",
        f"Pipeline execution ({execution.get_run_id()}) {execution.get_pipeline_id()}: Done",
    )


def test_report_pipeline_result_saves_message_to_db() -> None:
    result = _objects()["pipeline_result"]
    recorder = Recorder()
    recorder.report_pipeline_result(result, status=PipelineTaskStatus.DONE, message="Done")
    _check(
        recorder.logs[-1],
        result,
        "PipelineResult",
        f"Pipeline result ({result.get_id()}) {result.get_pipeline_id()}: Done",
    )


def test_report_pipeline_results_writes_saves_message_to_db__with_object() -> None:
    result = _objects(pipeline_object={"object": 1})["pipeline_result"]
    recorder = Recorder()
    recorder.report_pipeline_result(result, status=PipelineTaskStatus.DONE, message="Done")
    _check(
        recorder.logs[-1],
        result,
        "PipelineResult",
        f"Pipeline result ({result.get_id()}) {result.get_pipeline_id()}: Done | "
        "pipeline object: {'object': 1}",
    )


def test_report_task_execution_saves_message_to_db() -> None:
    task_execution = _objects()["task_execution"]
    recorder = Recorder()
    recorder.report_task_execution(task_execution, status=PipelineTaskStatus.DONE, message="Done")
    _check(
        recorder.logs[-1],
        task_execution,
        "TaskExecution",
        f"Task execution ({task_execution.get_id()}) {task_execution.get_pipeline_task()} "
        f"({task_execution.get_task_id()}): Done",
    )


def test_report_task_execution_writes_saves_message_to_db__with_object() -> None:
    task_execution = _objects(pipeline_object={"object": 1})["task_execution"]
    recorder = Recorder()
    recorder.report_task_execution(task_execution, status=PipelineTaskStatus.DONE, message="Done")
    _check(
        recorder.logs[-1],
        task_execution,
        "TaskExecution",
        f"Task execution ({task_execution.get_id()}) {task_execution.get_pipeline_task()} "
        f"({task_execution.get_task_id()}): Done | pipeline object: {{'object': 1}}",
    )


def test_report_task_result_saves_message_to_db() -> None:
    task_result = _objects()["task_result"]
    recorder = Recorder()
    recorder.report_task_result(task_result, status=PipelineTaskStatus.DONE, message="Done")
    _check(
        recorder.logs[-1],
        task_result,
        "TaskResult",
        f"Task result ({task_result.get_id()}) {task_result.get_pipeline_task()} "
        f"({task_result.get_task_id()}): Done",
    )


def test_report_task_result_writes_saves_message_to_db__with_object() -> None:
    task_result = _objects(pipeline_object={"object": 1}, task_object={"object": 2})["task_result"]
    recorder = Recorder()
    recorder.report_task_result(task_result, status=PipelineTaskStatus.DONE, message="Done")
    _check(
        recorder.logs[-1],
        task_result,
        "TaskResult",
        f"Task result ({task_result.get_id()}) {task_result.get_pipeline_task()} "
        f"({task_result.get_task_id()}): Done | pipeline object: {{'object': 1}} | "
        "task object: {'object': 2}",
    )
