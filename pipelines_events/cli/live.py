"""What the terminal shows while a command works: each status change of a run as a line
(read back from its log), a progress bar of its task results, a spinner while a log is read."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console

from pipelines_events.audit import SET, AuditChange, ChangeFold
from pipelines_events.cli import render
from pipelines_events.reporters import PipelineReporter
from pipelines_events.results.base import (
    PipelineResultsStorage,
    PipelineStorageObject,
    status_change_message,
)
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["ConsoleReporter", "RunChanges", "TaskProgress", "display", "progress_shown", "working"]


def progress_shown() -> bool:
    """Whether to show progress: only when stdout is a terminal."""
    return sys.stdout.isatty()


@contextlib.contextmanager
def working(text: str) -> Iterator[None]:
    """A spinner on stderr while the block runs, when stdout is a terminal."""
    if not progress_shown():
        yield
        return
    with Console(stderr=True).status(text):
        yield


class RunChanges:
    """The status changes of one run, read back from an event log as they are appended
    (with where each object sits in its run, which a reporter is not told)."""

    def __init__(self, storage: EventLogPipelineResultsStorage, run_id: str) -> None:
        self.run_id = run_id
        self._fold = ChangeFold()
        self._log = storage.log
        self._position = storage.log.position

    def read(self) -> list[AuditChange]:
        """The status changes of the run appended since the last call."""
        changes: list[AuditChange] = []
        batches = []
        for read in self._log.read(self._position):
            batches.append(read.events)
            self._position = read.cursor
        for batch in batches:
            mine = [event for event in batch if event.run_id == self.run_id]
            if mine:
                changes.extend(
                    change
                    for change in self._fold.batch(mine)
                    if change.action == SET and change.field == "status"
                )
        return changes

    def close(self) -> None:
        """Stop reading the log (the storage keeps it open)."""


class ConsoleReporter(PipelineReporter):
    """Prints each status change on one line to ``console`` (nothing when it is None) and
    tells ``on_change`` of it.

    With ``changes`` the lines are the changes read back from the log, which say which
    object changed; without, they say what the reporter is told.
    """

    def __init__(
        self,
        console: Console | None,
        changes: RunChanges | None = None,
        on_change: Callable[[str | None, PipelineTaskStatus], None] | None = None,
    ) -> None:
        self.console = console
        self.changes = changes
        self.on_change = on_change

    def report_context_object(
        self, context_object: PipelineStorageObject, status: PipelineTaskStatus, message: str
    ) -> None:
        if status is PipelineTaskStatus.PENDING:
            return  # the objects of a new run: the lines show changes
        prefix = status_change_message(status, "")
        if message.startswith(prefix):
            message = message[len(prefix) :].removeprefix(" - ")
        self.report(context_object, status, message)

    def report(
        self, context_object: PipelineStorageObject, status: PipelineTaskStatus, message: str
    ) -> None:
        pipeline_id, task_id = context_object.get_pipeline_id(), context_object.get_task_id()
        if self.console is not None:
            if self.changes is None:
                line = render.status_change_line(pipeline_id, task_id, status, message)
                self.console.print(line, soft_wrap=True)
            else:
                for change in self.changes.read():
                    self.console.print(render.change_line(change, pipeline_id), soft_wrap=True)
        if self.on_change is not None:
            self.on_change(task_id, status)


class TaskProgress:
    """Counts the task executions and task results of a run that reached a final status."""

    def __init__(self, progress: Progress, storage: PipelineResultsStorage, run_id: str) -> None:
        self._progress = progress
        self._storage = storage
        self._run_id = run_id
        self._task: Any = None

    def __call__(self, task_id: str | None, status: PipelineTaskStatus) -> None:
        if self._task is None:  # the first change comes once every object is built
            total = len(self._storage.get_task_results(run_id=self._run_id)) + len(
                self._storage.get_task_executions(run_id=self._run_id)
            )
            self._task = self._progress.add_task("running", total=total)
        if task_id is not None and status.is_final:
            self._progress.advance(self._task)


@contextlib.contextmanager
def display(
    storage: PipelineResultsStorage,
    run_id: str,
    *,
    quiet: bool,
    progress: bool,
    reporter_class: type[ConsoleReporter] = ConsoleReporter,
) -> Iterator[ConsoleReporter]:
    """The reporter of a run started in the block: it prints each status change to stderr
    (read back from the log when the storage is an event log) unless ``quiet``, and with
    ``progress`` drives a progress bar on stderr."""
    with contextlib.ExitStack() as stack:
        err = Console(stderr=True, highlight=False)
        changes = None
        if not quiet and isinstance(storage, EventLogPipelineResultsStorage):
            changes = stack.enter_context(contextlib.closing(RunChanges(storage, run_id)))
        on_change = None
        if progress:
            # Imported here: only a run on a terminal draws a bar (the import is slow).
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            bar = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
            stack.enter_context(bar)
            on_change = TaskProgress(bar, storage, run_id)
        yield reporter_class(None if quiet else err, changes, on_change)
