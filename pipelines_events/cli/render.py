"""How the run commands print results: records for JSON, the run tree, the runs table.

The records (:mod:`pipelines_events.cli.render_records`) are built from the storage's
public ``get_`` methods, so any
:class:`~pipelines_events.results.base.PipelineResultsStorage` (and a point-in-time view)
renders the same way. JSON gives statuses by name and times in ISO 8601 (UTC).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from pipelines_events.audit import AuditChange
from pipelines_events.cli.common import printable
from pipelines_events.cli.output import NONE as _NONE
from pipelines_events.cli.output import compact, write_json, write_jsonl
from pipelines_events.cli.render_records import ResultState as ResultState
from pipelines_events.cli.render_records import ResultTree as ResultTree
from pipelines_events.cli.render_records import RunSummary as RunSummary
from pipelines_events.cli.render_records import TaskCounts as TaskCounts
from pipelines_events.cli.render_records import is_stale as is_stale
from pipelines_events.cli.render_records import result_lines as result_lines
from pipelines_events.cli.render_records import result_tree as result_tree
from pipelines_events.cli.render_records import run_summary as run_summary
from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResult,
    TaskExecution,
    TaskResult,
    as_status,
)
from pipelines_events.status import PipelineTaskStatus

__all__ = [
    "ResultState",
    "ResultTree",
    "RunSummary",
    "TaskCounts",
    "change_line",
    "format_duration",
    "format_object",
    "format_time",
    "is_stale",
    "print_records",
    "result_lines",
    "result_tree",
    "run_summary",
    "run_tree",
    "runs_lines",
    "runs_table",
    "status_change_line",
    "status_text",
    "tsv_line",
]

STATUS_STYLES: Final = {
    PipelineTaskStatus.PENDING: "dim",
    PipelineTaskStatus.RUNNING: "cyan",
    PipelineTaskStatus.DONE: "green",
    PipelineTaskStatus.CONFIG_ERROR: "bold red",
    PipelineTaskStatus.VALIDATION_ERROR: "bold red",
    PipelineTaskStatus.RUNTIME_ERROR: "bold red",
    PipelineTaskStatus.CANCELLED: "yellow",
}
"""The colour of each status."""

_FAILED: Final = PipelineTaskStatus.error_statuses()


# -- values -------------------------------------------------------------------------------


def format_time(moment: datetime | None) -> str:
    """``2026-11-05 12:00:00`` (UTC), or ``—`` for None."""
    if moment is None:
        return _NONE
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def format_duration(seconds: float | None) -> str:
    """``0.4 ms``, ``12.0 ms``, ``3.25 s``, ``2 min 05 s``, ``1 h 02 min``; ``—`` for None."""
    if seconds is None:
        return _NONE
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def format_object(value: Any, limit: int = 60) -> str:
    """A stored pipeline or task object, short and printable: a str as is, anything else
    as JSON (control characters escaped, see :func:`~pipelines_events.cli.common.printable`)."""
    return compact(value, limit)


def status_text(status: PipelineTaskStatus) -> Text:
    """The status's name in its colour."""
    return Text(status.name, style=STATUS_STYLES.get(status, ""))


# -- the run tree -------------------------------------------------------------------------


def _label(node: ResultTree) -> Text:
    if node.kind == PipelineExecution.kind:
        label = Text.assemble(
            ("run ", "bold"), (printable(node.run_id), "bold"), f" · {printable(node.pipeline_id)}"
        )
    elif node.kind == PipelineResult.kind:
        label = Text(
            "pipeline result"
            if node.pipeline_object is None
            else format_object(node.pipeline_object)
        )
    elif node.kind == TaskExecution.kind:
        label = Text(printable(node.pipeline_task or node.task_id or node.id), style="bold")
    else:
        label = Text("task result" if node.task_object is None else format_object(node.task_object))
    label.append(" · ")
    label.append_text(status_text(node.status))
    if node.kind == PipelineExecution.kind and node.started is not None:
        label.append(f" · started {format_time(node.started)} UTC")
    if node.duration is not None:
        label.append(f" · {format_duration(node.duration)}")
    if node.message:
        style = "red" if node.status in _FAILED else "dim"
        label.append(" · ")
        label.append(printable(node.message), style=style)
    return label


def run_tree(tree: ResultTree, title: str | None = None, tracebacks: bool = False) -> Tree:
    """A run as a rich Tree: execution, pipeline results, task executions, task results.

    ``title`` (a point-in-time view's, say) goes above the execution; with ``tracebacks``
    each recorded traceback goes below its object.
    """
    if title is None:
        root = Tree(_label(tree))
        branch = root
    else:
        root = Tree(Text(printable(title), style="bold"))
        branch = root.add(_label(tree))
    _grow(branch, tree, tracebacks)
    return root


def _grow(branch: Tree, node: ResultTree, tracebacks: bool = False) -> None:
    if tracebacks and node.traceback:
        for line in node.traceback.splitlines():
            branch.add(Text(printable(line), style="red"), guide_style="red")
    for child in node.children:
        _grow(branch.add(_label(child)), child, tracebacks)


# -- the runs table -----------------------------------------------------------------------


_NARROW: Final = 120
"""Below this width ``runs`` shows run ids by their first 8 characters (a prefix every
command takes) and leaves out the task result counts."""


def runs_table(runs: list[RunSummary], title: str | None = None, width: int = 200) -> Table:
    """Runs as a rich Table: run id, pipeline, status, start, duration and, on a terminal
    ``width`` of at least 120 columns, task result counts."""
    table = Table(
        title=None if title is None else Text(printable(title)),
        title_justify="left",
        box=None,
        padding=(0, 1),
        pad_edge=False,
        header_style="bold underline",
    )
    narrow = width < _NARROW
    ids = [printable(run.run_id) for run in runs]
    if narrow:
        ids = [_short(run_id) for run_id in ids]
    table.add_column("run id", no_wrap=True, min_width=max(len(i) for i in ids))
    table.add_column("pipeline", overflow="fold", ratio=1)
    table.add_column("status", no_wrap=True, min_width=max(len(run.status.name) for run in runs))
    table.add_column("started (UTC)", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    if not narrow:
        for name in ("done", "failed", "cancelled", "total"):
            table.add_column(name, justify="right", no_wrap=True)
    for run, run_id in zip(runs, ids, strict=True):
        counts = run.task_results
        cells: list[Text | str] = [
            Text(run_id),
            Text(printable(run.pipeline_id)),
            _run_status(run),
            format_time(run.started),
            format_duration(run.duration),
        ]
        if not narrow:
            cells += [
                str(counts.done),
                Text(str(counts.failed), style="red" if counts.failed else ""),
                Text(str(counts.cancelled), style="yellow" if counts.cancelled else ""),
                str(counts.total),
            ]
        table.add_row(*cells)
    return table


def _short(run_id: str) -> str:
    return run_id[:8] if len(run_id) == 36 and run_id.count("-") == 4 else run_id


def _run_status(run: RunSummary) -> Text:
    text = status_text(run.status)
    if run.stale:
        text.append(" (stale)", style="bold yellow")
    return text


RUNS_COLUMNS: Final = (
    "run_id",
    "pipeline_id",
    "status",
    "started",
    "completed",
    "duration",
    "done",
    "failed",
    "cancelled",
    "total",
    "stale",
    "message",
)
"""The columns of ``runs`` when stdout is not a terminal (tab-separated, one run a line)."""


def runs_lines(runs: list[RunSummary]) -> Iterator[str]:
    """Runs as tab-separated lines, a header first: nothing is cut or wrapped."""
    yield "\t".join(RUNS_COLUMNS)
    for run in runs:
        counts = run.task_results
        yield tsv_line(
            run.run_id,
            run.pipeline_id,
            run.status.name,
            _iso(run.started),
            _iso(run.completed),
            "" if run.duration is None else f"{run.duration:.6f}",
            counts.done,
            counts.failed,
            counts.cancelled,
            counts.total,
            "stale" if run.stale else "",
            run.message,
        )


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).isoformat()


def tsv_line(*cells: object) -> str:
    """Cells joined by tabs, each printable (a tab or newline in one is escaped)."""
    return "\t".join(printable(cell) for cell in cells)


# -- status changes -----------------------------------------------------------------------

_KIND_LABELS: Final = {
    PipelineExecution.kind: "execution",
    PipelineResult.kind: "pipeline result",
    TaskExecution.kind: "task execution",
    TaskResult.kind: "task result",
}
_STATUS_WIDTH: Final = max(len(status.name) for status in PipelineTaskStatus) + 2
_KIND_WIDTH: Final = max(len(label) for label in _KIND_LABELS.values()) + 2


def _change_line(status: PipelineTaskStatus, kind: str, where: str, message: str) -> Text:
    line = Text.assemble(
        status_text(status),
        " " * (_STATUS_WIDTH - len(status.name)),
        printable(kind).ljust(_KIND_WIDTH) if kind else "",
        printable(where),
    )
    if message:
        line.append(": ")
        line.append(printable(message), style="red" if status in _FAILED else "dim")
    return line


def change_line(change: AuditChange, pipeline_id: str) -> Text:
    """A status change read back from the log, on one line: status, kind, and where the
    object sits (``lima / clean / rainfall``; the pipeline id for an execution)."""
    status = change.new
    if not isinstance(status, PipelineTaskStatus):
        status = as_status(status)
    parts = [] if change.kind != PipelineExecution.kind else [pipeline_id]
    if change.kind != PipelineExecution.kind and change.pipeline_object is not None:
        parts.append(format_object(change.pipeline_object, 30))
    if change.pipeline_task is not None:
        parts.append(change.pipeline_task)
    if change.kind == TaskResult.kind and change.task_object is not None:
        parts.append(format_object(change.task_object, 30))
    kind = _KIND_LABELS.get(change.kind, change.kind)
    return _change_line(status, kind, " / ".join(parts), change.message or "")


def status_change_line(
    pipeline_id: str | None, task_id: str | None, status: PipelineTaskStatus, message: str
) -> Text:
    """A status change as a reporter hears it, on one line: status, pipeline id, task id."""
    where = pipeline_id or "?"
    if task_id is not None:
        where = f"{where} / {task_id}"
    return _change_line(status, "", where, message)


# -- output -------------------------------------------------------------------------------


def print_records(console: Console, runs: list[RunSummary], fmt: str, where: str) -> None:
    """Print runs as a table, a JSON list or JSON lines; ``where`` names the storage."""
    if fmt == "json":
        write_json(runs)
    elif fmt == "jsonl":
        write_jsonl(runs)
    elif not runs:
        console.print(Text(printable(f"no run in {where}")), soft_wrap=True)
    elif not console.is_terminal:
        for line in runs_lines(runs):
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
    else:
        console.print(runs_table(runs, width=console.width))
