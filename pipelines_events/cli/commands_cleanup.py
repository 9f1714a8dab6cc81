"""The ``cleanup`` command: remove finished runs (the original's ``clear_tasks_and_logs``)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table
from rich.text import Text

from pipelines_events.cli import output
from pipelines_events.cli.common import (
    add_command,
    console,
    missing_log_file,
    open_storage,
    printable,
)
from pipelines_events.cli.exits import EXIT_OK
from pipelines_events.cli.options import parse_time_option
from pipelines_events.errors import InvalidValueError, LogError, LogOpenError
from pipelines_events.log.open import LogTarget
from pipelines_events.log.segments import Erasure
from pipelines_events.results.base import PipelineExecution, PipelineResultsStorage
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage

__all__ = ["cleanup_candidates", "register"]


def register(commands: Any) -> None:
    """Add ``cleanup`` to the parser's subcommands."""
    summary = (
        "Remove the runs that finished (a final status) before a time, or every finished "
        "run with --all; runs still PENDING or RUNNING are kept. --dry-run lists them only."
    )
    parser = add_command(commands, "cleanup", summary, _cleanup_command, formats=True)
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--before",
        metavar="TIME",
        help="remove the runs completed before TIME (ISO 8601; UTC when it has no offset)",
    )
    when.add_argument(
        "--days",
        metavar="N",
        help="remove the runs completed more than N days ago (the original's --days)",
    )
    when.add_argument("--all", action="store_true", help="remove every finished run")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the runs that would be removed, and remove nothing",
    )
    parser.add_argument(
        "--erase",
        action="store_true",
        help="then erase the content of every removed run from the log's sealed segments "
        "(the chain still verifies) and report the bytes reclaimed",
    )


def cleanup_candidates(
    storage: PipelineResultsStorage, before: datetime | None
) -> list[PipelineExecution]:
    """The executions ``storage.cleanup(before)`` removes: final, and completed before
    ``before`` when it is given."""
    found: list[PipelineExecution] = []
    for execution in storage.get_pipeline_executions():
        if not execution.get_status().is_final:
            continue
        completed = execution.get_completed()
        if before is not None and (completed is None or completed >= before):
            continue
        found.append(execution)
    return found


def _before(args: argparse.Namespace) -> datetime | None:
    if args.all:
        return None
    if args.days is not None:
        try:
            days = int(args.days)
        except ValueError:
            days = -1
        if days < 0:
            raise InvalidValueError(
                f"--days: {args.days!r} is not a number of days; give a whole number, 0 or more"
            )
        try:
            return datetime.now(UTC) - timedelta(days=days)
        except OverflowError:
            raise InvalidValueError(f"--days: {args.days!r} is too many days") from None
    return parse_time_option("--before", args.before)


def _cleanup_command(args: argparse.Namespace) -> int:
    before = _before(args)
    if args.erase and args.dry_run:
        raise InvalidValueError("--erase and --dry-run: a dry run erases nothing; give one")
    log: LogTarget | None = args.log
    if missing_log_file(log):
        raise LogOpenError(f"{log}: no such log file")
    # A dry run opens the log read-only: it never writes, not even a snapshot.
    storage = open_storage(args, readonly=args.dry_run)
    opened_here = isinstance(storage, EventLogPipelineResultsStorage) and (
        log is not None or args.dry_run
    )
    erasure: Erasure | None = None
    try:
        if args.erase and not (
            isinstance(storage, EventLogPipelineResultsStorage) and storage.log.supports_erasure
        ):
            where = (
                storage.log.location
                if isinstance(storage, EventLogPipelineResultsStorage)
                else type(storage).__name__
            )
            raise InvalidValueError(
                f"--erase: {where}: only the file log's sealed segments can be erased "
                "(roll the log with segment_bytes or segment_events); nothing was removed"
            )
        candidates = cleanup_candidates(storage, before)
        rows = [
            {
                "run_id": e.get_run_id(),
                "pipeline_id": e.get_pipeline_id(),
                "status": e.get_status().value,
                "completed": None if e.get_completed() is None else e.get_completed(),
            }
            for e in candidates
        ]
        if not args.dry_run:
            removed = set(storage.cleanup(before=before))
            rows = [row for row in rows if row["run_id"] in removed]
        if args.erase and isinstance(storage, EventLogPipelineResultsStorage):
            try:
                erasure = storage.erase_removed()
            except LogError as exc:
                # The removals are written: say which runs they are, then why no erasure.
                _print(args, rows, None)
                raise LogError(
                    f"{exc}; the runs listed were removed, but nothing was erased: mend the "
                    "cause and run `cleanup --erase` again (it erases every removed run)"
                ) from exc
    finally:
        if opened_here:
            storage.close()
    _print(args, rows, erasure)
    return EXIT_OK


def _erasure_fields(erasure: Erasure) -> dict[str, int]:
    return {
        "erased_events": erasure.erased,
        "segments_rewritten": erasure.segments,
        "bytes_reclaimed": erasure.reclaimed,
        "kept_in_log_file": erasure.unsealed,
        "kept_schema_version_1": erasure.version_1,
        "kept_too_short": erasure.too_short,
    }


def _erasure_text(erasure: Erasure) -> str:
    kept = [
        f"{count} in the log file (not sealed yet)"
        if name == "unsealed"
        else f"{count} of schema version 1"
        if name == "v1"
        else f"{count} too short to erase"
        for name, count in (
            ("unsealed", erasure.unsealed),
            ("v1", erasure.version_1),
            ("short", erasure.too_short),
        )
        if count
    ]
    text = (
        f"erased {erasure.erased} event{'s' if erasure.erased != 1 else ''} in "
        f"{erasure.segments} sealed segment{'s' if erasure.segments != 1 else ''}, "
        + (
            f"reclaimed {erasure.reclaimed} bytes"
            if erasure.reclaimed >= 0
            else f"the segments grew by {-erasure.reclaimed} bytes (they were compressed "
            "already; an erased line compresses worse than its content)"
        )
    )
    if kept:
        text += f"; kept the content of {', '.join(kept)}"
    return text


def _print(args: argparse.Namespace, rows: list[dict[str, Any]], erasure: Erasure | None) -> None:
    if args.format == "json":
        document: dict[str, Any] = {"dry_run": args.dry_run, "runs": rows}
        if erasure is not None:
            document["erasure"] = _erasure_fields(erasure)
        output.write_json(document)
        return
    if args.format == "jsonl":
        output.write_jsonl(rows)
        return
    out = console()
    verb = "would remove" if args.dry_run else "removed"
    if not rows:
        out.print(f"{verb} no runs")
    else:
        _print_rows(out, verb, rows)
    if erasure is not None:
        out.print(_erasure_text(erasure))


def _print_rows(out: Any, verb: str, rows: list[dict[str, Any]]) -> None:
    table = Table("run id", "pipeline", "status", "completed", box=None)
    for row in rows:
        completed = row["completed"]
        table.add_row(
            _plain(row["run_id"]),
            _plain(row["pipeline_id"]),
            row["status"],
            "" if completed is None else completed.isoformat(),
        )
    out.print(f"{verb} {len(rows)} run{'s' if len(rows) != 1 else ''}:")
    out.print(table)


def _plain(text: str) -> Text:
    """``text`` shown as it is: no markup, control characters escaped."""
    return Text(printable(text))
