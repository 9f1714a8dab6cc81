"""What the web page shows, as records: the same ones the command line prints as JSON.

Everything here reads a read-only event-log storage (or the log file through
:mod:`pipelines_events.audit`); nothing writes. Query parameters are checked here: a bad
one raises :class:`BadParameter`, which the app turns into a 400 with its message.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from pipelines_events import audit
from pipelines_events.cli import render
from pipelines_events.errors import InvalidValueError, ObjectNotFoundError, PipelinesEventsError
from pipelines_events.events import LogPosition
from pipelines_events.log.open import is_url, open_log
from pipelines_events.results.base import PipelineDigestItem, as_status
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus

PER_PAGE: Final = 50
"""Runs on a page of the run list unless ``per_page`` says otherwise."""
MAX_PER_PAGE: Final = 500
MAX_PAGE: Final = 10**9
MAX_ID_LENGTH: Final = 4096
"""The longest run or object id a request may name."""


class BadParameter(PipelinesEventsError, ValueError):
    """A query parameter the page cannot use: the message names it and says what fits."""


class NotFound(PipelinesEventsError, LookupError):
    """What the request names is not in the log: the message says what."""


class RunFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which runs the run list shows."""

    status: PipelineTaskStatus | None = None
    pipeline: str | None = None
    since: datetime | None = None
    """Runs started at or after this time."""
    until: datetime | None = None
    """Runs started at or before this time."""


class RunPage(msgspec.Struct, kw_only=True):
    """A page of the run list, newest first (``GET /api/runs``)."""

    runs: list[render.RunSummary]
    """The runs, as ``pipelines-events runs --format json`` gives them."""
    total: int
    """How many runs pass the filter."""
    page: int
    per_page: int
    pages: int
    seq: int
    """The log's seq the page reflects at least (live updates continue after it)."""


class DigestRow(msgspec.Struct, kw_only=True):
    """One pipeline's digest item (``GET /api/digest``)."""

    pipeline_id: str
    total_runs: int
    total_success: int
    total_failure: int
    last_ran: datetime | None
    average_runtime: float | None


class RunDetail(msgspec.Struct, kw_only=True):
    """A run's tree as ``show --format json`` gives it, with what the page adds."""

    tree: render.ResultTree
    tracebacks: dict[str, str]
    """Object id to the traceback it recorded (a ``traceback`` field), if any."""
    seq: int


# -- parameters ------------------------------------------------------------------------------


def check_params(names: list[str], allowed: tuple[str, ...]) -> None:
    """:class:`BadParameter` for a parameter not in ``allowed`` or given twice."""
    for name in names:
        if name not in allowed:
            wanted = ", ".join(allowed) if allowed else "none"
            raise BadParameter(f"unknown parameter {name!r}; this page takes: {wanted}")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise BadParameter(f"parameter {name!r} is given twice; give it once")
        seen.add(name)


def text_param(params: Mapping[str, str], name: str, *, required: bool = False) -> str | None:
    """A non-empty text parameter (an id), at most :data:`MAX_ID_LENGTH` characters."""
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise BadParameter(f"parameter {name!r} is missing; give it")
        return None
    if len(value) > MAX_ID_LENGTH:
        raise BadParameter(f"parameter {name!r} is longer than {MAX_ID_LENGTH} characters")
    return value


def int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``; ``default`` when absent or empty."""
    text = params.get(name)
    if text is None or text == "":
        return default
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise BadParameter(f"parameter {name!r}: {text!r} is not a whole number")
    if len(digits) > 20 or not low <= int(text) <= high:
        raise BadParameter(f"parameter {name!r}: give a number from {low} to {high}, not {text}")
    value = int(text)
    return value


def time_param(params: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 time (UTC when it has no offset); None when absent or empty."""
    text = params.get(name)
    if text is None or text.strip() == "":
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadParameter(
            f"parameter {name!r}: {text!r} is not a time; give ISO 8601 such as "
            "2026-11-05T12:00:00Z"
        ) from None
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def status_param(params: Mapping[str, str], name: str) -> PipelineTaskStatus | None:
    """A status by name; None when absent or empty."""
    text = params.get(name)
    if text is None or text == "":
        return None
    try:
        return as_status(text)
    except InvalidValueError as exc:
        raise BadParameter(f"parameter {name!r}: {exc}") from None


def run_filter(params: Mapping[str, str]) -> RunFilter:
    """The run list's filter from the query parameters."""
    since, until = time_param(params, "since"), time_param(params, "until")
    if since is not None and until is not None and since > until:
        raise BadParameter("parameter 'since' is after 'until'; no run could match")
    return RunFilter(
        status=status_param(params, "status"),
        pipeline=text_param(params, "pipeline"),
        since=since,
        until=until,
    )


# -- queries ---------------------------------------------------------------------------------


def _matches(record: Any, wanted: RunFilter) -> bool:
    if wanted.status is not None and record.status is not wanted.status:
        return False
    if wanted.since is None and wanted.until is None:
        return True
    started = record.started
    if not isinstance(started, datetime):
        return False
    if wanted.since is not None and started < wanted.since:
        return False
    return wanted.until is None or started <= wanted.until


def run_page(
    storage: EventLogPipelineResultsStorage, wanted: RunFilter, page: int, per_page: int
) -> RunPage:
    """Page ``page`` (from 1) of the runs that pass ``wanted``, newest first.

    Only the runs on the page are summarised (their task results counted), so the cost
    of a page is one pass over the executions plus the page's runs.
    """
    storage.refresh()
    seq = storage.log.position.seq
    records = storage.results.executions(pipeline_id=wanted.pipeline)
    first = (page - 1) * per_page
    if wanted.status is None and wanted.since is None and wanted.until is None:
        total = len(records)
        end = total - first
        chosen = records[max(end - per_page, 0) : max(end, 0)][::-1]
    else:
        chosen = []
        total = 0
        for record in reversed(records):
            if _matches(record, wanted):
                if first <= total < first + per_page:
                    chosen.append(record)
                total += 1
    runs: list[render.RunSummary] = []
    for record in chosen:
        execution = storage.get_pipeline_execution(record.run_id)
        if execution is not None:
            runs.append(render.run_summary(storage, execution))
    pages = max(1, math.ceil(total / per_page))
    return RunPage(runs=runs, total=total, page=page, per_page=per_page, pages=pages, seq=seq)


def run_detail(storage: EventLogPipelineResultsStorage, run_id: str) -> RunDetail:
    """The tree of run ``run_id``; :class:`NotFound` when the log has no such run."""
    storage.refresh()
    seq = storage.log.position.seq
    execution = storage.get_pipeline_execution(run_id)
    if execution is None:
        raise NotFound(f"no run has the id {run_id!r} in this log")
    tree = render.result_tree(execution)
    tracebacks: dict[str, str] = {}
    for record in storage.results.run_objects(run_id):
        found = traceback_of(record)
        if found is not None:
            tracebacks[record.id] = found
    return RunDetail(tree=tree, tracebacks=tracebacks, seq=seq)


def traceback_of(record: Any) -> str | None:
    """The traceback an object recorded (its ``traceback`` field, a str), or None."""
    value = record.get("traceback")
    return value if isinstance(value, str) and value else None


def digest_rows(storage: EventLogPipelineResultsStorage) -> list[DigestRow]:
    """The digest per pipeline id, sorted by pipeline id."""
    digest: dict[str, PipelineDigestItem] = storage.get_pipeline_digest()
    return [
        DigestRow(
            pipeline_id=pipeline_id,
            total_runs=item.total_runs,
            total_success=item.total_success,
            total_failure=item.total_failure,
            last_ran=item.last_ran,
            average_runtime=item.average_runtime,
        )
        for pipeline_id, item in sorted(digest.items())
    ]


def object_history(path: str, object_id: str) -> list[audit.AuditChange]:
    """Every change of the run or object ``object_id`` (``history --format json``)."""
    try:
        return audit.history(path, object_id)
    except ObjectNotFoundError as exc:
        raise NotFound(str(exc)) from None


class VerifyCache:
    """:func:`audit.verify` of one log, done again only when the file changed (a log given
    by URL: when its head moved).

    One verification runs at a time; the others wait for it and share its report.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._reports: dict[tuple[int | str, ...], audit.VerifyReport] = {}

    def report(self, expect: str | None) -> audit.VerifyReport:
        """The report of the log as it is now, checked against head ``expect``."""
        wanted = None
        if expect is not None:
            try:
                wanted = audit.parse_head(expect)
            except InvalidValueError as exc:
                raise BadParameter(f"parameter 'expect': {exc}") from None
        with self._lock:
            key = (*self._version(), "" if wanted is None else str(wanted))
            found = self._reports.get(key)
            if found is None:
                found = audit.verify(self.path, wanted)
                if len(self._reports) > 16:
                    self._reports.clear()
                self._reports[key] = found
            return found

    def _version(self) -> tuple[int | str, ...]:
        """What changes when the log changes: the file's inode, size and time; the head."""
        if is_url(self.path):
            with open_log(self.path, readonly=True) as log:
                head = log.head()
            return (head.seq, head.hash)
        info = os.stat(self.path)
        return (info.st_ino, info.st_size, info.st_mtime_ns)


def head_of(storage: EventLogPipelineResultsStorage) -> LogPosition:
    """The position up to which the storage has read the log, after catching up."""
    storage.refresh()
    return storage.log.position


__all__ = [
    "MAX_ID_LENGTH",
    "MAX_PAGE",
    "MAX_PER_PAGE",
    "PER_PAGE",
    "BadParameter",
    "DigestRow",
    "NotFound",
    "RunDetail",
    "RunFilter",
    "RunPage",
    "VerifyCache",
    "check_params",
    "digest_rows",
    "head_of",
    "int_param",
    "object_history",
    "run_detail",
    "run_filter",
    "run_page",
    "status_param",
    "text_param",
    "time_param",
    "traceback_of",
]
