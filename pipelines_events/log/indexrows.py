"""The run index file's layout and rows: its tables, how a run's state is stored in a row and
read back, and the SQLite helpers (the head, a transaction, a busy database).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import msgspec

from pipelines_events.events import AnyEvent, LogPosition
from pipelines_events.log.base import object_crc
from pipelines_events.log.runquery import RunQuery, RunSummary, started_micros
from projections.runs import RunsProjection, RunState

INDEX_SCHEMA: Final = 1
"""The layout of the index file; another value in its ``meta`` table means rebuild it."""

_TABLES: Final = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE runs (run_id TEXT PRIMARY KEY, execution_id TEXT NOT NULL, "
    "pipeline_id TEXT NOT NULL, status TEXT NOT NULL, started TEXT, completed TEXT, "
    "counts TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, "
    "removed INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE extents (run_id TEXT NOT NULL, first_seq INTEGER NOT NULL, "
    "count INTEGER NOT NULL, byte INTEGER NOT NULL, length INTEGER NOT NULL, "
    "PRIMARY KEY (run_id, first_seq)) WITHOUT ROWID",
    "CREATE TABLE objects (object_id TEXT PRIMARY KEY, run_id TEXT NOT NULL) WITHOUT ROWID",
)
_EXPECTED: Final = frozenset(
    [("meta", "table"), ("runs", "table"), ("extents", "table"), ("objects", "table")]
)
_ORDER_NAME: Final = "runs_by_first_seq"
_ORDER_INDEX: Final = f"CREATE INDEX {_ORDER_NAME} ON runs (first_seq)"
"""The SQL index that pages the runs newest first without sorting them all (a file written
before it existed gains it when a writer opens it; without it the pages are the same)."""
_MAX_SQL_INT: Final = 2**63 - 1
_FOLD_EVERY: Final = 200_000
"""Events a catch-up indexes before it writes them out (bounds its memory)."""


class IndexUnusable(Exception):
    """The index file cannot be trusted or read (the message says why); it is rebuilt."""


def index_path(log_path: Path) -> Path:
    """Where the run index of the log at ``log_path`` lives."""
    return log_path.with_name(log_path.name + ".index")


class _Tail:
    """What a handle indexed in memory past the file's head (all of it without a file)."""

    def __init__(self, head: LogPosition) -> None:
        self.head = head
        self.runs = RunsProjection()
        self.extents: dict[str, list[tuple[int, int, int, int]]] = {}
        self.objects: dict[str, str] = {}
        self.dirty: set[str] = set()
        self.first: tuple[int, str] | None = None  # where seq 1 ends, and its hash


_COLUMNS: Final = (
    "run_id, execution_id, pipeline_id, status, started, completed, counts, first_seq, "
    "last_seq, removed"
)
_decoder = msgspec.json.Decoder(AnyEvent)
_counts_decoder = msgspec.json.Decoder(dict[str, int])


def _extent(values: list[int]) -> tuple[int, int, int, int]:
    first_seq, count, byte, length = values
    return first_seq, count, byte, length


def _state(row: tuple[object, ...]) -> RunState:
    run_id, execution_id, pipeline_id, status, started, completed, counts, first, last, gone = row
    if not isinstance(counts, str):
        raise IndexUnusable("a run's counts are not text")
    if type(first) is not int or type(last) is not int:
        raise IndexUnusable("a run's first or last seq is not a whole number")
    state = RunState(str(run_id), first)
    state.execution_id = str(execution_id)
    state.pipeline_id = str(pipeline_id)
    state.status = str(status)
    state.started = None if started is None else str(started)
    state.completed = None if completed is None else str(completed)
    try:
        state.counts = _counts_decoder.decode(counts)
    except msgspec.DecodeError:
        raise IndexUnusable("a run's counts are not a JSON object of numbers") from None
    state.last_seq = last
    state.removed = bool(gone)
    return state


def _row(state: RunState) -> tuple[object, ...]:
    return (
        state.run_id,
        state.execution_id,
        state.pipeline_id,
        state.status,
        state.started,
        state.completed,
        msgspec.json.encode(state.counts).decode(),
        state.first_seq,
        state.last_seq,
        int(state.removed),
    )


def _summary_of_row(row: tuple[object, ...]) -> RunSummary:
    run_id, pipeline_id, status, started, completed, counts, first, last, gone = row
    if not isinstance(counts, str) or type(first) is not int or type(last) is not int:
        raise IndexUnusable("a run's row does not have the index's types")
    try:
        decoded = _counts_decoder.decode(counts)
    except msgspec.DecodeError:
        raise IndexUnusable("a run's counts are not a JSON object of numbers") from None
    return RunSummary(
        run_id=str(run_id),
        pipeline_id=str(pipeline_id),
        status=str(status),
        started=None if started is None else str(started),
        completed=None if completed is None else str(completed),
        counts=decoded,
        first_seq=first,
        last_seq=last,
        removed=bool(gone),
    )


_SUMMARY_COLUMNS: Final = (
    "run_id, pipeline_id, status, started, completed, counts, first_seq, last_seq, removed"
)


def _page_rows(
    db: sqlite3.Connection, query: RunQuery, skip: list[str]
) -> tuple[list[RunSummary], int]:
    """The rows of the runs ``query`` lists, newest first (at most its limit), leaving out
    the runs ``skip`` names, and how many rows match in all."""
    where, values = ["removed = 0"], list[object]()
    for column, value in (("pipeline_id", query.pipeline_id), ("status", query.status)):
        if value is not None:
            where.append(f"{column} = ?")
            values.append(value)
    if query.through_seq is not None and query.through_seq <= _MAX_SQL_INT:
        where.append("first_seq <= ?")
        values.append(query.through_seq)
    since, until = query.since_micros, query.until_micros
    if since is not None or until is not None:
        where.append("started_micros(started) IS NOT NULL")
    if since is not None:
        where.append("started_micros(started) >= ?")
        values.append(since)
    if until is not None:
        where.append("started_micros(started) <= ?")
        values.append(until)
    if skip:
        where.append(f"run_id NOT IN ({','.join('?' * len(skip))})")
        values.extend(skip)
    clause = " AND ".join(where)
    (total,) = db.execute(f"SELECT COUNT(*) FROM runs WHERE {clause}", values).fetchone()
    if type(total) is not int:
        raise IndexUnusable("the runs could not be counted")
    # SQLite's integers are 64-bit: a larger limit is no limit.
    limit = -1 if query.limit is None or query.limit > _MAX_SQL_INT else query.limit
    rows = db.execute(
        f"SELECT {_SUMMARY_COLUMNS} FROM runs WHERE {clause} ORDER BY first_seq DESC LIMIT ?",
        [*values, limit],
    ).fetchall()
    return [_summary_of_row(row) for row in rows], total


def _add_functions(db: sqlite3.Connection) -> None:
    """Give ``db`` the SQL functions the queries use: ``started_micros(started)`` and
    ``object_crc(object_id)``."""
    db.create_function("started_micros", 1, started_micros, deterministic=True)
    db.create_function("object_crc", 1, object_crc, deterministic=True)


_BUSY: Final = re.compile(r"database is locked|database table is locked|busy")


def _busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says another connection held the file past the busy timeout."""
    return bool(_BUSY.search(str(exc)))


def _set_head(db: sqlite3.Connection, head: LogPosition) -> None:
    db.executemany(
        "INSERT OR REPLACE INTO meta VALUES (?, ?)",
        [("head_offset", head.offset), ("head_seq", head.seq), ("head_hash", head.hash)],
    )


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


_INHERITED: list[sqlite3.Connection] = []
"""Connections a forked child inherited: SQLite connections must not be used, nor closed,
across a fork."""
