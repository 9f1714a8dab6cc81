"""The interface every event log engine implements (the file log, PostgreSQL, memory).

Everything above the log layer (the storage, snapshots, audit, the command line, the web
page) uses only what is defined here; nothing above it knows which engine it has.
"""

from __future__ import annotations

import abc
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final, Literal

import msgspec

from pipelines_events.errors import LogError
from pipelines_events.events import AnyEvent, LogPosition
from pipelines_events.log.runquery import RunPage as RunPage
from pipelines_events.log.runquery import RunQuery as RunQuery
from pipelines_events.log.runquery import RunSummary as RunSummary
from pipelines_events.log.runquery import summaries_as_of as summaries_as_of

Cursor = LogPosition
"""A point in a log: after the event ``seq`` whose hash is ``hash``.

A cursor is opaque: its ``offset`` is the engine's own locator (the byte offset in the
file log; engines that find events by ``seq`` keep 0). Callers compare cursors by ``seq``,
store and hand them back, and never build one from parts, except :data:`START`.
"""

Durability = Literal["fsync", "none"]
"""When an appended event is on stable storage: by the time :meth:`EventLog.commit`
returns (``fsync``: it survives a power cut), or whenever the system gets to it (``none``)."""

CaughtUp = Callable[[list[AnyEvent]], bool]
"""Called under the append's lock with the events other writers appended since the
cursor (possibly none), before anything is written; returning False writes nothing."""

Written = Callable[[list[AnyEvent]], None]
"""Called with the new events once they are in the log, still under the in-process lock."""


class Batch(msgspec.Struct, frozen=True):
    """One complete batch of a log (its last event has ``more == 0``) and the cursor
    after it."""

    events: list[AnyEvent]
    cursor: Cursor


class SnapshotStore(abc.ABC):
    """Where an engine keeps the storage's snapshot: a file beside the log, a table."""

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the snapshot lives, for messages."""

    @abc.abstractmethod
    def load(self) -> bytes | None:
        """The stored snapshot's bytes, or None when there is none.

        Raises :class:`~pipelines_events.errors.SnapshotError` when one exists but cannot
        be trusted (not the log owner's, too large for the log, unreadable).
        """

    @abc.abstractmethod
    def save(self, data: bytes) -> None:
        """Replace the snapshot with ``data`` atomically (readers see the old or the new)."""


class Erasure(msgspec.Struct, frozen=True):
    """What an erasure did: the events erased, the segments rewritten, their files' bytes
    before and after (``reclaimed`` the difference), and the events of the runs it could
    not erase: in the log file (not sealed yet), of schema version 1, or too short."""

    erased: int = 0
    segments: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    unsealed: int = 0
    version_1: int = 0
    too_short: int = 0

    @property
    def reclaimed(self) -> int:
        """Bytes freed on disk."""
        return self.bytes_before - self.bytes_after


class EventLog(abc.ABC):
    """An append-only sequence of events with contiguous ``seq`` and a hash chain.

    A log object has a *position*: everything before it has been handed to the caller.
    The stateful readers (:meth:`read_new`, :meth:`read_batches`, :meth:`read_groups`)
    and :meth:`append` hand over what lies after it, in log order, once, whichever
    thread asks. :meth:`read` and :meth:`wait` take a cursor and leave the position.
    """

    supports_run_index: bool = False
    """Whether :meth:`run_summaries`, :meth:`run_events` and :meth:`run_of` answer from an
    index kept by the engine, so that readers need not fold the whole history."""

    @property
    def supports_append_unread(self) -> bool:
        """Whether :meth:`append_unread` appends without reading what other writers appended."""
        return False

    # -- identity ------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the log lives (a file path; a URL without its password), for messages."""

    @property
    @abc.abstractmethod
    def readonly(self) -> bool:
        """Whether the log was opened read-only: it is never written, not even repaired."""

    @property
    @abc.abstractmethod
    def durability(self) -> Durability:
        """The durability mode the log was opened with."""

    @property
    @abc.abstractmethod
    def lock(self) -> threading.RLock:
        """The in-process lock around the position, catch-up and append (re-entrant), for
        callers that keep state in step with the position."""

    @property
    @abc.abstractmethod
    def snapshots(self) -> SnapshotStore:
        """The place this engine provides for the storage's snapshot."""

    # -- cursors -------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def position(self) -> Cursor:
        """The cursor after the last event handed to the caller."""

    @abc.abstractmethod
    def head(self) -> Cursor:
        """The cursor after the last complete batch in the log now (reads the engine)."""

    @abc.abstractmethod
    def seek(self, cursor: Cursor) -> None:
        """Continue after ``cursor``; raises :class:`~pipelines_events.errors.LogError`
        unless the event ``cursor.seq`` is in the log with that hash (START always is)."""

    @abc.abstractmethod
    def cursor_at(self, seq: int) -> Cursor:
        """The cursor after the event ``seq`` (START for 0); LogError when the log has no
        such event."""

    # -- reading -------------------------------------------------------------------------

    @abc.abstractmethod
    def has_new(self) -> bool:
        """Whether anything may have been appended after the position (a cheap check)."""

    @abc.abstractmethod
    def read(self, after: Cursor, *, limit: int | None = None) -> Iterator[Batch]:
        """Yield the complete batches after ``after``, in log order, verifying the chain.

        With ``limit``, stop before the batch that would take the events yielded past
        ``limit`` (the first batch is always yielded whole). The position does not move.
        """

    @abc.abstractmethod
    def read_batches(self) -> Iterator[list[AnyEvent]]:
        """Yield the complete batches appended after the position, advancing it."""

    def read_groups(self) -> Iterator[list[AnyEvent]]:
        """As :meth:`read_batches`, several whole batches per list where the engine can:
        fewer, larger lists for callers that fold events and need no batch boundaries."""
        return self.read_batches()

    def read_new(self) -> Iterator[AnyEvent]:
        """Yield the events of the complete batches after the position, advancing it."""
        for batch in self.read_batches():
            yield from batch

    @abc.abstractmethod
    def wait(self, after: Cursor, timeout: float) -> bool:
        """Block until a batch after ``after`` is in the log (True) or ``timeout`` seconds
        pass (False). Engines that can be told (LISTEN/NOTIFY) are; others poll."""

    # -- writing -------------------------------------------------------------------------

    @abc.abstractmethod
    def append(
        self,
        drafts: Sequence[AnyEvent],
        *,
        on_caught_up: CaughtUp | None = None,
        on_written: Written | None = None,
    ) -> list[AnyEvent]:
        """Append ``drafts`` as one atomic batch, after catching up on other writers.

        Under the engine's lock, the events other writers appended after the position are
        read first. With ``on_caught_up`` they are handed to it (and not returned); when
        it returns False nothing is written and the result is empty. Otherwise returns,
        in log order, the caught-up events then the new ones with ``seq``, ``ts``, ``more``
        and ``hash`` set. A failed append writes none of the batch and raises
        :class:`~pipelines_events.errors.LogWriteError` (or, when the engine cannot tell
        whether the batch committed, a :class:`~pipelines_events.errors.LogError` that
        says so).
        """

    def append_unread(
        self, drafts: Sequence[AnyEvent], *, on_written: Written | None = None
    ) -> list[AnyEvent]:
        """Append ``drafts`` as one atomic batch without reading what other writers
        appended (engines with :attr:`supports_append_unread`).

        When the position is at the end of the log, this is :meth:`append`: the position
        moves past the batch and ``on_written`` gets it. Otherwise the position stays
        where it is, before the other writers' events and the batch, which the next read
        hands over in log order; ``on_written`` is not called. Returns the new events.
        Raises :class:`AppendUnreadUnavailable`, having written nothing, when the log can
        no longer append this way (another writer rolled it into a segment): append with
        :meth:`append` then.
        """
        raise NotImplementedError(f"{type(self).__name__} always catches up before appending")

    @abc.abstractmethod
    def commit(self) -> None:
        """Make every appended event durable as :attr:`durability` promises."""

    @abc.abstractmethod
    def close(self) -> None:
        """Commit and release the log's resources; the object cannot be used afterwards."""

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- checks beyond the chain ---------------------------------------------------------

    def stored_bytes(self) -> int | None:
        """How many bytes the engine holds for the log now, when it can tell (for progress
        reports); None otherwise."""
        return None

    def unfinished_bytes(self, cursor: Cursor) -> int:
        """How many bytes the engine holds after ``cursor`` (the end of the last complete
        batch): an unfinished batch in the file log; 0 for engines that only ever store
        whole batches."""
        return 0

    def damage_after(self, cursor: Cursor) -> str | None:
        """Why what the engine holds after ``cursor`` (the end of the last complete batch)
        is damage rather than an unfinished batch, or None. The file log checks the bytes
        at its end; engines that only ever store whole batches have nothing to check."""
        return None

    # -- erasure (engines with ``supports_erasure``) ---------------------------------------

    supports_erasure: bool = False
    """Whether :meth:`erase_sealed` erases content (the file log's sealed segments)."""

    def erase_sealed(self, removed: dict[str, int], unsealed: int = 0) -> Erasure:
        """Erase the content of the events of the runs in ``removed`` (run id: the seq of
        its removal) older than their removal, where the engine can; see
        :func:`pipelines_events.log.segments.erase`."""
        raise LogError(
            f"{self.location}: this engine cannot erase events: erasure rewrites the file "
            "log's sealed segments (see the segment_bytes and segment_events options)"
        )

    # -- the run index (engines with ``supports_run_index``) -----------------------------

    def run_summaries(self) -> list[RunSummary]:
        """Every run the log holds, oldest first, from the engine's run index."""
        raise NotImplementedError(f"{type(self).__name__} keeps no run index")

    def run_index_stored(self) -> bool:
        """Whether the run index is kept apart from the events (a table, a file), so that
        it could differ from them: what ``verify`` compares with the events. False without
        a run index, or when a read-only handle indexes the log in memory as it reads it."""
        return self.supports_run_index

    def run_index_placement(self) -> dict[str, tuple[int, int]] | None:
        """Where the run index finds each run's events, as ``{run id: (how many events,
        the sum of their seqs)}``, for ``verify`` to compare with the events; None when
        the engine keeps no places of its own (it finds a run's events by a query)."""
        return None

    def run_index_objects(self) -> dict[str, tuple[int, int]] | None:
        """Which run the run index maps each object to, as ``{run id: (how many objects,
        the sum of the CRC-32 of their ids)}``, for ``verify`` to compare with the events;
        None when the engine keeps no map of its own (it finds objects by a query)."""
        return None

    def run_page(self, query: RunQuery) -> RunPage:
        """The runs ``query`` lists, newest first, from the engine's run index (engines
        with an index in a database answer it there; the meaning is
        :meth:`RunQuery.matches`)."""
        summaries = summaries_as_of(self.run_summaries(), query.through_seq, self.run_events)
        return query.select(summaries)

    def run_events(self, run_id: str) -> list[AnyEvent]:
        """Every event of the run ``run_id``, in log order, from the engine's run index."""
        raise NotImplementedError(f"{type(self).__name__} keeps no run index")

    def run_of(self, object_id: str) -> str | None:
        """The run id of the object ``object_id``, or None when the log has no such object."""
        raise NotImplementedError(f"{type(self).__name__} keeps no run index")


def object_crc(object_id: object) -> int:
    """The CRC-32 of an object id (as UTF-8): what :meth:`EventLog.run_index_objects` sums
    per run."""
    text = object_id if isinstance(object_id, str) else str(object_id)
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


DEFAULT_WAIT_POLL: Final = 0.05
"""Seconds between looks when an engine polls in :meth:`EventLog.wait`."""

DURABILITY_MODES: Final = ("fsync", "none")
"""The values of :data:`Durability`."""

DEFAULT_MAX_EVENT_BYTES: Final = 1 << 20
"""The largest encoded event (its line, hash included) an engine accepts by default."""


def checked_cursor(location: str, cursor: object) -> Cursor:
    """``cursor`` when it has a cursor's shape (a :class:`LogPosition` whose ``offset`` and
    ``seq`` are ints >= 0 and whose ``hash`` is a str), else :class:`LogError` naming
    ``location``. Engines call it first in :meth:`EventLog.seek`, :meth:`EventLog.read`
    and :meth:`EventLog.wait`; whether the event is in the log is theirs to check."""
    if (
        not isinstance(cursor, LogPosition)
        or type(cursor.offset) is not int
        or type(cursor.seq) is not int
        or type(cursor.hash) is not str
        or cursor.offset < 0
        or cursor.seq < 0
    ):
        raise LogError(f"{location}: not a cursor of this log: {cursor!r}")
    return cursor


def group_batches(events: Iterable[AnyEvent]) -> Iterator[list[AnyEvent]]:
    """Group events given in log order into their batches (each ends with ``more == 0``);
    the events of an unfinished last batch are not yielded."""
    batch: list[AnyEvent] = []
    for event in events:
        batch.append(event)
        if event.more == 0:
            yield batch
            batch = []
