"""How the audit commands print their records: tables, lines, summaries, JSON.

Runs are drawn by :mod:`pipelines_events.cli.render`, as ``show`` draws them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final

from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipelines_events.audit import (
    CREATED,
    REMOVED,
    SET,
    AuditChange,
    ExportSummary,
    ImportOutcome,
    ReplayStep,
    VerifyReport,
)
from pipelines_events.audit.verify import (
    SNAPSHOT_DIFFERS,
    SNAPSHOT_IGNORED,
    SNAPSHOT_MATCHES,
    SNAPSHOT_NONE,
    SNAPSHOT_UNCHECKED,
)
from pipelines_events.cli.common import console, printable
from pipelines_events.cli.output import NONE as _NONE
from pipelines_events.cli.output import compact, stop_on_closed_output, write_json, write_jsonl
from pipelines_events.events import PIPELINE_EXECUTION
from pipelines_events.status import PipelineTaskStatus

KIND_LABELS: Final = {
    "pipeline_execution": "execution",
    "pipeline_result": "pipeline result",
    "task_execution": "task execution",
    "task_result": "task result",
}

_ARROW: Final = " → "


# -- values -------------------------------------------------------------------------------


def short_id(object_id: str) -> str:
    """The first 8 characters of a generated id (a UUID); other ids whole, printable."""
    if len(object_id) == 36 and object_id.count("-") == 4:
        object_id = object_id[:8]
    return printable(object_id)


def format_time(moment: datetime | None) -> str:
    """A time in UTC to the millisecond, as tables show it."""
    if moment is None:
        return _NONE
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d}"


def format_value(value: Any, limit: int = 48) -> str:
    """A stored value, short and printable: statuses by name, times in UTC, the rest as
    compact JSON (control characters escaped: :func:`~pipelines_events.cli.common.printable`)."""
    if value is None:
        return _NONE
    if isinstance(value, PipelineTaskStatus):
        return value.name
    if isinstance(value, datetime):
        return format_time(value)
    return compact(value, limit)


def object_label(
    kind: str,
    object_id: str,
    *,
    pipeline_task: str | None = None,
    pipeline_object: Any = None,
    task_object: Any = None,
) -> str:
    """``task result 1a2b3c4d · extract · 'a' · 1``: the kind, short id and context."""
    parts = [f"{printable(KIND_LABELS.get(kind, kind))} {short_id(object_id)}"]
    if pipeline_task is not None:
        parts.append(printable(pipeline_task))
    if pipeline_object is not None and kind != PIPELINE_EXECUTION:
        parts.append(format_value(pipeline_object, 24))
    if task_object is not None:
        parts.append(format_value(task_object, 24))
    return " · ".join(parts)


def change_label(change: AuditChange) -> str:
    """The object a change is about, with its context."""
    return object_label(
        change.kind,
        change.id,
        pipeline_task=change.pipeline_task,
        pipeline_object=change.pipeline_object,
        task_object=change.task_object,
    )


def change_text(change: AuditChange) -> str:
    """What changed: ``status: PENDING → RUNNING``, ``created (PENDING)``, ``removed``."""
    if change.action == REMOVED:
        return "run removed"
    if change.action == CREATED:
        if change.field is not None:
            return f"{printable(change.field)}: created{_ARROW}{format_value(change.new)}"
        status = change.new.get("status") if isinstance(change.new, dict) else None
        return "created" if status is None else f"created ({format_value(status)})"
    if change.field == "traceback" and isinstance(change.new, str):
        return f"traceback recorded ({change.new.count(chr(10)) + 1} lines)"
    return (
        f"{printable(change.field)}: {format_value(change.old)}{_ARROW}{format_value(change.new)}"
    )


def change_line(change: AuditChange) -> str:
    """One change on one line, for streams (``follow``, ``replay``)."""
    line = (
        f"{format_time(change.time)}  seq {change.seq:>6}  run {printable(change.run_id)}  "
        f"{change_label(change)}  {change_text(change)}"
    )
    if change.message:
        line += f"  «{printable(change.message)}»"
    return line


# -- output ---------------------------------------------------------------------------------


def audit_console() -> Console:
    """The commands' console, stopping quietly when the reader of stdout goes away."""
    out = console()
    setattr(out, "on_broken_pipe", stop_on_closed_output)  # noqa: B010
    return out


def changes_table(changes: list[AuditChange], title: str | None = None, width: int = 200) -> Table:
    """Changes as a table: time, seq, object, change, message; below 120 columns the time
    leaves out the date when every change is of one day (the title then names it)."""
    days = {format_time(change.time)[:10] for change in changes}
    short_time = width < 120 and len(days) == 1
    if short_time and title is not None:
        title = f"{title} · {days.pop()} (UTC)"
    table = Table(
        title=None if title is None else Text(printable(title)),
        title_justify="left",
        box=None,
        padding=(0, 1),
        pad_edge=False,
        header_style="bold underline",
    )
    table.add_column("time" if short_time else "time (UTC)", no_wrap=True)
    table.add_column("seq", justify="right", no_wrap=True)
    labels = [change_label(change) for change in changes]
    widest = max(len(label) for label in labels)
    # What the object, change and message columns share of the width (gaps of 2).
    free = width - (12 if short_time else 23) - len(str(changes[-1].seq)) - 8
    object_width = min(widest, max(20, free * 4 // 9))
    change_width = min(
        max(len(change_text(change)) for change in changes),
        max(17, (free - object_width) // 2),
    )
    table.add_column("object", overflow="fold", width=object_width)
    table.add_column("change", overflow="fold", width=change_width)
    table.add_column("message", overflow="fold", width=max(8, free - object_width - change_width))
    for change, label in zip(changes, labels, strict=True):
        moment = format_time(change.time)
        table.add_row(
            Text(moment[11:] if short_time else moment),
            Text(str(change.seq)),
            Text(label),
            Text(change_text(change)),
            Text(printable(change.message or "")),
        )
    return table


CHANGE_COLUMNS: Final = ("time", "seq", "run_id", "kind", "id", "object", "change", "message")
"""The columns of ``history`` when stdout is not a terminal (tab-separated)."""


def changes_lines(changes: list[AuditChange]) -> Iterator[str]:
    """Changes as tab-separated lines, a header first: no value is cut (a traceback's
    newlines are escaped as ``\\n``)."""
    yield "\t".join(CHANGE_COLUMNS)
    for change in changes:
        cells = (
            "" if change.time is None else change.time.astimezone(UTC).isoformat(),
            change.seq,
            change.run_id,
            change.kind,
            change.id,
            change_label(change),
            _full_change_text(change),
            change.message or "",
        )
        yield "\t".join(printable(cell) for cell in cells)


def _full_change_text(change: AuditChange) -> str:
    if change.action == SET and change.field is not None:
        return f"{printable(change.field)}: {_full(change.old)}{_ARROW}{_full(change.new)}"
    return change_text(change)


def _full(value: Any) -> str:
    return format_value(value, limit=sys.maxsize)


def print_changes(console: Console, changes: list[AuditChange], fmt: str, title: str) -> None:
    """Print changes in the format asked for: a table on a terminal, tab-separated lines
    otherwise."""
    if fmt == "json":
        write_json(changes)
    elif fmt == "jsonl":
        write_jsonl(changes)
    elif not changes:
        console.print(Text(printable(f"{title}: no change matches")))
    elif not console.is_terminal:
        try:
            for line in changes_lines(changes):
                sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            stop_on_closed_output()
    else:
        console.print(changes_table(changes, title, console.width))


def print_change(console: Console, change: AuditChange, fmt: str) -> None:
    """Print one change of a stream (``json`` and ``jsonl`` both print one line)."""
    if fmt == "table":
        console.print(Text(change_line(change)), soft_wrap=True)
    else:
        write_json(change)


def print_step(console: Console, step: ReplayStep) -> None:
    """A replay step as a header and one line per change."""
    runs = ", ".join(printable(run_id) for run_id in step.run_ids)
    seqs = f"seq {step.first_seq}" + (
        f"-{step.last_seq}" if step.last_seq != step.first_seq else ""
    )
    console.print(
        Text(f"step {step.number} · {seqs} · {format_time(step.time)} · run {runs}", "bold"),
        soft_wrap=True,
    )
    for change in step.changes:
        line = f"    {change_label(change)}  {change_text(change)}"
        if change.message:
            line += f"  «{printable(change.message)}»"
        console.print(Text(line), soft_wrap=True)


# -- summaries ----------------------------------------------------------------------------


def _count(number: int, noun: str) -> str:
    if number == 1:
        return f"1 {noun}"
    return f"{number} {noun}{'es' if noun.endswith('ch') else 's'}"


def verify_lines(report: VerifyReport) -> list[str]:
    """What ``verify`` prints for a report (printable)."""
    return [printable(line) for line in _verify_lines(report)]


def _verify_lines(report: VerifyReport) -> list[str]:
    summary = (
        f"{report.path}: {_count(report.events, 'event')} in "
        f"{_count(report.batches, 'batch')}, {_count(report.runs, 'run')}, "
        f"{_count(report.bytes, 'byte')}"
    )
    if report.erased:
        summary += f" ({_count(report.erased, 'event')} erased: their links verify, not content)"
    if report.line is not None:
        lines = [f"FAILED: {report.path}: line {report.line}: {report.reason}"]
        if not report.head_mismatch:
            lines.append(
                f"the log verifies up to seq {report.head_seq} "
                f"(head {report.head_seq}:{report.head_hash})"
            )
        if report.snapshot_state == SNAPSHOT_DIFFERS:
            lines.append(f"FAILED: {report.snapshot_reason}")
        elif report.snapshot_state in (SNAPSHOT_IGNORED, SNAPSHOT_UNCHECKED):
            lines.append(_snapshot_line(report))
        return lines
    if report.run_index_reason is not None:
        return [
            f"FAILED: {report.path}: {report.run_index_reason}",
            f"the events themselves verify: {summary}",
            f"head {report.head_seq}:{report.head_hash}",
        ]
    if not report.ok:  # the snapshot differs
        return [
            f"FAILED: {report.snapshot_reason}",
            f"the log itself verifies: {summary}",
            f"head {report.head_seq}:{report.head_hash}",
        ]
    lines = [f"OK: {summary}", f"head {report.head_seq}:{report.head_hash}"]
    if report.expected is not None:
        lines.append(f"extends the expected head {report.expected}")
    if report.unfinished_bytes:
        lines.append(
            f"note: {_count(report.unfinished_bytes, 'byte')} after the head are an unfinished "
            "batch (a write in progress, or a writer that crashed; the next writer removes them)"
        )
    lines.append(_snapshot_line(report))
    return lines


def _snapshot_line(report: VerifyReport) -> str:
    state = report.snapshot_state
    if state == SNAPSHOT_NONE and report.run_index:
        return "no snapshot: storages read runs from the engine's run index"
    if state == SNAPSHOT_NONE:
        return "no snapshot beside the log: storages replay the whole log"
    if state == SNAPSHOT_MATCHES:
        return f"snapshot {report.snapshot}: matches the log at seq {report.snapshot_seq}"
    if state == SNAPSHOT_IGNORED:
        return (
            f"note: snapshot ignored: storages do not use it and replay the whole log "
            f"({report.snapshot_reason})"
        )
    return f"note: snapshot {report.snapshot} not checked: {report.snapshot_reason}"


def export_line(summary: ExportSummary) -> str:
    """What ``export`` prints (printable)."""
    return printable(
        f"exported run {summary.run_id}: {_count(summary.events, 'event')} in "
        f"{_count(summary.batches, 'batch')} to {summary.path} "
        f"(head {summary.head_seq}:{summary.head_hash})"
    )


def import_line(outcome: ImportOutcome, into: str) -> str:
    """What ``replay --into`` prints for one run (printable)."""
    if outcome.action == "already present":
        text = f"run {outcome.run_id}: already present in {into}; nothing added"
    elif outcome.action == "extended":
        text = f"run {outcome.run_id}: added its {outcome.events} missing events to {into}"
    else:
        text = f"run {outcome.run_id}: imported {outcome.events} events into {into}"
    return printable(f"{text} ({outcome.note})" if outcome.note else text)
