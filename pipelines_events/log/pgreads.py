"""Reading the PostgreSQL log: cursors, pages of rows verified into batches, waiting for
more with ``LISTEN``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the PostgreSQL log needs psycopg 3: pip install 'pipelines-events[postgres]'"
    ) from exc

from pipelines_events.errors import (
    LogCorruptError,
    LogError,
)
from pipelines_events.events import (
    GENESIS_HASH,
    START,
    AnyEvent,
)
from pipelines_events.log.base import (
    Batch,
    Cursor,
    checked_cursor,
)
from pipelines_events.log.pgbase import (
    _PostgresBase,
)
from pipelines_events.log.pgsql import (
    _PAGE,
    Connection,
    _quote,
)
from pipelines_events.log.pgverify import (
    _verify,
)


class _Reads(_PostgresBase):
    """How a PostgreSQL log handle reads."""

    # -- cursors ---------------------------------------------------------------------------

    @property
    def position(self) -> Cursor:
        return self._position

    def _head(self) -> tuple[int, str, int]:
        rows = self._query(self._sql.head)
        if not rows:
            raise LogCorruptError(self._location, 0, "the head table is empty")
        seq, digest, size = rows[0]
        return int(seq), str(digest), int(size)

    def head(self) -> Cursor:
        seq, digest, _ = self._head()
        return Cursor(0, seq, digest)

    def _checked(self, cursor: Cursor) -> Cursor:
        checked_cursor(self._location, cursor)
        if cursor.seq == 0 and cursor.hash == GENESIS_HASH:
            return START
        rows = self._query(self._sql.hash_at, (cursor.seq,))
        if not rows:
            raise LogError(
                f"{self._location}: the log has no event seq {cursor.seq} "
                f"(its head is seq {self._head()[0]})"
            )
        if rows[0][0] != cursor.hash:
            raise LogError(
                f"{self._location}: the event seq {cursor.seq} has hash {rows[0][0][:12]}..., "
                f"not {cursor.hash[:12]}...: the cursor is not of this log"
            )
        return Cursor(0, cursor.seq, cursor.hash)

    def seek(self, cursor: Cursor) -> None:
        checked = self._checked(cursor)
        with self._lock:
            self._position = checked

    def seek_before(self, seq: int) -> None:
        """Go back to just before the event ``seq`` (at or before the position)."""
        with self._lock:
            if not 0 < seq <= self._position.seq:
                raise LogError(
                    f"{self._location}: cannot go back to seq {seq}: the position is after "
                    f"seq {self._position.seq}"
                )
            self._position = self.cursor_at(seq - 1)

    def cursor_at(self, seq: int) -> Cursor:
        if type(seq) is not int or seq < 0:
            raise LogError(f"{self._location}: a seq is an int of at least 0, not {seq!r}")
        if seq == 0:
            return START
        rows = self._query(self._sql.hash_at, (seq,))
        if not rows:
            raise LogError(
                f"{self._location}: the log has no event seq {seq} "
                f"(its head is seq {self._head()[0]})"
            )
        return Cursor(0, seq, rows[0][0])

    # -- reading ---------------------------------------------------------------------------

    def has_new(self) -> bool:
        return self._head()[0] != self._position.seq

    def _pages(self, after: Cursor, limit: int | None) -> Iterator[list[AnyEvent]]:
        """Verified events after ``after``, a page at a time (a page may end mid-batch)."""
        seq, prev = after.seq, after.hash
        first = True
        while True:
            size = _PAGE if limit is None else max(1, min(_PAGE, limit + 1))
            rows = self._query(self._sql.read, (seq, size))
            if not rows:
                if first and seq > 0:
                    self._checked(after)  # a cursor past the head, or of another log
                return
            try:
                events = _verify(rows, seq, prev, self._location)
            except LogCorruptError as exc:
                if first and exc.line == seq + 1:
                    self._checked(after)  # blame the cursor when it is the cursor's fault
                raise
            first = False
            seq, prev = events[-1].seq, events[-1].hash
            yield events
            if len(rows) < size:
                return

    def _batches(
        self, after: Cursor, limit: int | None = None, *, group: bool = False
    ) -> Iterator[tuple[list[AnyEvent], Cursor]]:
        pending: list[AnyEvent] = []
        yielded = 0
        for page in self._pages(after, limit):
            done: list[AnyEvent] = []
            done_cursor: Cursor | None = None
            for event in page:
                pending.append(event)
                if event.more:
                    continue
                if limit is not None and yielded and yielded + len(pending) > limit:
                    if done_cursor is not None:
                        yield done, done_cursor
                    return
                yielded += len(pending)
                cursor = Cursor(0, event.seq, event.hash)
                if group:
                    done.extend(pending)
                    done_cursor = cursor
                else:
                    yield pending, cursor
                pending = []
                if limit is not None and yielded >= limit:
                    if done_cursor is not None:
                        yield done, done_cursor
                    return
            if done_cursor is not None:
                yield done, done_cursor

    def read(self, after: Cursor, *, limit: int | None = None) -> Iterator[Batch]:
        self._check_usable()
        if limit is not None and (type(limit) is not int or limit < 1):
            raise LogError(f"{self._location}: limit must be an int of at least 1, not {limit!r}")
        after = self._checked(after)  # at the call, not at the first next()
        return (
            Batch(events=events, cursor=cursor) for events, cursor in self._batches(after, limit)
        )

    def stored_bytes(self) -> int | None:
        """Bytes of the events' lines with a newline each: the size of the same log as a file."""
        return self._head()[2]

    def read_batches(self) -> Iterator[list[AnyEvent]]:
        return self._read(group=False)

    def read_groups(self) -> Iterator[list[AnyEvent]]:
        return self._read(group=True)

    def _read(self, *, group: bool) -> Iterator[list[AnyEvent]]:
        """Hand over what follows the position once, whichever thread asks."""
        self._check_usable()
        lock = self._lock
        while True:
            with lock:
                start = self._position
            moved = False
            for events, cursor in self._batches(start, group=group):
                with lock:
                    if self._position is not start:
                        moved = True
                        break
                    self._position = cursor
                start = cursor
                yield events
            if not moved:
                return

    def wait(self, after: Cursor, timeout: float) -> bool:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
            raise LogError(
                f"{self._location}: timeout must be a number of seconds >= 0, not {timeout!r}"
            )
        after = self._checked(after)  # a cursor of this log, at the call
        deadline = time.monotonic() + max(0.0, timeout)
        listener = self._listening()
        while True:
            if self._head()[0] > after.seq:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if listener is None or not self._listen_lock.acquire(blocking=False):
                time.sleep(min(remaining, 0.05))
                continue
            try:
                for _ in listener.notifies(timeout=min(remaining, 1.0), stop_after=1):
                    break
            except psycopg.Error:
                self._drop_listener()
                listener = None
            finally:
                self._listen_lock.release()

    def _listening(self) -> Connection | None:
        """The connection that LISTENs to the log's channel, or None (then wait polls)."""
        self._check_usable()
        with self._listen_lock:
            listener = self._listener
            if listener is not None and not listener.closed and not listener.broken:
                return listener
            if listener is not None:
                self._drop_listener()
            try:
                listener = self._connect()
                listener.execute(f"LISTEN {_quote(self._channel)}")
            except (LogError, psycopg.Error):
                return None
            self._listener = listener
            return listener

    def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(psycopg.Error):
                listener.close()
