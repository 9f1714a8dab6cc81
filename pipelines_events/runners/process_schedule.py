"""The process runner's own process: schedules the task results of one run on a pool of
worker processes, in dependency order, and folds their outcomes in."""

from __future__ import annotations

import concurrent.futures as futures
import logging
import multiprocessing
import pickle
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResult,
    StatusReporter,
    TaskExecution,
    TaskResult,
)
from pipelines_events.runners import (
    cancel_below,
    cancelled_message,
    error_message,
    fail_run,
    fail_task_execution,
    settle,
)
from pipelines_events.runners.process_worker import (
    Report,
    StorageSpec,
    init_worker,
    run_task_result,
    sees_run,
)
from pipelines_events.runners.steps import (
    FAILED,
    Failure,
    prepare,
    sorted_task_executions,
)
from pipelines_events.status import PipelineTaskStatus

if TYPE_CHECKING:
    from pipelines_events.runners.process import Runner

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    """One task result to run, and what it belongs to."""

    lane: _Lane
    result: TaskResult
    index: int


@dataclass
class _Lane:
    """One pipeline result: its tasks in order, the one running, what is queued for it."""

    result: PipelineResult
    number: int
    executions: deque[TaskExecution]
    current: TaskExecution | None = None
    queued: deque[_Job] = field(default_factory=deque)
    running: int = 0
    failure: tuple[PipelineTaskStatus, str] | None = None
    """Set once a task result of the current task failed."""
    failed_task: str | None = None
    """The name of the task that failed: the later tasks are cancelled."""
    finished: bool = False


class RunOnPool:
    """Schedules the task results of one run on a pool and folds their outcomes in."""

    def __init__(
        self,
        runner: Runner,
        execution: PipelineExecution,
        reporter: StatusReporter,
        results: Sequence[PipelineResult],
        order: dict[str, int],
        spec: StorageSpec,
        pipeline: Any,
    ) -> None:
        self.runner = runner
        self.execution = execution
        self.reporter = reporter
        self.order = order
        self.spec = spec
        self.pipeline = pipeline
        self.lanes = [
            _Lane(result, number, deque(self._sorted(result)))
            for number, result in enumerate(results)
            if not result.get_status().is_final
        ]
        self.running: dict[futures.Future[tuple[str, str, list[Report]]], _Job] = {}
        self.deadline = None if runner.timeout is None else time.monotonic() + runner.timeout
        self.pool: futures.ProcessPoolExecutor | None = None
        self.broken = False

    def _sorted(self, result: PipelineResult) -> list[TaskExecution]:
        return sorted_task_executions(result, self.order)

    def go(self) -> None:
        if not self.lanes:
            return
        self.pool = self._new_pool()
        try:
            if not self._workers_see_the_run():
                return
            for lane in self.lanes:
                lane.result.report_status_change(self.reporter, PipelineTaskStatus.RUNNING)
                self._advance(lane)
            self._submit()
            while self.running:
                self._wait()
                self._submit()
        finally:
            self._shutdown()

    # -- the pool ---------------------------------------------------------------------------

    def _new_pool(self) -> futures.ProcessPoolExecutor:
        return futures.ProcessPoolExecutor(
            max_workers=self.runner.workers,
            mp_context=multiprocessing.get_context(self.runner.start_method),
            initializer=init_worker,
            initargs=(self.spec, self.pipeline),
        )

    def _shutdown(self, kill: bool = False) -> None:
        pool, self.pool = self.pool, None
        if pool is None:
            return
        if kill:
            processes: dict[int, Any] = getattr(pool, "_processes", None) or {}
            for process in list(processes.values()):
                process.kill()
        pool.shutdown(wait=True, cancel_futures=True)

    def _workers_see_the_run(self) -> bool:
        assert self.pool is not None
        run_id = self.execution.get_run_id()
        try:
            seen = self.pool.submit(sees_run, run_id).result(timeout=self._left())
        except Exception as exc:
            fail_run(
                self.execution,
                self.reporter,
                f"the worker processes cannot open the storage {self.spec[0]}: "
                f"{error_message(exc)}",
            )
            return False
        if not seen:
            fail_run(
                self.execution,
                self.reporter,
                f"the worker processes do not see run {run_id!r} in their storage "
                f"({self.spec[0]}): the process runner needs a storage that processes "
                "share, such as the event-log storage on one log",
            )
            return False
        return True

    def _left(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    # -- scheduling ---------------------------------------------------------------------------

    def _advance(self, lane: _Lane) -> None:
        """Move ``lane`` to its next task that has task results to run, or finish it."""
        while lane.current is None and lane.executions:
            task_execution = lane.executions.popleft()
            name = task_execution.get_pipeline_task()
            if lane.failed_task is not None:
                cancel_below(task_execution, self.reporter, cancelled_message(lane.failed_task))
                continue
            if task_execution.get_status().is_final:
                if task_execution.get_status() in FAILED:
                    lane.failed_task = name
                continue
            task_execution.report_status_change(self.reporter, PipelineTaskStatus.RUNNING)
            results = task_execution.get_task_results()
            prepared = prepare(self.execution, task_execution, results)
            if isinstance(prepared, Failure):
                fail_task_execution(
                    task_execution, self.reporter, prepared.status, prepared.message
                )
                cancel_below(task_execution, self.reporter, cancelled_message(name))
                lane.failed_task = name
                continue
            lane.current = task_execution
            lane.failure = None
            for index, result in enumerate(results):
                if not result.get_status().is_final:
                    lane.queued.append(_Job(lane, result, index))
            if not lane.queued:
                self._task_done(lane)
        if lane.current is None and not lane.executions and not lane.finished:
            lane.finished = True
            settle(lane.result, self.reporter)

    def _submit(self) -> None:
        """Fill the free workers, taking the lanes' queued task results in turn."""
        while len(self.running) < self.runner.workers:
            lanes = [lane for lane in self.lanes if lane.queued and lane.failure is None]
            if not lanes:
                return
            if self.broken or self.pool is None:  # a worker died: a new pool takes over
                self._shutdown()
                self.pool = self._new_pool()
                self.broken = False
            for lane in lanes:
                if len(self.running) >= self.runner.workers:
                    return
                job = lane.queued.popleft()
                task_execution = lane.current
                assert task_execution is not None
                try:
                    future = self.pool.submit(
                        run_task_result,
                        task_execution.get_id(),
                        job.result.get_id(),
                        job.index,
                        lane.number,
                    )
                except futures.process.BrokenProcessPool:
                    lane.queued.appendleft(job)  # for the new pool
                    self.broken = True
                    break
                self.running[future] = job
                lane.running += 1

    def _wait(self) -> None:
        done, _ = futures.wait(
            self.running, timeout=self._left(), return_when=futures.FIRST_COMPLETED
        )
        if not done:
            self._time_out()
            return
        for future in done:
            job = self.running.pop(future)
            job.lane.running -= 1
            try:
                status_name, message, reports = future.result()
            except futures.process.BrokenProcessPool as exc:
                self.broken = True
                message = f"its worker process ended before it finished ({error_message(exc)})"
                status_name, message, reports = self._worker_error(job, message)
            except Exception as exc:
                logger.debug(
                    "task result %s failed in its worker", job.result.get_id(), exc_info=exc
                )
                status_name, message, reports = self._worker_error(job, error_message(exc))
            for status_name_, text in reports:
                self.reporter.report_context_object(
                    job.result, PipelineTaskStatus[status_name_], text
                )
            self._outcome(job, PipelineTaskStatus[status_name], message)

    def _outcome(self, job: _Job, status: PipelineTaskStatus, message: str) -> None:
        lane = job.lane
        if status in FAILED:
            # Workers record their task results without propagating: a failure goes up
            # from here, with its message, the way the eager runner's does.
            # It ends its parents once their other children have ended.
            parent = job.result.get_parent()
            if parent is not None:
                settle(parent, self.reporter)
        if status is not PipelineTaskStatus.DONE and lane.failure is None:
            lane.failure = (status, message)
            lane.queued.clear()  # not started: cancelled once the running ones finish
        if lane.running == 0 and not lane.queued:
            self._task_done(lane)
            self._advance(lane)

    def _task_done(self, lane: _Lane) -> None:
        """Every task result of the lane's current task has run (or will not run)."""
        task_execution = lane.current
        assert task_execution is not None
        name = task_execution.get_pipeline_task()
        lane.current = None
        if lane.failure is not None:
            cancel_below(task_execution, self.reporter, cancelled_message(name))
            lane.failed_task = name
        else:
            settle(task_execution, self.reporter)
            if task_execution.get_status() in FAILED:
                lane.failed_task = name

    def _worker_error(self, job: _Job, message: str) -> tuple[str, str, list[Report]]:
        """A worker raised outside the task's ``run`` (a storage error, say), or its
        process died (the pool then stops all its workers): the task result fails with
        ``message`` (propagated by :meth:`_outcome`)."""
        if not job.result.get_status().is_final:
            job.result.report_status_change(
                self.reporter, PipelineTaskStatus.RUNTIME_ERROR, message, False
            )
        return job.result.get_status().name, message, []

    def _time_out(self) -> None:
        """The run's ``timeout`` is up: stop the workers, fail what was running, cancel
        the rest."""
        self._shutdown(kill=True)
        message = f"TimeoutError: the run did not finish in {self.runner.timeout} s"
        for job in self.running.values():
            job.lane.running -= 1
            if not job.result.get_status().is_final:
                job.result.report_status_change(
                    self.reporter, PipelineTaskStatus.RUNTIME_ERROR, message
                )
        self.running.clear()
        for lane in self.lanes:
            lane.queued.clear()
            if lane.current is not None:
                lane.failure = lane.failure or (PipelineTaskStatus.RUNTIME_ERROR, message)
                self._task_done(lane)
            self._advance(lane)


def picklable(obj: Any) -> Any:
    """``obj`` if it can be sent to a worker, else None (the worker loads it by id)."""
    try:
        pickle.dumps(obj)
    except Exception:
        return None
    return obj


__all__ = ["RunOnPool", "picklable"]
