"""Writing a file log: an append under the lock (catching up first), an unread append, the
write itself and its undo, commit and close.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable, Sequence

from pipelines_events.errors import (
    AppendUnreadUnavailable,
    LogError,
    LogWriteError,
)
from pipelines_events.events import (
    AnyEvent,
    LogPosition,
)
from pipelines_events.log.chain import (
    seal_batch,
)
from pipelines_events.log.jsonlbase import (
    _OPEN_LOGS,
    _JsonlBase,
)
from pipelines_events.log.jsonlfile import (
    _CHUNK,
    _last_batch,
    _size,
)
from pipelines_events.log.jsonlscan import (
    _shrunk,
    scan,
)


class _Writes(_JsonlBase):
    """How a file log handle appends."""

    # -- writing ---------------------------------------------------------------------

    # Long on purpose: one critical section under the file lock (check, catch up, hand
    # over, seal, write, roll), whose undo on failure needs all of its locals.
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

    # Long on purpose: like append, one critical section under the file lock (find the
    # tip from the file's end, seal, write), whose undo on failure needs all of its locals.
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
