"""Commands that show stored runs: ``runs`` (the list) and ``show`` (one run's tree)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any, Final

from pipelines_events.audit import StorageView
from pipelines_events.cli import live, output, render
from pipelines_events.cli.common import add_command, add_format_option, printable
from pipelines_events.cli.exits import EXIT_OK
from pipelines_events.cli.options import (
    add_point_in_time_options,
    open_view,
    parse_count_option,
    parse_time_option,
    view_title,
)
from pipelines_events.cli.storages import find_run, reading, stdout, storage_name
from pipelines_events.errors import InvalidValueError
from pipelines_events.log.base import RunQuery
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus

__all__ = ["register"]


def register(commands: Any) -> None:
    """Add ``runs`` and ``show`` to the parser's subcommands."""
    _register_runs(commands)
    _register_show(commands)


# -- runs -------------------------------------------------------------------------------------


def _register_runs(commands: Any) -> None:
    parser = add_command(
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


def _with_filters(where: str, args: argparse.Namespace) -> str:
    """``where`` followed by the filters ``runs`` was given, as its title says them."""
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
    return where


def _runs_command(args: argparse.Namespace) -> int:
    # The two ways to the runs (an engine's run index, or the queries) apply the same four
    # filters (RunQuery.matches says them for the index), side by side.
    wanted = None if args.status is None else _status_option(args.status)
    since = parse_time_option("--since", args.since)
    until = parse_time_option("--until", args.until)
    limit = parse_count_option("--limit", args.limit, "a number of runs")
    out = stdout()
    if limit is None and args.format == "table" and out.is_terminal:
        limit = DEFAULT_LIMIT
    with reading(args) as storage, live.working("counting task results"):
        page = None
        if isinstance(storage, EventLogPipelineResultsStorage):
            query = RunQuery(
                pipeline_id=args.pipeline,
                status=None if wanted is None else wanted.name,
                since=since,
                until=until,
                limit=limit,
            )
            page = storage.find_runs(query)  # filtered and cut by the engine's run index
        if page is not None:
            found = [storage.get_pipeline_execution(summary.run_id) for summary in page.runs]
            shown = [execution for execution in found if execution is not None]
            matched = page.total
        else:
            chosen: list[Any] = []
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
            matched = len(chosen)
        runs = [render.run_summary(storage, execution) for execution in shown]
        where = storage_name(args, storage)
    where = _with_filters(where, args)
    render.print_records(out, runs, args.format, where)
    if len(shown) < matched:
        print(
            printable(
                f"pipelines-events: showing the newest {len(shown)} of {matched} runs; "
                "--limit N shows more"
            ),
            file=sys.stderr,
        )
    return EXIT_OK


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
    parser = add_command(
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
        where = view.describe() if view is not None else storage_name(args, storage)
        execution = find_run(storage, args.run_id, where)
        with live.working("reading the run"):
            tree = render.result_tree(execution)
    if args.format == "json":
        output.write_json(tree)
    elif args.format == "jsonl":
        output.write_jsonl(render.result_lines(tree))
    else:
        title = None if view is None else view_title(tree.run_id, view)
        stdout().print(render.run_tree(tree, title, args.traceback))
    return EXIT_OK


def _open_show_storage(args: argparse.Namespace) -> contextlib.AbstractContextManager[Any]:
    """The storage ``show`` reads: the point-in-time view ``--as-of``/``--at-seq`` ask for
    (from the audit commands), else the storage of :func:`reading`."""
    view = open_view(args)
    if view is not None:
        return contextlib.nullcontext(view)
    return reading(args)
