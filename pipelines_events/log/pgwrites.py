"""Writing the PostgreSQL log: an append in one transaction (lock the head, catch up,
chain, insert, commit), what a failed commit did, commit and close.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from typing import Any

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the PostgreSQL log needs psycopg 3: pip install 'pipelines-events[postgres]'"
    ) from exc

from pipelines_events.errors import (
    LogCorruptError,
    LogError,
    LogOpenError,
    LogWriteError,
)
from pipelines_events.events import (
    AnyEvent,
)
from pipelines_events.log.base import (
    CaughtUp,
    Cursor,
    Written,
)
from pipelines_events.log.chain import (
    check_drafts,
    seal_batch,
)
from pipelines_events.log.pgbase import (
    _OPEN_LOGS,
    _HandedOver,
    _PostgresBase,
)
from pipelines_events.log.pgsql import (
    _PAGE,
    IDLE_IN_TRANSACTION_TIMEOUT,
    Connection,
    _describe,
    _state,
)
from pipelines_events.log.pgverify import (
    _verify,
)
from projections.runs import RunsProjection


class _Writes(_PostgresBase):
    """How a PostgreSQL log handle appends."""

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        drafts: Sequence[AnyEvent],
        *,
        on_caught_up: CaughtUp | None = None,
        on_written: Written | None = None,
    ) -> list[AnyEvent]:
        with self._lock:
            self._check_usable()
            if self._readonly:
                raise LogError(f"{self._location}: the log was opened read-only")
            if not drafts:
                return list(self.read_new())
            check_drafts(self._location, drafts)  # before the run ids are read from them
            start = self._position
            handed_over: list[bool] = []
            try:
                with self._db_lock:
                    result = self._append(drafts, on_caught_up, handed_over)
            except _HandedOver as over:
                raise over.error from None
            except BaseException:
                if not handed_over:
                    # What was caught up never reached the caller: it is read again.
                    self._position = start
                raise
            if result is None:
                return []
            caught, written = result
            if on_written is not None:
                on_written(written)
            if caught:
                caught.extend(written)
                return caught
            return written

    # Long on purpose: one transaction (lock the head, catch up, hand over, seal, insert
    # the events and run rows, commit) retried once on a lost connection; its steps share
    # the cursor and what was caught up, and a failure must know how far it got.
    def _append(
        self, drafts: Sequence[AnyEvent], on_caught_up: CaughtUp | None, handed_over: list[bool]
    ) -> tuple[list[AnyEvent], list[AnyEvent]] | None:
        """The append's transaction; None when ``on_caught_up`` refused. Holding the locks;
        ``handed_over`` gets an item once the caught-up events reached ``on_caught_up``."""
        sql = self._sql
        caught: list[AnyEvent] = []
        run_ids = sorted({draft.run_id for draft in drafts})
        for attempt in (1, 2):
            try:
                conn = self._connection()
            except LogOpenError as exc:
                raise LogWriteError(f"{exc}; nothing of the batch was written") from None
            cur = conn.cursor(binary=True)
            runs_cur = conn.cursor()
            new_cur = conn.cursor(binary=True)
            after = self._position.seq
            try:
                # One round trip: lock the head, then (statements later, so seeing what
                # the previous holder of the lock committed) the summaries of the runs and
                # what other writers appended.
                with conn.pipeline():
                    cur.execute("BEGIN")
                    cur.execute(sql.lock_head)
                    runs_cur.execute(sql.runs_of, (run_ids,))
                    new_cur.execute(sql.read, (after, _PAGE))
                row = cur.fetchone()
                new_rows = new_cur.fetchall()
                break
            except psycopg.OperationalError as exc:
                # The idle connection was lost (a restart, an idle timeout): nothing was
                # done yet, so connect again once.
                self._drop(conn)
                if attempt == 2:
                    raise LogWriteError(
                        f"{self._location}: the append failed ({_describe(exc, self._password)})"
                        "; nothing of the batch was written"
                    ) from None
            except psycopg.Error as exc:
                self._rollback(conn)
                raise LogWriteError(
                    f"{self._location}: the append failed ({_describe(exc, self._password)}); "
                    "nothing of the batch was written"
                ) from None
        try:
            if row is None:
                raise LogCorruptError(self._location, 0, "the head table is empty")
            head_seq, head_hash, _ = row
            position = self._position
            if head_seq != position.seq or head_hash != position.hash:
                caught = self._catch_up(cur, position, head_seq, new_rows)
                self._position = position = Cursor(0, head_seq, head_hash)
            if on_caught_up is not None:
                handed_over.append(True)
                try:
                    keep = on_caught_up(caught)
                except BaseException as exc:
                    raise _HandedOver(exc) from exc
                if not keep:
                    self._rollback(conn)
                    return None
                caught = []
            events, params, size = self._seal(drafts, position)
            runs = RunsProjection()
            runs.restore(_state(state_row) for state_row in runs_cur.fetchall())
            changed = [runs.get(run_id) for run_id in sorted(runs.apply_all(events))]
            summaries = [state for state in changed if state is not None]
            last = events[-1]
            values = (
                *params,
                last.seq,
                last.hash,
                size,
                [s.run_id for s in summaries],
                [s.execution_id for s in summaries],
                [s.pipeline_id for s in summaries],
                [s.status for s in summaries],
                [s.started for s in summaries],
                [s.completed for s in summaries],
                [json.dumps(s.counts, sort_keys=True) for s in summaries],
                [s.first_seq for s in summaries],
                [s.last_seq for s in summaries],
                [s.removed for s in summaries],
                self._channel,
                str(last.seq),
            )
        except (LogError, _HandedOver):
            self._rollback(conn)
            raise
        except psycopg.Error as exc:
            self._rollback(conn)
            raise LogWriteError(
                f"{self._location}: the append failed ({_describe(exc, self._password)}); "
                "nothing of the batch was written"
            ) from None
        except BaseException:
            self._rollback(conn)
            raise
        try:
            # One round trip: the rows, the head, the summaries, the notification; COMMIT.
            with conn.pipeline():
                cur.execute(sql.write, values, binary=False)
                cur.execute("COMMIT")
        except psycopg.Error as exc:
            if not (conn.closed or conn.broken):
                # The server refused a statement: the transaction is aborted.
                self._rollback(conn)
                raise LogWriteError(
                    f"{self._location}: the append failed ({_describe(exc, self._password)}); "
                    "nothing of the batch was written"
                ) from None
            self._drop(conn)
            if not self._committed(events[0], events[-1], exc):
                raise LogWriteError(
                    f"{self._location}: the connection failed while the batch was committing "
                    f"({_describe(exc, self._password)}); the log was checked: nothing of the "
                    "batch was written"
                ) from None
        self._position = Cursor(0, events[-1].seq, events[-1].hash)
        return caught, events

    def _seal(
        self, drafts: Sequence[AnyEvent], position: Cursor
    ) -> tuple[list[AnyEvent], tuple[list[Any], ...], int]:
        """The batch's events chained after ``position``, their rows' columns, their bytes."""
        events, sealed = seal_batch(
            self._location,
            drafts,
            seq=position.seq,
            prev_hash=position.hash,
            max_event_bytes=self._max_event_bytes,
        )
        seqs = [event.seq for event in events]
        run_ids = [event.run_id for event in events]
        kinds = [event.kind for event in events]
        ids = [event.id for event in events]
        mores = [event.more for event in events]
        hashes = [event.hash for event in events]
        lines = [line[:-1] for line in sealed]
        size = sum(len(line) for line in sealed)
        return events, (seqs, run_ids, kinds, ids, mores, hashes, lines), size

    def _catch_up(
        self,
        cur: psycopg.Cursor[tuple[Any, ...]],
        after: Cursor,
        head: int,
        first: list[tuple[Any, ...]] | None = None,
    ) -> list[AnyEvent]:
        """The events after ``after`` up to ``head``, verified; inside the transaction.
        ``first`` holds the rows of the first page when they were read already."""
        if head < after.seq:
            raise LogError(
                f"{self._location}: the log's head is seq {head}, before this handle's "
                f"position (seq {after.seq}): the tables were replaced or restored while the "
                "log was open; open it again"
            )
        caught: list[AnyEvent] = []
        seq, prev = after.seq, after.hash
        while seq < head:
            if first is not None:
                rows, first = first, None
            else:
                cur.execute(self._sql.read, (seq, min(_PAGE, head - seq)))
                rows = cur.fetchall()
            if not rows:
                break
            try:
                events = _verify(rows, seq, prev, self._location)
            except LogCorruptError as exc:
                if exc.line == after.seq + 1:
                    raise LogError(
                        f"{self._location}: this handle's position (seq {after.seq}) is no "
                        "longer in the log: the tables were replaced while it was open; "
                        "open it again"
                    ) from None
                raise
            caught.extend(events)
            seq, prev = events[-1].seq, events[-1].hash
        if seq != head:
            raise LogCorruptError(
                self._location, seq + 1, f"the head is seq {head} but the events end at seq {seq}"
            )
        return caught

    def _rollback(self, conn: Connection) -> None:
        try:
            if conn.closed or conn.broken:
                self._drop(conn)
            else:
                conn.execute("ROLLBACK")
        except psycopg.Error:
            self._drop(conn)

    def _committed(self, first: AnyEvent, last: AnyEvent, error: BaseException) -> bool:
        """Whether the batch ``first``..``last`` is in the log, after its COMMIT failed.

        Waits for the head lock (held by the batch's transaction until it ends: at most
        :data:`IDLE_IN_TRANSACTION_TIMEOUT` once its client is gone), then looks for the
        batch's events; raises LogError when the server cannot be asked.
        """
        deadline = time.monotonic() + max(self._connect_timeout, 1.0)
        problem = _describe(error, self._password)
        while True:
            try:
                conn = self._connect()
            except LogOpenError as exc:
                problem = str(exc)
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
                continue
            try:
                with conn.transaction():
                    wait_ms = (IDLE_IN_TRANSACTION_TIMEOUT + 5) * 1000
                    conn.execute(f"SET LOCAL lock_timeout = {wait_ms}")
                    conn.execute(self._sql.head + " FOR UPDATE")
                    row = conn.execute(self._sql.hash_at, (first.seq,)).fetchone()
                    end = conn.execute(self._sql.hash_at, (last.seq,)).fetchone()
                self._conn = conn
                return row is not None and row[0] == first.hash and end is not None
            except psycopg.Error as exc:
                problem = _describe(exc, self._password)
                with contextlib.suppress(psycopg.Error):
                    conn.close()
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
        raise LogError(
            f"{self._location}: the connection failed while the batch of seq {first.seq} to "
            f"{last.seq} was committing, and the server could not be asked whether it was "
            f"written ({problem}); it is in the log if seq {first.seq} has hash "
            f"{first.hash}"
        )

    def commit(self) -> None:
        """Every append commits its transaction; with ``fsync`` it is durable already."""
        self._check_usable()

    def close(self) -> None:
        with self._lock, self._db_lock:
            if self._closed:
                return
            self._closed = True
            if self._conn is not None:
                self._drop(self._conn)
            with self._listen_lock:
                self._drop_listener()
            _OPEN_LOGS.discard(self)

    def _check_usable(self) -> None:
        if self._closed:
            raise LogError(f"{self._location}: the log is closed")
