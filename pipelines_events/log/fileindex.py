"""The file log's run index: an SQLite file beside the log (``<log>.index``), a cache.

It holds one summary per run (:class:`~projections.runs.RunState`), where each run's
events lie in the log (extents: byte ranges of consecutive lines of one run), which run
each object belongs to, the log's identity (the hash of its first event) and the head it
was brought up to (seq, hash, byte offset). Nothing is written to it on append: every
query first indexes the complete batches after the indexed head (verified by the log's
own scan), so the work follows reads, not writes. See ``docs/explanation/run-index.rst``.

The file is never trusted over the log. It is rebuilt from the log when it is missing,
not SQLite, of another schema, of another owner than the log, a link or not a regular
file, from another log (the first event's hash differs), or ahead of or diverged from it
(no event ends at the indexed offset with the indexed hash: a restored backup). A handle
that must not write (a read-only log, a directory it cannot write) reads a sound index
without changing it and indexes the rest in memory.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final
from urllib.parse import quote

from pipelines_events.events import START, AnyEvent, LogPosition
from pipelines_events.log.base import object_crc
from pipelines_events.log.indexrows import (
    _BUSY,
    _EXPECTED,
    _MAX_SQL_INT,
    _ORDER_INDEX,
    _ORDER_NAME,
    _SUMMARY_COLUMNS,
    _TABLES,
    INDEX_SCHEMA,
    IndexUnusable,
    _add_functions,
    _page_rows,
    _set_head,
    _summary_of_row,
    _Tail,
    _transaction,
    index_path,
)
from pipelines_events.log.indexsync import _IndexSync
from pipelines_events.log.runquery import (
    RunPage,
    RunQuery,
    RunSummary,
    summaries_as_of,
    summary_of,
)

_BUSY_MS: Final = 10_000
_TAIL_IN_SQL: Final = 500
"""Past this many runs indexed only in memory, a page is chosen in Python, not in SQL."""

Scan = Callable[[LogPosition], Iterator[tuple[list[AnyEvent], LogPosition]]]
"""The log's verified reader: groups of complete batches after a cursor, each with the
cursor after it."""


class FileRunIndex(_IndexSync):
    """The run index of one file log handle.

    ``scan`` reads the log verified, ``pread`` reads its bytes, ``size`` gives its length,
    ``checked`` raises :class:`LogError` unless an event ends at a cursor with its seq and
    hash, ``owner`` is the log's uid. With ``writable`` False the file is only read.
    """

    def __init__(
        self,
        log_path: Path,
        *,
        scan: Scan,
        pread: Callable[[int, int], bytes],
        size: Callable[[], int],
        checked: Callable[[LogPosition], LogPosition],
        owner: int,
        mode: int,
        writable: bool,
    ) -> None:
        self.path = index_path(log_path)
        self._scan = scan
        self._pread = pread
        self._size = size
        self._checked = checked
        self._owner = owner
        self._mode = mode
        self._writable = writable
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._ino: tuple[int, int] | None = None
        self._pid = os.getpid()
        self._head = START  # what the file holds (when there is one)
        self._tail = _Tail(START)
        self._first = ""
        self._memory_only = False
        self.rebuilds = 0
        """How often this handle built the index file anew."""
        self.last_problem: str | None = None
        """Why the index file was last found unusable, for messages and tests."""
        _OPEN_INDEXES.add(self)

    # -- the queries -----------------------------------------------------------------

    def run_summaries(self) -> list[RunSummary]:
        """Every run, oldest first, after indexing what the log gained."""
        with self._lock:
            self._sync()
            summaries: dict[str, RunSummary] = {}
            if self._db is not None:
                try:
                    rows = self._db.execute(
                        f"SELECT {_SUMMARY_COLUMNS} FROM runs ORDER BY first_seq"
                    ).fetchall()
                    summaries = {row[0]: _summary_of_row(row) for row in rows}
                except (sqlite3.Error, IndexUnusable) as exc:
                    self._unusable(str(exc))
                    return self.run_summaries()
            tail = self._tail.runs.runs()
            for state in tail:
                summaries[state.run_id] = summary_of(state)
            found = list(summaries.values())
            if tail:
                found.sort(key=lambda summary: summary.first_seq)
            return found

    def stored(self) -> bool:
        """Whether an index file is in use (opened now if it was not yet); False when the
        log is indexed only in memory (read-only, with no usable file)."""
        with self._lock:
            self._forget_if_forked()
            if self._db is None and not self._memory_only:
                self._open_file()
            return self._db is not None

    def run_page(self, query: RunQuery) -> RunPage:
        """The runs ``query`` lists, newest first, after indexing what the log gained:
        chosen, counted and cut in SQL, with the runs indexed only in memory, and those
        changed after ``query.through_seq`` (folded again up to it), merged in."""
        with self._lock:
            self._sync()
            changed = self._changed_after(query.through_seq)
            tail = [summary_of(state) for state in self._tail.runs.runs()]
            if self._db is None or len(tail) + len(changed) > _TAIL_IN_SQL:
                return query.select(
                    summaries_as_of(self.run_summaries(), query.through_seq, self.run_events)
                )
            tail = [summary for summary in tail if summary.run_id not in changed]
            apart = [*(summary.run_id for summary in tail), *changed]
            try:
                found, total = _page_rows(self._db, query, apart)
            except (sqlite3.Error, IndexUnusable) as exc:
                self._unusable(str(exc))
                return self.run_page(query)
            newer = query.select(
                [*tail, *summaries_as_of(changed.values(), query.through_seq, self.run_events)]
            )
            runs = found + newer.runs
            if newer.runs:
                runs.sort(key=lambda summary: summary.first_seq, reverse=True)
            if query.limit is not None:
                runs = runs[: query.limit]
            return RunPage(runs=runs, total=total + newer.total)

    def _changed_after(self, through_seq: int | None) -> dict[str, RunSummary]:
        """The summaries (as indexed now) of the runs with events after ``through_seq``."""
        if through_seq is None or through_seq >= self._tail.head.seq:
            return {}
        changed = {
            state.run_id: summary_of(state)
            for state in self._tail.runs.runs()
            if state.last_seq > through_seq
        }
        if self._db is not None and through_seq <= _MAX_SQL_INT:
            try:
                rows = self._db.execute(
                    f"SELECT {_SUMMARY_COLUMNS} FROM runs WHERE last_seq > ?", (through_seq,)
                ).fetchall()
            except sqlite3.Error as exc:
                self._unusable(str(exc))
                return self._changed_after(through_seq)
            for row in rows:
                summary = _summary_of_row(row)
                changed.setdefault(summary.run_id, summary)
        return changed

    def run_events(self, run_id: str) -> list[AnyEvent]:
        """Every event of ``run_id`` in log order, read at the places the index keeps."""
        with self._lock:
            self._sync()
            extents: list[tuple[int, int, int, int]] = []
            if self._db is not None:
                try:
                    extents = self._db.execute(
                        "SELECT first_seq, count, byte, length FROM extents WHERE run_id = ? "
                        "ORDER BY first_seq",
                        (run_id,),
                    ).fetchall()
                except sqlite3.Error as exc:
                    self._unusable(str(exc))
                    return self.run_events(run_id)
            extents = extents + self._tail.extents.get(run_id, [])
            try:
                events = self._read_extents(run_id, extents)
                self._check_covered(run_id, events)
            except (sqlite3.Error, IndexUnusable) as exc:
                self._unusable(str(exc))
                return self.run_events(run_id)
            return events

    def _check_covered(self, run_id: str, events: list[AnyEvent]) -> None:
        """:class:`IndexUnusable` unless ``events``, read at the run's extents, hold the
        first and the last event its summary names (SQLite accepts a damaged row: an
        extent lost or moved to another run shows here)."""
        state = self._tail.runs.get(run_id)
        bounds: tuple[object, ...] | None = None
        if state is not None:
            bounds = (state.first_seq, state.last_seq)
        elif self._db is not None:
            bounds = self._db.execute(
                "SELECT first_seq, last_seq FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        if bounds is None:
            if events:
                raise IndexUnusable(f"run {run_id!r} has extents but no summary")
            return
        first, last = bounds
        if not events or events[-1].seq != last or all(e.seq != first for e in events):
            raise IndexUnusable(
                f"run {run_id!r}: its extents do not hold the events from seq {first} to "
                f"seq {last} its summary names"
            )

    def placement(self) -> dict[str, tuple[int, int]]:
        """``{run id: (events, sum of their seqs)}`` as the extents place them, after
        indexing what the log gained (see :meth:`EventLog.run_index_placement`)."""
        with self._lock:
            totals = self._file_totals(
                "SELECT run_id, SUM(count), SUM(first_seq * count + count * (count - 1) / 2) "
                "FROM extents GROUP BY run_id"
            )
            for run_id, extents in self._tail.extents.items():
                count, total = totals.get(run_id, (0, 0))
                for first_seq, events, _byte, _length in extents:
                    count += events
                    total += first_seq * events + events * (events - 1) // 2
                totals[run_id] = (count, total)
            return totals

    def object_placement(self) -> dict[str, tuple[int, int]]:
        """``{run id: (objects, sum of their ids' CRC-32)}`` as the index maps objects to
        runs, after indexing what the log gained (see
        :meth:`EventLog.run_index_objects`)."""
        with self._lock:
            totals = self._file_totals(
                "SELECT run_id, COUNT(*), SUM(object_crc(object_id)) FROM objects GROUP BY run_id"
            )
            for object_id, run_id in self._tail.objects.items():
                count, total = totals.get(run_id, (0, 0))
                totals[run_id] = (count + 1, total + object_crc(object_id))
            return totals

    def _file_totals(self, sql: str) -> dict[str, tuple[int, int]]:
        """``{run id: (a, b)}`` from ``sql`` (two totals grouped by run) over the index
        file, after indexing what the log gained; empty without a file. Called holding
        the lock; the caller adds what the tail holds."""
        self._sync()
        if self._db is None:
            return {}
        try:
            rows = self._db.execute(sql).fetchall()
        except sqlite3.Error as exc:
            self._unusable(str(exc))
            return self._file_totals(sql)
        return {str(run_id): (first, second) for run_id, first, second in rows}

    def run_of(self, object_id: str) -> str | None:
        """The run of the object ``object_id``, or None."""
        with self._lock:
            self._sync()
            if self._db is not None:
                try:
                    row = self._db.execute(
                        "SELECT run_id FROM objects WHERE object_id = ?", (object_id,)
                    ).fetchone()
                except sqlite3.Error as exc:
                    self._unusable(str(exc))
                    return self.run_of(object_id)
                if row is not None:
                    return str(row[0])
            return self._tail.objects.get(object_id)

    def close(self) -> None:
        """Close the index file (the index itself stays)."""
        with self._lock:
            self._drop()

    # -- the file --------------------------------------------------------------------

    def _open_file(self) -> None:
        """Open the index file if it can be trusted; else rebuild it (or, read-only, index
        the whole log in memory)."""
        try:
            self._db, self._ino = self._connect()
            self._head = START
            return
        except FileNotFoundError:
            self.last_problem = "there is no index file"
            if self._size() == 0:
                return  # an empty log: nothing to index, no file to write yet
        except (IndexUnusable, sqlite3.Error, OSError) as exc:
            self.last_problem = str(exc)
        self._unusable(self.last_problem)

    def _connect(self) -> tuple[sqlite3.Connection, tuple[int, int]]:
        path = self.path
        ino = self._trusted(path)
        journal = path.with_name(path.name + "-journal")
        with contextlib.suppress(FileNotFoundError):
            self._trusted(journal)
        mode = "rw" if self._writable else "ro"
        db = sqlite3.connect(
            f"file:{quote(str(path))}?mode={mode}",
            uri=True,
            timeout=_BUSY_MS / 1000,
            check_same_thread=False,
            isolation_level=None,
        )
        try:
            db.execute("PRAGMA trusted_schema = OFF")
            if not self._writable:
                db.execute("PRAGMA query_only = ON")
            _add_functions(db)
            self._check_layout(db)
            self._read_head(db)
            if self._trusted(path) != ino:
                raise IndexUnusable("the index file was replaced while it was opened")
        except BaseException:
            db.close()
            raise
        return db, ino

    def _check_layout(self, db: sqlite3.Connection) -> None:
        """:class:`IndexUnusable` unless ``db`` has the index's tables (and, if any, its one
        SQL index); a writable handle adds the SQL index to a file written without it."""
        found = {
            (name, kind): sql
            for name, kind, sql in db.execute(
                "SELECT name, type, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            )
        }
        order = found.pop((_ORDER_NAME, "index"), None)
        if set(found) != _EXPECTED or order not in (None, _ORDER_INDEX):
            raise IndexUnusable("not an index of this schema")
        if order is None and self._writable:
            # Without it pages are only slower; a busy file stays as it is.
            with contextlib.suppress(sqlite3.Error):
                db.execute(_ORDER_INDEX)

    def _trusted(self, path: Path) -> tuple[int, int]:
        """The device and inode of ``path`` when it is a plain file of the log's owner,
        opened without following a link; :class:`IndexUnusable` otherwise."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise IndexUnusable(f"{path}: cannot be opened safely: {exc.strerror}") from None
        try:
            info = os.fstat(fd)
        finally:
            os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            raise IndexUnusable(f"{path}: not a regular file")
        if info.st_uid != self._owner:
            raise IndexUnusable(f"{path}: owned by uid {info.st_uid}, not the log's owner")
        return info.st_dev, info.st_ino

    def _same_file(self) -> bool:
        try:
            info = os.lstat(self.path)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) == self._ino

    def _rebuild(self) -> None:
        """Build a new index file from the whole log and put it in place of the old one."""
        self.rebuilds += 1
        path = self.path
        handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            if os.fstat(handle).st_uid != self._owner:
                os.fchown(handle, self._owner, -1)
            os.fchmod(handle, self._mode)
            os.close(handle)
            handle = -1
            db = sqlite3.connect(temporary, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode = OFF")
                db.execute("PRAGMA synchronous = OFF")
                with _transaction(db):
                    for sql in (*_TABLES, _ORDER_INDEX):
                        db.execute(sql)
                    db.execute("INSERT INTO meta VALUES ('schema', ?)", (INDEX_SCHEMA,))
                    _set_head(db, START)
                    self._write(db, START)
                db.execute("PRAGMA journal_mode = DELETE")
            finally:
                db.close()
            with open(temporary, "rb+") as done:
                os.fsync(done.fileno())
            # The old file's journal must not be applied to the new file.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path.with_name(path.name + "-journal"))
            os.replace(temporary, path)
        except BaseException:
            if handle >= 0:
                os.close(handle)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def _unusable(self, why: str) -> None:
        """The file is missing or failed a check or a query: rebuild it, or (read-only, or
        when that fails) index the log in memory from its start."""
        self.last_problem = why
        self._drop()
        if self._writable and not _BUSY.search(why):  # a busy file is sound: do not replace it
            try:
                self._rebuild()
                self._db, self._ino = self._connect()
                return
            except (OSError, sqlite3.Error, IndexUnusable) as exc:
                self.last_problem = str(exc)
                self._drop()
        self._go_memory_only()

    def _go_memory_only(self) -> None:
        self._drop()
        self._memory_only = True
        self._tail = _Tail(START)

    def _drop(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db, self._ino = None, None
        self._head, self._tail = START, _Tail(START)


_OPEN_INDEXES: weakref.WeakSet[FileRunIndex] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for index in list(_OPEN_INDEXES):
        # A thread of the parent may have held the lock; the connection is the parent's.
        index._lock = threading.RLock()
        index._pid = -1


os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["INDEX_SCHEMA", "FileRunIndex", "IndexUnusable", "index_path"]
