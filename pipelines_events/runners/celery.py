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
import time
from typing import Any

from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url

from pipelines_events.errors import ImproperlyConfigured
from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResult,
    StatusReporter,
    TaskExecution,
)
from pipelines_events.runners import (
    PipelineRunner,
    cancel_below,
    cancelled_message,
    error_message,
    fail_run,
    fail_task_execution,
    settle,
)
from pipelines_events.runners.celery_app import (
    BROKER_ENV,
    DEFAULT_BROKER_URL,
    TASK_NAME,
    app,
    broker_url,
    configure_app,
)
from pipelines_events.runners.celery_worker import attempts, run_delivered
from pipelines_events.runners.steps import (
    FAILED,
    Failure,
    Prepared,
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
    Creating one configures the app: a broker URL Celery cannot use (its scheme,
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
        execution.report_status_change(reporter, PipelineTaskStatus.RUNNING)
        run = load_run(execution, reporter)
        if run is None:
            return
        results = run.results
        try:
            for index, result in enumerate(results):
                if not result.get_status().is_final:
                    result.report_status_change(reporter, PipelineTaskStatus.RUNNING)
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
        elif status in FAILED:
            failed = name
        elif status is PipelineTaskStatus.RUNNING:
            return  # its task results are running; the last to end calls advance again
        elif status is PipelineTaskStatus.PENDING:
            if not task_execution.report_status_change(reporter, PipelineTaskStatus.RUNNING):
                return  # another caller started it
            if not _start_task_execution(execution, task_execution, index, reporter):
                failed = name
            elif not task_execution.get_status().is_final:
                return
            elif task_execution.get_status() in FAILED:
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
    failed = [te.get_pipeline_task() for te in task_executions if te.get_status() in FAILED]
    if not failed and any(te.get_status() is PipelineTaskStatus.RUNNING for te in task_executions):
        return
    message = (
        cancelled_message(failed[0])
        if failed
        else f"cancelled: the pipeline cannot be loaded: {error}"
    )
    for task_execution in task_executions:
        if task_execution.get_status() is PipelineTaskStatus.PENDING:
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


# -- the Celery task ------------------------------------------------------------------------


def _celery_run_task_result(
    self: Any, task_result_id: str, pipeline_index: int, task_index: int
) -> str:
    return run_delivered(
        task_result_id, pipeline_index, task_index, str(self.request.hostname or "?"), advance
    )


run_task_result: Any = app.task(
    name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True
)(_celery_run_task_result)
"""The Celery task: ``run_task_result(task_result_id, pipeline_index, task_index)``."""

configure_app()
