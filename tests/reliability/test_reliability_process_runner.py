"""The process runner: the same final statuses as the eager runner, on one shared log.

Each case runs the same pipeline once with the eager runner and once with the process
runner (different run ids, same log), then compares every object's status and message,
and checks the log (hash chain, contiguous ``seq``, statuses that only move forward).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines_events.conf import settings
from pipelines_events.pipeline import Pipeline
from pipelines_events.reporters import PipelineReporter
from pipelines_events.results import helpers
from pipelines_events.results.base import PipelineExecution, PipelineStorageObject
from pipelines_events.runners.eager import Runner as EagerRunner
from pipelines_events.runners.process import Runner as ProcessRunner
from pipelines_events.status import PipelineTaskStatus
from tests.reliability.common import all_events
from tests.reliability.pipelines import Cities, Single, Slow
from tests.reliability.workers import status_histories

pytestmark = pytest.mark.slow  # the quick subset (-m 'not slow') leaves these out

EVENTLOG = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"
MEMORY = "pipelines_events.results.memory.MemoryPipelineResultsStorage"
RUN_TIMEOUT = 60.0
"""Every process run is bounded: what is still running then is stopped and fails."""


@pytest.fixture
def log_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "runs.jsonl"
    helpers.reset_storage_object()
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=(EVENTLOG, {"path": path})):
        yield path
        helpers.reset_storage_object()
    all_events(path)  # the log verifies after every test


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    directory = tmp_path / "markers"
    directory.mkdir()
    return directory


def outcome(obj: PipelineStorageObject) -> Any:
    """Status and message of ``obj`` and everything below it (what a runner decides)."""
    return (
        obj.kind,
        obj.get_status().name,
        obj.get_message(),
        obj.get_started() is not None,
        obj.get_completed() is not None,
        [outcome(child) for child in obj.get_children()],
    )


def both(pipeline: Pipeline, plan: dict[str, Any], **runner: Any) -> tuple[Any, Any]:
    """Run ``pipeline`` eagerly and with the process runner; both outcomes."""
    eager = pipeline.start("eager", plan, EagerRunner())
    parallel = pipeline.start("parallel", plan, process_runner(**runner))
    return outcome(eager), outcome(parallel)


def process_runner(**kwargs: Any) -> ProcessRunner:
    kwargs.setdefault("workers", 4)
    kwargs.setdefault("timeout", RUN_TIMEOUT)
    return ProcessRunner(**kwargs)


def marker_pids(markers: Path, run_id: str) -> dict[str, int]:
    return {
        path.name.split(".", 1)[1]: int(path.read_text())
        for path in markers.iterdir()
        if path.name.startswith(run_id + ".")
    }


def statuses_only_advance(path: Path) -> None:
    rank = {"PENDING": 0, "RUNNING": 1}
    for object_id, history in status_histories(all_events(path)).items():
        ranks = [rank.get(status, 2) for status in history]
        assert ranks == sorted(set(ranks)), (object_id, history)


def test_a_run_that_succeeds_ends_as_with_the_eager_runner(log_path: Path, markers: Path) -> None:
    eager, parallel = both(Cities(), {"markers": str(markers), "sleep": 0.02})
    assert eager == parallel
    assert parallel[1] == "DONE"
    pids = marker_pids(markers, "parallel")
    assert len(pids) == 3 * (4 + 1 + 4)  # every task result ran once
    assert os.getpid() not in pids.values()  # in the workers, not in the runner's process
    assert len(set(pids.values())) > 1  # and in more than one of them
    statuses_only_advance(log_path)


def test_tasks_run_after_the_tasks_they_depend_on(log_path: Path, markers: Path) -> None:
    execution = Cities().start("parallel", {"markers": str(markers)}, process_runner())
    for result in execution.get_pipeline_results():
        by_task = {te.get_pipeline_task(): te for te in result.get_task_executions()}
        before = [*by_task["fetch"].get_task_results(), *by_task["check"].get_task_results()]
        after = by_task["store"].get_task_results()
        last_done = max(r.get_completed() for r in before)  # type: ignore[type-var]
        first_start = min(r.get_started() for r in after)  # type: ignore[type-var]
        assert last_done <= first_start


@pytest.mark.parametrize(
    "fail",
    [
        [["check", "lima", None]],  # a task of one task result fails in one city
        [["check", "oslo", None], ["check", "rome", None]],
        [["store", "rome", "d"]],  # the last task result of the last task fails
    ],
)
def test_failures_end_as_with_the_eager_runner(
    log_path: Path, markers: Path, fail: list[Any]
) -> None:
    eager, parallel = both(Cities(), {"markers": str(markers), "fail": fail}, workers=4)
    assert parallel[1] == "RUNTIME_ERROR"
    # Cities run side by side: when several fail, the execution carries the message of
    # whichever failed first in time, which is not always the first the eager runner met.
    failures = {result[2] for result in parallel[5] if result[1] == "RUNTIME_ERROR"}
    assert parallel[2] in failures
    assert eager[:2] + eager[3:] == parallel[:2] + parallel[3:]
    if len(failures) == 1:
        assert eager == parallel
    statuses_only_advance(log_path)


@pytest.mark.parametrize("item", ["b", "d"])
def test_with_one_worker_every_failure_ends_as_with_the_eager_runner(
    log_path: Path, markers: Path, item: str
) -> None:
    plan = {"markers": str(markers), "fail": [["fetch", "lima", item], ["store", "oslo", "c"]]}
    eager, parallel = both(Cities(), plan, workers=1)
    assert eager == parallel


def test_a_failure_among_parallel_task_results(log_path: Path, markers: Path) -> None:
    """With several workers, the task results of the failing task that were already
    running finish; the others, and the later tasks, are CANCELLED."""
    plan = {"markers": str(markers), "fail": [["fetch", "lima", "b"]], "sleep": 0.05}
    execution = Cities().start("parallel", plan, process_runner(workers=3))
    assert execution.get_status() is PipelineTaskStatus.RUNTIME_ERROR
    lima = execution.get_pipeline_results()[1]
    fetch, check, store = (te for te in lima.get_task_executions())
    statuses = [r.get_status().name for r in fetch.get_task_results()]
    assert statuses[:2] == ["DONE", "RUNTIME_ERROR"]
    assert set(statuses[2:]) <= {"DONE", "CANCELLED"}
    assert fetch.get_status() is PipelineTaskStatus.RUNTIME_ERROR
    assert lima.get_status() is PipelineTaskStatus.RUNTIME_ERROR
    for task_execution in (check, store):
        assert task_execution.get_status() is PipelineTaskStatus.CANCELLED
        assert task_execution.get_message() == "cancelled: task 'fetch' failed"
    for other in (execution.get_pipeline_results()[0], execution.get_pipeline_results()[2]):
        assert other.get_status() is PipelineTaskStatus.DONE
    statuses_only_advance(log_path)


def test_input_data_that_does_not_validate_ends_as_with_the_eager_runner(
    log_path: Path,
) -> None:
    eager, parallel = both(Single(), {"no": "markers"})
    assert eager == parallel
    assert parallel[1] == "VALIDATION_ERROR"


def test_the_spawn_start_method(log_path: Path, markers: Path) -> None:
    """Spawned workers import the pipeline by its id and open the storage from the
    setting the runner passes them."""
    plan = {"markers": str(markers), "fail": [["check", "rome", None]]}
    eager, parallel = both(Cities(), plan, start_method="spawn", workers=2)
    assert eager == parallel


def test_a_worker_that_dies_fails_its_task_result_and_the_run_goes_on(
    log_path: Path, markers: Path
) -> None:
    plan = {"markers": str(markers), "die": [["check", "lima", None]]}
    execution = Cities().start("parallel", plan, process_runner(workers=2))
    oslo, lima, rome = execution.get_pipeline_results()
    check = lima.get_task_executions()[1]
    (result,) = check.get_task_results()
    assert result.get_status() is PipelineTaskStatus.RUNTIME_ERROR
    assert "its worker process ended before it finished" in result.get_message()
    assert lima.get_status() is PipelineTaskStatus.RUNTIME_ERROR
    assert oslo.get_status() in (PipelineTaskStatus.DONE, PipelineTaskStatus.RUNTIME_ERROR)
    for pipeline_result in (oslo, rome, lima):
        for task_result in _task_results(pipeline_result):
            assert task_result.get_status().is_final
    statuses_only_advance(log_path)


def _task_results(result: Any) -> list[Any]:
    return [r for te in result.get_task_executions() for r in te.get_task_results()]


def test_the_timeout_stops_the_workers_and_fails_what_ran(log_path: Path, markers: Path) -> None:
    plan = {"markers": str(markers), "sleep": 30}
    execution = Slow().start("slow", plan, process_runner(workers=1, timeout=1.0))
    assert execution.get_status() is PipelineTaskStatus.RUNTIME_ERROR
    (result,) = _task_results(execution.get_pipeline_results()[0])
    assert result.get_status() is PipelineTaskStatus.RUNTIME_ERROR
    assert result.get_message() == "TimeoutError: the run did not finish in 1.0 s"
    statuses_only_advance(log_path)


def test_a_storage_the_workers_cannot_share_fails_the_run_clearly(markers: Path) -> None:
    helpers.reset_storage_object()
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=MEMORY):
        execution = Single().start("memory", {"markers": str(markers)}, process_runner())
        assert execution.get_status() is PipelineTaskStatus.RUNTIME_ERROR
        assert "the process runner needs a storage that processes share" in (
            execution.get_message()
        )
        assert all(
            r.get_status().is_final for r in _task_results(execution.get_pipeline_results()[0])
        )
        helpers.reset_storage_object()
    assert list(markers.iterdir()) == []


def test_the_workers_take_the_storage_they_are_given(tmp_path: Path, markers: Path) -> None:
    """``storage=`` overrides the setting (here, the setting names another log)."""
    path = tmp_path / "given.jsonl"
    helpers.reset_storage_object()
    from pipelines_events.results.eventlog import EventLogPipelineResultsStorage

    storage = EventLogPipelineResultsStorage(path)
    execution = storage.build_pipeline_execution(
        Single(), "given", ProcessRunner(), None, {"markers": str(markers)}
    )
    runner = process_runner(storage=(EVENTLOG, {"path": str(path)}))
    runner.run(execution, _Reporter())
    assert execution.get_status() is PipelineTaskStatus.DONE
    storage.close()
    statuses_only_advance(path)


class _Reporter(PipelineReporter):
    def __init__(self) -> None:
        self.changes: list[tuple[Any, ...]] = []

    def report_context_object(self, context_object: Any, status: Any, message: str) -> None:
        # What is the same in two runs: the object's kind and task, the status, the text.
        where = (context_object.kind, context_object.get_task_id())
        self.changes.append((*where, status, message))


def test_the_reporter_hears_of_the_workers_changes(log_path: Path, markers: Path) -> None:
    eager_reporter, process_reporter = _Reporter(), _Reporter()
    plan = {"markers": str(markers)}
    Single().start("eager", plan, EagerRunner(), eager_reporter)
    Single().start("parallel", plan, process_runner(workers=1), process_reporter)
    assert sorted(map(repr, process_reporter.changes)) == sorted(map(repr, eager_reporter.changes))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "workers: give a positive int or None, not 0"),
        ({"workers": "2"}, "workers: give a positive int or None, not '2'"),
        ({"start_method": "thread"}, "start_method: give one of"),
        ({"timeout": 0}, "timeout: give a positive number of seconds, not 0"),
    ],
)
def test_bad_runner_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProcessRunner(**kwargs)


def test_an_execution_already_final_is_left_alone(log_path: Path, markers: Path) -> None:
    execution: PipelineExecution = Single().start("once", {"markers": str(markers)})
    before = log_path.read_bytes()
    process_runner().run(execution, _Reporter())
    assert log_path.read_bytes() == before
