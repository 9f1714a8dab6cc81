"""The in-memory reference engine: the whole interface, run index included, in one process.

Several :class:`MemoryEventLog` handles over one :class:`MemoryStore` behave like several
writers of one log (each catches up on the others before it appends). A store lives as
long as a handle or the name registry (``memory://NAME``) holds it; nothing is on disk.
It is the engine the log conformance suite is checked against first, and a fast log for
tests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from pipelines_events.errors import LogError, LogOpenError
from pipelines_events.events import (
    START,
    AnyEvent,
    LogPosition,
)
from pipelines_events.log.base import (
    DEFAULT_MAX_EVENT_BYTES,
    DURABILITY_MODES,
    Batch,
    CaughtUp,
    Cursor,
    Durability,
    EventLog,
    RunSummary,
    SnapshotStore,
    Written,
    checked_cursor,
)
from pipelines_events.log.chain import seal_batch
from pipelines_events.log.memorystore import (
    MemorySnapshotStore,
    MemoryStore,
    drop_memory_store,
    memory_store,
)
from pipelines_events.log.runquery import summary_of


class MemoryEventLog(EventLog):
    """A handle on an in-memory log: the store called ``name`` in this process, the given
    ``store``, or (neither) a new private store. ``durability`` is accepted and kept
    (memory is never durable); ``readonly`` refuses every write."""

    supports_run_index = True

    def __init__(
        self,
        name: str | None = None,
        *,
        store: MemoryStore | None = None,
        durability: Durability = "fsync",
        readonly: bool = False,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise LogOpenError(
                f"durability must be one of {', '.join(map(repr, DURABILITY_MODES))}, "
                f"not {durability!r}"
            )
        if type(max_event_bytes) is not int or max_event_bytes < 256:
            raise LogOpenError(
                f"max_event_bytes must be an int of at least 256, not {max_event_bytes!r}"
            )
        if not isinstance(readonly, bool):
            raise LogOpenError(f"readonly must be True or False, not {readonly!r}")
        if store is None:
            if name is None:
                store = MemoryStore(f"anonymous-{id(self):x}")
            elif not isinstance(name, str) or not name:
                raise LogOpenError(f"an in-memory log's name must be a non-empty str, not {name!r}")
            else:
                store = memory_store(name, create=not readonly)
        self._store = store
        self._durability: Durability = durability
        self._readonly = readonly
        self._max_event_bytes = max_event_bytes
        self._position: Cursor = START
        self._lock = threading.RLock()
        self._closed = False
        self._snapshots = MemorySnapshotStore(store)

    def reopen(self, **options: Any) -> MemoryEventLog:
        """Another handle on the same store (another writer), opened with ``options``."""
        return MemoryEventLog(store=self._store, **options)

    @property
    def store(self) -> MemoryStore:
        """The store this handle reads and writes."""
        return self._store

    # -- identity ------------------------------------------------------------------------

    @property
    def location(self) -> str:
        return f"memory://{self._store.name}"

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def durability(self) -> Durability:
        return self._durability

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @property
    def snapshots(self) -> SnapshotStore:
        return self._snapshots

    # -- cursors -------------------------------------------------------------------------

    @property
    def position(self) -> Cursor:
        return self._position

    def head(self) -> Cursor:
        self._check_usable()
        with self._store.lock:
            return self._store.last

    def _checked(self, cursor: Cursor) -> Cursor:
        """``cursor`` as this log knows it (LogError unless its event is in the log)."""
        checked_cursor(self.location, cursor)
        if cursor.seq == 0 and cursor == START:
            return START
        with self._store.lock:
            count = len(self._store.events)
            event = self._store.events[cursor.seq - 1] if 0 < cursor.seq <= count else None
        if event is None:
            raise LogError(
                f"{self.location}: no event seq {cursor.seq} (the log has {count} events)"
            )
        if event.hash != cursor.hash:
            raise LogError(
                f"{self.location}: the event seq {cursor.seq} has hash {event.hash[:12]}..., "
                f"not {cursor.hash[:12]}..."
            )
        return LogPosition(0, event.seq, event.hash)

    def seek(self, cursor: Cursor) -> None:
        with self._lock:
            self._check_usable()
            self._position = self._checked(cursor)

    def cursor_at(self, seq: int) -> Cursor:
        self._check_usable()
        if type(seq) is not int or seq < 0:
            raise LogError(
                f"{self.location}: seq must be a whole number of at least 0, not {seq!r}"
            )
        if seq == 0:
            return START
        with self._store.lock:
            events = self._store.events
            if seq > len(events):
                raise LogError(
                    f"{self.location}: the log has no event seq {seq} (its last is seq "
                    f"{len(events)})"
                )
            return LogPosition(0, seq, events[seq - 1].hash)

    # -- reading -------------------------------------------------------------------------

    def has_new(self) -> bool:
        self._check_usable()
        return len(self._store.events) != self._position.seq

    def read(self, after: Cursor, *, limit: int | None = None) -> Iterator[Batch]:
        self._check_usable()
        if limit is not None and (type(limit) is not int or limit < 1):
            raise LogError(
                f"{self.location}: limit must be a whole number of at least 1, not {limit!r}"
            )
        start = self._checked(after)
        return self._read_after(start, limit)

    def _read_after(self, start: Cursor, limit: int | None) -> Iterator[Batch]:
        store = self._store
        with store.lock:
            end = len(store.events)
        seq = start.seq
        count = 0
        while seq < end:
            with store.lock:
                events = store.batch_after(seq)
            if limit is not None and count and count + len(events) > limit:
                return
            count += len(events)
            seq = events[-1].seq
            yield Batch(events, LogPosition(0, seq, events[-1].hash))
            if limit is not None and count >= limit:
                return

    def read_batches(self) -> Iterator[list[AnyEvent]]:
        self._check_usable()
        return self._read_stateful()

    def _read_stateful(self) -> Iterator[list[AnyEvent]]:
        store = self._store
        while True:
            with self._lock:
                with store.lock:
                    events = store.batch_after(self._position.seq)
                if not events:
                    return
                last = events[-1]
                self._position = LogPosition(0, last.seq, last.hash)
            yield events

    def wait(self, after: Cursor, timeout: float) -> bool:
        self._check_usable()
        if type(timeout) not in (int, float) or not timeout >= 0:
            raise LogError(
                f"{self.location}: timeout must be a number of seconds >= 0, not {timeout!r}"
            )
        start = self._checked(after)
        store = self._store
        with store.lock:
            return store.changed.wait_for(lambda: len(store.events) > start.seq, timeout)

    # -- writing -------------------------------------------------------------------------

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
                raise LogError(f"{self.location}: the log was opened read-only")
            if not drafts:
                return list(self.read_new())
            store = self._store
            start = self._position
            handed_over = False
            with store.lock:
                try:
                    caught = store.events[start.seq :]
                    position = store.last
                    self._position = position
                    if on_caught_up is not None:
                        handed_over = True
                        if not on_caught_up(caught):
                            return []
                        caught = []
                    written, lines = seal_batch(
                        self.location,
                        drafts,
                        seq=position.seq,
                        prev_hash=position.hash,
                        max_event_bytes=self._max_event_bytes,
                    )
                    seq, prev = written[-1].seq, written[-1].hash
                    store.add(lines)
                    self._position = LogPosition(0, seq, prev)
                except BaseException:
                    if not handed_over:
                        self._position = start
                    raise
            if on_written is not None:
                on_written(written)
            if caught:
                return [*caught, *written]
            return written

    def commit(self) -> None:
        self._check_usable()

    def stored_bytes(self) -> int:
        """The length of the stored lines."""
        self._check_usable()
        with self._store.lock:
            return sum(map(len, self._store.lines))

    def close(self) -> None:
        self._closed = True

    def _check_usable(self) -> None:
        if self._closed:
            raise LogError(f"{self.location}: the log is closed")

    # -- the run index -------------------------------------------------------------------

    def run_summaries(self) -> list[RunSummary]:
        self._check_usable()
        with self._store.lock:
            return [summary_of(state) for state in self._store.runs.runs()]

    def run_events(self, run_id: str) -> list[AnyEvent]:
        self._check_usable()
        with self._store.lock:
            events = self._store.events
            return [events[seq - 1] for seq in self._store.run_seqs.get(run_id, ())]

    def run_of(self, object_id: str) -> str | None:
        self._check_usable()
        with self._store.lock:
            return self._store.object_runs.get(object_id)


__all__ = [
    "MemoryEventLog",
    "MemorySnapshotStore",
    "MemoryStore",
    "drop_memory_store",
    "memory_store",
]
