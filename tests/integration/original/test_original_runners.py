"""Ported from the original's ``tests/pipelines/runners/test_base_runner.py`` and
``test_eager_runner.py`` (its Celery runner's tests have no counterpart: we have no
Celery runner, see the "Coming from django-pipelines" page)."""

from __future__ import annotations

from typing import Any, ClassVar
from unittest import mock
from unittest.mock import Mock, call, patch

from pipelines_events.pipeline import Pipeline
from pipelines_events.results import helpers
from pipelines_events.runners import PipelineRunner
from pipelines_events.runners.eager import Runner
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.task import Task
from tests.integration.original.original_support import build


class Step(Task):
    def run(self, *args: Any, **kwargs: Any) -> None:
        return None


class StepTwo(Task):
    def run(self, *args: Any, **kwargs: Any) -> None:
        return None


# -- test_base_runner.py ----------------------------------------------------------------------


class NoParents(Pipeline):
    first = Step(config={})
    second = Step(config={})


class WithParents(Pipeline):
    first = Step(config={})
    second = Step(config={"parents": ["first"]})
    third = Step(config={"parents": ["second"]})
    fourth = Step(config={})

    ordering: ClassVar[dict[str, list[str]]] = {"second": ["first"], "third": ["second"]}


def test_graph_order__no_parents() -> None:
    pipeline_execution = build(NoParents(), {})
    ordered_tasks = PipelineRunner().get_flat_task_list(
        pipeline_execution.get_pipeline_results()[0]
    )

    assert len(ordered_tasks) == 2
    assert ordered_tasks[0].get_pipeline_task() == "first"
    assert ordered_tasks[1].get_pipeline_task() == "second"


def test_graph_order__with_parents() -> None:
    pipeline_execution = build(WithParents(), {})
    ordered_tasks = PipelineRunner().get_flat_task_list(
        pipeline_execution.get_pipeline_results()[0]
    )

    assert [t.get_pipeline_task() for t in ordered_tasks] == ["first", "fourth", "second", "third"]


def test_start__start_runner_called() -> None:
    reporter = Mock()
    pipeline_execution = build(NoParents(), {})

    with patch.object(PipelineRunner, "run") as run:
        assert PipelineRunner().start(pipeline_execution, reporter=reporter) is True
        assert run.call_count == 1
        run.assert_called_once_with(pipeline_execution, reporter)


# -- test_eager_runner.py ----------------------------------------------------------------------


def _task_result(pipeline_task: str) -> Any:
    return next(r for r in helpers.get_task_results() if r.get_pipeline_task() == pipeline_task)


def test_task_have_no_parents___tasks_are_ran_in_configured_order() -> None:
    reporter = Mock()

    class InOrder(Pipeline):
        first = Step(config={})
        second = StepTwo(config={})

    InOrder().start(run_id="123", input_data={}, runner=Runner(), reporter=reporter)

    calls = reporter.report_context_object.call_args_list
    assert calls.index(
        call(_task_result("first"), PipelineTaskStatus.DONE, mock.ANY)
    ) < calls.index(call(_task_result("second"), PipelineTaskStatus.RUNNING, mock.ANY))


def test_task_with_parent_waits_for_parents_to_be_ran() -> None:
    reporter = Mock()

    class ChildFirst(Pipeline):
        child = StepTwo(config={"parents": ["parent"]})
        parent = Step(config={})

    ChildFirst().start(run_id="123", input_data={}, runner=Runner(), reporter=reporter)

    calls = reporter.report_context_object.call_args_list
    assert calls.index(
        call(_task_result("parent"), PipelineTaskStatus.DONE, mock.ANY)
    ) < calls.index(call(_task_result("child"), PipelineTaskStatus.RUNNING, mock.ANY))


def test_first_task_fails___other_tasks_are_cancelled() -> None:
    reporter = Mock()
    good_task_run = Mock()

    class BadTask(Task):
        def run(self, *args: Any, **kwargs: Any) -> None:
            raise Exception("Test error")

    class GoodTask(Task):
        def run(self, *args: Any, **kwargs: Any) -> None:
            good_task_run(*args, **kwargs)

    class Failing(Pipeline):
        bad = BadTask(config={})
        good = GoodTask(config={})

    Failing().start(run_id="123", input_data={}, runner=Runner(), reporter=reporter)

    calls = reporter.report_context_object.call_args_list
    assert calls.index(
        call(_task_result("bad"), PipelineTaskStatus.RUNTIME_ERROR, mock.ANY)
    ) < calls.index(call(_task_result("good"), PipelineTaskStatus.CANCELLED, mock.ANY))
    good_task_run.assert_not_called()
