"""The HTML of each page, rendered on the server.

Every value from the log goes through :func:`esc` (or :func:`esc_block` for multi-line
text): control characters and bidi overrides become visible escapes, then HTML's special
characters become entities, so an id or message holding markup shows as text. Pages hold no
inline script or style (the Content-Security-Policy forbids them); ``/static/app.js`` adds
the live updates, the timeline and the verify badge.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlencode

from pipelines_events import __version__, audit
from pipelines_events.cli import render, render_audit
from pipelines_events.cli.common import printable
from pipelines_events.results.base import PipelineExecution, PipelineResult, TaskExecution
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.web.data import DigestRow, RunDetail, RunFilter, RunPage

_BLOCK: Final = {
    code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)] if code not in (9, 10)
} | {
    ord(c): f"\\u{ord(c):04x}"
    for c in "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
}
_FAILED: Final = PipelineTaskStatus.failed_statuses()


def esc(value: object) -> str:
    """``value`` as HTML text on one line: printable (see
    :func:`~pipelines_events.cli.common.printable`), then HTML-escaped."""
    return html.escape(printable(value), quote=True)


def esc_block(value: str) -> str:
    """Multi-line text (a message, a traceback) as HTML text for a ``<pre>``: newlines and
    tabs kept, other control characters shown as escapes."""
    return html.escape(value.translate(_BLOCK), quote=True)


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).isoformat()


def _status(status: PipelineTaskStatus) -> str:
    return f'<span class="status s-{status.name}">{status.name}</span>'


def url(path: str, **params: str | int | None) -> str:
    """A URL of this site with the given (non-empty) query parameters."""
    query = urlencode({k: v for k, v in params.items() if v is not None and v != ""})
    return path + ("?" + query if query else "")


def link(path: str, **params: str | int | None) -> str:
    """:func:`url`, HTML-escaped for an attribute."""
    return html.escape(url(path, **params), quote=True)


def layout(title: str, body: str, *, page: str, seq: int | None = None, stream: str = "") -> str:
    """A whole page: the header with the verify badge, ``body``, the script."""
    data = f' data-page="{page}"'
    if seq is not None:
        data += f' data-seq="{seq}"'
    if stream:
        data += f' data-stream="{html.escape(stream, quote=True)}"'
    live = '<span id="live" class="live">live: connecting…</span>' if stream else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · pipelines-events</title>"
        '<link rel="stylesheet" href="/static/app.css">'
        '<script src="/static/app.js" defer></script>'
        f"</head><body{data}>"
        '<header><a class="brand" href="/">pipelines-events</a>'
        '<nav><a href="/">runs</a><a href="/digest">digest</a><a href="/verify">verify</a></nav>'
        '<a id="verify-badge" class="badge" href="/verify" data-src="/api/verify">'
        "chain: not checked yet</a>"
        f"{live}</header>"
        f"<main>{body}</main>"
        f"<footer>pipelines-events {esc(__version__)} · read-only</footer>"
        "</body></html>\n"
    )


# -- the run list ----------------------------------------------------------------------------


def run_row(run: render.RunSummary) -> str:
    """One row of the run list (the script builds the same for live rows)."""
    counts = run.task_results
    return (
        f'<tr data-run-id="{esc(run.run_id)}">'
        f'<td class="id"><a href="{link("/run", id=run.run_id)}">{esc(run.run_id)}</a></td>'
        f'<td class="status-cell">{_status(run.status)}</td>'
        f'<td class="time">{esc(render.format_time(run.started))}</td>'
        f'<td class="num">{esc(render.format_duration(run.duration))}</td>'
        f'<td class="num done">{counts.done}</td>'
        f'<td class="num failed">{counts.failed}</td>'
        f'<td class="num cancelled">{counts.cancelled}</td>'
        f'<td class="num total">{counts.total}</td>'
        f'<td class="pipeline">{esc(run.pipeline_id)}</td>'
        f'<td class="message">{esc(run.message)}</td>'
        "</tr>"
    )


def _options(selected: PipelineTaskStatus | None) -> str:
    out = ['<option value="">any status</option>']
    for status in PipelineTaskStatus:
        mark = " selected" if status is selected else ""
        out.append(f'<option value="{status.name}"{mark}>{status.name}</option>')
    return "".join(out)


def _time_value(moment: datetime | None) -> str:
    return "" if moment is None else esc(moment.isoformat())


def runs_page(result: RunPage, wanted: RunFilter) -> str:
    """The run list: the filter form, a page of runs newest first, links to other pages."""
    status = None if wanted.status is None else wanted.status.name
    filters = {
        "status": status,
        "pipeline": wanted.pipeline,
        "since": None if wanted.since is None else wanted.since.isoformat(),
        "until": None if wanted.until is None else wanted.until.isoformat(),
    }
    form = (
        '<form class="filters" method="get" action="/">'
        f'<label>status <select name="status">{_options(wanted.status)}</select></label>'
        f'<label>pipeline <input name="pipeline" value="{esc(wanted.pipeline or "")}"></label>'
        f'<label>started since <input name="since" value="{_time_value(wanted.since)}" '
        'placeholder="2026-11-05T12:00Z"></label>'
        f'<label>until <input name="until" value="{_time_value(wanted.until)}"></label>'
        f'<input type="hidden" name="per_page" value="{result.per_page}">'
        '<button type="submit">filter</button></form>'
    )
    rows = "".join(run_row(run) for run in result.runs)
    empty = "" if result.runs else '<p class="empty" id="no-runs">no run matches</p>'
    nav = [
        f'page {result.page} of {result.pages} · <span id="run-total">{result.total}</span> runs'
    ]
    if result.page > 1:
        newer = link("/", **filters, page=result.page - 1, per_page=result.per_page)
        nav.insert(0, f'<a rel="prev" href="{newer}">newer</a>')
    if result.page < result.pages:
        older = link("/", **filters, page=result.page + 1, per_page=result.per_page)
        nav.append(f'<a rel="next" href="{older}">older</a>')
    attrs = "".join(
        f' data-filter-{name}="{esc(value)}"' for name, value in filters.items() if value
    )
    table = (
        f'<table id="runs" class="runs" data-page-number="{result.page}" '
        f'data-per-page="{result.per_page}"{attrs}>'
        "<thead><tr><th>run id</th><th>status</th><th>started (UTC)</th><th>duration</th>"
        "<th>done</th><th>failed</th><th>cancelled</th><th>total</th><th>pipeline</th>"
        f"<th>message</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    api = link("/api/runs", **filters, page=result.page, per_page=result.per_page)
    body = (
        f'<h1>Runs</h1>{form}{table}{empty}<p class="paging">{" · ".join(nav)}</p>'
        f'<p class="json"><a href="{api}">as JSON</a></p>'
    )
    stream = "/events"
    return layout("runs", body, page="runs", seq=result.seq, stream=stream)


# -- the run page ----------------------------------------------------------------------------


def node_label(node: render.ResultState) -> str:
    """What names an object in its run: the run id, the pipeline object, the task, the task
    object (printable, not escaped)."""
    if node.kind == PipelineExecution.kind:
        return f"run {printable(node.run_id)}"
    if node.kind == PipelineResult.kind:
        return (
            "pipeline result"
            if node.pipeline_object is None
            else render.format_object(node.pipeline_object)
        )
    if node.kind == TaskExecution.kind:
        return printable(node.pipeline_task or node.task_id or node.id)
    return "task result" if node.task_object is None else render.format_object(node.task_object)


_KIND_NAMES: Final = {
    "pipeline_execution": "execution",
    "pipeline_result": "pipeline result",
    "task_execution": "task",
    "task_result": "task result",
}


def _node(node: render.ResultTree, tracebacks: dict[str, str], context: str) -> str:
    label = node_label(node)
    gantt = (
        context if node.kind != TaskExecution.kind else f"{context} · {label}" if context else label
    )
    child_context = label if node.kind == PipelineResult.kind else context
    trace = tracebacks.get(node.id)
    failed = " failed" if node.status in _FAILED else ""
    parts = [
        f'<li class="node k-{node.kind}{failed}" data-id="{esc(node.id)}" data-kind="{node.kind}" '
        f'data-status="{node.status.name}" data-started="{_iso(node.started)}" '
        f'data-completed="{_iso(node.completed)}" data-gantt="{esc(gantt)}">'
        '<div class="row">'
        f'<span class="kind">{_KIND_NAMES.get(node.kind, esc(node.kind))}</span>'
        f'<span class="label">{esc(label)}</span>'
        f'<span class="status-cell">{_status(node.status)}</span>'
        f'<span class="times">{esc(_times(node))}</span>'
        f'<a class="history" href="{link("/object", id=node.id)}">history</a>'
        "</div>",
        f'<pre class="message{failed}">{esc_block(node.message)}</pre>'
        if node.message
        else '<pre class="message" hidden></pre>',
        '<details class="traceback" open><summary>traceback</summary>'
        f"<pre>{esc_block(trace)}</pre></details>"
        if trace
        else "",
    ]
    kids = "".join(_node(child, tracebacks, child_context) for child in node.children)
    parts.append(f'<ul class="children">{kids}</ul></li>')
    return "".join(parts)


def _times(node: render.ResultState) -> str:
    if node.started is None:
        return "not started"
    text = f"started {render_audit.format_time(node.started)}"
    if node.completed is not None:
        text += f" · completed {render_audit.format_time(node.completed)}"
        text += f" · {render.format_duration(node.duration)}"
    return text


def run_page(detail: RunDetail) -> str:
    """A run: its summary, the timeline of its task executions, the tree of its objects."""
    tree = detail.tree
    body = (
        f'<h1 class="run-title">run <span class="run-id">{esc(tree.run_id)}</span></h1>'
        f'<p class="summary">pipeline <span class="pipeline">{esc(tree.pipeline_id)}</span> · '
        f'<span id="run-status">{_status(tree.status)}</span> · '
        f'<span class="times">{esc(_times(tree))}</span></p>'
        '<p id="removed" class="removed" hidden>this run was removed from the log</p>'
        '<h2>Timeline</h2><div id="timeline" class="timeline">'
        '<svg id="gantt" class="gantt" xmlns="http://www.w3.org/2000/svg" width="0" height="0">'
        '</svg><p class="empty" id="no-timeline" hidden>no task has started yet</p></div>'
        f'<h2>Objects</h2><ul id="tree" class="tree">{_node(tree, detail.tracebacks, "")}</ul>'
        f'<p class="json"><a href="{link("/api/run", id=tree.run_id)}">as JSON</a> · '
        f'<a href="{link("/object", id=tree.run_id)}">every change of this run</a></p>'
    )
    stream = url("/events", run=tree.run_id)
    return layout(f"run {tree.run_id}", body, page="run", seq=detail.seq, stream=stream)


# -- history, digest, verify -----------------------------------------------------------------


def history_page(object_id: str, changes: list[audit.AuditChange]) -> str:
    """Every change of an object (or a run): old -> new per field, with messages."""
    rows = []
    for change in changes:
        rows.append(
            f'<tr data-seq="{change.seq}"><td class="num">{change.seq}</td>'
            f'<td class="time">{esc(render_audit.format_time(change.time))}</td>'
            f'<td class="object">{esc(render_audit.change_label(change))}</td>'
            f'<td class="change">{esc(render_audit.change_text(change))}</td>'
            f'<td class="message"><pre>{esc_block(change.message or "")}</pre></td></tr>'
        )
    body = (
        f'<h1>History of <span class="object-id">{esc(object_id)}</span></h1>'
        '<table id="history" class="history"><thead><tr><th>seq</th><th>time (UTC)</th>'
        "<th>object</th><th>change (old → new)</th><th>message</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        f'<p class="json"><a href="{link("/api/history", id=object_id)}">as JSON</a></p>'
    )
    return layout(f"history of {object_id}", body, page="history")


def digest_page(rows: list[DigestRow]) -> str:
    """The digest per pipeline: pipeline results, successes, failures, last ran, runtime."""
    lines = [
        f'<tr><td class="pipeline">{esc(row.pipeline_id)}</td>'
        f'<td class="num">{row.total_runs}</td><td class="num">{row.total_success}</td>'
        f'<td class="num">{row.total_failure}</td>'
        f'<td class="time">{esc(render.format_time(row.last_ran))}</td>'
        f'<td class="num">{esc(render.format_duration(row.average_runtime))}</td></tr>'
        for row in rows
    ]
    empty = "" if rows else '<p class="empty">no pipeline has run yet</p>'
    body = (
        '<h1>Digest per pipeline</h1><table id="digest" class="digest"><thead><tr>'
        "<th>pipeline</th><th>pipeline results</th><th>DONE</th><th>failed</th>"
        "<th>last ran (UTC)</th><th>average runtime</th></tr></thead>"
        f"<tbody>{''.join(lines)}</tbody></table>{empty}"
        '<p class="json"><a href="/api/digest">as JSON</a></p>'
    )
    return layout("digest", body, page="digest")


def verify_badge_text(report: audit.VerifyReport) -> str:
    """The badge's words: up to which seq the chain verifies, and the head's match."""
    if report.ok:
        text = f"chain verified to seq {report.head_seq}"
        if report.expected is not None:
            text += f" · matches {report.expected.split(':')[0]}:…"
        return text
    if report.head_mismatch:
        return f"does not match the given head (verified to seq {report.head_seq})"
    return f"chain broken at line {report.line} (verified to seq {report.head_seq})"


def verify_page(report: audit.VerifyReport, expect: str | None) -> str:
    """The verify report with the badge, and a form to give a head to match."""
    state = "ok" if report.ok else "bad"
    lines = "".join(f"<li>{esc(line)}</li>" for line in render_audit.verify_lines(report))
    body = (
        f'<h1>Verify the log</h1><p><span id="verify-result" class="badge {state}">'
        f'{esc(verify_badge_text(report))}</span></p><ul class="report">{lines}</ul>'
        '<form method="get" action="/verify"><label>head to match (SEQ:HASH, as '
        "<code>pipelines-events head</code> prints it) "
        f'<input name="expect" size="80" value="{esc(expect or "")}"></label>'
        '<button type="submit">verify</button></form>'
        f'<p class="json"><a href="{link("/api/verify", expect=expect)}">as JSON</a></p>'
    )
    return layout("verify", body, page="verify")


__all__ = [
    "digest_page",
    "esc",
    "esc_block",
    "history_page",
    "layout",
    "link",
    "node_label",
    "run_page",
    "run_row",
    "runs_page",
    "url",
    "verify_badge_text",
    "verify_page",
]
