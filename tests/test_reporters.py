"""Reporters: the base class, logging, fanning out, and what a run reports."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipelines_events.conf import settings
from pipelines_events.pipeline import Pipeline
from pipelines_events.reporters import LoggingReporter, MultiPipelineReporter, PipelineReporter
from pipelines_events.results import helpers
from pipelines_events.status import PipelineTaskStatus as S
from pipelines_events.task import Task

EVENTLOG = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"

Report = tuple[str | None, str | None, S, str]


@pytest.fixture(autouse=True)
def log_storage(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "runs.jsonl"
    helpers.reset_storage_object()
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=(EVENTLOG, {"path": path})):
        yield path
        helpers.reset_storage_object()


class ListReporter(PipelineReporter):
    def __init__(self) -> None:
        self.reports: list[Report] = []

    def report(self, pipeline_id: str | None, task_id: str | None, status: S, message: str) -> None:
        self.reports.append((pipeline_id, task_id, status, message))


class Boom(Exception):
    pass


class RaisingReporter(PipelineReporter):
    def report(self, pipeline_id: str | None, task_id: str | None, status: S, message: str) -> None:
        raise Boom(status.value)


class Ok(Task):
    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        return None


class Fails(Task):
    task_id = "fails"

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        raise RuntimeError("no luck")


class OneTask(Pipeline):
    pipeline_id = "one-task"
    ok = Ok()


class Failing(Pipeline):
    pipeline_id = "failing"
    ok = Ok()
    fails = Fails()
    later = Ok()


def test_the_base_reporter_must_implement_report() -> None:
    class Nothing(PipelineReporter):
        pass

    with pytest.raises(TypeError, match="report"):
        Nothing()  # type: ignore[abstract]


def test_a_reporter_hears_every_status_change_of_a_run_in_order() -> None:
    reporter = ListReporter()

    OneTask().start(run_id="heard", reporter=reporter)

    ok = Ok.task_id
    assert reporter.reports == [
        ("one-task", None, S.RUNNING, ""),  # the execution
        ("one-task", None, S.RUNNING, ""),  # the pipeline result
        ("one-task", ok, S.RUNNING, ""),  # the task execution
        ("one-task", ok, S.RUNNING, ""),  # the task result
        ("one-task", ok, S.DONE, ""),  # the task result
        ("one-task", ok, S.DONE, ""),  # the task execution
        ("one-task", None, S.DONE, ""),  # the pipeline result
        ("one-task", None, S.DONE, ""),  # the execution
    ]


def test_a_reporter_hears_failures_and_cancellations() -> None:
    reporter = ListReporter()

    Failing().start(run_id="failing", reporter=reporter)

    finals = [(task, status, message) for _, task, status, message in reporter.reports[-6:]]
    assert finals == [
        ("fails", S.RUNTIME_ERROR, "RuntimeError: no luck"),  # the task result
        ("fails", S.RUNTIME_ERROR, "RuntimeError: no luck"),  # the task execution
        (None, S.RUNTIME_ERROR, "RuntimeError: no luck"),  # the pipeline result
        (None, S.RUNTIME_ERROR, "RuntimeError: no luck"),  # the execution
        (Ok.task_id, S.CANCELLED, "cancelled: task 'fails' failed"),  # later's task result
        (Ok.task_id, S.CANCELLED, "cancelled: task 'fails' failed"),  # later's task execution
    ]


def test_the_config_error_is_reported() -> None:
    reporter = ListReporter()

    class Strict(msgspec.Struct):
        n: int

    class NeedsN(Ok):
        ConfigType = Strict

    class BadConfig(Pipeline):
        pipeline_id = "bad-config"
        needs = NeedsN(config={})

    BadConfig().start(run_id="config", reporter=reporter)

    assert reporter.reports == [
        (
            "bad-config",
            None,
            S.CONFIG_ERROR,
            "config of task 'needs': Object missing required field `n`",
        )
    ]


def test_the_logging_reporter_logs_to_the_pipelines_events_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pipelines_events")

    Failing().start(run_id="logged")

    records = [
        (r.name, r.levelno, r.getMessage()) for r in caplog.records if r.name == "pipelines_events"
    ]
    assert records[0] == ("pipelines_events", logging.INFO, "failing: RUNNING")
    assert (
        "pipelines_events",
        logging.ERROR,
        "failing task fails: RUNTIME_ERROR: RuntimeError: no luck",
    ) in records
    assert (
        "pipelines_events",
        logging.WARNING,
        f"failing task {Ok.task_id}: CANCELLED: cancelled: task 'fails' failed",
    ) in records
    assert ("pipelines_events", logging.INFO, f"failing task {Ok.task_id}: DONE") in records


def test_the_logging_reporter_takes_another_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    LoggingReporter("my.logger").report("p", None, S.DONE, "")
    LoggingReporter(logging.getLogger("other")).report(None, "t", S.CANCELLED, "why")

    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("my.logger", logging.INFO, "p: DONE"),
        ("other", logging.WARNING, "? task t: CANCELLED: why"),
    ]


def test_the_multi_reporter_fans_out_to_every_reporter() -> None:
    first, second = ListReporter(), ListReporter()

    OneTask().start(run_id="multi", reporter=MultiPipelineReporter([first, second]))

    assert len(first.reports) == 8
    assert first.reports == second.reports
    execution = helpers.get_pipeline_execution("multi")
    assert execution is not None
    assert execution.get_reporter() == "pipelines_events.reporters.MultiPipelineReporter"


def test_the_multi_reporter_calls_every_reporter_before_raising_the_first_error() -> None:
    after = ListReporter()
    multi = MultiPipelineReporter([RaisingReporter(), after, RaisingReporter()])

    with pytest.raises(Boom, match="DONE"):
        multi.report("p", "t", S.DONE, "")

    assert after.reports == [("p", "t", S.DONE, "")]
