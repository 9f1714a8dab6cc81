"""How a run index keeps up with its log: it indexes the events past the file's head, in
memory and then into the file, and reads a run's events back through its extents.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from pipelines_events.errors import LogError
from pipelines_events.events import START, AnyEvent, LogPosition, ObjectCreated
from pipelines_events.log.indexrows import (
    _COLUMNS,
    _FOLD_EVERY,
    _INHERITED,
    INDEX_SCHEMA,
    IndexUnusable,
    _busy,
    _decoder,
    _extent,
    _row,
    _set_head,
    _state,
    _Tail,
    _transaction,
)

if TYPE_CHECKING:
    from pipelines_events.log.fileindex import Scan


class _IndexSync:
    """The part of :class:`FileRunIndex` that indexes the log and reads runs back."""

    path: Path
    _scan: Scan
    _pread: Callable[[int, int], bytes]
    _size: Callable[[], int]
    _checked: Callable[[LogPosition], LogPosition]
    _writable: bool
    _lock: threading.RLock
    _db: sqlite3.Connection | None
    _ino: tuple[int, int] | None
    _pid: int
    _head: LogPosition
    _tail: _Tail
    _first: str
    _memory_only: bool
    last_problem: str | None

    if TYPE_CHECKING:  # defined by FileRunIndex: the index file itself

        def _open_file(self) -> None: ...
        def _connect(self) -> tuple[sqlite3.Connection, tuple[int, int]]: ...
        def _same_file(self) -> bool: ...
        def _rebuild(self) -> None: ...
        def _unusable(self, why: str) -> None: ...
        def _go_memory_only(self) -> None: ...
        def _drop(self) -> None: ...

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
        self._forget_if_forked()
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

    def _forget_if_forked(self) -> None:
        """In a forked child, drop the parent's connection and state (never closed here:
        closing could roll back the parent's transaction)."""
        if self._pid != os.getpid():
            if self._db is not None:
                _INHERITED.append(self._db)
            self._db, self._ino, self._pid = None, None, os.getpid()
            self._head, self._tail, self._memory_only = START, _Tail(START), False

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
