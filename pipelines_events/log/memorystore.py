"""The in-memory engine's store: the events, run index and snapshot that its handles share,
and the registry of named stores (``memory://NAME``).
"""

from __future__ import annotations

import bisect
import threading
from typing import Final

from pipelines_events.errors import LogOpenError
from pipelines_events.events import (
    START,
    AnyEvent,
    LogPosition,
    ObjectCreated,
)
from pipelines_events.log.base import (
    Cursor,
    SnapshotStore,
)
from pipelines_events.log.chain import decode_event
from projections.runs import RunsProjection

_NAMED: Final[dict[str, MemoryStore]] = {}
_NAMED_LOCK: Final = threading.Lock()


class MemoryStore:
    """The events, run index and snapshot of one in-memory log, shared by its handles."""

    def __init__(self, name: str) -> None:
        self.name = name
        # Re-entrant: an append's on_caught_up may read the run index of the same store.
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.events: list[AnyEvent] = []
        self.lines: list[bytes] = []
        self.ends: list[int] = []  # the seq of every batch's last event, ascending
        self.runs = RunsProjection()
        self.run_seqs: dict[str, list[int]] = {}
        self.object_runs: dict[str, str] = {}
        self.snapshot: bytes | None = None

    @property
    def last(self) -> Cursor:
        """The cursor after the last event (every batch is whole: appends are atomic)."""
        if not self.events:
            return START
        event = self.events[-1]
        return LogPosition(0, event.seq, event.hash)

    def batch_after(self, seq: int) -> list[AnyEvent]:
        """The events from ``seq + 1`` to the end of their batch (empty at the end)."""
        index = bisect.bisect_left(self.ends, seq + 1)
        if index == len(self.ends):
            return []
        return self.events[seq : self.ends[index]]

    def add(self, lines: list[bytes]) -> None:
        # What the other engines give back: the decoded lines, never the caller's values.
        events = [decode_event(line) for line in lines]
        self.events.extend(events)
        self.lines.extend(lines)
        self.ends.append(events[-1].seq)
        for event in events:
            self.runs.apply(event)
            self.run_seqs.setdefault(event.run_id, []).append(event.seq)
            if isinstance(event, ObjectCreated):
                self.object_runs.setdefault(event.id, event.run_id)
        self.changed.notify_all()


def memory_store(name: str, *, create: bool = True) -> MemoryStore:
    """The process's store called ``name`` (``memory://NAME``); created when missing
    unless ``create`` is False (then :class:`LogOpenError`)."""
    with _NAMED_LOCK:
        store = _NAMED.get(name)
        if store is None:
            if not create:
                raise LogOpenError(f"memory://{name}: no such in-memory log in this process")
            store = _NAMED[name] = MemoryStore(name)
        return store


def drop_memory_store(name: str) -> None:
    """Forget the store called ``name`` (handles still open keep it)."""
    with _NAMED_LOCK:
        _NAMED.pop(name, None)


class MemorySnapshotStore(SnapshotStore):
    """The snapshot bytes of an in-memory log, kept in its store."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    @property
    def location(self) -> str:
        return f"memory://{self._store.name} (snapshot)"

    def load(self) -> bytes | None:
        with self._store.lock:
            return self._store.snapshot

    def save(self, data: bytes) -> None:
        with self._store.lock:
            self._store.snapshot = bytes(data)
