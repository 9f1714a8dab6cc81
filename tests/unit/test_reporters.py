"""Reporters: the base class, logging, fanning out, and what a run reports."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

from pipelines_events.conf import settings
from pipelines_events.errors import ImproperlyConfigured
from pipelines_events.pipeline import Pipeline
from pipelines_events.reporters import LoggingReporter, MultiPipelineReporter, PipelineReporter
from pipelines_events.results import helpers
from pipelines_events.results.base import PipelineStorageObject
from pipelines_events.status import PipelineTaskStatus as S
from pipelines_events.task import Task

EVENTLOG = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"

Report = tuple[str, str | None, S, str]
"""The object's kind, its task id (None above tasks), the status, the message."""


@pytest.fixture(autouse=True)
def log_storage(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "runs.jsonl"
    helpers.reset_storage_object()
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=(EVENTLOG, {"path": path})):
        yield path
        helpers.reset_storage_object()


class ListReporter(PipelineReporter):
    """Keeps what ``report`` hears, the object as (kind, task id)."""

    def __init__(self) -> None:
        self.reports: list[Report] = []
        self.objects: list[PipelineStorageObject] = []

    def report(self, context_object: PipelineStorageObject, status: S, message: str) -> None:
        self.objects.append(context_object)
        self.reports.append((context_object.kind, context_object.get_task_id(), status, message))


class Boom(Exception):
    pass


class RaisingReporter(PipelineReporter):
    def report(self, context_object: PipelineStorageObject, status: S, message: str) -> None:
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


def _messages(reporter: ListReporter) -> list[tuple[str, S, str]]:
    """(kind, status, message after the object's description) of every report."""
    return [
        (kind, status, message.split(": ", 1)[1]) for kind, _, status, message in reporter.reports
    ]


PE, PR, TE, TR = "pipeline_execution", "pipeline_result", "task_execution", "task_result"


def test_the_base_reporter_must_implement_report() -> None:
    class Nothing(PipelineReporter):
        pass

    execution = OneTask().start(run_id="quiet", reporter=ListReporter())
    with pytest.raises(NotImplementedError, match=r"Nothing does not implement report\(\)"):
        Nothing().report_pipeline_execution(execution, S.DONE, "")


def test_a_reporter_hears_every_object_pending_then_every_status_change_in_order() -> None:
    reporter = ListReporter()

    OneTask().start(run_id="heard", reporter=reporter)

    assert [(kind, status) for kind, _, status, _ in reporter.reports] == [
        (PE, S.PENDING), (PR, S.PENDING), (TE, S.PENDING), (TR, S.PENDING),
        (PE, S.RUNNING), (PR, S.RUNNING), (TE, S.RUNNING), (TR, S.RUNNING),
        (TR, S.DONE), (TE, S.DONE), (PR, S.DONE), (PE, S.DONE),
    ]  # fmt: skip
    assert _messages(reporter)[:4] == [
        (PE, S.PENDING, "Pipeline is waiting to start"),
        (PR, S.PENDING, "Pipeline is waiting to start"),
        (TE, S.PENDING, "Task is waiting to start"),
        (TR, S.PENDING, "Task is waiting to start"),
    ]
    assert {message for _, _, message in _messages(reporter)[4:8]} == {"Changed state to RUNNING"}
    assert {message for _, _, message in _messages(reporter)[8:]} == {"Changed state to DONE"}


def test_the_messages_describe_the_object_as_the_original_did() -> None:
    reporter = ListReporter()

    execution = OneTask().start(run_id="described", reporter=reporter)

    (result,) = execution.get_pipeline_results()
    (task_execution,) = result.get_task_executions()
    (task_result,) = task_execution.get_task_results()
    ok = Ok.task_id
    assert [message for *_, message in reporter.reports[-4:]] == [
        f"Task result ({task_result.get_id()}) ok ({ok}): Changed state to DONE",
        f"Task execution ({task_execution.get_id()}) ok ({ok}): Changed state to DONE",
        f"Pipeline result ({result.get_id()}) one-task: Changed state to DONE",
        "Pipeline execution (described) one-task: Changed state to DONE",
    ]
    assert reporter.objects[-1] == execution


def test_a_reporter_hears_failures_and_cancellations() -> None:
    reporter = ListReporter()

    Failing().start(run_id="failing", reporter=reporter)

    finals = [
        (task, status, message.split(": ", 1)[1])
        for _, task, status, message in reporter.reports[-6:]
    ]
    error = "Changed state to RUNTIME_ERROR - RuntimeError: no luck"
    cancelled = "Changed state to CANCELLED - cancelled: task 'fails' failed"
    assert finals == [
        ("fails", S.RUNTIME_ERROR, error),  # the task result
        ("fails", S.RUNTIME_ERROR, error),  # the task execution
        (Ok.task_id, S.CANCELLED, cancelled),  # later's task result
        (Ok.task_id, S.CANCELLED, cancelled),  # later's task execution
        (None, S.RUNTIME_ERROR, error),  # the pipeline result, once its tasks have ended
        (None, S.RUNTIME_ERROR, error),  # the execution, last
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
            PE,
            None,
            S.PENDING,
            "Pipeline execution (config) bad-config: Pipeline is waiting to start",
        ),
        (
            PE,
            None,
            S.CONFIG_ERROR,
            "Pipeline execution (config) bad-config: Changed state to CONFIG_ERROR - "
            "config of task 'needs': Object missing required field `n`",
        ),
    ]


def test_a_reporter_that_overrides_a_hook_is_called_through_it() -> None:
    class TaskResultsOnly(ListReporter):
        def report_context_object(
            self, context_object: PipelineStorageObject, status: S, message: str
        ) -> None:
            if context_object.kind == TR:
                super().report_context_object(context_object, status, message)

    reporter = TaskResultsOnly()
    OneTask().start(run_id="hooked", reporter=reporter)

    assert [status for _, _, status, _ in reporter.reports] == [S.PENDING, S.RUNNING, S.DONE]


def test_the_logging_reporter_logs_to_the_pipelines_events_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pipelines_events")

    Failing().start(run_id="logged")

    records = [
        (r.levelno, r.getMessage().split(": ", 1)[1])
        for r in caplog.records
        if r.name == "pipelines_events"
    ]
    assert records[0] == (logging.INFO, "Pipeline is waiting to start")
    assert (logging.INFO, "Changed state to RUNNING") in records
    assert (logging.ERROR, "Changed state to RUNTIME_ERROR - RuntimeError: no luck") in records
    assert (
        logging.WARNING,
        "Changed state to CANCELLED - cancelled: task 'fails' failed",
    ) in records
    assert (logging.INFO, "Changed state to DONE") in records


def test_the_logging_reporter_takes_another_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    execution = OneTask().start(run_id="other-logger", reporter=ListReporter())

    LoggingReporter("my.logger").report(execution, S.DONE, "the message")
    LoggingReporter(logging.getLogger("other")).report_pipeline_execution(
        execution, S.CANCELLED, "why"
    )

    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("my.logger", logging.INFO, "the message"),
        ("other", logging.WARNING, "Pipeline execution (other-logger) one-task: why"),
    ]


def test_the_multi_reporter_fans_out_to_every_reporter() -> None:
    first, second = ListReporter(), ListReporter()

    OneTask().start(run_id="multi", reporter=MultiPipelineReporter([first, second]))

    assert len(first.reports) == 12
    assert first.reports == second.reports
    execution = helpers.get_pipeline_execution("multi")
    assert execution is not None
    assert execution.get_reporter() == "pipelines_events.reporters.MultiPipelineReporter"


class Collected(PipelineReporter):
    """A reporter a config entry names, with a kwarg."""

    heard: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, label: str = "plain") -> None:
        self.label = label

    def report(self, context_object: PipelineStorageObject, status: S, message: str) -> None:
        self.heard.append((self.label, status.value))


def test_the_multi_reporter_builds_reporters_from_config_entries() -> None:
    Collected.heard.clear()
    multi = MultiPipelineReporter(
        [f"{__name__}.Collected", (f"{__name__}.Collected", {"label": "kw"}), ListReporter()]
    )

    OneTask().start(run_id="entries", reporter=multi)

    assert [type(r).__name__ for r in multi.reporters] == ["Collected", "Collected", "ListReporter"]
    assert Collected.heard[:2] == [("plain", "PENDING"), ("kw", "PENDING")]
    assert len(Collected.heard) == 24


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (42, r"reporter 42: give a reporter object, a dotted class path or a \(dotted path"),
        (("a.b",), r"give a reporter object, a dotted class path"),
        ("no_such_module.Reporter", r"reporter 'no_such_module.Reporter': cannot import it"),
        (f"{__name__}.Boom", r"Boom has no report\(\)"),
        ((f"{__name__}.Collected", {"colour": 1}), r"cannot create it with \{'colour': 1\}"),
        (f"{__name__}.PE", r"is not a class"),
    ],
)
def test_bad_reporter_entries_are_refused_naming_the_entry(entry: Any, problem: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=problem):
        MultiPipelineReporter([entry])


def test_the_multi_reporter_refuses_what_is_not_a_list() -> None:
    with pytest.raises(ImproperlyConfigured, match="reporters: give a list"):
        MultiPipelineReporter("pipelines_events.reporters.LoggingReporter")  # type: ignore[arg-type]


def test_the_multi_reporter_calls_every_reporter_before_raising_the_first_error() -> None:
    after = ListReporter()
    multi = MultiPipelineReporter([RaisingReporter(), after, RaisingReporter()])
    execution = OneTask().start(run_id="raising", reporter=ListReporter())

    with pytest.raises(Boom, match="DONE"):
        multi.report(execution, S.DONE, "")

    assert after.reports == [(PE, None, S.DONE, "")]


def test_a_reporter_without_the_hooks_is_refused_before_anything_is_built() -> None:
    class OldStyle:
        def report(self, *args: Any) -> None:
            return None

    with pytest.raises(TypeError, match=r"reporter: OldStyle has no report_context_object"):
        OneTask().start(run_id="old-style", reporter=OldStyle())  # type: ignore[arg-type]
    assert helpers.get_pipeline_execution("old-style") is None


def test_the_logging_reporter_describes_nothing_the_logger_drops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="quiet")
    reporter = LoggingReporter("quiet")
    not_a_result = object()

    reporter.report_context_object(not_a_result, S.DONE, "dropped")  # type: ignore[arg-type]

    assert caplog.records == []
    with pytest.raises(TypeError, match="it is not a result object"):
        reporter.report_context_object(not_a_result, S.CANCELLED, "kept")  # type: ignore[arg-type]
