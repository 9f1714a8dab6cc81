"""Commands about runs: ``run``, ``runs``, ``show``, ``demo``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Final

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from pipelines_events.audit import SET, AuditChange, ChangeFold, StorageView
from pipelines_events.cli import output, render
from pipelines_events.cli.commands_audit import (
    add_point_in_time_options,
    open_view,
    parse_count_option,
    parse_time_option,
    view_title,
)
from pipelines_events.cli.common import (
    add_format_option,
    add_log_option,
    console,
    match_run_id,
    missing_log_file,
    open_storage,
    printable,
    storage_run_ids,
)
from pipelines_events.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from pipelines_events.conf import STORAGE_SETTING, settings
from pipelines_events.demo import DemoPipeline
from pipelines_events.dotted import DottedPathError, import_dotted
from pipelines_events.errors import (
    ImproperlyConfigured,
    InvalidValueError,
    LogError,
    LogOpenError,
    ObjectNotFoundError,
    PipelinesEventsError,
)
from pipelines_events.log.open import LogTarget
from pipelines_events.pipeline import Pipeline
from pipelines_events.reporters import PipelineReporter
from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResultsStorage,
    PipelineStorageObject,
    class_path,
    status_change_message,
)
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.helpers import get_pipeline_results_storage, reset_storage_object
from pipelines_events.runners import PipelineRunner, cancel_run
from pipelines_events.runners.eager import Runner
from pipelines_events.runners.process import Runner as ProcessRunner
from pipelines_events.status import PipelineTaskStatus

__all__ = ["ConsoleReporter", "RunChanges", "load_pipeline_class", "parse_input", "register"]


DEMO_PIPELINE: Final = class_path(DemoPipeline)
"""The pipeline ``demo`` runs."""
_PIPED_WIDTH: Final = 1000


def register(commands: Any) -> None:
    """Add this module's commands to the parser's subcommands."""
    _register_run(commands)
    _register_runs(commands)
    _register_show(commands)
    _register_demo(commands)
    _register_cancel(commands)


def _command(
    commands: Any, name: str, summary: str, handler: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=summary, description=summary)
    parser.set_defaults(handler=handler)
    add_log_option(parser)
    return parser


def _add_quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="do not print status changes as they happen (a terminal still shows progress)",
    )


# -- arguments --------------------------------------------------------------------------------


def parse_input(text: str | None) -> dict[str, Any] | None:
    """The JSON object given to ``--input``; :class:`InvalidValueError` naming the option."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidValueError(f"--input: {text!r} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidValueError(
            f"--input: give a JSON object such as '{{\"days\": 3}}', "
            f"not a JSON {type(value).__name__} ({text!r})"
        )
    return value


def load_pipeline_class(path: str) -> type[Pipeline]:
    """The :class:`Pipeline` subclass at dotted ``path``; :class:`InvalidValueError` naming
    the path if it does not import or is not one."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: modules beside you import
    try:
        found = import_dotted(path, Pipeline)
    except DottedPathError as exc:
        if exc.reason == "shape":
            raise InvalidValueError(
                f"pipeline {path!r}: not a dotted path; give module.ClassName, "
                f"such as {DEMO_PIPELINE}"
            ) from None
        verb = "cannot import it: " if exc.reason == "import" else ""
        raise InvalidValueError(f"pipeline {path!r}: {verb}{exc.problem}") from exc
    if found is Pipeline:
        raise InvalidValueError(
            f"pipeline {path!r}: the base class has no tasks; give a subclass of it"
        )
    return found


# -- storages ---------------------------------------------------------------------------------


def _stdout() -> Console:
    """The console of results: as wide as a line needs when it is not a terminal (and
    ``COLUMNS`` does not say), so piped output is neither wrapped nor cut."""
    out = console()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = _PIPED_WIDTH
    return out


def _progress_shown() -> bool:
    """Whether to show progress: only when stdout is a terminal."""
    return sys.stdout.isatty()


@contextlib.contextmanager
def _working(text: str) -> Iterator[None]:
    """A spinner on stderr while the block runs, when stdout is a terminal."""
    if not _progress_shown():
        yield
        return
    with Console(stderr=True).status(text):
        yield


@contextlib.contextmanager
def _reading(args: argparse.Namespace) -> Iterator[PipelineResultsStorage]:
    """The storage of ``--log`` or the configured one, opened read-only when it is an event
    log (which must exist: reading never creates, repairs or snapshots it), and closed
    afterwards; a configured storage of another class is the shared one, left open."""
    log: LogTarget | None = args.log
    if missing_log_file(log):
        raise LogOpenError(f"{log}: no such log file")
    with _working("reading the log"):
        storage = open_storage(args, readonly=True)
    try:
        yield storage
    finally:
        if isinstance(storage, EventLogPipelineResultsStorage) and storage.readonly:
            storage.close()


@contextlib.contextmanager
def _writing(args: argparse.Namespace) -> Iterator[PipelineResultsStorage]:
    """Within the block the helpers (so ``Pipeline.start``) use the storage of ``--log``,
    else the configured one; yields it, opened."""
    log: LogTarget | None = args.log
    override: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if log is not None:
        override = settings.override_settings(
            **{STORAGE_SETTING: (class_path(EventLogPipelineResultsStorage), {"path": str(log)})}
        )
    with override:
        try:
            try:
                storage = get_pipeline_results_storage()
            except ImproperlyConfigured as exc:
                if log is not None and isinstance(exc.__cause__, LogError):
                    raise exc.__cause__ from None  # --log names the problem, not the setting
                raise
            yield storage
        finally:
            if log is not None:
                reset_storage_object()


def _where(args: argparse.Namespace, storage: PipelineResultsStorage) -> str:
    if args.log is not None:
        return str(args.log)
    if isinstance(storage, EventLogPipelineResultsStorage):
        return storage.log.location
    return "the configured storage"


def _open_show_storage(args: argparse.Namespace) -> contextlib.AbstractContextManager[Any]:
    """The storage ``show`` reads: the point-in-time view ``--as-of``/``--at-seq`` ask for
    (from the audit commands), else the storage of :func:`_reading`."""
    view = open_view(args)
    if view is not None:
        return contextlib.nullcontext(view)
    return _reading(args)


def _find_run(storage: PipelineResultsStorage, run_id: str, where: str) -> PipelineExecution:
    """The execution of ``run_id``, or of the one run whose id starts with it."""
    execution = storage.get_pipeline_execution(run_id)
    if execution is not None:
        return execution
    found = match_run_id(storage_run_ids(storage), run_id, where)
    execution = None if found is None else storage.get_pipeline_execution(found)
    if execution is not None:
        return execution
    raise ObjectNotFoundError(
        f"no run has the id {run_id!r} in {where}; `pipelines-events runs` lists them"
    )


# -- reporting while running ------------------------------------------------------------------


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


class _TaskProgress:
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


def _start(
    args: argparse.Namespace,
    storage: PipelineResultsStorage,
    pipeline: Pipeline,
    run_id: str,
    input_data: Any,
    runner: PipelineRunner | None = None,
) -> PipelineExecution:
    """Start ``pipeline`` with the eager runner, printing status changes to stderr unless
    ``--quiet``; a progress bar on stderr when stdout is a terminal."""
    with contextlib.ExitStack() as stack:
        err = Console(stderr=True, highlight=False)
        changes = None
        if not args.quiet and isinstance(storage, EventLogPipelineResultsStorage):
            changes = stack.enter_context(contextlib.closing(RunChanges(storage, run_id)))
        on_change = None
        if _progress_shown():
            progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
            stack.enter_context(progress)
            on_change = _TaskProgress(progress, storage, run_id)
        reporter = ConsoleReporter(None if args.quiet else err, changes, on_change)
        if runner is None:
            runner = _runner(getattr(args, "runner", None), getattr(args, "workers", 0))
        execution = _run(pipeline, run_id, input_data, reporter, runner)
    return execution


RUNNERS: Final = ("eager", "process", "celery")
"""The runners ``run --runner`` chooses from."""


def _runner(name: str | None, workers: int) -> PipelineRunner:
    """The runner ``--runner NAME`` and ``--workers N`` select (N selects the process
    runner; neither, the eager one)."""
    if name is None:
        name = "eager" if workers == 0 else "process"
    if workers and name != "process":
        raise InvalidValueError(
            f"--workers is the number of processes of the process runner; "
            f"it does not go with --runner {name}"
        )
    if name == "eager":
        return Runner()
    if name == "process":
        return ProcessRunner(workers=workers or None)
    try:
        from pipelines_events.runners.celery import Runner as CeleryRunner
    except ImportError as exc:
        raise PipelinesEventsError(
            f"--runner celery needs Celery ({exc}): pip install 'pipelines-events[celery]'"
        ) from exc
    return CeleryRunner()


def _run(
    pipeline: Pipeline,
    run_id: str,
    input_data: Any,
    reporter: ConsoleReporter,
    runner: PipelineRunner,
) -> PipelineExecution:
    try:
        return pipeline.start(run_id, input_data, runner, reporter)
    except PipelinesEventsError:
        raise
    except Exception as exc:  # the pipeline's own code failed while the run was being built
        raise PipelinesEventsError(
            f"pipeline {pipeline.get_id()!r}: building the run failed: {type(exc).__name__}: {exc}"
        ) from exc


def _print_run(out: Console, execution: PipelineExecution, fmt: str) -> None:
    """The run's tree in ``fmt``."""
    with _working("reading the run"):
        tree = render.result_tree(execution)
    if fmt == "json":
        output.write_json(tree)
    elif fmt == "jsonl":
        output.write_jsonl(render.result_lines(tree))
    else:
        out.print(render.run_tree(tree))


# -- run --------------------------------------------------------------------------------------


def _register_run(commands: Any) -> None:
    parser = _command(
        commands,
        "run",
        "Run a pipeline (with the eager runner unless told), then show its tree; exit "
        "status 0 if the run is DONE, 1 if it ended in a failure. With --runner celery "
        "it starts the run on Celery workers and returns at once (exit status 0 unless "
        "it failed already); `follow RUN_ID --until-done` watches it end.",
        _run_command,
    )
    parser.add_argument(
        "pipeline", metavar="DOTTED.PATH", help="the Pipeline subclass, as module.ClassName"
    )
    parser.add_argument(
        "--input", metavar="JSON", help="the run's input data, a JSON object such as '{\"n\": 1}'"
    )
    parser.add_argument("--run-id", metavar="ID", help="the run's id (default: a new UUID)")
    parser.add_argument(
        "--workers",
        metavar="N",
        type=_workers,
        default=0,
        help="run the task results in N worker processes (the process runner); "
        "default: the eager runner, in this process",
    )
    parser.add_argument(
        "--runner",
        choices=RUNNERS,
        default=None,
        help="eager (in this process, the default), process (worker processes: see "
        "--workers) or celery (Celery workers, which read the same storage setting; "
        "the broker is PIPELINES_CELERY_BROKER_URL)",
    )
    _add_quiet_option(parser)
    add_format_option(parser)


def _workers(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"give a whole number of workers, 1 or more, not {text!r}")
    return number


INTERRUPTED: Final = "cancelled: the run was interrupted"
"""The message of the objects a Ctrl-C or SIGTERM during ``run`` ends."""


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _run_command(args: argparse.Namespace) -> int:
    input_data = parse_input(args.input)
    run_id: str = args.run_id if args.run_id is not None else str(uuid.uuid4())
    if not run_id.strip():
        raise InvalidValueError("--run-id: give a non-empty id")
    cls = load_pipeline_class(args.pipeline)
    try:
        pipeline = cls()
    except Exception as exc:
        raise InvalidValueError(
            f"pipeline {args.pipeline!r}: cannot create it: {type(exc).__name__}: {exc}"
        ) from exc
    # the runner first: its settings are refused (a bad broker URL) before the log opens
    runner = _runner(args.runner, args.workers)
    with _writing(args) as storage:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            execution = _start(args, storage, pipeline, run_id, input_data, runner)
        except KeyboardInterrupt:
            with _no_interrupts():
                return _interrupted(storage, run_id)
        finally:
            signal.signal(signal.SIGTERM, previous)
        _print_run(_stdout(), execution, args.format)
        status = execution.get_status()
        if args.runner == "celery" and not status.is_final:
            print(
                printable(
                    f"pipelines-events: run {run_id} started on Celery workers; "
                    f"watch it end with: pipelines-events follow {run_id} --until-done"
                ),
                file=sys.stderr,
            )
            return EXIT_OK
    return EXIT_OK if status is PipelineTaskStatus.DONE else EXIT_FAILED


@contextlib.contextmanager
def _no_interrupts() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while the block records an interruption."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupted(storage: PipelineResultsStorage, run_id: str) -> int:
    """End the objects of the interrupted run that are not final as CANCELLED."""
    execution = storage.get_pipeline_execution(run_id)
    changed = 0 if execution is None else cancel_run(execution, None, INTERRUPTED)
    print(
        printable(f"pipelines-events: run {run_id} interrupted; {changed} objects cancelled"),
        file=sys.stderr,
    )
    return EXIT_INTERRUPTED


# -- runs -------------------------------------------------------------------------------------


def _register_runs(commands: Any) -> None:
    parser = _command(
        commands,
        "runs",
        "List the runs: run id, pipeline, status, start, duration, task results by status.",
        _runs_command,
    )
    parser.add_argument("--pipeline", metavar="ID", help="only the runs of pipeline ID")
    parser.add_argument(
        "--status", metavar="S", help="only the runs whose execution has status S (DONE...)"
    )
    parser.add_argument("--since", metavar="TIME", help="only the runs started at or after TIME")
    parser.add_argument("--until", metavar="TIME", help="only the runs started at or before TIME")
    parser.add_argument(
        "--limit",
        metavar="N",
        help=f"the newest N runs (default: {DEFAULT_LIMIT} on a terminal, all otherwise)",
    )
    add_format_option(parser)


DEFAULT_LIMIT: Final = 20
"""How many runs ``runs`` shows on a terminal without ``--limit``."""


def _runs_command(args: argparse.Namespace) -> int:
    wanted = None if args.status is None else _status_option(args.status)
    since = parse_time_option("--since", args.since)
    until = parse_time_option("--until", args.until)
    limit = parse_count_option("--limit", args.limit, "a number of runs")
    out = _stdout()
    if limit is None and args.format == "table" and out.is_terminal:
        limit = DEFAULT_LIMIT
    with _reading(args) as storage, _working("counting task results"):
        index = storage.run_index() if isinstance(storage, EventLogPipelineResultsStorage) else None
        chosen: list[Any] = []
        if index is not None:
            # Filter the engine's run index; load only the runs shown.
            for summary in reversed(index):  # newest first
                if args.pipeline is not None and summary.pipeline_id != args.pipeline:
                    continue
                if wanted is not None and summary.status != wanted.name:
                    continue
                started = _summary_time(summary.started)
                if since is not None and (started is None or started < since):
                    continue
                if until is not None and (started is None or started > until):
                    continue
                chosen.append(summary.run_id)
            picked = chosen if limit is None else chosen[:limit]
            found = [storage.get_pipeline_execution(run_id) for run_id in picked]
            shown = [execution for execution in found if execution is not None]
        else:
            executions = list(storage.get_pipeline_executions(pipeline_id=args.pipeline))
            for execution in reversed(executions):  # newest first
                if wanted is not None and execution.get_status() is not wanted:
                    continue
                started = execution.get_started()
                if since is not None and (started is None or started < since):
                    continue
                if until is not None and (started is None or started > until):
                    continue
                chosen.append(execution)
            shown = chosen if limit is None else chosen[:limit]
        runs = [render.run_summary(storage, execution) for execution in shown]
        where = _where(args, storage)
    filters = [
        f"{name} {value!r}"
        for name, value in (
            ("of pipeline", args.pipeline),
            ("with status", args.status),
            ("started since", args.since),
            ("started until", args.until),
        )
        if value is not None
    ]
    if filters:
        where = f"{where} {' and '.join(filters)}"
    render.print_records(out, runs, args.format, where)
    if len(shown) < len(chosen):
        print(
            printable(
                f"pipelines-events: showing the newest {len(shown)} of {len(chosen)} runs; "
                "--limit N shows more"
            ),
            file=sys.stderr,
        )
    return EXIT_OK


def _summary_time(text: str | None) -> datetime | None:
    """A run index's start time (the stored text) as an aware datetime, or None."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _status_option(text: str) -> PipelineTaskStatus:
    try:
        return PipelineTaskStatus[text.strip().upper()]
    except KeyError:
        names = ", ".join(status.name for status in PipelineTaskStatus)
        raise InvalidValueError(
            f"--status: {text!r} is not a status; give one of {names}"
        ) from None


# -- show -------------------------------------------------------------------------------------


def _register_show(commands: Any) -> None:
    parser = _command(
        commands,
        "show",
        "Show a run as a tree: execution, pipeline results, task executions, task results.",
        _show_command,
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="the run's id, or a unique start of it")
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="print the traceback recorded with each failure below its object",
    )
    add_format_option(parser)
    add_point_in_time_options(parser)


def _show_command(args: argparse.Namespace) -> int:
    with _open_show_storage(args) as storage:
        view = storage if isinstance(storage, StorageView) else None
        where = view.describe() if view is not None else _where(args, storage)
        execution = _find_run(storage, args.run_id, where)
        with _working("reading the run"):
            tree = render.result_tree(execution)
    if args.format == "json":
        output.write_json(tree)
    elif args.format == "jsonl":
        output.write_jsonl(render.result_lines(tree))
    else:
        title = None if view is None else view_title(tree.run_id, view)
        _stdout().print(render.run_tree(tree, title, args.traceback))
    return EXIT_OK


# -- demo -------------------------------------------------------------------------------------


def _register_demo(commands: Any) -> None:
    parser = _command(
        commands,
        "demo",
        "Run the bundled demo pipeline (three cities, one failing reading) and show its tree.",
        _demo_command,
    )
    _add_quiet_option(parser)


def _demo_command(args: argparse.Namespace) -> int:
    run_id = str(uuid.uuid4())
    out = _stdout()
    with _writing(args) as storage:
        execution = _start(args, storage, DemoPipeline(), run_id, None)
        _print_run(out, execution, "table")
        where = _where(args, storage)
    log = "" if args.log is None else f" --log {shlex.quote(str(args.log))}"
    hints = [
        f"recorded in {where}; try next:",
        f"  pipelines-events history {run_id[:8]}{log}",
        f"  pipelines-events show {run_id[:8]} --traceback{log}",
        f"  pipelines-events runs{log}",
        f"  pipelines-events verify{log}",
    ]
    for hint in hints:
        out.print(Text(printable(hint), style="dim"), soft_wrap=True)
    return EXIT_OK


# -- cancel -----------------------------------------------------------------------------------


def _register_cancel(commands: Any) -> None:
    parser = _command(
        commands,
        "cancel",
        "End every object of a run that is not final as CANCELLED (a run whose runner died).",
        _cancel_command,
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="the run's id, or a unique start of it")
    parser.add_argument(
        "--reason", metavar="TEXT", help="why (default: 'cancelled from the command line')"
    )


def _cancel_command(args: argparse.Namespace) -> int:
    reason: str | None = args.reason
    if reason is not None and not reason.strip():
        raise InvalidValueError("--reason: give a non-empty text")
    message = "cancelled from the command line" if reason is None else f"cancelled: {reason}"
    log: LogTarget | None = args.log
    if missing_log_file(log):
        raise LogOpenError(f"{log}: no such log file")
    with _writing(args) as storage:
        execution = _find_run(storage, args.run_id, _where(args, storage))
        status = execution.get_status()
        if status.is_final:
            raise InvalidValueError(
                f"run {execution.get_run_id()} is already {status.name}: nothing to cancel"
            )
        run_id = execution.get_run_id()
        changed = cancel_run(execution, None, message)
    print(printable(f"run {run_id}: {changed} objects cancelled"))
    return EXIT_OK
