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
from collections.abc import Iterator
from typing import Any, Final

from rich.console import Console
from rich.text import Text

from pipelines_events.cli import live, output, render
from pipelines_events.cli.common import (
    add_command,
    add_format_option,
    missing_log_file,
    printable,
)
from pipelines_events.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from pipelines_events.cli.storages import find_run, stdout, storage_name, writing
from pipelines_events.demo import DemoPipeline
from pipelines_events.dotted import DottedPathError, import_dotted
from pipelines_events.errors import (
    InvalidValueError,
    LogOpenError,
    PipelinesEventsError,
)
from pipelines_events.log.open import LogTarget
from pipelines_events.pipeline import Pipeline
from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResultsStorage,
    class_path,
)
from pipelines_events.runners import PipelineRunner, cancel_run
from pipelines_events.runners.eager import Runner
from pipelines_events.status import PipelineTaskStatus

__all__ = ["ConsoleReporter", "load_pipeline_class", "parse_input", "register", "register_run"]


DEMO_PIPELINE: Final = class_path(DemoPipeline)
"""The pipeline ``demo`` runs."""
_PIPED_WIDTH: Final = 1000


def register_run(commands: Any) -> None:
    """Add ``run`` to the parser's subcommands (first, as the help lists it)."""
    _register_run(commands)


def register(commands: Any) -> None:
    """Add ``demo`` and ``cancel`` to the parser's subcommands."""
    _register_demo(commands)
    _register_cancel(commands)


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


_progress_shown = live.progress_shown
"""Whether ``run`` and ``demo`` show a progress bar (a name of this module's, for tests)."""


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
    with live.display(
        storage,
        run_id,
        quiet=args.quiet,
        progress=_progress_shown(),
        reporter_class=ConsoleReporter,
    ) as reporter:
        if runner is None:
            runner = _runner(getattr(args, "runner", None), getattr(args, "workers", 0))
        return _run(pipeline, run_id, input_data, reporter, runner)


class ConsoleReporter(live.ConsoleReporter):
    """The reporter of the runs the command line starts. Every such run records the path
    of this class (``pipelines_events.cli.commands_runs.ConsoleReporter``), so it is
    defined here, where the runs of earlier versions name it."""


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
        from pipelines_events.runners.process import Runner as ProcessRunner  # only for run

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
    reporter: live.ConsoleReporter,
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
    with live.working("reading the run"):
        tree = render.result_tree(execution)
    if fmt == "json":
        output.write_json(tree)
    elif fmt == "jsonl":
        output.write_jsonl(render.result_lines(tree))
    else:
        out.print(render.run_tree(tree))


# -- run --------------------------------------------------------------------------------------


def _register_run(commands: Any) -> None:
    parser = add_command(
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
    with writing(args) as storage:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            execution = _start(args, storage, pipeline, run_id, input_data, runner)
        except KeyboardInterrupt:
            with _no_interrupts():
                return _interrupted(storage, run_id)
        finally:
            signal.signal(signal.SIGTERM, previous)
        _print_run(stdout(), execution, args.format)
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


# -- demo -------------------------------------------------------------------------------------


def _register_demo(commands: Any) -> None:
    parser = add_command(
        commands,
        "demo",
        "Run the bundled demo pipeline (three cities, one failing reading) and show its tree.",
        _demo_command,
    )
    _add_quiet_option(parser)


def _demo_command(args: argparse.Namespace) -> int:
    run_id = str(uuid.uuid4())
    out = stdout()
    with writing(args) as storage:
        execution = _start(args, storage, DemoPipeline(), run_id, None)
        _print_run(out, execution, "table")
        where = storage_name(args, storage)
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
    parser = add_command(
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
    with writing(args) as storage:
        execution = find_run(storage, args.run_id, storage_name(args, storage))
        status = execution.get_status()
        if status.is_final:
            raise InvalidValueError(
                f"run {execution.get_run_id()} is already {status.name}: nothing to cancel"
            )
        run_id = execution.get_run_id()
        changed = cancel_run(execution, None, message)
    print(printable(f"run {run_id}: {changed} objects cancelled"))
    return EXIT_OK
