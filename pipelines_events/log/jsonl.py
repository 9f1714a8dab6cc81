"""The embedded default log: one JSON event per line in a local file.

Writers take an exclusive ``flock``, catch up on what other processes appended, then
write a whole batch with one ``os.write`` on an ``O_APPEND`` descriptor
(:meth:`JsonlEventLog.append_unread` reads only the file's last line instead, and
leaves the rest to the next read). Readers take
no lock and only ever hand over complete batches. A log object may be shared by threads:
an in-process lock covers its position, catch-up and append (``flock`` does not exclude
threads that share a descriptor). See ``docs/explanation/guarantees.rst``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from pipelines_events.errors import (
    LogError,
)
from pipelines_events.events import (
    GENESIS_HASH,
    START,
    AnyEvent,
    LogPosition,
)
from pipelines_events.log import segments as _segments
from pipelines_events.log.base import (
    DEFAULT_MAX_EVENT_BYTES,
    DURABILITY_MODES,
    Durability,
    RunSummary,
)
from pipelines_events.log.fileindex import FileRunIndex, index_path
from pipelines_events.log.jsonlbase import (
    _OPEN_LOGS,
    LogPermissionsWarning,
    TornWriteRepaired,
)
from pipelines_events.log.jsonlfile import (
    _CHUNK as _CHUNK,
)
from pipelines_events.log.jsonlfile import (
    _size,
)
from pipelines_events.log.jsonlopen import _Opening
from pipelines_events.log.jsonlreads import _Reads
from pipelines_events.log.jsonlscan import (
    scan,
)
from pipelines_events.log.jsonlwrites import _Writes
from pipelines_events.log.runquery import RunPage, RunQuery
from pipelines_events.log.segments import Sealed

# ``fsync``: :meth:`JsonlEventLog.commit` returns once the events are on disk (default).
# ``none``: no fsync; events survive a crash of the process, not of the machine.


class JsonlEventLog(_Opening, _Reads, _Writes):
    """An event log in a JSON-lines file, rolled into sealed segments when asked.

    ``durability`` is ``"fsync"`` (default) or ``"none"``; ``mode`` is the permission of
    a new file (owner read and write by default); ``max_event_bytes`` caps one encoded
    event; ``readonly`` opens an existing file without ever writing to it; ``run_index``
    keeps the run index beside it (``<log>.index``, see :mod:`pipelines_events.log.fileindex`).
    """

    def __enter__(self) -> JsonlEventLog:
        return self

    # -- the run index (pipelines_events.log.fileindex) --------------------------------

    def run_summaries(self) -> list[RunSummary]:
        return self._index().run_summaries()

    def run_index_stored(self) -> bool:
        return self.supports_run_index and self._index().stored()

    def run_index_placement(self) -> dict[str, tuple[int, int]] | None:
        return self._index().placement() if self.supports_run_index else None

    def run_index_objects(self) -> dict[str, tuple[int, int]] | None:
        return self._index().object_placement() if self.supports_run_index else None

    def run_page(self, query: RunQuery) -> RunPage:
        return self._index().run_page(query)

    def run_events(self, run_id: str) -> list[AnyEvent]:
        return self._index().run_events(run_id)

    def run_of(self, object_id: str) -> str | None:
        return self._index().run_of(object_id)

    @property
    def run_index(self) -> FileRunIndex | None:
        """The run index file's handle, once a query opened it (None before, or without
        ``run_index``)."""
        return self._run_index

    def _index(self) -> FileRunIndex:
        self._check_usable()
        if not self.supports_run_index:
            raise NotImplementedError(
                f"{self._path}: opened with run_index=False, it keeps no run index"
            )
        with self._lock:
            if self._run_index is None:
                self._run_index = FileRunIndex(
                    self._path,
                    scan=lambda after: self._scan(after, group=True),
                    pread=self._pread_logical,
                    size=lambda: _size(self._src()),
                    checked=self._checked,
                    owner=os.fstat(self._fd).st_uid,
                    mode=self._mode,
                    writable=not self._readonly,
                )
            return self._run_index

    @property
    def sealed(self) -> Sealed | None:
        """The log's sealed segments as this handle sees them, or None."""
        return self._sealed

    def _attach_segments(self, *, finish: bool = False) -> None:
        """Load the manifest for the file just opened; with ``finish`` (a writer holding the
        file's lock) finish a roll that stopped after its commit: the new file is locked."""
        previous = self._sealed
        sealed = Sealed.load(self._path)
        if previous is not None and (sealed is None or sealed.identity != previous.identity):
            previous.close()
        elif previous is not None:
            sealed = previous
        self._sealed = sealed
        self._skip = 0
        if sealed is None:
            return
        head = os.pread(self._fd, 1 << 16, 0).split(b"\n", 1)[0]
        skip = _segments.sealed_prefix(sealed, head)
        if skip and finish and not self._readonly and os.fstat(self._fd).st_nlink:
            size = os.fstat(self._fd).st_size
            _segments.replace_log_file(
                self._path, os.pread(self._fd, size - skip, skip), self._mode
            )
            old, self._fd = self._fd, self._open_file()
            os.close(old)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            head = os.pread(self._fd, 1 << 16, 0).split(b"\n", 1)[0]
            skip = 0
        self._skip = skip
        if skip:
            head = os.pread(self._fd, 1 << 16, skip).split(b"\n", 1)[0]
        _segments.check_not_behind(self._path, sealed, head, skip)

    def _open_file(self) -> int:
        flags = os.O_RDONLY | os.O_NONBLOCK if self._readonly else os.O_RDWR | os.O_APPEND
        try:
            return os.open(self._path, flags | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            raise LogError(f"{self._path}: cannot open the log again after a roll: {exc}") from None

    def _follow_roll(self) -> bool:
        """Go on in the new log file when a writer rolled this one (reads the end of the
        old one first); whether it did."""
        if self._fd < 0 or os.fstat(self._fd).st_nlink != 0 or not self._path.exists():
            return False
        if _size(self._src()) != self._position.offset:
            return False  # read what the old file holds first
        old = self._fd
        self._fd = self._open_file()
        os.close(old)
        self._attach_segments()
        return True

    def _switch_locked(self, fd: int) -> int:
        """Lock the current log file: when ``fd`` (locked) was rolled away, the new one,
        as often as writers rolled meanwhile; then attach its segments, finishing a roll a
        crash interrupted. Returns the locked descriptor (also ``self._fd``)."""
        # The file must still be the log's when its lock is held: a writer blocked on the
        # lock of a file another writer rolled would otherwise take the whole file for a
        # roll that stopped after its commit, and replace the new log file and the events
        # written to it since.
        while os.fstat(fd).st_nlink == 0 and self._path.exists():
            self._fd = self._open_file()
            os.close(fd)  # releases its lock
            fd = self._fd
            fcntl.flock(fd, fcntl.LOCK_EX)
        self._attach_segments(finish=True)
        return self._fd

    supports_erasure = True

    def erase_sealed(self, removed: dict[str, int], unsealed: int = 0) -> _segments.Erasure:
        """Erase the content of the removed runs' events in the sealed segments (see
        :func:`pipelines_events.log.segments.erase`), under the log's lock."""
        with self._lock:
            self._check_writable()
            fd = self._fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.fstat(fd).st_nlink == 0:
                    fd = self._switch_locked(fd)
                sealed = Sealed.load(self._path)
                if removed:
                    self._drop_run_index()  # before: a crash midway leaves none stale
                try:
                    done = _segments.erase(self._path, sealed, removed, unsealed, self._mode)
                finally:
                    if sealed is not None:
                        sealed.close()
                self._attach_segments()
                if done.erased:
                    self._drop_run_index()  # and after: one a reader built meanwhile
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        return done

    def _drop_run_index(self) -> None:
        """Remove the run index after an erasure: it holds what the erased events said
        (the next read rebuilds it from the log). Handles open elsewhere keep theirs until
        they are opened again."""
        if self._run_index is not None:
            self._run_index.close()
            self._run_index = None
        for leftover in (index_path(self._path), Path(f"{index_path(self._path)}-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()

    def _roll_if_due(self) -> int:
        """Roll when the log file holds enough (called holding the lock, after a write);
        the old descriptor to close once unlocked, or -1."""
        policy = self._policy
        assert policy is not None
        sealed = self._sealed
        position = self._position
        size = position.offset - self._base()
        count = position.seq - (0 if sealed is None else sealed.last_seq)
        if not (
            (policy.segment_bytes is not None and size >= policy.segment_bytes)
            or (policy.segment_events is not None and count >= policy.segment_events)
        ):
            return -1
        data = os.pread(self._fd, size, 0)
        prev = GENESIS_HASH if sealed is None else sealed.last_hash
        _segments.seal_segment(self._path, sealed, data, prev, policy, self._mode)
        _segments.replace_log_file(self._path, b"", self._mode)
        old = self._fd
        self._fd = self._open_file()
        self._attach_segments()
        self._synced = self._appended  # the sealed segment is on disk
        return old


def read_events(
    path: str | os.PathLike[str], *, position: LogPosition = START
) -> Iterator[AnyEvent]:
    """Yield every complete event of the log file at ``path`` after ``position``, verified."""
    with JsonlEventLog(path, readonly=True) as log:
        if position != START:
            log.seek(position)
        yield from log.read_new()


def _after_fork_in_child() -> None:
    for log in list(_OPEN_LOGS):
        log._pid = -1
        # A thread of the parent may have held the lock: it does not exist here.
        log._lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "DURABILITY_MODES",
    "GENESIS_HASH",
    "Durability",
    "JsonlEventLog",
    "LogPermissionsWarning",
    "TornWriteRepaired",
    "read_events",
    "scan",
]
