"""Ported from the original's ``tests/pipelines/tasks``: the task registry and
``Task.start()`` on one task result."""

from __future__ import annotations

import logging
from typing import Any
from unittest import mock
from unittest.mock import Mock

import msgspec
import pytest

from pipelines_events.registry import registry
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.task import InputValidationError, Task, TaskConfig
from tests.integration.original.original_support import build, first_task_result, pipeline_of

logger = logging.getLogger("test_task_start")


# -- test_registry.py -------------------------------------------------------------------------


def test_task_class_created_without_name___it_is_added_to_the_registry_using_the_classname() -> (
    None
):
    class TestTask(Task):
        def run(self, *args: Any, **kwargs: Any) -> None:
            return None

    assert TestTask.get_id() == f"{__name__}.{TestTask.__qualname__}"
    assert registry.get_task_class(TestTask.get_id()) is TestTask


def test_request_to_load_a_task_that_isnt_registered___error_is_reported() -> None:
    with pytest.raises(IndexError):
        registry.load_task_from_id(pipeline_task="fake", task_id="missing_task_id", config={})


def test_request_to_load_a_task_that_exists_with_a_valid_config___task_is_loaded() -> None:
    class TestTaskConfigType(TaskConfig):
        value: int

    class TestTask(Task):
        ConfigType = TestTaskConfigType

        def run(self, *args: Any, **kwargs: Any) -> None:
            return None

    task = registry.load_task_from_id(
        pipeline_task="fake", task_id=TestTask.get_id(), config={"value": 1}
    )

    assert isinstance(task, TestTask)
    assert task.pipeline_task == "fake"
    assert task.cleaned_config == TestTaskConfigType(value=1)


# -- test_task_start.py -----------------------------------------------------------------------


class InputType(msgspec.Struct):
    value: int


def make_fake_task(input_type: type[msgspec.Struct] | None = None) -> Task:
    class FakeTask(Task):
        InputType = input_type

        def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
            self.run_body(cleaned_data)

    task = FakeTask()
    task.run_body = Mock()  # type: ignore[attr-defined]
    return task


def test_input_is_provided_when_not_expected___the_task_gets_it_as_given() -> None:
    """A difference: the original refused input data for a task without ``InputType``
    (VALIDATION_ERROR); ours hands it over as given."""
    reporter = Mock()
    task = make_fake_task(input_type=None)
    task_result = first_task_result(build(pipeline_of(task), {"value": 1}))

    assert task.start(task_result, reporter=reporter) is True

    task.run_body.assert_called_once_with({"value": 1})  # type: ignore[attr-defined]
    reporter.report_context_object.assert_any_call(
        task_result, PipelineTaskStatus.DONE, "Changed state to DONE"
    )


def test_input_data_does_not_match_the_input_type___error_is_reported_run_is_not_called() -> None:
    reporter = Mock()
    task = make_fake_task(input_type=InputType)
    pipeline = pipeline_of(task)
    task_result = first_task_result(build(pipeline, {"value": "foo"}))

    with pytest.raises(InputValidationError):
        task.start(task_result, reporter=reporter)

    reporter.report_context_object.assert_any_call(
        task_result,
        PipelineTaskStatus.VALIDATION_ERROR,
        "Changed state to VALIDATION_ERROR - input data of task 't0': "
        "Expected `int`, got `str` - at `$.value`",
    )
    task.run_body.assert_not_called()  # type: ignore[attr-defined]
    assert task_result.get_status() is PipelineTaskStatus.VALIDATION_ERROR


def test_input_data_matches_the_input_type___run_is_called_with_the_cleaned_data() -> None:
    reporter = Mock()
    task = make_fake_task(input_type=InputType)
    task_result = first_task_result(build(pipeline_of(task), {"value": "1"}))

    task.start(task_result, reporter=reporter)

    reporter.report_context_object.assert_any_call(
        task_result, PipelineTaskStatus.RUNNING, mock.ANY
    )
    reporter.report_context_object.assert_any_call(task_result, PipelineTaskStatus.DONE, mock.ANY)
    task.run_body.assert_called_once_with(InputType(value=1))  # type: ignore[attr-defined]


def test_input_data_and_type_are_none___run_is_called_with_none() -> None:
    reporter = Mock()
    task = make_fake_task(input_type=None)
    task_result = first_task_result(build(pipeline_of(task)))

    task.start(task_result, reporter=reporter)

    reporter.report_context_object.assert_any_call(
        task_result, PipelineTaskStatus.RUNNING, mock.ANY
    )
    reporter.report_context_object.assert_any_call(task_result, PipelineTaskStatus.DONE, mock.ANY)
    task.run_body.assert_called_once_with(None)  # type: ignore[attr-defined]


def test_errors_at_runtime___task_is_recorded_as_error() -> None:
    reporter = Mock()

    class ErroringTask(Task):
        def run(
            self, pipeline_id: str = "pipeline", run_id: str = "123", cleaned_data: Any = None
        ) -> None:
            raise Exception("Some bad error")

    task = ErroringTask({})
    task_result = first_task_result(build(pipeline_of(task)))

    with pytest.raises(Exception, match="Some bad error"):
        task.start(task_result, reporter=reporter)

    reporter.report_context_object.assert_any_call(
        task_result,
        PipelineTaskStatus.RUNTIME_ERROR,
        "Changed state to RUNTIME_ERROR - Some bad error",
    )


class ObjectTask(Task):
    def run(
        self, pipeline_id: str = "pipeline", run_id: str = "123", cleaned_data: Any = None
    ) -> None:
        logger.info(f"Pipeline object {self.pipeline_object} task object {self.task_object}")


def test_pipeline_object_accessible__non_django_object(caplog: pytest.LogCaptureFixture) -> None:
    """The Django-object variants run in ``tests/integration/test_django.py``."""
    caplog.set_level(logging.INFO, logger="test_task_start")
    reporter = Mock()
    task = ObjectTask({})
    task_result = first_task_result(build(pipeline_of(task, objects=[{"obj": 1}])))

    task.start(task_result, reporter=reporter)

    reporter.report_context_object.assert_any_call(task_result, PipelineTaskStatus.DONE, mock.ANY)
    assert "Pipeline object {'obj': 1} task object None" in caplog.text
    assert task_result.get_pipeline_object() == {"obj": 1}


def test_task_object_accessible__non_django_object(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test_task_start")
    reporter = Mock()
    task = ObjectTask({})
    task.get_iterator = lambda: [{"obj": 1}]  # type: ignore[method-assign]
    task_result = first_task_result(build(pipeline_of(task)))

    task.start(task_result, reporter=reporter)

    reporter.report_context_object.assert_any_call(task_result, PipelineTaskStatus.DONE, mock.ANY)
    assert "Pipeline object None task object {'obj': 1}" in caplog.text
    assert task_result.get_task_object() == {"obj": 1}
