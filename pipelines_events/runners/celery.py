"""The Celery runner: runs the task results of a run as Celery tasks, on any worker.

Workers start with ``celery -A pipelines_events.runners.celery worker``; they need only
this package, the pipelines' modules and the settings: the storage setting tells every
worker where the log is, :data:`~pipelines_events.conf.CELERY_BROKER_SETTING` (or the
environment variable of that name) where the broker is. What runs next is decided from
the storage, by the worker that ended the last task result of a task, never by a chord
callback: a run survives any worker, and a redelivered message never records twice.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Any, Final

from celery import Celery
from celery.signals import worker_process_init
from kombu.connection import Connection
from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url

from pipelines_events.conf import CELERY_BROKER_SETTING, CELERY_CONFIG_SETTING, settings
from pipelines_events.errors import ImproperlyConfigured
from pipelines_events.events import utc_now
from pipelines_events.reporters import LoggingReporter
from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResult,
    StatusReporter,
    TaskExecution,
    TaskResult,
    status_change_message,
)
from pipelines_events.results.helpers import get_pipeline_results_storage, reset_storage_object
from pipelines_events.runners import (
    PipelineRunner,
    cancel_below,
    cancelled_message,
    error_message,
    error_traceback,
    fail_run,
    fail_task_execution,
    settle,
)
from pipelines_events.runners.steps import (
    Failure,
    Prepared,
    iterator_objects,
    load_run,
    prepare,
    sorted_task_executions,
    task_order,
)
from pipelines_events.status import PipelineTaskStatus

__all__ = [
    "BROKER_ENV",
    "DEFAULT_BROKER_URL",
    "TASK_NAME",
    "Runner",
    "advance",
    "app",
    "attempts",
    "broker_url",
    "configure_app",
    "run_task_result",
]

logger = logging.getLogger(__name__)

BROKER_ENV: Final = CELERY_BROKER_SETTING
"""The environment variable read for the broker URL when the setting is None."""

DEFAULT_BROKER_URL: Final = "redis://localhost:6379/0"
"""The broker URL when neither the setting nor the environment variable gives one."""

TASK_NAME: Final = "pipelines_events.run_task_result"
"""The name of the Celery task that runs one task result."""

_PENDING: Final = PipelineTaskStatus.PENDING
_RUNNING: Final = PipelineTaskStatus.RUNNING
_DONE: Final = PipelineTaskStatus.DONE
_RUNTIME_ERROR: Final = PipelineTaskStatus.RUNTIME_ERROR
_FAILED: Final = PipelineTaskStatus.error_statuses()

_FIXED_CONFIG: Final[dict[str, Any]] = {
    # A message is acknowledged once its task result has ended (or was skipped): a
    # worker that dies mid-task leaves it to be delivered again.
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "task_serializer": "json",
    "accept_content": ["json"],
    "broker_connection_retry_on_startup": True,
    # A broker that cannot be reached fails the run within seconds, not minutes.
    "task_publish_retry_policy": {
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": 0.5,
        "interval_max": 1,
    },
    "broker_connection_timeout": 2,
}


_KEEPS_REDELIVERY: Final = (
    "the runner sets it (a message is acknowledged once its task result has ended, so that "
    "the task result of a lost worker runs again)"
)
_LOCKED_CONFIG: Final[dict[str, str]] = {
    "broker_url": f"give the broker URL as {CELERY_BROKER_SETTING}",
    "task_acks_late": _KEEPS_REDELIVERY,
    "task_reject_on_worker_lost": _KEEPS_REDELIVERY,
    "task_serializer": "the runner's messages are JSON",
    "accept_content": "the runner's messages are JSON",
}
"""The Celery settings :data:`~pipelines_events.conf.CELERY_CONFIG_SETTING` may not
give, and why."""


def broker_url() -> str:
    """The broker URL: the setting, else the environment variable, else the default."""
    value, source = settings.lookup(CELERY_BROKER_SETTING)
    if value is None:
        value = os.environ.get(BROKER_ENV, "").strip() or DEFAULT_BROKER_URL
        source = f"the environment variable {BROKER_ENV}"
    if not isinstance(value, str) or not value.strip():
        raise ImproperlyConfigured(
            f"{CELERY_BROKER_SETTING} (from {source}): give a broker URL such as "
            f"{DEFAULT_BROKER_URL!r}, not {value!r}"
        )
    problem = _broker_url_problem(value)
    if problem is not None:
        raise ImproperlyConfigured(
            f"{CELERY_BROKER_SETTING} (from {source}): {_without_password(value)!r} is not "
            f"a broker URL Celery can use: {problem}"
        )
    return value


def _without_password(url: str) -> str:
    """``url`` with the password of its user info shown as ``**``."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1**@", url)


def _broker_url_problem(url: str) -> str | None:
    """Why Celery cannot use broker URL ``url`` (its scheme, port or Redis database),
    found without connecting; None when it can."""
    if "://" not in url:
        return "it has no scheme (such as 'redis://')"
    try:
        connection: Any = Connection(url)  # type: ignore[no-untyped-call]  # kombu is untyped
        driver = connection.transport.driver_type  # looks the transport up, reads the port
    except KeyError as exc:
        return str(exc.args[0]) if exc.args else error_message(exc)
    except ValueError as exc:
        return str(exc)
    database = str(connection.virtual_host or "/")
    if driver == "redis" and database != "/" and not database.isdigit():
        return f"the Redis database is a number, not {database!r}"
    return None


def _wanted_config() -> dict[str, Any]:
    extra, source = settings.lookup(CELERY_CONFIG_SETTING)
    if not isinstance(extra, dict) or not all(isinstance(key, str) for key in extra):
        raise ImproperlyConfigured(
            f"{CELERY_CONFIG_SETTING} (from {source}): give a dict of Celery setting -> "
            f"value, not {extra!r}"
        )
    locked = sorted(key for key in extra if key in _LOCKED_CONFIG)
    if locked:
        raise ImproperlyConfigured(
            f"{CELERY_CONFIG_SETTING} (from {source}): "
            + "; ".join(f"{key!r}: {_LOCKED_CONFIG[key]}" for key in locked)
        )
    return {**_FIXED_CONFIG, "broker_url": broker_url(), **extra}


app: Any = Celery("pipelines_events", set_as_current=False)
"""The Celery app of the runner: the one workers start with
(``celery -A pipelines_events.runners.celery worker``)."""

_applied: dict[str, Any] = {}
_config_lock = threading.Lock()


def configure_app() -> Any:
    """Give :data:`app` the configuration the settings name now (broker URL, the
    runner's fixed options, then :data:`~pipelines_events.conf.CELERY_CONFIG_SETTING`);
    returns the app."""
    wanted = _wanted_config()
    with _config_lock:
        if wanted != _applied:
            if _applied:
                _forget_connections()
            app.conf.update(wanted)
            _applied.clear()
            _applied.update(wanted)
    return app


def _forget_connections() -> None:
    """Forget the app's broker connection pool and result backend, so that a new
    configuration is the one used (Celery keeps them, made from the first one). They
    are not closed: kombu shares producer pools between apps by broker URL."""
    # What Celery itself does in a forked child (Celery._after_fork), plus the backend.
    app._after_fork()
    app._backend_cache = None
    app._local = threading.local()


class Runner(PipelineRunner):
    """Sends the task results of a run to Celery workers as messages, one per task
    result, and returns once the first are sent (with ``wait``, once the run has ended).

    Pipeline results run side by side; within one, tasks run in dependency order, one
    task after the other (as with the eager and process runners), the task results of a
    task side by side on any workers. A task's config may name the queue of its
    messages (``{"celery_queue": "gpu"}``). When a task result fails, the task results
    of its task not started yet and the pipeline result's later tasks are CANCELLED
    (``"cancelled: task 'x' failed"``); ones already running finish and keep their own
    status. Workers record status changes through a
    :class:`~pipelines_events.reporters.LoggingReporter`.

    ``wait`` blocks until the execution is final, polling the storage every ``poll``
    seconds; ``timeout`` bounds that wait (:class:`TimeoutError`; the run goes on).
    Creating one configures :data:`app`: a broker URL Celery cannot use (its scheme,
    port or Redis database) raises :class:`~pipelines_events.errors.ImproperlyConfigured`
    then, before any run is built.
    """

    def __init__(
        self, *, wait: bool = False, timeout: float | None = None, poll: float = 0.05
    ) -> None:
        configure_app()  # bad settings are refused before a run is built
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout: give a positive number of seconds, not {timeout!r}")
        if not poll > 0:
            raise ValueError(f"poll: give a positive number of seconds, not {poll!r}")
        self.wait = wait
        self.timeout = timeout
        self.poll = poll

    def start(self, pipeline_execution: PipelineExecution, reporter: StatusReporter) -> bool:
        """Run ``pipeline_execution`` with :meth:`run`. The run's runner host and process
        are not recorded: the process that started it may end while workers go on."""
        self.run(pipeline_execution, reporter)
        return True

    def run(self, execution: PipelineExecution, reporter: StatusReporter) -> None:
        if execution.get_status().is_final:
            return
        try:
            configure_app()
        except ImproperlyConfigured as exc:  # the settings changed since __init__
            fail_run(execution, reporter, str(exc))
            return
        execution.report_status_change(reporter, _RUNNING)
        run = load_run(execution, reporter)
        if run is None:
            return
        results = run.results
        try:
            for index, result in enumerate(results):
                if not result.get_status().is_final:
                    result.report_status_change(reporter, _RUNNING)
                    advance(execution, result, index, reporter)
        except OperationalError as exc:
            logger.debug("sending to the broker failed", exc_info=True)
            fail_run(
                execution,
                reporter,
                f"the Celery broker {maybe_sanitize_url(broker_url())} cannot be reached: "
                f"{error_message(exc)}",
            )
            return
        settle(execution, reporter)
        if self.wait:
            self.wait_for(execution)

    def wait_for(self, execution: PipelineExecution) -> None:
        """Return once ``execution`` is final; :class:`TimeoutError` after ``timeout``."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while not execution.get_status().is_final:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"run {execution.get_run_id()} did not end in {self.timeout} s "
                    f"(it is {execution.get_status().name}; its workers go on)"
                )
            time.sleep(self.poll)


# -- deciding what runs next, from the storage -----------------------------------------------


def advance(
    execution: PipelineExecution,
    result: PipelineResult,
    index: int,
    reporter: StatusReporter | None,
) -> None:
    """Start the next task of pipeline result ``result`` (number ``index`` of the run)
    that has not started: record it RUNNING and send one message per task result. A
    task already RUNNING is another caller's: nothing is sent. After a failed task the
    later ones are CANCELLED; with no task left the pipeline result ends.

    Safe to call from many workers at once: a task is started by the one caller whose
    RUNNING was recorded. A worker that cannot load the pipeline (to know the order of
    its tasks) CANCELLED the tasks not started, with why.
    """
    try:
        order = task_order(execution.get_pipeline())
    except Exception as exc:
        logger.debug("loading pipeline %s failed", execution.get_pipeline_id(), exc_info=True)
        _cancel_not_started(execution, result, reporter, error_message(exc))
        return
    failed: str | None = None
    for task_execution in sorted_task_executions(result, order):
        name = task_execution.get_pipeline_task()
        status = task_execution.get_status()
        if failed is not None:
            cancel_below(task_execution, reporter, cancelled_message(failed))
        elif status in _FAILED:
            failed = name
        elif status is _RUNNING:
            return  # its task results are running; the last to end calls advance again
        elif status is _PENDING:
            if not task_execution.report_status_change(reporter, _RUNNING):
                return  # another caller started it
            if not _start_task_execution(execution, task_execution, index, reporter):
                failed = name
            elif not task_execution.get_status().is_final:
                return
            elif task_execution.get_status() in _FAILED:
                failed = name
    settle(result, reporter)
    settle(execution, reporter)


def _cancel_not_started(
    execution: PipelineExecution,
    result: PipelineResult,
    reporter: StatusReporter | None,
    error: str,
) -> None:
    """:func:`advance` without the order of the tasks: tasks run one after the other,
    so every task not started comes after the failed one (``"cancelled: task 'x'
    failed"``); with none failed, after the task that ended (``"cancelled: the pipeline
    cannot be loaded: ERROR"``). A task still RUNNING is left to end."""
    task_executions = result.get_task_executions()
    failed = [te.get_pipeline_task() for te in task_executions if te.get_status() in _FAILED]
    if not failed and any(te.get_status() is _RUNNING for te in task_executions):
        return
    message = (
        cancelled_message(failed[0])
        if failed
        else f"cancelled: the pipeline cannot be loaded: {error}"
    )
    for task_execution in task_executions:
        if task_execution.get_status() is _PENDING:
            cancel_below(task_execution, reporter, message)
    settle(result, reporter)
    settle(execution, reporter)


def _start_task_execution(
    execution: PipelineExecution,
    task_execution: TaskExecution,
    index: int,
    reporter: StatusReporter | None,
) -> bool:
    """Send the messages of ``task_execution``'s task results not final yet; False when
    the task cannot run (its task results then fail as with the eager runner)."""
    results = task_execution.get_task_results()
    prepared = prepare(execution, task_execution, results)
    queue = _queue(task_execution) if isinstance(prepared, Prepared) else prepared
    if isinstance(queue, Failure):
        fail_task_execution(task_execution, reporter, queue.status, queue.message)
        name = task_execution.get_pipeline_task()
        cancel_below(task_execution, reporter, cancelled_message(name))
        return False
    sent = 0
    for number, task_result in enumerate(results):
        if not task_result.get_status().is_final:
            run_task_result.apply_async(args=(task_result.get_id(), index, number), queue=queue)
            sent += 1
    if not sent:
        settle(task_execution, reporter)
    return True


def _queue(task_execution: TaskExecution) -> str | Failure | None:
    """The ``celery_queue`` of the task's config (None: Celery's default queue); a
    CONFIG_ERROR failure when it is not a queue name."""
    config = task_execution.get_config()
    queue = config.get("celery_queue") if isinstance(config, dict) else None
    if queue is not None and (not isinstance(queue, str) or not queue.strip()):
        return Failure(
            PipelineTaskStatus.CONFIG_ERROR,
            f"config of task {task_execution.get_pipeline_task()!r}: 'celery_queue': give "
            f"a queue name, not {queue!r}",
        )
    return queue


# -- the workers ------------------------------------------------------------------------------


class _Cache(threading.local):
    """What a worker keeps between task results (bounded), one per thread: a task
    result sets its objects on the cached task, which a thread pool's other threads
    must not share."""

    limit: int = 64

    def __init__(self) -> None:
        self.pipeline_objects: dict[str, list[Any]] = {}
        self.tasks: dict[str, Prepared] = {}

    def clear(self) -> None:
        self.pipeline_objects = {}
        self.tasks = {}


_cache = _Cache()


def _after_fork(**_: Any) -> None:
    """A new pool process opens the storage itself, never its parent's copy."""
    _cache.clear()
    reset_storage_object()


worker_process_init.connect(_after_fork, weak=False)


def _run_task_result(task_result_id: str, pipeline_index: int, task_index: int, worker: str) -> str:
    """Run one task result in this worker; returns what happened (``"ran: DONE"``,
    ``"skipped: ..."``)."""
    storage = get_pipeline_results_storage()
    result = storage.get_task_result(task_result_id)
    if result is None:
        logger.warning("task result %s is not in the storage: message dropped", task_result_id)
        return "skipped: not in the storage"
    reporter = LoggingReporter()
    task_execution = result.get_task_execution()
    if result.get_status().is_final:
        # Delivered again after it ended: record nothing for it; finish what the worker
        # that ended it may have left undone (it may have died before advancing).
        _after_result(result, task_execution, pipeline_index, reporter)
        return f"skipped: already {result.get_status().name}"
    attempt = _claim(result, reporter, worker)
    if attempt is None:
        if result.get_status().is_final:  # cancelled (or ended) meanwhile
            return f"skipped: already {result.get_status().name}"
        return "skipped: another delivery runs it"
    execution = task_execution.get_pipeline_result().get_pipeline_execution()
    pipeline_object: Any = None
    try:
        prepared = _prepared(execution, task_execution)
        if isinstance(prepared, Prepared):
            pipeline_object = _pipeline_objects(execution)[pipeline_index]
    except Exception as exc:  # the worker cannot load the pipeline or the task
        logger.debug("task result %s cannot be run here", task_result_id, exc_info=True)
        prepared = Failure(_RUNTIME_ERROR, error_message(exc))
    if isinstance(prepared, Failure):
        recorded = result.report_status_change(
            reporter, prepared.status, prepared.message, propagate=False
        )
    else:
        recorded = _run(result, execution, prepared, pipeline_object, task_index, reporter)
    if not recorded:
        return "skipped: another attempt ended it"
    _after_result(result, task_execution, pipeline_index, reporter)
    return f"ran: {result.get_status().name} (attempt {attempt})"


def attempts(result: TaskResult) -> int:
    """How many deliveries of ``result``'s message started it: 1, more when a worker was
    lost (or a message delivered twice) before it ended; 0 before it started."""
    if result.get_status() is _PENDING:
        return 0
    try:
        value = result.get_attempt()
    except AttributeError:
        return 1
    return value if type(value) is int and value > 0 else 1


def _claim(result: TaskResult, reporter: StatusReporter, worker: str) -> int | None:
    """Record that this delivery runs ``result``: RUNNING with ``"attempt N on WORKER"``
    (and, from the second attempt on, ``attempt`` N); None when another delivery claimed
    it first."""
    where = f"on {worker} (pid {os.getpid()})"
    if result.get_status() is _PENDING:
        if result.report_status_change(reporter, _RUNNING, f"attempt 1 {where}", False):
            return 1
        return None
    seen = attempts(result)

    def unchanged() -> bool:
        return result.get_status() is _RUNNING and attempts(result) == seen

    attempt = seen + 1
    message = (
        f"attempt {attempt} {where}: delivered again before attempt {seen} ended "
        "(its worker was lost, or the message was sent twice)"
    )
    now = utc_now()
    with result.atomic(require=unchanged) as batch:
        result.set_status(_RUNNING)
        result.set_started(now)
        result.set_message(message)
        result.set_attempt(attempt)
    if not batch.stored:
        return None
    result.save()
    reporter.report_context_object(result, _RUNNING, status_change_message(_RUNNING, message))
    return attempt


def _prepared(execution: PipelineExecution, task_execution: TaskExecution) -> Prepared | Failure:
    key = task_execution.get_id()
    cached = _cache.tasks.get(key)
    if cached is not None:
        return cached
    prepared = prepare(execution, task_execution, task_execution.get_task_results())
    if isinstance(prepared, Prepared):
        if len(_cache.tasks) >= _cache.limit:
            _cache.tasks.clear()
        _cache.tasks[key] = prepared
    return prepared


def _pipeline_objects(execution: PipelineExecution) -> list[Any]:
    run_id = execution.get_run_id()
    objects = _cache.pipeline_objects.get(run_id)
    if objects is None:
        objects = iterator_objects(execution.get_pipeline().get_iterator())
        if len(_cache.pipeline_objects) >= _cache.limit:
            _cache.pipeline_objects.clear()
        _cache.pipeline_objects[run_id] = objects
    return objects


def _run(
    result: TaskResult,
    execution: PipelineExecution,
    prepared: Prepared,
    pipeline_object: Any,
    task_index: int,
    reporter: StatusReporter,
) -> bool:
    """Run the task for ``result``; returns whether its final status was recorded here."""
    task = prepared.task
    task.pipeline_object = pipeline_object
    task.task_object = prepared.objects[task_index]
    try:
        task.run(execution.get_pipeline_id(), execution.get_run_id(), prepared.cleaned_data)
    except Exception as exc:
        logger.debug("task result %s failed", result.get_id(), exc_info=True)
        return result.report_status_change(
            reporter, _RUNTIME_ERROR, error_message(exc), False, traceback=error_traceback(exc)
        )
    finally:
        task.pipeline_object = task.task_object = None
    return result.report_status_change(reporter, _DONE, "", False)


def _after_result(
    result: TaskResult,
    task_execution: TaskExecution,
    pipeline_index: int,
    reporter: StatusReporter,
) -> None:
    """``result`` has ended: after a failure cancel its task's results not started;
    end the task execution once all its results have; then start the next task."""
    siblings = task_execution.get_task_results()
    if result.get_status() in _FAILED:
        message = cancelled_message(task_execution.get_pipeline_task())
        for sibling in siblings:
            _cancel_pending(sibling, reporter, message)
    # The later task results are the likelier to be running: looking from the end finds
    # one soon while the task has many left (settle would read them all from the start).
    if any(not sibling.get_status().is_final for sibling in reversed(siblings)):
        return
    settle(task_execution, reporter)
    if task_execution.get_status().is_final:
        pipeline_result = task_execution.get_pipeline_result()
        if not pipeline_result.get_status().is_final:
            execution = pipeline_result.get_pipeline_execution()
            advance(execution, pipeline_result, pipeline_index, reporter)


def _cancel_pending(result: TaskResult, reporter: StatusReporter, message: str) -> None:
    """CANCELLED with ``message`` if ``result`` is still PENDING when it is stored (a
    result another worker has started is left to end)."""

    def pending() -> bool:
        return result.get_status() is _PENDING

    if not pending():
        return
    with result.atomic(require=pending) as batch:
        result.set_status(PipelineTaskStatus.CANCELLED)
        result.set_completed(utc_now())
        result.set_message(message)
    if batch.stored:
        result.save()
        reporter.report_context_object(
            result,
            PipelineTaskStatus.CANCELLED,
            status_change_message(PipelineTaskStatus.CANCELLED, message),
        )


def _celery_run_task_result(
    self: Any, task_result_id: str, pipeline_index: int, task_index: int
) -> str:
    return _run_task_result(
        task_result_id, pipeline_index, task_index, str(self.request.hostname or "?")
    )


run_task_result: Any = app.task(
    name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True
)(_celery_run_task_result)
"""The Celery task: ``run_task_result(task_result_id, pipeline_index, task_index)``."""

configure_app()
