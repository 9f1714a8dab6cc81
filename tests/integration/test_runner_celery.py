"""The Celery runner on real parts: ``redis-server`` on a free loopback port and two
``celery worker`` processes, all started here and stopped at the end
(tests/integration/celery_support.py).

The storage the workers and the tests share is a parameter (:data:`STORAGES`): the file
log and the PostgreSQL log (on the test server of tests/integration/postgres_server.py).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines_events import Pipeline, audit
from pipelines_events.conf import settings
from pipelines_events.errors import ImproperlyConfigured
from pipelines_events.log.open import open_log
from pipelines_events.results.base import PipelineExecution, PipelineResultsStorage, TaskResult
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.helpers import get_pipeline_results_storage, reset_storage_object
from pipelines_events.runners.celery import (
    Runner,
    attempts,
    configure_app,
    run_task_result,
)
from pipelines_events.runners.eager import Runner as EagerRunner
from pipelines_events.status import PipelineTaskStatus
from tests.integration.celery_pipelines import Cities, Killed, Once, Routed
from tests.integration.celery_support import Cluster, cluster, free_port, redis_binary
from tests.integration.postgres_server import drop_schema, unique_schema
from tests.support.cli_support import run_cli_process

StorageSpec = tuple[str, dict[str, Any]]

EVENTLOG = f"{EventLogPipelineResultsStorage.__module__}.EventLogPipelineResultsStorage"

STORAGES: dict[str, Callable[[Path], StorageSpec]] = {
    "file": lambda directory: (EVENTLOG, {"path": str(directory / "log.jsonl")}),
    "postgres": lambda directory: (EVENTLOG, {"path": pg_log_url(directory)}),
}
"""Storage name -> the storage setting of the log the workers and the tests share: the
file log, or the PostgreSQL log on the test server (a schema of the module's own)."""

_PG_URLS: dict[Path, str] = {}


def pg_log_url(directory: Path) -> str:
    """The PostgreSQL log of the cluster in ``directory`` (set up by :func:`running`)."""
    return _PG_URLS[directory]


def log_of(running: Cluster) -> str:
    """The log the cluster's storage writes: a file path or a postgresql:// URL."""
    return str(running.storage[1]["path"])


def head_of(running: Cluster) -> int | None:
    """The seq of the last event in the cluster's log (None: no log file yet)."""
    target = log_of(running)
    if "://" not in target and not Path(target).exists():
        return None
    with open_log(target, readonly=True) as log:
        return log.head().seq


WORKERS = (("w1", ("celery",)), ("w2", ("celery", "special")))
"""Two workers of one process each; only w2 consumes queue ``special``."""

DONE = PipelineTaskStatus.DONE


@pytest.fixture(scope="module", params=sorted(STORAGES))
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """A broker, two workers and the settings that point this process at them."""
    redis_binary()  # fails (never skips) when redis-server is missing
    directory = tmp_path_factory.mktemp(f"celery-{request.param}")
    schema = None
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        schema = unique_schema()
        _PG_URLS[directory] = f"{server.url}?schema={schema}"
    storage = STORAGES[request.param](directory)
    with (
        cluster(directory, storage, WORKERS) as started,
        settings.override_settings(**started.settings()),
    ):
        try:
            yield started
        finally:
            reset_storage_object()
            if schema is not None:
                drop_schema(server.url, schema)


def storage() -> PipelineResultsStorage:
    return get_pipeline_results_storage()


def tree(execution: PipelineExecution) -> list[Any]:
    """What a run ended as: statuses, messages and stored objects, ids left out."""
    return [
        execution.get_status().name,
        execution.get_message(),
        [
            [
                result.get_status().name,
                result.get_message(),
                result.get_serializable_pipeline_object(),
                [
                    [
                        te.get_pipeline_task(),
                        te.get_status().name,
                        te.get_message(),
                        [
                            [r.get_status().name, r.get_message(), r.get_serializable_task_object()]
                            for r in te.get_task_results()
                        ],
                    ]
                    for te in result.get_task_executions()
                ],
            ]
            for result in execution.get_pipeline_results()
        ],
    ]


def task_results(execution: PipelineExecution) -> list[TaskResult]:
    return [
        r
        for pr in execution.get_pipeline_results()
        for te in pr.get_task_executions()
        for r in te.get_task_results()
    ]


def status_changes(running: Cluster, result: TaskResult) -> list[tuple[str, str]]:
    """The status changes of ``result`` in its history: (new status, message)."""
    log = log_of(running)
    return [
        (getattr(change.new, "name", str(change.new)), change.message or "")
        for change in audit.history(log, result.get_id())
        if change.action == "set" and change.field == "status"
    ]


def ran_on(running: Cluster, result: TaskResult) -> list[str]:
    """The workers the attempts of ``result`` ran on, from its RUNNING messages."""
    return [
        message.split(" on ", 1)[1].split("@", 1)[0]
        for status, message in status_changes(running, result)
        if status == "RUNNING"
    ]


def test_a_run_ends_on_two_workers_as_it_ends_with_the_eager_runner(running: Cluster) -> None:
    data = {"fail": "lima/3", "pause": 0.02}
    eager = Cities().start("cities-eager", data, EagerRunner())
    on_celery = Cities().start("cities-celery", data, Runner(wait=True, timeout=30))

    assert tree(on_celery) == tree(eager)
    assert tree(on_celery)[:2] == ["RUNTIME_ERROR", "ValueError: item 3 of lima is dirty"]
    summarise = on_celery.get_pipeline_results()[1].get_task_executions()[2]
    assert [summarise.get_status().name, summarise.get_message()] == [
        "CANCELLED",
        "cancelled: task 'clean' failed",
    ]
    results = task_results(on_celery)
    assert [attempts(r) for r in results] == [1] * 14
    if "path" in running.storage[1]:
        # every task result started once and ended once; both workers ran some
        for result in results:
            statuses = [status for status, _ in status_changes(running, result)]
            assert statuses in (["RUNNING", result.get_status().name], ["CANCELLED"])
        workers = {w for r in results for w in ran_on(running, r)}
        assert workers == {"w1", "w2"}


@pytest.mark.slow
def test_a_task_result_whose_worker_is_killed_runs_again_and_is_recorded_once(
    running: Cluster,
) -> None:
    markers = running.directory / "markers"
    markers.mkdir()
    execution = Killed().start("killed", {"marker_dir": str(markers)}, Runner())
    deadline = time.monotonic() + 20
    while not list(markers.glob("slow-*")):
        assert time.monotonic() < deadline, "the slow task result never started"
        time.sleep(0.02)
    pid = int(next(markers.glob("slow-*")).name.split("-", 1)[1])
    os.kill(pid, signal.SIGKILL)  # the pool process running task result 2, mid-task

    Runner(timeout=30).wait_for(execution)

    assert execution.get_status() is DONE
    slow = execution.get_pipeline_results()[0].get_task_executions()[0].get_task_results()
    assert [r.get_status() for r in slow] == [DONE, DONE, DONE]
    assert [attempts(r) for r in slow] == [1, 2, 1]
    if "path" in running.storage[1]:
        changes = status_changes(running, slow[1])
        assert [status for status, _ in changes] == ["RUNNING", "RUNNING", "DONE"]
        assert changes[0][1].startswith("attempt 1 on ")
        assert changes[1][1].startswith("attempt 2 on ")
        assert "delivered again before attempt 1 ended" in changes[1][1]
        for result in task_results(execution):
            finals = [s for s, _ in status_changes(running, result) if s != "RUNNING"]
            assert finals == ["DONE"]


def test_a_message_delivered_again_for_an_ended_task_result_is_skipped(running: Cluster) -> None:
    execution = Once().start("once-ended", None, Runner(wait=True, timeout=30))
    (result,) = task_results(execution)
    completed = result.get_completed()
    head = head_of(running)
    configure_app()

    outcome = run_task_result.apply_async(args=(result.get_id(), 0, 0)).get(timeout=20)

    assert outcome == "skipped: already DONE"
    assert (result.get_status(), result.get_completed(), attempts(result)) == (DONE, completed, 1)
    assert head_of(running) == head  # nothing written


def test_two_deliveries_at_once_record_one_ending(running: Cluster) -> None:
    execution = Once().start("once-twice", {"pause": 1.0}, Runner())
    (result,) = task_results(execution)
    deadline = time.monotonic() + 20
    while result.get_status() is not PipelineTaskStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    configure_app()

    # The same message again while the first delivery still runs the task result.
    outcome = run_task_result.apply_async(args=(result.get_id(), 0, 0)).get(timeout=20)
    Runner(timeout=20).wait_for(execution)

    assert outcome in ("skipped: another attempt ended it", "ran: DONE (attempt 2)")
    assert (execution.get_status(), result.get_status(), attempts(result)) == (DONE, DONE, 2)
    if "path" in running.storage[1]:
        assert [s for s, _ in status_changes(running, result)] == ["RUNNING", "RUNNING", "DONE"]


def test_a_task_config_names_its_queue(running: Cluster) -> None:
    execution = Routed().start("routed", None, Runner(wait=True, timeout=30))

    assert execution.get_status() is DONE
    _anywhere, special = execution.get_pipeline_results()[0].get_task_executions()
    if "path" in running.storage[1]:
        for result in special.get_task_results():
            assert ran_on(running, result) == ["w2"]  # the only worker on queue 'special'


def test_a_celery_queue_that_is_not_a_name_is_a_config_error(running: Cluster) -> None:
    from tests.integration.celery_pipelines import BadQueue

    execution = BadQueue().start("bad-queue", None, Runner(wait=True, timeout=30))

    first, second = execution.get_pipeline_results()[0].get_task_executions()
    assert [r.get_status().name for r in first.get_task_results()] == ["CONFIG_ERROR"]
    assert first.get_task_results()[0].get_message() == (
        "config of task 'bad': 'celery_queue': give a queue name, not 5"
    )
    assert [r.get_status().name for r in second.get_task_results()] == ["CANCELLED"]
    assert execution.get_status() is PipelineTaskStatus.CONFIG_ERROR


def test_the_command_line_starts_a_run_on_celery_and_follow_watches_it_end(
    running: Cluster,
) -> None:
    settings_module = running.write_settings_module()
    where = running.directory

    started = run_cli_process(
        "run",
        "tests.integration.celery_pipelines.Cities",
        "--runner",
        "celery",
        "--quiet",
        "--run-id",
        "cli-run",
        "--input",
        '{"pause": 0.05}',
        "--format",
        "json",
        cwd=where,
        settings_dir=where,
        settings_module=settings_module,
    )
    assert started.returncode == 0, started.stderr
    assert (
        "run cli-run started on Celery workers; watch it end with: "
        "pipelines-events follow cli-run --until-done" in started.stderr
    )
    assert json.loads(started.stdout)["status"] in ("RUNNING", "DONE")

    followed = run_cli_process(
        "follow",
        "cli-run",
        "--until-done",
        "--timeout",
        "30",
        "--format",
        "jsonl",
        cwd=where,
        settings_dir=where,
        settings_module=settings_module,
    )  # type: ignore[arg-type]
    assert followed.returncode == 0, followed.stderr
    execution = storage().get_pipeline_execution("cli-run")
    assert execution is not None and execution.get_status() is DONE


def test_workers_with_another_runner_are_refused(running: Cluster) -> None:
    settings_module = running.write_settings_module()
    head = head_of(running)

    refused = run_cli_process(
        "run",
        "tests.integration.celery_pipelines.Once",
        "--runner",
        "celery",
        "--workers",
        "2",
        "--run-id",
        "refused",
        cwd=running.directory,
        settings_dir=running.directory,
        settings_module=settings_module,
    )

    assert refused.returncode == 2
    assert (
        "--workers is the number of processes of the process runner; it does not go with "
        "--runner celery"
    ) in refused.stderr
    assert head_of(running) == head  # nothing written
    assert storage().get_pipeline_execution("refused") is None


def test_a_broker_that_cannot_be_reached_fails_the_run(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    spec = STORAGES["file"](tmp_path)
    (tmp_path / "no_broker_settings.py").write_text(
        f"PIPELINES_PIPELINES_RESULTS_STORAGE = {spec!r}\n", encoding="utf-8"
    )
    failed = run_cli_process(
        "run",
        "tests.integration.celery_pipelines.Once",
        "--runner",
        "celery",
        "--quiet",
        "--run-id",
        "no-broker",
        "--format",
        "json",
        cwd=tmp_path,
        settings_dir=tmp_path,
        settings_module="no_broker_settings",
        env={"PIPELINES_CELERY_BROKER_URL": f"redis://:secret@127.0.0.1:{port}/0"},
    )

    assert failed.returncode == 1, failed.stderr
    run = json.loads(failed.stdout)
    assert run["status"] == "RUNTIME_ERROR"
    assert run["message"].startswith(
        f"the Celery broker redis://:**@127.0.0.1:{port}/0 cannot be reached: OperationalError: "
    )
    assert "secret" not in Path(spec[1]["path"]).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (5, "give a broker URL such as 'redis://localhost:6379/0', not 5"),
        ("  ", "give a broker URL such as 'redis://localhost:6379/0', not '  '"),
    ],
)
def test_a_broker_url_that_is_not_one_is_refused(tmp_path: Path, value: Any, problem: str) -> None:
    spec = STORAGES["file"](tmp_path)
    with (
        settings.override_settings(
            PIPELINES_PIPELINES_RESULTS_STORAGE=spec, PIPELINES_CELERY_BROKER_URL=value
        ),
        pytest.raises(ImproperlyConfigured) as caught,
    ):
        configure_app()
    assert str(caught.value) == (
        f"PIPELINES_CELERY_BROKER_URL (from settings.override_settings()): {problem}"
    )
    assert not Path(spec[1]["path"]).exists()  # nothing written


def test_a_celery_config_that_is_not_a_dict_is_refused(tmp_path: Path) -> None:
    with (
        settings.override_settings(PIPELINES_CELERY_CONFIG=["broker_url"]),
        pytest.raises(ImproperlyConfigured) as caught,
    ):
        configure_app()
    assert str(caught.value) == (
        "PIPELINES_CELERY_CONFIG (from settings.override_settings()): give a dict of Celery "
        "setting -> value, not ['broker_url']"
    )


def test_a_celery_config_that_undoes_the_runner_s_own_settings_is_refused(
    tmp_path: Path,
) -> None:
    spec = STORAGES["file"](tmp_path)
    with (
        settings.override_settings(
            PIPELINES_PIPELINES_RESULTS_STORAGE=spec,
            PIPELINES_CELERY_CONFIG={"task_acks_late": False, "broker_url": "redis://x/0"},
        ),
        pytest.raises(ImproperlyConfigured) as caught,
    ):
        Once().start("undone", None, Runner())
    assert str(caught.value) == (
        "PIPELINES_CELERY_CONFIG (from settings.override_settings()): 'broker_url': give "
        "the broker URL as PIPELINES_CELERY_BROKER_URL; 'task_acks_late': the runner sets "
        "it (a message is acknowledged once its task result has ended, so that the task "
        "result of a lost worker runs again)"
    )
    assert not Path(spec[1]["path"]).exists()  # nothing written


@pytest.mark.slow
def test_a_whole_worker_killed_mid_task_leaves_its_message_to_another_worker(
    tmp_path: Path,
) -> None:
    # The worker and its pool die at once (no WorkerLostError to requeue the message):
    # the broker gives the unacknowledged message to the other worker once its
    # visibility timeout (2 s here) has passed.
    redis_binary()
    storage_spec = STORAGES["file"](tmp_path)
    with (
        cluster(tmp_path, storage_spec, WORKERS, visibility_timeout=2) as started,
        settings.override_settings(**started.settings()),
    ):
        try:
            markers = tmp_path / "markers"
            markers.mkdir()
            execution = Killed().start("killed-whole", {"marker_dir": str(markers)}, Runner())
            deadline = time.monotonic() + 20
            while not list(markers.glob("slow-*")):
                assert time.monotonic() < deadline, "the slow task result never started"
                time.sleep(0.02)
            pid = int(next(markers.glob("slow-*")).name.split("-", 1)[1])
            (victim,) = [w for w in started.workers if pid in started.pool_pids(w)]
            os.killpg(victim.process.pid, signal.SIGKILL)

            Runner(timeout=40).wait_for(execution)

            assert execution.get_status() is DONE
            slow = execution.get_pipeline_results()[0].get_task_executions()[0]
            assert [attempts(r) for r in slow.get_task_results()] == [1, 2, 1]
            (other,) = {name for name, _ in WORKERS} - {victim.name}
            assert ran_on(started, slow.get_task_results()[1]) == [victim.name, other]
        finally:
            reset_storage_object()


@pytest.mark.slow
def test_task_results_side_by_side_in_a_thread_pool_each_see_their_own_objects(
    tmp_path: Path,
) -> None:
    from tests.integration.celery_pipelines import Threads

    redis_binary()
    running = Cluster(tmp_path, STORAGES["file"](tmp_path))
    try:
        running.start_redis()
        running.start_worker("threads", concurrency=2, pool="threads")
        running.wait_ready()
        with settings.override_settings(**running.settings()):
            try:
                execution = Threads().start("threads", None, Runner(wait=True, timeout=30))
                outcome = [(r.get_status().name, r.get_message()) for r in task_results(execution)]
            finally:
                reset_storage_object()
    finally:
        running.close()
    assert outcome == [("DONE", "")] * 4


def test_a_task_result_its_worker_cannot_load_fails_and_the_run_ends(running: Cluster) -> None:
    class OnlyHere(Once):  # defined here: the workers cannot import it by its id
        pass

    OnlyHere.__module__ = "tests.no_such_module"
    execution = OnlyHere().start("only-here", None, Runner(wait=True, timeout=30))

    (result,) = task_results(execution)
    assert result.get_status() is PipelineTaskStatus.RUNTIME_ERROR
    assert result.get_message().startswith("NotRegisteredError: no pipeline with id ")
    assert execution.get_status() is PipelineTaskStatus.RUNTIME_ERROR


def test_a_pipeline_its_workers_cannot_load_ends_with_its_later_tasks_cancelled(
    running: Cluster,
) -> None:
    # The workers load each task result's task, and the pipeline to know which task is
    # next: here they can load neither (defined here, not importable by their ids); the
    # first task fails, the second is cancelled, the run ends.
    from tests.integration.celery_pipelines import Summarise

    class Hidden(Summarise):
        pass

    class Elsewhere(Pipeline):
        first = Hidden()
        then = Summarise()

    for cls in (Hidden, Elsewhere):
        cls.__module__ = "tests.no_such_module"

    failed = Elsewhere().start("elsewhere", None, Runner(wait=True, timeout=20))

    def outcome(execution: PipelineExecution) -> list[tuple[str, str]]:
        return [(r.get_status().name, r.get_message()) for r in task_results(execution)]

    assert outcome(failed) == [
        ("RUNTIME_ERROR", outcome(failed)[0][1]),
        ("CANCELLED", "cancelled: task 'first' failed"),
    ]
    assert outcome(failed)[0][1].startswith("NotRegisteredError: no task with id ")
    assert failed.get_status() is PipelineTaskStatus.RUNTIME_ERROR


def test_another_broker_setting_is_the_one_the_next_run_uses(running: Cluster) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with settings.override_settings(PIPELINES_CELERY_BROKER_URL=dead):
        refused = Once().start("dead-broker", None, Runner())
    assert refused.get_status() is PipelineTaskStatus.RUNTIME_ERROR
    assert refused.get_message().startswith(f"the Celery broker {dead} cannot be reached: ")

    # back on the cluster's broker: the app's connections to the other one are gone
    execution = Once().start("live-broker", None, Runner(wait=True, timeout=30))
    assert execution.get_status() is DONE


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("localhost:6379", "it has no scheme (such as 'redis://')"),
        ("http://127.0.0.1:1/", "No such transport: http"),
        ("redis://:secret@127.0.0.1:port/0", "Port could not be cast to integer value as 'port'"),
        ("redis://:secret@127.0.0.1:1/first", "the Redis database is a number, not 'first'"),
    ],
)
def test_a_broker_url_celery_cannot_use_is_refused_before_anything_is_written(
    tmp_path: Path, value: str, problem: str
) -> None:
    spec = STORAGES["file"](tmp_path)
    with settings.override_settings(
        PIPELINES_PIPELINES_RESULTS_STORAGE=spec, PIPELINES_CELERY_BROKER_URL=value
    ):
        try:
            with pytest.raises(ImproperlyConfigured) as caught:
                Once().start("bad-url", None, Runner())
        finally:
            reset_storage_object()
    shown = value.replace(":secret@", ":**@")
    assert str(caught.value) == (
        f"PIPELINES_CELERY_BROKER_URL (from settings.override_settings()): {shown!r} is "
        f"not a broker URL Celery can use: {problem}"
    )
    assert "secret" not in str(caught.value)
    assert not Path(spec[1]["path"]).exists()  # nothing written


def test_the_command_line_refuses_a_broker_url_celery_cannot_use(tmp_path: Path) -> None:
    spec = STORAGES["file"](tmp_path)
    (tmp_path / "bad_url_settings.py").write_text(
        f"PIPELINES_PIPELINES_RESULTS_STORAGE = {spec!r}\n", encoding="utf-8"
    )
    refused = run_cli_process(
        "run",
        "tests.integration.celery_pipelines.Once",
        "--runner",
        "celery",
        "--run-id",
        "bad-url",
        cwd=tmp_path,
        settings_dir=tmp_path,
        settings_module="bad_url_settings",
        env={"PIPELINES_CELERY_BROKER_URL": "amqq://127.0.0.1:5672//"},
    )

    assert refused.returncode == 2, refused.stderr
    assert (
        "PIPELINES_CELERY_BROKER_URL (from the environment variable "
        "PIPELINES_CELERY_BROKER_URL): 'amqq://127.0.0.1:5672//' is not a broker URL "
        "Celery can use: No such transport: amqq"
    ) in " ".join(refused.stderr.split())
    assert not Path(spec[1]["path"]).exists()  # nothing written


def test_a_message_delivered_again_after_its_worker_ended_the_task_result_but_not_the_task(
    running: Cluster,
) -> None:
    # As when a worker records DONE and dies before it starts the next task: its message,
    # delivered again, records nothing for the task result and starts the next task.
    from tests.integration.celery_pipelines import Stranded

    execution = Stranded().start("stranded", None, Runner())
    first, then = execution.get_pipeline_results()[0].get_task_executions()
    (result,) = first.get_task_results()
    assert result.get_status() is PipelineTaskStatus.PENDING  # its message waits in 'nowhere'
    reporter = None
    assert result.report_status_change(reporter, PipelineTaskStatus.RUNNING, "", False)
    assert result.report_status_change(reporter, DONE, "", False)
    configure_app()

    outcome = run_task_result.apply_async(args=(result.get_id(), 0, 0)).get(timeout=20)
    Runner(timeout=20).wait_for(execution)

    assert outcome == "skipped: already DONE"
    assert (first.get_status(), then.get_status(), execution.get_status()) == (DONE, DONE, DONE)
    assert attempts(result) == 1
    if "path" in running.storage[1]:
        assert [s for s, _ in status_changes(running, result)] == ["RUNNING", "DONE"]
