"""The file log's state: what a handle holds (its file, position, lock, policy) and the
plain accessors over it; the parts of :class:`~pipelines_events.log.jsonl.JsonlEventLog`
build on it.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines_events.errors import (
    LogError,
    LogOpenError,
)
from pipelines_events.events import (
    START,
    AnyEvent,
    LogPosition,
)
from pipelines_events.log import segments as _segments
from pipelines_events.log.base import (
    DEFAULT_MAX_EVENT_BYTES,
    DURABILITY_MODES,
    Durability,
    EventLog,
)
from pipelines_events.log.fileindex import FileRunIndex
from pipelines_events.log.filesnapshots import FileSnapshotStore
from pipelines_events.log.jsonlfile import (
    _FileLock,
    _named,
    _size,
)
from pipelines_events.log.jsonlscan import (
    scan,
)
from pipelines_events.log.segments import LogBytes, Sealed


class TornWriteRepaired(UserWarning):
    """A writer removed the unfinished last batch a crashed writer left in the log."""


class LogPermissionsWarning(UserWarning):
    """An existing log grants group or others more access than the log's ``mode``."""


class _JsonlBase(EventLog):
    """What a file log handle holds, and its accessors."""

    _pid: int

    @property
    def supports_append_unread(self) -> bool:
        """True while the log has no segments and this handle never rolls it: reading only
        the file's end then finds the chain's tip (a log with segments catches up)."""
        return self._policy is None and self._sealed is None

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "fsync",
        mode: int = 0o600,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        readonly: bool = False,
        run_index: bool = True,
        segment_bytes: int | None = None,
        segment_events: int | None = None,
        segment_compression: str | None = None,
    ) -> None:
        if not isinstance(run_index, bool):
            raise LogOpenError(f"run_index must be True or False, not {run_index!r}")
        self.supports_run_index = run_index
        self._run_index: FileRunIndex | None = None
        if durability not in DURABILITY_MODES:
            raise LogOpenError(
                f"durability must be one of {', '.join(map(repr, DURABILITY_MODES))}, "
                f"not {durability!r}"
            )
        if type(mode) is not int or not 0 <= mode <= 0o777:
            raise LogOpenError(f"mode must be a permission between 0o000 and 0o777, not {mode!r}")
        if type(max_event_bytes) is not int or max_event_bytes < 256:
            raise LogOpenError(
                f"max_event_bytes must be an int of at least 256, not {max_event_bytes!r}"
            )
        try:
            self._path = Path(os.fspath(path))
        except TypeError:
            raise LogOpenError(f"the log path must be a str or path, not {path!r}") from None
        if not str(self._path):
            raise LogOpenError("the log path is empty")
        self._policy = _segments.roll_policy(
            str(self._path), segment_bytes, segment_events, segment_compression
        )
        self._sealed: Sealed | None = None
        self._skip = 0  # bytes at the file's start that the last sealed segment holds
        self._durability = durability
        self._mode = mode
        self._max_event_bytes = max_event_bytes
        self._readonly = readonly
        self._name = str(self._path)
        self._position = START
        self._tail = START  # after this object's last append_unread (ahead of the position)
        self._appended = 0  # appends so far
        self._synced = 0  # appends known to be on disk
        self._fd = -1
        self._lock = threading.RLock()
        self._mode_checked = False
        self._snapshots = FileSnapshotStore(self._path, mode=mode, log_size=self.size)
        self._open()
        _OPEN_LOGS.add(self)

    # -- properties ----------------------------------------------------------------------

    @property
    def position(self) -> LogPosition:
        return self._position

    @property
    def location(self) -> str:
        return str(self._path)

    @property
    def path(self) -> Path:
        """The log file."""
        return self._path

    @property
    def durability(self) -> Durability:
        """The durability mode the log was opened with."""
        return self._durability

    @property
    def max_event_bytes(self) -> int:
        """The largest encoded event the log accepts."""
        return self._max_event_bytes

    @property
    def lock(self) -> threading.RLock:
        """The in-process lock around the position, catch-up and append (re-entrant), for
        callers that keep state in step with the position."""
        return self._lock

    @property
    def readonly(self) -> bool:
        """Whether the log was opened read-only (never written, not even repaired)."""
        return self._readonly

    @property
    def snapshots(self) -> FileSnapshotStore:
        """The snapshot file beside the log (``<log>.snapshot``)."""
        return self._snapshots

    def size(self) -> int:
        """The file's current size in bytes."""
        self._check_usable()
        return _size(self._src())

    def stored_bytes(self) -> int:
        """The file's size."""
        return self.size()

    def unfinished_bytes(self, cursor: LogPosition) -> int:
        """The bytes after ``cursor``."""
        self._check_usable()
        return max(0, _size(self._src()) - cursor.offset)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1

    def _check_usable(self) -> None:
        if self._fd < 0:
            raise LogError(f"{self._path}: the log is closed")

    def _locked(self) -> _FileLock:
        return _FileLock(self._fd)

    # -- segments (see log/segments.py) ---------------------------------------------------

    def _scan(
        self, start: LogPosition, *, group: bool = False
    ) -> Iterator[tuple[list[AnyEvent], LogPosition]]:
        """:func:`scan` of this log; damage in a sealed segment names the segment's file."""
        sealed = self._sealed
        if sealed is None:
            return scan(self._fd, start, str(self._path), group=group)
        return _named(scan(self._src(), start, str(self._path), group=group), sealed)

    def _pread_logical(self, length: int, offset: int) -> bytes:
        """``length`` bytes at the logical ``offset``: across the sealed segments, if any."""
        source = self._src()
        if isinstance(source, int):
            return os.pread(source, length, offset)
        return source.pread(length, offset)

    def _base(self) -> int:
        return 0 if self._sealed is None else self._sealed.base

    def _src(self) -> int | LogBytes:
        """What reads read: the file, or the sealed segments and then the file."""
        if self._sealed is None:
            return self._fd
        return LogBytes(self._fd, self._sealed, self._skip)

    if TYPE_CHECKING:  # defined by the parts of JsonlEventLog built on this class

        def _open(self) -> None: ...
        def _reopen_after_fork(self) -> None: ...
        def _checked(self, position: LogPosition) -> LogPosition: ...
        def read_new(self) -> Iterator[AnyEvent]: ...
        def read_batches(self) -> Iterator[list[AnyEvent]]: ...
        def _check_writable(self) -> None: ...
        def close(self) -> None: ...
        def _attach_segments(self, *, finish: bool = False) -> None: ...
        def _follow_roll(self) -> bool: ...
        def _switch_locked(self, fd: int) -> int: ...
        def _roll_if_due(self) -> int: ...
        def _truncate_torn(self, keep: int, size: int) -> None: ...


_OPEN_LOGS: weakref.WeakSet[_JsonlBase] = weakref.WeakSet()
