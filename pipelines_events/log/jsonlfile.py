"""The file log's bytes: reading them (whole lines, the last batch, the line count), the
file lock, and the removal of a log's directories.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import msgspec

from pipelines_events.errors import (
    LogCorruptError,
)
from pipelines_events.events import (
    SCHEMA_VERSION,
    AnyEvent,
    LogPosition,
)
from pipelines_events.log.chain import (
    HASH_HEAD,
    HASH_SUFFIX_LEN,
    decode_event,
    link_ok,
)
from pipelines_events.log.segments import LogBytes, Sealed

_CHUNK: Final = 1 << 20
_MAX_RESTARTS: Final = 16
"""How often one scan re-reads bytes a writer changed under it before it gives up."""


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
    if isinstance(src, int):
        return _end(src)
    return src.end()


def _pread(src: int | LogBytes, size: int, offset: int) -> bytes:
    """``size`` bytes at the logical ``offset`` (in a sealed segment or the file)."""
    if isinstance(src, int):
        return os.pread(src, size, offset)
    return src.pread(size, offset)


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
