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
import re
import sqlite3
import stat
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Final
from urllib.parse import quote

import msgspec

from pipelines_events.errors import LogError
from pipelines_events.events import START, AnyEvent, LogPosition, ObjectCreated
from pipelines_events.log.base import RunSummary
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
_FOLD_EVERY: Final = 200_000
"""Events a catch-up indexes before it writes them out (bounds its memory)."""
_BUSY_MS: Final = 10_000

Scan = Callable[[LogPosition], Iterator[tuple[list[AnyEvent], LogPosition]]]
"""The log's verified reader: groups of complete batches after a cursor, each with the
cursor after it."""


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


class FileRunIndex:
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
                        "SELECT run_id, pipeline_id, status, started, completed, counts, "
                        "first_seq, last_seq, removed FROM runs ORDER BY first_seq"
                    ).fetchall()
                    summaries = {row[0]: _summary_of_row(row) for row in rows}
                except (sqlite3.Error, IndexUnusable) as exc:
                    self._unusable(str(exc))
                    return self.run_summaries()
            tail = self._tail.runs.runs()
            for state in tail:
                summaries[state.run_id] = _summary(state)
            found = list(summaries.values())
            if tail:
                found.sort(key=lambda summary: summary.first_seq)
            return found

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
                return self._read_extents(run_id, extents)
            except IndexUnusable as exc:
                self._unusable(str(exc))
                return self.run_events(run_id)

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

    # -- reading events back ---------------------------------------------------------

    def _read_extents(
        self, run_id: str, extents: Iterable[tuple[int, int, int, int]]
    ) -> list[AnyEvent]:
        events: list[AnyEvent] = []
        decode = _decoder.decode
        for first_seq, count, byte, length in extents:
            data = self._pread(length, byte)
            lines = data.split(b"\n")
            if len(data) != length or lines[-1] or len(lines) != count + 1:
                raise IndexUnusable(f"the extent at byte {byte} does not hold {count} lines")
            for seq, line in enumerate(lines[:-1], first_seq):
                try:
                    event = decode(line)
                except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                    raise IndexUnusable(f"byte {byte}: not an event of the log") from None
                if event.seq != seq or event.run_id != run_id:
                    raise IndexUnusable(f"byte {byte}: seq {event.seq}, not seq {seq}")
                events.append(event)
        return events

    # -- keeping up with the log -----------------------------------------------------

    def _sync(self) -> None:
        """Index the complete batches after the head (opening, checking or rebuilding the
        file first when needed)."""
        if self._pid != os.getpid():  # a forked child: the connection is the parent's
            if self._db is not None:
                _INHERITED.append(self._db)  # never closed here: closing could roll back
            self._db, self._ino, self._pid = None, None, os.getpid()
            self._head, self._tail, self._memory_only = START, _Tail(START), False
        for _attempt in range(3):
            if self._db is not None and not self._same_file():
                self._drop()  # another process rebuilt it: open the new one
            if self._db is None and not self._memory_only:
                self._open_file()
            if self._db is None:
                break
            try:
                self._catch_up_file()
                break
            except (sqlite3.Error, IndexUnusable) as exc:
                self._unusable(str(exc))
        else:
            self._go_memory_only()
        size = self._size()
        tail = self._tail
        if tail.head.offset > size:
            raise LogError(
                f"{self.path}: the log is {size} bytes, shorter than the {tail.head.offset} "
                "bytes already indexed by this handle: it was truncated or replaced while open"
            )
        if tail.head.offset != size:
            try:
                self._index(tail, tail.head, self._restorer(tail), None)
            except (sqlite3.Error, IndexUnusable) as exc:
                self._unusable(str(exc))
                self._go_memory_only()
                self._index(self._tail, START, None, None)

    def _catch_up_file(self) -> None:
        db = self._db
        assert db is not None
        head = self._read_head(db)
        size = self._size()  # after the head: the log only grows past what was indexed
        self._verify_head(head, size)
        if head != self._head:
            self._head = head
            self._tail = _Tail(head)
        if head.offset == size or not self._writable:
            return
        try:
            with _transaction(db):
                head = self._read_head(db)  # another process may have indexed meanwhile
                if head != self._head:
                    self._verify_head(head, self._size())
                self._head = self._write(db, head)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            return  # another process is writing it for long: index the tail in memory
        self._tail = _Tail(self._head)

    def _verify_head(self, head: LogPosition, size: int) -> None:
        if head.offset > size:
            raise IndexUnusable(
                f"the index reaches byte {head.offset}, past the log's end at {size} "
                "(an older copy of the log was restored?)"
            )
        try:
            self._checked(head)
        except LogError as exc:
            raise IndexUnusable(f"the log no longer holds the indexed head: {exc}") from None
        if head.seq and not self._first_is(self._first):
            raise IndexUnusable("the index is of another log (its first event differs)")

    def _read_head(self, db: sqlite3.Connection) -> LogPosition:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        offset, seq, digest = meta.get("head_offset"), meta.get("head_seq"), meta.get("head_hash")
        first = meta.get("first", "")
        if (
            meta.get("schema") != INDEX_SCHEMA
            or not (type(offset) is int and type(seq) is int and type(digest) is str)
            or not isinstance(first, str)
        ):
            raise IndexUnusable("not an index of this schema")
        self._first = first
        return LogPosition(offset, seq, digest)

    def _first_is(self, text: str) -> bool:
        offset, _, digest = text.partition(":")
        if not offset.isdigit():
            return False
        try:
            self._checked(LogPosition(int(offset), 1, digest))
        except LogError:
            return False
        return True

    def _restorer(self, tail: _Tail) -> Callable[[set[str]], None] | None:
        """What loads the file's summaries of the runs a tail touches before it folds them
        (None without a file)."""
        db = self._db
        if db is None:
            return None
        known: set[str] = set()

        def restore(run_ids: set[str]) -> None:
            fresh = sorted(run_ids - known)
            known.update(fresh)
            for start in range(0, len(fresh), 500):
                part = fresh[start : start + 500]
                rows = db.execute(
                    f"SELECT {_COLUMNS} FROM runs WHERE run_id IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                tail.runs.restore(_state(row) for row in rows)

        return restore

    def _write(self, db: sqlite3.Connection, head: LogPosition) -> LogPosition:
        """Index the log after ``head`` into ``db`` (in the caller's transaction)."""
        tail = _Tail(head)

        def flush() -> None:
            db.executemany(
                f"INSERT OR REPLACE INTO runs ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [_row(state) for run_id in tail.dirty if (state := tail.runs.get(run_id))],
            )
            db.executemany(
                "INSERT INTO extents (run_id, first_seq, count, byte, length) VALUES (?,?,?,?,?)",
                [(run_id, *extent) for run_id, items in tail.extents.items() for extent in items],
            )
            db.executemany(
                "INSERT OR IGNORE INTO objects (object_id, run_id) VALUES (?,?)",
                tail.objects.items(),
            )
            tail.extents.clear()
            tail.objects.clear()
            tail.dirty.clear()
            _set_head(db, tail.head)
            if tail.first is not None:
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('first', ?)",
                    (f"{tail.first[0]}:{tail.first[1]}",),
                )

        restore = self._restorer(tail) if head != START else None
        self._index(tail, head, restore, flush)
        flush()
        return tail.head

    def _index(
        self,
        tail: _Tail,
        after: LogPosition,
        restore: Callable[[set[str]], None] | None,
        flush: Callable[[], None] | None,
    ) -> None:
        """Fold the complete batches after ``after`` into ``tail``: ``restore`` loads the
        runs they touch first; ``flush`` writes out every :data:`_FOLD_EVERY` events."""
        pending = 0
        start = after
        apply = tail.runs.apply
        extents, objects, dirty = tail.extents, tail.objects, tail.dirty
        for events, cursor in self._scan(after):
            data = self._pread(cursor.offset - start.offset, start.offset)
            lines = data.split(b"\n")
            if len(lines) != len(events) + 1:
                raise LogError(f"{self.path}: the log changed while it was indexed")
            if start.offset == 0:
                tail.first = (len(lines[0]) + 1, events[0].hash)
            touched = {event.run_id for event in events}
            if restore is not None:
                restore(touched)
            dirty.update(touched)
            byte = start.offset
            run_id = ""
            extent: list[int] = []
            for event, line in zip(events, lines, strict=False):
                apply(event)
                if isinstance(event, ObjectCreated):
                    objects.setdefault(event.id, event.run_id)
                size = len(line) + 1
                if extent and event.run_id == run_id:
                    extent[1] += 1
                    extent[3] += size
                else:
                    if extent:
                        extents.setdefault(run_id, []).append(_extent(extent))
                    run_id = event.run_id
                    extent = [event.seq, 1, byte, size]
                byte += size
            if extent:
                extents.setdefault(run_id, []).append(_extent(extent))
            start = tail.head = cursor
            pending += len(events)
            if flush is not None and pending >= _FOLD_EVERY:
                flush()
                pending = 0

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
            tables = {
                (name, kind)
                for name, kind in db.execute(
                    "SELECT name, type FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                )
            }
            if tables != _EXPECTED:
                raise IndexUnusable("not an index of this schema")
            self._read_head(db)
            if self._trusted(path) != ino:
                raise IndexUnusable("the index file was replaced while it was opened")
        except BaseException:
            db.close()
            raise
        return db, ino

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
                    for sql in _TABLES:
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
    state = RunState(str(run_id), int(first))  # type: ignore[call-overload]
    state.execution_id = str(execution_id)
    state.pipeline_id = str(pipeline_id)
    state.status = str(status)
    state.started = None if started is None else str(started)
    state.completed = None if completed is None else str(completed)
    try:
        state.counts = _counts_decoder.decode(counts)
    except msgspec.DecodeError:
        raise IndexUnusable("a run's counts are not a JSON object of numbers") from None
    state.last_seq = int(last)  # type: ignore[call-overload]
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


def _summary(state: RunState) -> RunSummary:
    return RunSummary(
        run_id=state.run_id,
        pipeline_id=state.pipeline_id,
        status=state.status,
        started=state.started,
        completed=state.completed,
        counts=dict(state.counts),
        first_seq=state.first_seq,
        last_seq=state.last_seq,
        removed=state.removed,
    )


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


_OPEN_INDEXES: weakref.WeakSet[FileRunIndex] = weakref.WeakSet()
_INHERITED: list[sqlite3.Connection] = []
"""Connections a forked child inherited: SQLite connections must not be used, nor closed,
across a fork."""


def _after_fork_in_child() -> None:
    for index in list(_OPEN_INDEXES):
        # A thread of the parent may have held the lock; the connection is the parent's.
        index._lock = threading.RLock()
        index._pid = -1


os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["INDEX_SCHEMA", "FileRunIndex", "IndexUnusable", "index_path"]
