"""Ported from the original's ``tests/pipelines/test_pipeline_start.py`` and
``test_management_commands.py`` (``clear_tasks_and_logs``, which is our ``cleanup``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from unittest.mock import Mock, call

import msgspec
import pytest
from freezegun import freeze_time

from pipelines_events.errors import PipelineDefinitionError
from pipelines_events.pipeline import Pipeline
from pipelines_events.results import helpers
from pipelines_events.results.base import PipelineExecution
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.task import Task, TaskConfig
from tests.integration.original.original_support import build


class ValueConfig(TaskConfig):
    value: int


class GoodConfigA(Task):
    ConfigType = ValueConfig

    def run(self, *args: Any, **kwargs: Any) -> None:
        return None


class GoodConfigB(GoodConfigA):
    pass


class Message(msgspec.Struct):
    message: str


class WithInput(GoodConfigA):
    InputType = Message


def _tree(execution: PipelineExecution) -> list[Any]:
    found: list[Any] = [execution]
    for result in execution.get_pipeline_results():
        found.append(result)
        for task_execution in result.get_task_executions():
            found.append(task_execution)
            found.extend(task_execution.get_task_results())
    return found


# -- test_pipeline_start.py -------------------------------------------------------------------


def test_one_task_has_a_bad_config___the_execution_records_a_config_error() -> None:
    """A difference: the original raised ``ConfigValidationError`` when the class was
    defined; ours records CONFIG_ERROR on the execution when it starts, runs nothing."""
    runner = Mock()

    class BadConfig(Pipeline):
        bad = GoodConfigA(config={"value": "foo"})
        good = GoodConfigB(config={"value": "1"})

    execution = BadConfig().start(run_id="bad", input_data={}, runner=runner, reporter=Mock())

    assert execution.get_status() is PipelineTaskStatus.CONFIG_ERROR
    assert execution.get_message() == (
        "config of task 'bad': Expected `int`, got `str` - at `$.value`"
    )
    assert execution.get_pipeline_results() == []
    runner.start.assert_not_called()


def test_all_tasks_have_a_good_config___runner_is_started_tasks_are_marked_as_pending() -> None:
    reporter = Mock()
    runner = Mock()
    runner.start.return_value = True

    class TestPipeline(Pipeline):
        good = GoodConfigA(config={"value": "0"})  # lenient: "0" is 0
        also_good = GoodConfigB(config={"value": "1"})

    pipeline = TestPipeline()
    run_id = str(uuid.uuid4())
    execution = pipeline.start(run_id=run_id, input_data={}, runner=runner, reporter=reporter)

    pipeline_execution = helpers.get_pipeline_execution(run_id)
    assert execution == pipeline_execution  # a difference: start() returns the execution
    [pipeline_result] = pipeline_execution.get_pipeline_results()
    [task_a_execution, task_b_execution] = pipeline_result.get_task_executions()
    [task_a_result] = task_a_execution.get_task_results()
    [task_b_result] = task_b_execution.get_task_results()
    assert task_a_execution.get_config() == {"value": 0}

    pending = PipelineTaskStatus.PENDING
    reporter.report_pipeline_execution.assert_called_once_with(
        pipeline_execution, pending, "Pipeline is waiting to start"
    )
    reporter.report_pipeline_result.assert_called_once_with(
        pipeline_result, pending, "Pipeline is waiting to start"
    )
    assert reporter.report_task_execution.call_args_list == [
        call(task_a_execution, pending, "Task is waiting to start"),
        call(task_b_execution, pending, "Task is waiting to start"),
    ]
    assert reporter.report_task_result.call_args_list == [
        call(task_a_result, pending, "Task is waiting to start"),
        call(task_b_result, pending, "Task is waiting to start"),
    ]
    runner.start.assert_called_once_with(pipeline_execution, reporter=reporter)


def test_all_tasks_have_a_good_config_and_input_data___runner_is_started_with_input_data() -> None:
    runner = Mock()
    runner.start.return_value = True

    class TestPipeline(Pipeline):
        good = WithInput(config={"value": "0"})
        also_good = GoodConfigB(config={"value": "1"})

    run_id = str(uuid.uuid4())
    TestPipeline().start(
        run_id=run_id, input_data={"message": "something"}, runner=runner, reporter=Mock()
    )

    execution = helpers.get_pipeline_execution(run_id)
    assert execution is not None
    assert execution.get_input_data() == {"message": "something"}
    runner.start.assert_called_once()


def test_tasks_has_a_missing_parent___error_is_raised() -> None:
    """A difference: the original raised when the run started (and recorded the
    execution); ours refuses the class when it is defined, so nothing is recorded."""
    with pytest.raises(PipelineDefinitionError, match=r"ordering\['bad'\]: unknown task 'missing'"):

        class TestPipeline(Pipeline):
            bad = GoodConfigA(config={"value": 1})
            good = GoodConfigB(config={"value": 1})

            ordering: ClassVar[dict[str, list[str]]] = {"bad": ["missing"]}

    with pytest.raises(PipelineDefinitionError, match=r"config 'parents': unknown task 'missing'"):

        class FromConfig(Pipeline):
            bad = GoodConfigA(config={"value": 1, "parents": ["missing"]})

    assert helpers.get_pipeline_executions() == []


def test_pipeline__iterator__good_configs___runner_is_started_tasks_are_marked_as_pending() -> None:
    reporter = Mock()
    runner = Mock()
    runner.start.return_value = True

    class TestPipeline(Pipeline):
        good = GoodConfigA(config={"value": "0"})
        also_good = GoodConfigB(config={"value": "1"})

        def get_iterator(self) -> Any:
            return range(0, 2)

    run_id = str(uuid.uuid4())
    TestPipeline().start(run_id=run_id, input_data={}, runner=runner, reporter=reporter)

    pipeline_execution = helpers.get_pipeline_execution(run_id)
    assert pipeline_execution is not None
    [pipeline_result_a, pipeline_result_b] = pipeline_execution.get_pipeline_results()
    objects = _tree(pipeline_execution)
    assert len(objects) == 1 + 2 * (1 + 2 * 2)
    assert {obj.get_status() for obj in objects} == {PipelineTaskStatus.PENDING}
    assert [r.get_pipeline_object() for r in (pipeline_result_a, pipeline_result_b)] == [None, 1]
    runner.start.assert_called_once_with(pipeline_execution, reporter=reporter)


# -- test_management_commands.py: clear_tasks_and_logs is cleanup ---------------------------

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class Plain(Pipeline):
    first = GoodConfigA(config={"value": 1})


def _finished_run(task_results: int = 3) -> PipelineExecution:
    """A run whose task results all finish now (the original's recipes made runs that
    were never finished: ours removes finished runs only, see the docs)."""
    task = GoodConfigA(config={"value": 1})
    task.get_iterator = lambda: range(task_results)  # type: ignore[method-assign]
    pipeline = type(f"Cleaned{uuid.uuid4().hex}", (Pipeline,), {"first": task})()
    execution = build(pipeline)
    for obj in _tree(execution)[3:]:
        obj.report_status_change(None, PipelineTaskStatus.DONE)
    assert execution.get_status() is PipelineTaskStatus.DONE
    return execution


def _counts() -> tuple[int, int, int, int]:
    return (
        len(helpers.get_pipeline_executions()),
        len(helpers.get_pipeline_results()),
        len(helpers.get_task_executions()),
        len(helpers.get_task_results()),
    )


def test_clear_tasks_and_logs__all_deleted() -> None:
    with freeze_time(T0) as frozen:
        _finished_run()
        frozen.move_to(T0 + timedelta(days=11))

        removed = helpers.cleanup_task_results(before=datetime.now(UTC) - timedelta(days=10))

    assert len(removed) == 1
    assert _counts() == (0, 0, 0, 0)


def test_clear_tasks_and_logs__non_deleted() -> None:
    with freeze_time(T0):
        _finished_run()
        removed = helpers.cleanup_task_results(before=datetime.now(UTC) - timedelta(days=10))

    assert removed == []
    assert _counts() == (1, 1, 1, 3)


def test_clear_tasks_and_logs__part_deleted() -> None:
    with freeze_time(T0) as frozen:
        for days in (9, 11):
            frozen.move_to(T0 - timedelta(days=days))
            _finished_run(task_results=2)
        frozen.move_to(T0)

        removed = helpers.cleanup_task_results(before=datetime.now(UTC) - timedelta(days=10))

    assert len(removed) == 1
    assert _counts() == (1, 1, 1, 2)


def test_clear_tasks_and_logs__the_command(
    tmp_path: Path, storage_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command itself (``cleanup --days``), on the configured storage."""
    from pipelines_events.cli.app import main

    if storage_name == "memory":
        # Another process cannot see a memory storage: the command shares its process.
        storage = helpers.get_pipeline_results_storage()
    with freeze_time(T0 - timedelta(days=11)):
        _finished_run()
    with freeze_time(T0):
        assert main(["cleanup", "--days", "10"]) == 0
    assert "removed 1 run:" in capsys.readouterr().out
    assert _counts() == (0, 0, 0, 0)
    if storage_name == "memory":
        assert helpers.get_pipeline_results_storage() is storage
