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
import errno
import fcntl
import hashlib
import os
import stat
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

import msgspec

from pipelines_events.errors import (
    AppendUnreadUnavailable,
    LogCorruptError,
    LogError,
    LogOpenError,
    LogWriteError,
)
from pipelines_events.events import (
    GENESIS_HASH,
    SCHEMA_VERSION,
    SCHEMA_VERSIONS,
    START,
    AnyEvent,
    LogPosition,
)
from pipelines_events.log import segments as _segments
from pipelines_events.log.base import (
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_WAIT_POLL,
    DURABILITY_MODES,
    Batch,
    Durability,
    EventLog,
    RunSummary,
    checked_cursor,
)
from pipelines_events.log.chain import (
    HASH_HEAD,
    HASH_SUFFIX_LEN,
    decode_event,
    event_hash,
    line_hash,
    link_ok,
    seal_batch,
)
from pipelines_events.log.fileindex import FileRunIndex, index_path
from pipelines_events.log.filesnapshots import FileSnapshotStore
from pipelines_events.log.segments import LogBytes, Sealed

# ``fsync``: :meth:`JsonlEventLog.commit` returns once the events are on disk (default).
# ``none``: no fsync; events survive a crash of the process, not of the machine.

_CHUNK: Final = 1 << 20
_MAX_RESTARTS: Final = 16
"""How often one scan re-reads bytes a writer changed under it before it gives up."""


class TornWriteRepaired(UserWarning):
    """A writer removed the unfinished last batch a crashed writer left in the log."""


class LogPermissionsWarning(UserWarning):
    """An existing log grants group or others more access than the log's ``mode``."""


class JsonlEventLog(EventLog):
    """An event log in a JSON-lines file, rolled into sealed segments when asked.

    ``durability`` is ``"fsync"`` (default) or ``"none"``; ``mode`` is the permission of
    a new file (owner read and write by default); ``max_event_bytes`` caps one encoded
    event; ``readonly`` opens an existing file without ever writing to it; ``run_index``
    keeps the run index beside it (``<log>.index``, see :mod:`pipelines_events.log.fileindex`).
    """

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

    # -- opening ---------------------------------------------------------------------

    def _open(self) -> None:
        path = self._path
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LogOpenError(
                    f"{path}: the log path is a symbolic link loop: resolving it never ends "
                    "(a link points, directly or through others, back to itself)"
                ) from None
        try:
            is_dir = path.is_dir()
        except OSError as exc:  # a name too long, say
            raise LogOpenError(f"{path}: the log path cannot be used: {exc.strerror}") from None
        if is_dir:
            raise LogOpenError(f"{path}: the log path is a directory, not a file")
        self._pid = os.getpid()
        if self._readonly:
            try:
                # O_NONBLOCK: opening a named pipe must not wait for a writer.
                self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            except FileNotFoundError:
                raise LogOpenError(f"{path}: no such log file") from None
            except OSError as exc:
                raise LogOpenError(f"{path}: cannot open the log: {exc.strerror}") from None
            self._check_regular()
            self._attach_segments()
            return
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        created = False
        try:
            self._fd = os.open(path, flags)
        except (FileNotFoundError, NotADirectoryError):
            self._create(flags)
            created = True
        except OSError as exc:
            raise LogOpenError(f"{path}: cannot open the log for writing: {exc.strerror}") from None
        st = self._check_regular()
        if created:
            if self._durability == "fsync":
                self._sync_directory()
        elif not self._mode_checked:
            self._check_mode(st.st_mode)
        self._mode_checked = True
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            self._attach_segments(finish=True)  # may lock and use a new file
            self._repair_tail()
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _create(self, flags: int) -> None:
        """Create the missing log (and its directories); never through a symbolic link."""
        path = self._path
        if path.is_symlink():
            self._refuse_dangling_link()
        missing = []  # the directories this open creates, innermost first
        for parent in path.parents:
            if parent.exists():
                break
            missing.append(parent)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _remove_directories(missing)
            raise LogOpenError(
                f"{path}: cannot create the log's directory {path.parent}: {exc.strerror}"
            ) from None
        try:
            # O_EXCL: a symbolic link put there meanwhile is not followed.
            self._fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, self._mode)
            return
        except FileExistsError:
            pass  # another process created the log meanwhile, or a link appeared
        except OSError as exc:
            _remove_directories(missing)
            raise LogOpenError(f"{path}: cannot open the log for writing: {exc.strerror}") from None
        try:
            self._fd = os.open(path, flags)
        except FileNotFoundError:
            self._refuse_dangling_link()
        except OSError as exc:
            raise LogOpenError(f"{path}: cannot open the log for writing: {exc.strerror}") from None

    def _refuse_dangling_link(self) -> None:
        try:
            target = repr(os.readlink(self._path))
        except OSError:
            target = "a missing file"
        raise LogOpenError(
            f"{self._path}: the log path is a symbolic link to {target}, which does not "
            "exist; refusing to create the log through it (create the target, or give "
            "the real path)"
        )

    def _check_mode(self, st_mode: int) -> None:
        extra = stat.S_IMODE(st_mode) & 0o077 & ~self._mode
        if not extra:
            return
        mode = stat.S_IMODE(st_mode)
        access = [
            f"{what} by {' and '.join(who)}"
            for what, bits in (("readable", (0o040, 0o004)), ("writable", (0o020, 0o002)))
            if (who := [w for w, bit in zip(("group", "others"), bits, strict=True) if mode & bit])
        ]
        warnings.warn(
            f"{self._path}: the log's permissions {mode:#o} are too open: it is "
            f"{', '.join(access) or 'executable by group or others'}; using it anyway "
            f"(chmod {self._mode:o} it, or pass mode={mode:#o} to accept them)",
            LogPermissionsWarning,
            stacklevel=4,
        )

    def _check_regular(self) -> os.stat_result:
        st = os.fstat(self._fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(self._fd)
            self._fd = -1
            raise LogOpenError(f"{self._path}: the log path is not a regular file")
        return st

    def _sync_directory(self) -> None:
        try:
            dir_fd = os.open(self._path.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError as exc:
            raise LogWriteError(
                f"{self._path}: fsync of the log's directory {self._path.parent} failed "
                f"({exc.strerror}); the new log may not be on disk"
            ) from exc
        finally:
            os.close(dir_fd)

    def _reopen_after_fork(self) -> None:
        """A forked child shares the parent's descriptor and so its lock: open its own."""
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1
        self._open()

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

    def damage_after(self, cursor: LogPosition) -> str | None:
        """Why the bytes after ``cursor`` are damage, or None when there are none or they can
        be a torn write (the writers' rule: they cut a torn write and nothing else)."""
        self._check_usable()
        src = self._src()
        total = _size(src)
        offset = cursor.offset
        if total <= offset:
            return None
        tail = _pread(src, 64, offset)
        if _looks_torn(tail):
            return None
        return (
            f"the file ends ({total - offset} bytes from byte {offset} on: {tail[:40]!r}) with "
            "bytes that are not the start of an event, so they are not a torn write: writers "
            "refuse to open the log until they are removed (were they appended by hand?)"
        )

    # -- cursors -----------------------------------------------------------------------

    def head(self) -> LogPosition:
        """The cursor after the last complete batch in the file now."""
        with self._lock:
            self._check_usable()
            position = self._position
        return self._last_complete(position)

    def _last_complete(self, after: LogPosition) -> LogPosition:
        """The cursor after the file's last complete batch, known to be at or after
        ``after``; ``after`` itself when nothing complete follows it."""
        fd = self._src()
        size = _size(fd)
        if size == after.offset:
            return after
        if size < after.offset:
            raise LogError(_shrunk(str(self._path), size, after.offset))
        keep = _complete_prefix(fd, size, str(self._path), self._base())
        if keep <= after.offset:
            return after
        line = self._line_ending_at(keep)
        if line is not None:
            with contextlib.suppress(LogError):
                event = self._decoded(line, keep)
                if event.seq > after.seq and event.more == 0:
                    return LogPosition(keep, event.seq, event.hash)
        last = after  # damage at the end: a scan reports it precisely
        for _batch, cursor in self._scan(after):
            last = cursor
        return last

    def cursor_at(self, seq: int) -> LogPosition:
        """The cursor after the event ``seq`` (START for 0), found from the position."""
        if type(seq) is not int or seq < 0:
            raise LogError(f"{self._path}: seq must be a whole number of at least 0, not {seq!r}")
        if seq == 0:
            return START
        with self._lock:
            self._check_usable()
            position = self._position
        end = position
        if seq > position.seq:
            for _batch, end in self._scan(position):
                if end.seq >= seq:
                    break
            if end.seq < seq:
                raise LogError(
                    f"{self._path}: the log has no event seq {seq} (its last complete batch "
                    f"ends at seq {end.seq})"
                )
        if end.seq == seq:
            return end
        offset = self._line_start(end.offset, end.seq - seq)
        line = self._line_ending_at(offset)
        event = None if line is None else self._decoded(line, offset)
        if event is None or event.seq != seq:
            raise LogError(f"{self._path}: seq {seq} does not end at byte {offset}")
        return LogPosition(offset, seq, event.hash)

    # -- reading ---------------------------------------------------------------------

    def seek(self, position: LogPosition) -> None:
        """Continue after ``position``; raises :class:`LogError` unless an event ends there
        with that seq and hash."""
        with self._lock:
            self._check_usable()
            self._position = self._checked(position)

    def seek_before(self, seq: int) -> None:
        """Go back to just before the event ``seq`` (at or before the position): a caller
        that could not use it gets it, and what follows, again at the next read."""
        with self._lock:
            self._check_usable()
            position = self._position
            if not 0 < seq <= position.seq:
                raise LogError(
                    f"{self._path}: cannot go back to seq {seq}: the position is after seq "
                    f"{position.seq}"
                )
            offset = self._line_start(position.offset, position.seq - seq + 1)
            if offset == 0:
                self._position = START
                return
            line = self._line_ending_at(offset)
            event = None if line is None else self._decoded(line, offset)
            if event is None or event.seq != seq - 1:
                raise LogError(f"{self._path}: seq {seq - 1} does not end at byte {offset}")
            self._position = LogPosition(offset, event.seq, event.hash)

    def _line_start(self, end: int, lines: int) -> int:
        """Where the ``lines``-th line before the line end ``end`` begins (0: the file's
        start)."""
        found = 0
        at = end - 1  # the newline of the last line
        while at > 0:
            start = max(0, at - _CHUNK)
            data = _pread(self._src(), at - start, start)
            cut = len(data)
            while (cut := data.rfind(b"\n", 0, cut)) >= 0:
                found += 1
                if found == lines:
                    return start + cut + 1
            at = start
        return 0

    def _decoded(self, line: bytes, offset: int) -> AnyEvent:
        try:
            return decode_event(line)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise LogError(f"{self._path}: the line before byte {offset}: {exc}") from None
        except RecursionError:
            raise LogError(f"{self._path}: the line before byte {offset}: {_TOO_DEEP}") from None

    def _checked(self, position: LogPosition) -> LogPosition:
        checked_cursor(str(self._path), position)
        if position == START:
            return START
        line = self._line_ending_at(position.offset)
        if line is None:
            raise LogError(
                f"{self._path}: no event ends at byte {position.offset} "
                f"(the log has {self.size()} bytes)"
            )
        event = self._decoded(line, position.offset)
        if event.seq != position.seq or event.hash != position.hash:
            raise LogError(
                f"{self._path}: the event before byte {position.offset} is seq {event.seq} "
                f"hash {event.hash[:12]}..., not seq {position.seq} hash {position.hash[:12]}..."
            )
        return position

    def read(self, after: LogPosition, *, limit: int | None = None) -> Iterator[Batch]:
        """Yield the complete batches after ``after`` (checked to be an event of the file),
        verifying every line; the position does not move."""
        if limit is not None and (type(limit) is not int or limit < 1):
            raise LogError(
                f"{self._path}: limit must be a whole number of at least 1, not {limit!r}"
            )
        with self._lock:
            self._check_usable()
            start = self._checked(after)
        return self._read_after(start, limit)

    def _read_after(self, start: LogPosition, limit: int | None) -> Iterator[Batch]:
        count = 0
        for events, cursor in self._scan(start):
            if limit is not None and count and count + len(events) > limit:
                return
            count += len(events)
            yield Batch(events, cursor)
            if limit is not None and count >= limit:
                return

    def wait(self, after: LogPosition, timeout: float) -> bool:
        """Poll the file's size until a complete batch follows ``after`` or ``timeout``
        seconds pass."""
        if type(timeout) not in (int, float) or not timeout >= 0:
            raise LogError(
                f"{self._path}: timeout must be a number of seconds >= 0, not {timeout!r}"
            )
        with self._lock:
            self._check_usable()
            after = self._checked(after)
        deadline = time.monotonic() + timeout
        while True:
            self._follow_roll()
            if _size(self._src()) != after.offset and self._last_complete(after).seq > after.seq:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(DEFAULT_WAIT_POLL, remaining))

    def has_new(self) -> bool:
        if self._fd < 0:
            self._check_usable()
        if self._sealed is None:
            if _end(self._fd) != self._position.offset:
                return True
        elif _size(self._src()) != self._position.offset:
            return True
        return os.fstat(self._fd).st_nlink == 0  # another writer rolled the log

    def read_new(self) -> Iterator[AnyEvent]:
        for batch in self.read_batches():
            yield from batch

    def read_batches(self) -> Iterator[list[AnyEvent]]:
        """Yield the complete batches appended after the position, advancing it."""
        return self._read(group=False)

    def read_groups(self) -> Iterator[list[AnyEvent]]:
        """As :meth:`read_batches`, several whole batches per list (one list per chunk read):
        fewer, larger lists for callers that fold events and need no batch boundaries."""
        return self._read(group=True)

    def _read(self, *, group: bool) -> Iterator[list[AnyEvent]]:
        """Hand over what follows the position once, whichever thread asks: when another
        caller moved the position meanwhile, go on from where it left it."""
        self._check_usable()
        lock = self._lock
        while True:
            with lock:
                start = self._position
            moved = False
            for batch, position in self._scan(start, group=group):
                with lock:
                    if self._position is not start:
                        moved = True
                        break
                    self._position = position
                start = position
                yield batch
            if not moved:
                with lock:
                    if not self._follow_roll():
                        return

    def _line_ending_at(self, offset: int) -> bytes | None:
        """The line (without newline) whose newline is the byte before ``offset``."""
        if offset <= 0:
            return None
        end = offset - 1
        src = self._src()
        if _pread(src, 1, end) != b"\n":
            return None
        size = 4096
        while True:
            start = max(0, end - size)
            data = _pread(src, end - start, start)
            cut = data.rfind(b"\n")
            if cut >= 0:
                return data[cut + 1 :]
            if start == 0:
                return data
            size *= 2

    # -- writing ---------------------------------------------------------------------

    def append(
        self,
        drafts: Sequence[AnyEvent],
        *,
        on_caught_up: Callable[[list[AnyEvent]], bool] | None = None,
        on_written: Callable[[list[AnyEvent]], None] | None = None,
    ) -> list[AnyEvent]:
        """Append ``drafts`` as one atomic batch (see :meth:`EventLog.append`).

        With ``on_caught_up``, the events other writers appended are handed to it under
        the lock instead of being returned; if it returns False nothing is written and
        the result is empty. ``on_written`` is called with the new events once they are
        written, still under the in-process lock (so that callers in several threads
        see them in log order).
        """
        with self._lock:
            if self._fd < 0 or self._readonly:
                self._check_writable()
            if self._pid < 0:  # set by the after-fork hook in a child process
                self._reopen_after_fork()
            if not drafts:
                return list(self.read_new())
            count = len(drafts)
            fd = self._fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink == 0:  # another writer rolled the log meanwhile
                fd = self._switch_locked(fd)
            start = self._position
            handed_over = False
            retired = -1
            try:
                position = start
                caught: list[AnyEvent] = []
                if _size(self._src()) != position.offset:
                    caught = self._catch_up()
                    position = self._position
                if on_caught_up is not None:
                    handed_over = True
                    if not on_caught_up(caught):
                        return []
                    caught = []
                written, lines = seal_batch(
                    str(self._path),
                    drafts,
                    seq=position.seq,
                    prev_hash=position.hash,
                    max_event_bytes=self._max_event_bytes,
                )
                seq, prev = written[-1].seq, written[-1].hash
                data = lines[0] if count == 1 else b"".join(lines)
                self._write(data, position.offset)
                self._position = LogPosition(position.offset + len(data), seq, prev)
                self._appended += 1
                if self._policy is not None:
                    retired = self._roll_if_due()
            except BaseException:
                if not handed_over:
                    # What was caught up never reached the caller: it is read again next time.
                    self._position = start
                raise
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                if retired >= 0:
                    os.close(retired)
            if on_written is not None:
                on_written(written)
            if caught:
                caught.extend(written)
                return caught
            return written

    def append_unread(
        self,
        drafts: Sequence[AnyEvent],
        *,
        on_written: Callable[[list[AnyEvent]], None] | None = None,
    ) -> list[AnyEvent]:
        """Append ``drafts`` as one atomic batch without reading the events other writers
        appended (see :meth:`EventLog.append_unread`).

        The batch is sealed after what this writer last saw, before the ``flock``; under
        it, only the file's size is checked. When other writers appended meanwhile, the
        end of the file is read: the last batch's seq and hash (checked against the line
        before it and the count of lines since) are what the batch is sealed again after;
        anything unexpected there (damage, an unfinished batch to cut) is settled by a
        full scan, as :meth:`append` does. Verifying and folding the other writers'
        events is left to the next read.
        """
        with self._lock:
            if self._fd < 0 or self._readonly:
                self._check_writable()
            if self._pid < 0:
                self._reopen_after_fork()
            if not drafts:
                return []
            fd = self._fd
            position = self._position
            tail = self._tail
            base = tail if tail.offset > position.offset else position
            # Sealed before the flock, after what this writer last saw: the flock is held
            # only to check that nothing came since (else sealed again) and to write.
            written, lines = seal_batch(
                self._name,
                drafts,
                seq=base.seq,
                prev_hash=base.hash,
                max_event_bytes=self._max_event_bytes,
            )
            if not self.supports_append_unread:
                raise AppendUnreadUnavailable(f"{self._name}: the log has segments")
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.fstat(fd).st_nlink == 0:
                    # Another writer rolled the log: this file is a sealed segment now.
                    raise AppendUnreadUnavailable(
                        f"{self._name}: another writer rolled the log; nothing was written"
                    )
                end = os.lseek(fd, 0, os.SEEK_END)  # a writer's log is a regular file
                if end != base.offset:
                    base = self._tip(base, end)
                    written, lines = seal_batch(
                        self._name,
                        drafts,
                        seq=base.seq,
                        prev_hash=base.hash,
                        max_event_bytes=self._max_event_bytes,
                    )
                data = lines[0] if len(lines) == 1 else b"".join(lines)
                self._write(data, base.offset)
                last = written[-1]
                after = LogPosition(base.offset + len(data), last.seq, last.hash)
                self._appended += 1
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            if base is position:
                # Nothing unread before the batch: hand it over as append does.
                self._position = after
                if on_written is not None:
                    on_written(written)
            else:
                self._tail = after
            return written

    def _tip(self, base: LogPosition, end: int) -> LogPosition:
        """The cursor after the last complete batch of the file, which is ``end`` bytes
        long and holds complete batches up to ``base``; called holding the lock.

        Reads the bytes after ``base`` without decoding them but the last line: it must
        end a batch, chain to the line before it, and carry the seq the lines count.
        Anything else (damage, a torn tail, a file that shrank) goes through
        :meth:`_scan_tip`.
        """
        tip = None
        if base.offset < end <= base.offset + _CHUNK:
            data = os.pread(self._fd, end - base.offset, base.offset)
            if len(data) == end - base.offset:
                tip = _last_batch(data, base)
        return self._scan_tip(base) if tip is None else tip

    def _scan_tip(self, base: LogPosition) -> LogPosition:
        """As :meth:`_tip`, verifying every line after ``base`` (the errors of a read) and
        cutting a torn tail."""
        last = base
        for _batch, cursor in scan(self._fd, base, str(self._path)):
            last = cursor
        size = os.fstat(self._fd).st_size
        if size < last.offset:
            raise LogError(_shrunk(str(self._path), size, last.offset))
        if size != last.offset:
            self._truncate_torn(last.offset, size)
        return last

    def _catch_up(self) -> list[AnyEvent]:
        """Read what other writers appended and cut a torn tail; called holding the lock."""
        caught = [event for batch in self.read_batches() for event in batch]
        size = _size(self._src())
        if size < self._position.offset:
            raise LogError(_shrunk(str(self._path), size, self._position.offset))
        if size != self._position.offset:
            self._truncate_torn(self._position.offset, size)
        return caught

    def _check_writable(self) -> None:
        self._check_usable()
        if self._readonly:
            raise LogError(f"{self._path}: the log was opened read-only")

    def _write(self, data: bytes, offset: int) -> None:
        try:
            done = os.write(self._fd, data)
        except OSError as exc:
            self._undo(offset)
            raise LogWriteError(
                f"{self._path}: the append failed ({errno.errorcode.get(exc.errno or 0, '?')}: "
                f"{exc.strerror}); nothing of the batch was written"
            ) from exc
        if done != len(data):
            self._undo(offset)
            raise LogWriteError(
                f"{self._path}: short write ({done} of {len(data)} bytes); "
                "the partial batch was removed and nothing of it was written"
            )

    def _undo(self, offset: int) -> None:
        try:
            physical = offset - self._base() + self._skip
            if os.fstat(self._fd).st_size > physical:
                os.ftruncate(self._fd, physical)
        except OSError:
            # The next writer to open or append repairs the torn tail.
            pass

    def commit(self) -> None:
        with self._lock:
            self._check_usable()
            target = self._appended
            if self._synced == target:
                return
            fd = self._fd
        if self._durability == "fsync":
            # Outside the lock: other threads append while this one waits for the disk.
            try:
                os.fdatasync(fd)
            except OSError as exc:
                raise LogWriteError(
                    f"{self._path}: fsync failed ({exc.strerror}); the last events may not be "
                    "on disk"
                ) from exc
        with self._lock:
            # What was appended before the fsync began is on disk.
            self._synced = max(self._synced, target)

    def close(self) -> None:
        with self._lock:
            if self._run_index is not None:
                self._run_index.close()
            if self._fd >= 0:
                try:
                    self.commit()
                finally:
                    os.close(self._fd)
                    self._fd = -1
                    if self._sealed is not None:
                        self._sealed.close()
            _OPEN_LOGS.discard(self)

    # -- the run index (pipelines_events.log.fileindex) --------------------------------

    def run_summaries(self) -> list[RunSummary]:
        return self._index().run_summaries()

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

    def __enter__(self) -> JsonlEventLog:
        return self

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
        if skip and finish and not self._readonly:
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
        """``fd`` (locked) was rolled away: lock the new log file instead."""
        while os.fstat(fd).st_nlink == 0 and self._path.exists():
            self._fd = self._open_file()
            os.close(fd)  # releases its lock
            fd = self._fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._attach_segments(finish=True)
            fd = self._fd
        return fd

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

    # -- torn writes -----------------------------------------------------------------

    def _repair_tail(self) -> None:
        """Cut an unfinished last batch (a crash mid-write); called holding the lock."""
        if os.fstat(self._fd).st_size == 0:
            return
        src = self._src()
        size = _size(src)
        keep = _complete_prefix(src, size, str(self._path), self._base())
        if keep != size:
            self._truncate_torn(keep, size)

    def _truncate_torn(self, keep: int, size: int) -> None:
        src = self._src()
        tail = _pread(src, min(size - keep, 64), keep)
        if not _looks_torn(tail):
            at_position = keep == self._position.offset
            line = (self._position.seq if at_position else _lines_before(src, keep)) + 1
            raise LogCorruptError(
                str(self._path),
                line,
                f"the file ends (line {line} on, {size - keep} bytes: {tail[:40]!r}) with bytes "
                "that are not the start of an event, so they are not a torn write; "
                "refusing to cut them: is this file a pipelines-events log?",
            )
        try:
            os.ftruncate(self._fd, keep - self._base() + self._skip)
            if self._durability == "fsync":
                os.fsync(self._fd)
        except OSError as exc:
            raise LogWriteError(
                f"{self._path}: cannot remove the unfinished batch after byte {keep} "
                f"({exc.strerror}); nothing was written"
            ) from exc
        warnings.warn(
            f"{self._path}: removed {size - keep} bytes after byte {keep}: an unfinished "
            "batch left by a writer that stopped mid-write (it was never acknowledged)",
            TornWriteRepaired,
            stacklevel=4,
        )


def _last_batch(data: bytes, base: LogPosition) -> LogPosition | None:
    """The cursor after ``data``, the bytes after ``base``, when they end with a whole batch
    whose last line chains to the line before it and has the seq the lines count; else
    None (damage, a torn tail: a full scan settles it)."""
    if not data.endswith(b"\n"):
        return None
    cut = data.rfind(b"\n", 0, len(data) - 1) + 1
    if cut == 0:
        prev = base.hash
    elif cut > HASH_SUFFIX_LEN and data[cut - 1 - HASH_SUFFIX_LEN : cut - 67] == HASH_HEAD:
        prev = data[cut - 67 : cut - 3].decode("ascii", "replace")
    else:
        return None
    line = data[cut:-1]
    if not link_ok(line, prev):
        return None
    try:
        event = decode_event(line)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return None
    if event.more or event.v != SCHEMA_VERSION or event.seq != base.seq + data.count(b"\n"):
        return None
    return LogPosition(base.offset + len(data), event.seq, event.hash)


def _named(
    batches: Iterator[tuple[list[AnyEvent], LogPosition]], sealed: Sealed
) -> Iterator[tuple[list[AnyEvent], LogPosition]]:
    try:
        yield from batches
    except LogCorruptError as exc:
        index = sealed.index_of_seq(exc.line)
        if index is None or exc.path != str(sealed.log_path):
            raise
        raise LogCorruptError(
            str(sealed.path(index)),
            exc.line,
            f"{exc.reason} (the log {sealed.log_path}'s line {exc.line}, in this sealed segment)",
        ) from None


def _remove_directories(directories: list[Path]) -> None:
    """Remove the directories an open created (innermost first) when it then failed:
    a refused path leaves nothing behind."""
    for directory in directories:
        with contextlib.suppress(OSError):
            directory.rmdir()


def _complete_prefix(fd: int | LogBytes, size: int, name: str, floor: int = 0) -> int:
    """Bytes at the start of the log that hold only complete batches (``floor``: where
    the log file starts, after the sealed segments)."""
    window = 1 << 16
    while True:
        start = max(floor, size - window)
        data = _pread(fd, size - start, start)
        end = data.rfind(b"\n") + 1
        if end == 0:
            if start == floor:
                return floor
            window *= 4
            continue
        # Walk complete lines backwards until one ends a batch (more == 0).
        lines_end = end
        while True:
            cut = data.rfind(b"\n", 0, lines_end - 1) + 1
            if cut == 0 and start > floor:
                break  # need more of the file
            line = data[cut : lines_end - 1]
            try:
                more = decode_event(line).more
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
                # Damage, not a torn write: keep it all so readers report it precisely.
                return size
            if more == 0:
                return start + lines_end
            if cut == 0:
                return floor
            lines_end = cut
        window *= 4


_LINE_START: Final = b'{"type":"'


def _end(fd: int) -> int:
    """The file's size. ``lseek`` costs a quarter of ``fstat``; every read is a ``pread``
    and every write appends, so moving the descriptor's offset changes nothing."""
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    except OSError:  # files that cannot seek to their end (/proc); fstat still answers
        return os.fstat(fd).st_size


def _size(src: int | LogBytes) -> int:
    """The logical size of a log: its file's, after its sealed segments' bytes."""
    if type(src) is int:
        return _end(src)
    return src.end()  # type: ignore[union-attr]


def _pread(src: int | LogBytes, size: int, offset: int) -> bytes:
    """``size`` bytes at the logical ``offset`` (in a sealed segment or the file)."""
    if type(src) is int:
        return os.pread(src, size, offset)
    return src.pread(size, offset)  # type: ignore[union-attr]


def _lines_before(fd: int | LogBytes, offset: int) -> int:
    """How many lines end before byte ``offset``."""
    count = 0
    for start in range(0, offset, _CHUNK):
        count += _pread(fd, min(_CHUNK, offset - start), start).count(b"\n")
    return count


def _looks_torn(tail: bytes) -> bool:
    """Whether bytes after the last complete batch can be an interrupted write."""
    if not tail.strip(b"\0"):
        return True  # the file grew but the data never reached the disk
    return tail[: len(_LINE_START)] == _LINE_START[: len(tail)]


class _FileLock:
    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def __enter__(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)


def scan(
    fd: int | LogBytes,
    position: LogPosition,
    name: str,
    *,
    limit: int | None = None,
    group: bool = False,
) -> Iterator[tuple[list[AnyEvent], LogPosition]]:
    """Yield each complete batch after ``position`` with the position after it (with
    ``group``, all the complete batches of each chunk read, as one list).

    Verifies every line (JSON, event type, schema version, seq, batch, hash link) and
    raises :class:`LogCorruptError` with the line number on the first bad one. Stops
    before an unfinished last line or batch. ``limit`` stops at that byte offset.
    A line that fails because a writer cut a torn tail and appended while it was read
    is read again; a file shorter than ``position`` raises :class:`LogError`.
    """
    offset = position.offset
    seq = position.seq
    prev = position.hash
    end = _size(fd) if limit is None else limit
    if end < offset and limit is None:
        raise LogError(_shrunk(name, end, offset))
    batch: list[AnyEvent] = []
    done, done_offset, done_seq, done_hash = 0, offset, seq, prev
    mark = position  # after the last batch yielded
    restarts = 0
    carry = b""
    read_at = offset
    sha256 = hashlib.sha256
    decode = decode_event
    version = -1  # the schema version of the last line read (-1: none yet)
    cut = -HASH_SUFFIX_LEN
    head_end = cut + len(HASH_HEAD)
    while read_at < end:
        chunk = _pread(fd, min(_CHUNK, end - read_at), read_at)
        if not chunk:
            break
        read_at += len(chunk)
        data = carry + chunk if carry else chunk
        lines = data.split(b"\n")
        carry = lines.pop()
        try:
            for line in lines:
                seq += 1
                if version == 1:
                    digest = sha256(prev.encode() + line[:cut]).hexdigest()
                else:
                    digest = sha256((prev + sha256(line[:cut]).hexdigest()).encode()).hexdigest()
                try:
                    event = decode(line)
                except (
                    msgspec.DecodeError,
                    msgspec.ValidationError,
                    UnicodeDecodeError,
                    RecursionError,
                ):
                    event = _check_line(line, seq, prev, name, batch[done:], version)
                if (
                    event.hash != digest
                    or event.seq != seq
                    or event.v != version
                    or line[cut:head_end] != HASH_HEAD
                    or (batch and batch[-1].more and batch[-1].more != event.more + 1)
                ):
                    # Another version, an erased line, or damage: the careful check.
                    event = _check_line(line, seq, prev, name, batch[done:], version)
                    version = event.v
                    digest = event.hash
                prev = digest
                offset += len(line) + 1
                batch.append(event)
                if event.more == 0:
                    if not group:
                        mark = LogPosition(offset, seq, prev)
                        yield batch, mark
                        batch = []
                    else:
                        done_offset, done_seq, done_hash, done = offset, seq, prev, len(batch)
        except LogCorruptError:
            if group:
                mark = LogPosition(done_offset, done_seq, done_hash)
            if restarts == _MAX_RESTARTS or not _changed(fd, mark, batch[done:], line, offset):
                raise
            # A writer cut the torn tail this scan had partly read and appended after it:
            # read again from the last complete batch.
            restarts += 1
            batch = batch[:done]
            offset, seq, prev = mark.offset, mark.seq, mark.hash
            carry = b""
            read_at = offset
            continue
        if group and done:
            yield batch[:done], LogPosition(done_offset, done_seq, done_hash)
            batch = batch[done:]
            done = 0


def _changed(
    fd: int | LogBytes, mark: LogPosition, pending: list[AnyEvent], line: bytes, line_offset: int
) -> bool:
    """Whether the bytes from ``mark`` to the end of ``line`` (read as ``pending`` and
    ``line``) are no longer in the file: a scan read them across a repair."""
    length = line_offset + len(line) + 1 - mark.offset
    fresh = _pread(fd, length, mark.offset)
    if len(fresh) != length or not fresh.endswith(line + b"\n"):
        return True
    parts = fresh[: length - len(line) - 1].split(b"\n")
    if len(parts) != len(pending) + 1:
        return True
    prev = mark.hash
    for part, event in zip(parts, pending, strict=False):
        prev = line_hash(part, prev)
        if prev != event.hash:
            return True
    return False


def _shrunk(name: str, size: int, offset: int) -> str:
    return (
        f"{name}: the log is {size} bytes, shorter than the {offset} bytes already read from "
        "it: it was truncated or replaced in place (a backup restored over it?) while it was "
        "open; nothing more is read or written through this handle: open the log again"
    )


_TOO_DEEP = (
    "a value nests lists and dicts too deeply to decode (written by another tool? "
    "pipelines-events never writes one nested more than 64 levels deep)"
)


def _check_line(
    line: bytes, seq: int, prev: str, name: str, batch: list[AnyEvent], version: int = 0
) -> AnyEvent:
    """The event of ``line`` once every check passes (``version``: the last line's schema
    version, 0 when unknown), else :class:`LogCorruptError` with the most precise reason."""
    if not link_ok(line, prev):
        _raise_bad_line(line, seq, prev, name)
    try:
        event = decode_event(line)
    except msgspec.ValidationError as exc:
        raise LogCorruptError(name, seq, f"not a valid event: {exc}") from None
    except msgspec.DecodeError as exc:
        raise LogCorruptError(name, seq, f"not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise LogCorruptError(name, seq, f"not valid UTF-8: {exc.reason}") from None
    except RecursionError:
        raise LogCorruptError(name, seq, _TOO_DEEP) from None
    if event.v not in SCHEMA_VERSIONS:
        _raise_version(event.v, seq, name)
    if event.v < version:
        raise LogCorruptError(
            name,
            seq,
            f"a schema version {event.v} event after version {version} events: a log only "
            "ever steps up from version 1 to 2 (a line was moved or spliced in)",
        )
    if event.seq != seq:
        raise LogCorruptError(
            name,
            seq,
            f"expected seq {seq}, found seq {event.seq} (a line is missing, repeated "
            "or out of order)",
        )
    if batch and batch[-1].more != event.more + 1:
        raise LogCorruptError(
            name,
            seq,
            f"the batch that began at seq {batch[0].seq} expected {batch[-1].more - 1} "
            f"more events here, found {event.more} (a batch was cut or spliced)",
        )
    if event.hash != event_hash(event, line, prev):
        raise LogCorruptError(name, seq, 'the "hash" member does not match the line')
    return event


def _raise_version(version: int, seq: int, name: str) -> None:
    if version > SCHEMA_VERSION:
        raise LogCorruptError(
            name,
            seq,
            f"written with schema version {version}; this pipelines-events reads "
            f"versions up to {SCHEMA_VERSION}: upgrade pipelines-events to read this log",
        )
    raise LogCorruptError(name, seq, f"schema version {version} is not a version ever written")


def _raise_bad_line(line: bytes, seq: int, prev: str, name: str) -> None:
    """Explain why a line fails its hash link, most specific reason first."""
    if not line.strip():
        raise LogCorruptError(name, seq, "empty line")
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LogCorruptError(
            name,
            seq,
            f"not valid UTF-8 (byte {exc.start}: {line[exc.start : exc.start + 1]!r}); "
            "is this a log file?",
        ) from None
    try:
        event = decode_event(line)
    except msgspec.ValidationError as exc:
        raise LogCorruptError(name, seq, f"not a valid event: {exc}") from None
    except msgspec.DecodeError as exc:
        raise LogCorruptError(name, seq, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise LogCorruptError(name, seq, _TOO_DEEP) from None
    if event.v > SCHEMA_VERSION:
        _raise_version(event.v, seq, name)
    if event.seq != seq:
        raise LogCorruptError(
            name,
            seq,
            f"expected seq {seq}, found seq {event.seq} (a line is missing, repeated "
            "or out of order)",
        )
    if len(line) <= HASH_SUFFIX_LEN or not line.endswith(b'"}'):
        raise LogCorruptError(name, seq, 'the line does not end with its "hash" member')
    raise LogCorruptError(
        name,
        seq,
        f"hash link broken: the line does not chain to the previous event's hash "
        f"{prev[:12]}... (the line, or one before it, was edited)",
    )


def read_events(
    path: str | os.PathLike[str], *, position: LogPosition = START
) -> Iterator[AnyEvent]:
    """Yield every complete event of the log file at ``path`` after ``position``, verified."""
    with JsonlEventLog(path, readonly=True) as log:
        if position != START:
            log.seek(position)
        yield from log.read_new()


_OPEN_LOGS: weakref.WeakSet[JsonlEventLog] = weakref.WeakSet()


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
