"""Commands for audit: ``history``, ``export``, ``replay``, ``verify``, ``head``, ``follow``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from pipelines_events import audit
from pipelines_events.cli import output, render
from pipelines_events.cli import render_audit as out_audit
from pipelines_events.cli.common import (
    add_command,
    log_path,
    log_target,
    printable,
    resolve_run_id,
)
from pipelines_events.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_TIMED_OUT
from pipelines_events.cli.options import (
    TIME_HELP,
    parse_count_option,
    parse_seconds_option,
    parse_time_option,
)
from pipelines_events.errors import InvalidValueError
from pipelines_events.events import KINDS
from pipelines_events.log.open import LogTarget
from pipelines_events.status import PipelineTaskStatus


def register(commands: Any) -> None:
    """Add this module's commands to the parser's subcommands."""
    _register_history(commands)
    _register_export(commands)
    _register_replay(commands)
    _register_verify(commands)
    _register_head(commands)
    _register_follow(commands)


def _command(
    commands: Any, name: str, summary: str, handler: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    return add_command(commands, name, summary, handler, formats=True)


# -- history ----------------------------------------------------------------------------------


def _register_history(commands: Any) -> None:
    parser = _command(
        commands,
        "history",
        "List every change of a run, or of one object, in log order.",
        _history,
    )
    parser.add_argument(
        "id", metavar="RUN_ID|OBJECT_ID", help="a run id, an object id or its start"
    )
    parser.add_argument("--kind", metavar="KIND", help=f"only objects of KIND: {', '.join(KINDS)}")
    parser.add_argument("--field", metavar="F", help="only changes of field F (status, message...)")
    parser.add_argument(
        "--status", metavar="S", help="only the changes that set status S (DONE, RUNNING...)"
    )
    parser.add_argument("--since", metavar="TIME", help=f"only changes at or after {TIME_HELP}")
    parser.add_argument("--until", metavar="TIME", help="only changes at or before TIME")


def _history(args: argparse.Namespace) -> int:
    since = parse_time_option("--since", args.since)
    until = parse_time_option("--until", args.until)
    changes = audit.history(
        log_path(args),
        resolve_run_id(args, args.id),
        kind=args.kind,
        field=args.field,
        status=args.status,
        since=since,
        until=until,
    )
    out_audit.print_changes(
        out_audit.audit_console(), changes, args.format, f"history of {args.id}"
    )
    return EXIT_OK


# -- export -----------------------------------------------------------------------------------


def _register_export(commands: Any) -> None:
    parser = _command(
        commands,
        "export",
        "Write a run's events as a log of their own that verifies on its own.",
        _export,
    )
    parser.add_argument("run_id", metavar="RUN_ID")
    parser.add_argument(
        "-o", "--output", metavar="PATH", type=Path, required=True, help="the log file to write"
    )
    parser.add_argument("--force", action="store_true", help="overwrite PATH if it exists")


def _export(args: argparse.Namespace) -> int:
    run_id = resolve_run_id(args, args.run_id)
    summary = audit.export(log_path(args), run_id, args.output, force=args.force)
    if args.format == "table":
        out_audit.audit_console().print(Text(out_audit.export_line(summary)), soft_wrap=True)
    else:
        output.write_json(summary)
    return EXIT_OK


# -- replay -----------------------------------------------------------------------------------


def _register_replay(commands: Any) -> None:
    parser = _command(
        commands,
        "replay",
        "Step through a log (an exported run, say), printing each state transition, "
        "and end with the final state; --into imports its runs into another log.",
        _replay,
    )
    parser.add_argument(
        "file",
        metavar="FILE|URL",
        type=log_target,
        nargs="?",
        help="the log to replay (default: --log)",
    )
    parser.add_argument(
        "--into",
        metavar="PATH|URL",
        type=log_target,
        help="import the runs into this log as they replay",
    )
    parser.add_argument(
        "--speed",
        metavar="X",
        help="wait the original time between steps divided by X (default 0: no waiting)",
    )


def _replay(args: argparse.Namespace) -> int:
    speed = parse_seconds_option("--speed", args.speed)
    source: LogTarget = args.file if args.file is not None else log_path(args)
    player = audit.Replay(source, into=args.into, speed=speed)
    out = out_audit.audit_console()
    fmt = args.format
    steps: list[audit.ReplayStep] = []
    for step in player.steps():
        if fmt == "table":
            out_audit.print_step(out, step)
        elif fmt == "jsonl":
            output.write_json({"type": "step", **_fields(step)})
        else:
            steps.append(step)
    view = player.final_view()
    trees = [render.result_tree(execution) for execution in view.get_pipeline_executions()]
    into = str(args.into) if args.into is not None else ""
    if fmt == "json":
        output.write_json({"steps": steps, "final": trees, "imports": player.outcomes})
    elif fmt == "jsonl":
        output.write_jsonl({"type": "final", **_fields(tree)} for tree in trees)
        output.write_jsonl({"type": "import", **_fields(o)} for o in player.outcomes)
    else:
        out.print(Text(printable(f"final state ({view.describe()}):"), "bold"), soft_wrap=True)
        if not trees:
            out.print(Text("no run is left in the storage"))
        for tree in trees:
            out.print(render.run_tree(tree))
        for outcome in player.outcomes:
            out.print(Text(out_audit.import_line(outcome, into)), soft_wrap=True)
    return EXIT_OK


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__struct_fields__}


# -- verify and head --------------------------------------------------------------------------


def _register_verify(commands: Any) -> None:
    parser = _command(
        commands,
        "verify",
        "Check every line of the log (JSON, schema, seq, batches and the hash chain) and "
        "the snapshot beside it; exit status 1 if a check fails.",
        _verify,
    )
    parser.add_argument(
        "--expect",
        metavar="SEQ:HASH",
        help="also prove the log still extends this head (as `head` printed it earlier)",
    )


def _verify(args: argparse.Namespace) -> int:
    expect = None if args.expect is None else audit.parse_head(args.expect)
    path = log_path(args)
    bar = sys.stderr.isatty()
    report = _verify_with_bar(path, expect) if bar else audit.verify(path, expect)
    if args.format == "table":
        out = out_audit.audit_console()
        for line in out_audit.verify_lines(report):
            out.print(Text(line), soft_wrap=True)
    else:
        output.write_json(report)
    return EXIT_OK if report.ok else EXIT_FAILED


def _verify_with_bar(path: LogTarget, expect: audit.Head | None) -> audit.VerifyReport:
    # Imported here: only verify on a terminal draws a bar (the import is slow).
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("verifying"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task("verify", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return audit.verify(path, expect, progress=advance)


def _register_head(commands: Any) -> None:
    _command(
        commands,
        "head",
        "Print the log's head as SEQ:HASH, to keep elsewhere for `verify --expect`.",
        _head,
    )


def _head(args: argparse.Namespace) -> int:
    found = audit.head(log_path(args))
    if args.format == "table":
        sys.stdout.write(f"{printable(found)}\n")
    else:
        output.write_json(found)
    return EXIT_OK


# -- follow -----------------------------------------------------------------------------------


def _register_follow(commands: Any) -> None:
    parser = _command(
        commands,
        "follow",
        "Print status changes as other processes append them to the log.",
        _follow,
    )
    parser.add_argument("run_id", metavar="RUN_ID", nargs="?", help="only this run")
    parser.add_argument(
        "--from-seq", metavar="N", help="first print the changes already logged from seq N on"
    )
    parser.add_argument(
        "--until-done",
        action="store_true",
        help="exit once the run is in a final status: 0 if DONE, 1 if it failed or was "
        f"cancelled, {EXIT_TIMED_OUT} if --timeout passed first",
    )
    parser.add_argument("--timeout", metavar="S", help="stop after S seconds")


def _follow(args: argparse.Namespace) -> int:
    from_seq = parse_count_option("--from-seq", args.from_seq)
    timeout = parse_seconds_option("--timeout", args.timeout)
    if args.until_done and args.run_id is None:
        raise InvalidValueError("--until-done needs the RUN_ID of the run to wait for")
    if args.run_id is not None:
        args.run_id = resolve_run_id(args, args.run_id)
    follower = audit.Follower(
        log_path(args),
        args.run_id,
        from_seq=from_seq,
        until_done=args.until_done,
        timeout=timeout,
    )
    out = out_audit.audit_console()
    seen: list[audit.AuditChange] = []
    with follower:
        try:
            for change in follower:
                if args.format == "json":
                    seen.append(change)
                else:
                    out_audit.print_change(out, change, args.format)
        finally:
            if args.format == "json":
                output.write_json(seen)
    if not args.until_done:
        return EXIT_OK
    status = follower.status
    if follower.timed_out:
        now = "not started yet" if status is None else status.name
        print(
            printable(
                f"pipelines-events: follow: timed out after {timeout} s; run {args.run_id} is {now}"
            ),
            file=sys.stderr,
        )
        return EXIT_TIMED_OUT
    name = "?" if status is None else status.name
    print(printable(f"run {args.run_id} finished: {name}"), file=sys.stderr)
    return EXIT_OK if status is PipelineTaskStatus.DONE else EXIT_FAILED
