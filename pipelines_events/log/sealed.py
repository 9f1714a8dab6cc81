"""Reading a file log's sealed segments: the manifest loaded and checked, each segment's
bytes at logical offsets, and how the log file's first line follows the last segment.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import lzma
import os
import stat
import zlib
from pathlib import Path

import msgspec

from pipelines_events.errors import LogCorruptError, LogError, LogOpenError
from pipelines_events.log.chain import GENESIS_HASH, decode_event
from pipelines_events.log.manifest import (
    _MAGIC,
    _MAX_MANIFEST,
    MANIFEST,
    MANIFEST_FORMAT,
    Manifest,
    _manifest_decoder,
    segment_name,
    segments_dir,
)


class LogBytes:
    """The bytes of a log with sealed segments: the segments, then the log file's bytes
    after ``skip`` (those the last segment holds already), at logical offsets."""

    __slots__ = ("fd", "sealed", "skip")

    def __init__(self, fd: int, sealed: Sealed, skip: int) -> None:
        self.fd = fd
        self.sealed = sealed
        self.skip = skip

    def end(self) -> int:
        """The logical size: the segments' bytes and the log file's."""
        try:
            size = os.lseek(self.fd, 0, os.SEEK_END)
        except OSError:
            size = os.fstat(self.fd).st_size
        return self.sealed.base + max(0, size - self.skip)

    def pread(self, size: int, offset: int) -> bytes:
        """``size`` bytes at the logical ``offset`` (fewer at the end)."""
        base = self.sealed.base
        if offset >= base:
            return os.pread(self.fd, size, offset - base + self.skip)
        parts = []
        while size > 0 and offset < base:
            part = self.sealed.pread(size, offset)
            parts.append(part)
            offset += len(part)
            size -= len(part)
        if size > 0:
            parts.append(os.pread(self.fd, size, self.skip))
        return b"".join(parts)


class Sealed:
    """The sealed segments of a log, as its manifest lists them, and their bytes."""

    def __init__(self, log_path: Path, manifest: Manifest, identity: tuple[int, ...]) -> None:
        self.log_path = log_path
        self.directory = segments_dir(log_path)
        self.segments = manifest.segments
        self.identity = identity
        self.starts: list[int] = []
        base = 0
        for info in self.segments:
            self.starts.append(base)
            base += info.bytes
        self.base = base
        last = self.segments[-1] if self.segments else None
        self.last_seq = 0 if last is None else last.last_seq
        self.last_hash = "" if last is None else last.last_hash
        self._fds: dict[int, int] = {}
        self._cached: tuple[int, bytes] | None = None
        self._checked: set[int] = set()

    # -- loading ---------------------------------------------------------------------

    @classmethod
    def load(cls, log_path: Path) -> Sealed | None:
        """The sealed segments of ``log_path``, or None when it has none. Raises
        :class:`LogCorruptError` naming the manifest when it cannot be trusted."""
        path = segments_dir(log_path) / MANIFEST
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LogCorruptError(
                    str(path), 0, "the manifest is a symbolic link; refusing to follow it"
                ) from None
            if exc.errno == errno.ENOTDIR:
                return None
            raise LogOpenError(f"{path}: cannot open the manifest: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise LogCorruptError(str(path), 0, "the manifest is not a regular file")
            if st.st_size > _MAX_MANIFEST:
                raise LogCorruptError(str(path), 0, f"the manifest is {st.st_size} bytes")
            data = os.pread(fd, st.st_size, 0)
        finally:
            os.close(fd)
        try:
            manifest = _manifest_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise LogCorruptError(str(path), 0, f"not a manifest of segments: {exc}") from None
        _check_manifest(path, manifest)
        if not manifest.segments:
            return None
        return cls(log_path, manifest, (st.st_ino, st.st_mtime_ns, st.st_size))

    def close(self) -> None:
        """Close the segments' files."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._cached = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- reading ---------------------------------------------------------------------

    def index_at(self, offset: int) -> int:
        """The index of the segment that holds the byte ``offset`` (< :attr:`base`)."""
        low, high = 0, len(self.starts) - 1
        while low < high:
            middle = (low + high + 1) // 2
            if self.starts[middle] <= offset:
                low = middle
            else:
                high = middle - 1
        return low

    def index_of_seq(self, seq: int) -> int | None:
        """The index of the segment holding the event ``seq``, or None."""
        for index, info in enumerate(self.segments):
            if info.first_seq <= seq <= info.last_seq:
                return index
        return None

    def path(self, index: int) -> Path:
        """The file of the segment ``index``."""
        return self.directory / self.segments[index].name

    def pread(self, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (< :attr:`base`), from one segment."""
        index = self.index_at(offset)
        info = self.segments[index]
        start = offset - self.starts[index]
        size = min(size, info.bytes - start)
        if info.compression is None:
            fd = self._fd(index)
            if fd < 0:  # an erasure rewrote it: read it as the manifest now says
                return self.pread(size, offset)
            data = os.pread(fd, size, start)
            if len(data) != size:
                raise self._damaged(index, "it is shorter than the manifest says (truncated?)")
            return data
        return self._decompressed(index)[start : start + size]

    def _damaged(self, index: int, why: str) -> LogCorruptError:
        info = self.segments[index]
        return LogCorruptError(
            str(self.path(index)),
            info.first_seq,
            f"sealed segment (seq {info.first_seq} to {info.last_seq}) of {self.log_path}: "
            f"{why}; nothing of it is used",
        )

    def _open(self, index: int) -> int:
        path = self.path(index)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            if self._rewritten(index):  # an erasure replaced it: the same lines' lengths
                return self._open(index)
            raise self._damaged(index, "the file is missing") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._damaged(index, "it is a symbolic link; refusing to follow it") from None
            raise self._damaged(index, f"cannot open it: {exc.strerror}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise self._damaged(index, "it is not a regular file")
        info = self.segments[index]
        if st.st_size != info.stored:
            os.close(fd)
            raise self._damaged(
                index,
                f"it is {st.st_size} bytes, the manifest says {info.stored} (truncated or "
                "replaced?)",
            )
        return fd

    def _rewritten(self, index: int) -> bool:
        """Take the segment ``index`` as the manifest now lists it, when an erasure
        rewrote it since this manifest was read (its span unchanged)."""
        fresh = Sealed.load(self.log_path)
        if fresh is None or len(fresh.segments) <= index:
            return False
        info, now = self.segments[index], fresh.segments[index]
        fresh.close()
        if now.name == info.name or (now.first_seq, now.bytes) != (info.first_seq, info.bytes):
            return False
        self.segments[index] = now
        self._checked.discard(index)
        return True

    def _fd(self, index: int) -> int:
        fd = self._fds.get(index)
        if fd is None:
            info = self.segments[index]
            fd = self._open(index)
            if self.segments[index] is not info:
                os.close(fd)
                return -1
            self._fds[index] = fd
            self._check_ends(index, None)
        return fd

    def _decompressed(self, index: int) -> bytes:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        fd = self._open(index)
        info = self.segments[index]  # as an erasure may have rewritten it
        if info.compression is None:
            os.close(fd)
            return b"".join(_chunks(self, index))
        try:
            raw = os.pread(fd, info.stored, 0)
        finally:
            os.close(fd)
        compression = info.compression or ""
        if not raw.startswith(_MAGIC[compression]):
            raise self._damaged(index, f"it is not {compression} data")
        try:
            data = gzip.decompress(raw) if compression == "gzip" else lzma.decompress(raw)
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise self._damaged(index, f"it does not decompress ({compression}: {exc})") from None
        if len(data) != info.bytes:
            raise self._damaged(
                index, f"it decompresses to {len(data)} bytes, the manifest says {info.bytes}"
            )
        self._check_ends(index, data)
        self._cached = (index, data)
        return data

    def _check_ends(self, index: int, data: bytes | None) -> None:
        """The segment's first and last lines are the events the manifest names."""
        if index in self._checked:
            return
        info = self.segments[index]
        if data is None:
            head = os.pread(self._fds[index], min(info.bytes, 1 << 16), 0)
            tail = os.pread(
                self._fds[index], min(info.bytes, 1 << 16), info.bytes - min(info.bytes, 1 << 16)
            )
        else:
            head, tail = data[: 1 << 16], data[-(1 << 16) :]
        first = head.split(b"\n", 1)[0]
        last = tail[:-1].rsplit(b"\n", 1)[-1]
        if not tail.endswith(b"\n"):
            raise self._damaged(index, "it does not end with a whole line")
        for line, seq, what in ((first, info.first_seq, "first"), (last, info.last_seq, "last")):
            try:
                event = decode_event(line)
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
                raise self._damaged(index, f"its {what} line is not an event") from None
            if event.seq != seq:
                raise self._damaged(
                    index, f"its {what} line is seq {event.seq}, the manifest says seq {seq}"
                )
            if what == "last" and event.hash != info.last_hash:
                raise self._damaged(
                    index,
                    "its last line's hash is not the one the manifest records "
                    "(another log's segment?)",
                )
        self._checked.add(index)


def _check_manifest(path: Path, manifest: Manifest) -> None:
    if manifest.format != MANIFEST_FORMAT:
        raise LogCorruptError(
            str(path), 0, f"manifest format {manifest.format}; this version reads format 1"
        )
    seq, prev = 0, ""
    for info in manifest.segments:
        expected = segment_name(info.first_seq, info.last_seq, info.compression, info.generation)
        problem = None
        if info.name != expected or "/" in info.name:
            problem = f"the segment {info.name!r} should be named {expected!r}"
        elif info.first_seq != seq + 1 or info.last_seq < info.first_seq:
            problem = f"the segment {info.name} does not follow seq {seq}"
        elif prev and info.prev_hash != prev:
            problem = f"the segment {info.name} does not chain to the segment before it"
        elif not prev and info.prev_hash != GENESIS_HASH:
            problem = f"the segment {info.name} does not begin the chain (its prev_hash)"
        elif info.bytes < 1 or info.stored < 1:
            problem = f"the segment {info.name} is empty"
        if problem is not None:
            raise LogCorruptError(str(path), info.first_seq, problem)
        seq, prev = info.last_seq, info.last_hash


# -- writing -----------------------------------------------------------------------------


def _chunks(sealed: Sealed, index: int) -> list[bytes]:
    start, info = sealed.starts[index], sealed.segments[index]
    parts, offset = [], start
    while offset < start + info.bytes:
        part = sealed.pread(start + info.bytes - offset, offset)
        parts.append(part)
        offset += len(part)
    return parts


def sealed_prefix(sealed: Sealed | None, head: bytes) -> int:
    """How many bytes at the start of the log file the last sealed segment already holds
    (a roll committed, its log file not yet replaced): its length when the file's first
    line is the segment's first event, else 0. ``head`` is the file's first line."""
    if sealed is None or not head:
        return 0
    info = sealed.segments[-1]
    with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        if decode_event(head).seq == info.first_seq:
            return info.bytes
    return 0


def check_not_behind(log_path: Path, sealed: Sealed | None, head: bytes, skip: int) -> None:
    """The log file's first line (past ``skip``) follows the last sealed segment."""
    if sealed is None or not head:
        return
    try:
        seq = decode_event(head).seq
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return  # a scan reports the damage with its line
    if seq != sealed.last_seq + 1:
        raise LogError(
            f"{log_path}: the log file starts at seq {seq}, but its last sealed segment "
            f"({sealed.segments[-1].name}) ends at seq {sealed.last_seq}: the file and the "
            f"segments in {sealed.directory} are not one log (a backup restored over one?)"
        )
