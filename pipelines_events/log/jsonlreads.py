"""Reading a file log: cursors, seeking, complete batches after a cursor, waiting for more."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import msgspec

from pipelines_events.errors import (
    LogError,
)
from pipelines_events.events import (
    START,
    AnyEvent,
    LogPosition,
)
from pipelines_events.log.base import (
    DEFAULT_WAIT_POLL,
    Batch,
    checked_cursor,
)
from pipelines_events.log.chain import (
    decode_event,
)
from pipelines_events.log.jsonlbase import (
    _JsonlBase,
)
from pipelines_events.log.jsonlfile import (
    _CHUNK,
    _complete_prefix,
    _end,
    _looks_torn,
    _pread,
    _size,
)
from pipelines_events.log.jsonlscan import (
    _TOO_DEEP,
    _shrunk,
)


class _Reads(_JsonlBase):
    """How a file log handle reads."""

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
