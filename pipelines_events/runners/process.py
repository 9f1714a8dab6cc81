"""The process runner: runs the task results of a run in a pool of worker processes.

Every worker opens the storage itself, from the class path and kwargs of the storage
setting (or the ``storage`` given to the runner), so the storage must be one that
processes share: the event-log storage, all workers on the same log. The runner's own
process decides what runs when; the workers run tasks and record their task results'
status changes.
"""

from __future__ import annotations

import multiprocessing
import os

from pipelines_events.conf import storage_setting
from pipelines_events.results.base import PipelineExecution, StatusReporter
from pipelines_events.runners import PipelineRunner, settle
from pipelines_events.runners.process_schedule import RunOnPool, picklable
from pipelines_events.runners.process_worker import StorageSpec
from pipelines_events.runners.steps import load_run
from pipelines_events.status import PipelineTaskStatus

__all__ = ["Runner", "StorageSpec"]


class Runner(PipelineRunner):
    """Runs the task results of a run in ``workers`` processes (the number of CPUs by
    default), with the final statuses of the eager runner.

    Pipeline results run side by side; within one, tasks run in dependency order, one
    task after the other (as the eager runner runs them), and the task results of a task
    side by side. When a task result fails, its task's results not started yet and the
    pipeline result's later tasks are CANCELLED, as with the eager runner; task results
    of the same task already running in other workers finish and keep their own status.
    With ``workers=1`` the statuses are those of the eager runner in every case. (When
    several pipeline results fail, the execution's message is that of the failure that
    happened first.)

    Workers open the storage from ``storage`` (a dotted class path and kwargs), by
    default the storage setting; with ``start_method="fork"`` (the default where there
    is one) they also see the pipeline object the run was started on, otherwise they
    load the pipeline by its id. ``timeout`` (seconds) bounds the whole run: task
    results still running then are stopped and marked RUNTIME_ERROR.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        storage: StorageSpec | None = None,
        start_method: str | None = None,
        timeout: float | None = None,
    ) -> None:
        if workers is not None and (type(workers) is not int or workers < 1):
            raise ValueError(f"workers: give a positive int or None, not {workers!r}")
        methods = multiprocessing.get_all_start_methods()
        if start_method is None:
            start_method = "fork" if "fork" in methods else methods[0]
        if start_method not in methods:
            raise ValueError(
                f"start_method: give one of {', '.join(map(repr, methods))}, not {start_method!r}"
            )
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout: give a positive number of seconds, not {timeout!r}")
        self.workers: int = workers or os.cpu_count() or 1
        self.storage = storage
        self.start_method = start_method
        self.timeout = timeout

    def run(self, execution: PipelineExecution, reporter: StatusReporter) -> None:
        if execution.get_status().is_final:
            return
        execution.report_status_change(reporter, PipelineTaskStatus.RUNNING)
        run = load_run(execution, reporter)
        if run is None:
            return
        pipeline, results, order = run.pipeline, run.results, run.order
        spec = self.storage if self.storage is not None else storage_setting()
        shared = pipeline if self.start_method == "fork" else picklable(pipeline)
        RunOnPool(self, execution, reporter, results, order, spec, shared).go()
        settle(execution, reporter)
