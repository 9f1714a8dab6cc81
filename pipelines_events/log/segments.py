"""Sealed segments of the file log: their names, the manifest, a roll, reading one.

A file log ``results.jsonl`` may roll: its lines so far move into a sealed segment file in
the directory ``results.jsonl.segments/`` and the log file starts empty, the chain going
on across files. ``manifest.json`` in that directory lists the sealed segments in order
(written to a temporary file, synced and renamed: it is the roll's commit point). Byte
offsets (cursors) run over the logical concatenation of the segments' uncompressed bytes
and then the log file. See ``docs/howto/segments.rst``.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import lzma
import os
import re
import stat
import zlib
from pathlib import Path
from typing import Final

import msgspec

from pipelines_events.errors import LogCorruptError, LogError, LogOpenError, LogWriteError
from pipelines_events.events import FieldSet, ObjectCreated
from pipelines_events.log.base import Erasure
from pipelines_events.log.chain import decode_event, erased_line, line_hash

SEGMENTS_SUFFIX: Final = ".segments"
"""The directory of a log's sealed segments is the log's path with this suffix."""
MANIFEST: Final = "manifest.json"
"""The manifest's name in the segments directory."""
MANIFEST_FORMAT: Final = 1
COMPRESSIONS: Final = ("gzip", "lzma")
"""The compressions a sealed segment may have (or None: stored as it is)."""
_EXTENSIONS: Final = {None: ".jsonl", "gzip": ".jsonl.gz", "lzma": ".jsonl.xz"}
_MAGIC: Final = {"gzip": b"\x1f\x8b", "lzma": b"\xfd7zXZ\x00"}
_MAX_MANIFEST: Final = 64 << 20


class SegmentInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One sealed segment as the manifest lists it."""

    name: str
    first_seq: int
    last_seq: int
    prev_hash: str
    last_hash: str
    bytes: int
    """Its lines' length, uncompressed: the span of offsets it covers."""
    stored: int
    """Its file's size on disk."""
    compression: str | None = None
    erased: int = 0
    """How many of its events were erased."""
    generation: int = 0
    """How often it was rewritten by an erasure (part of its name from 1 on)."""


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The sealed segments of a log, oldest first."""

    format: int
    segments: list[SegmentInfo]


_manifest_decoder = msgspec.json.Decoder(Manifest)
_manifest_encoder = msgspec.json.Encoder()


class RollPolicy(msgspec.Struct, frozen=True):
    """When a writer rolls the log: once its file holds ``segment_bytes`` bytes or
    ``segment_events`` events (either, when both are given), compressed with
    ``compression``."""

    segment_bytes: int | None = None
    segment_events: int | None = None
    compression: str | None = None


def roll_policy(
    location: str,
    segment_bytes: object = None,
    segment_events: object = None,
    segment_compression: object = None,
) -> RollPolicy | None:
    """The checked options, or None when the log never rolls; :class:`LogOpenError`
    naming ``location`` for a bad one."""
    for name, value in (("segment_bytes", segment_bytes), ("segment_events", segment_events)):
        if value is not None and (type(value) is not int or value < 1):
            raise LogOpenError(
                f"{location}: {name} must be a whole number of at least 1 (or None: never "
                f"roll by {name.split('_')[1]}), not {value!r}; nothing was written"
            )
    if segment_compression is not None and segment_compression not in COMPRESSIONS:
        raise LogOpenError(
            f"{location}: segment_compression must be one of "
            f"{', '.join(map(repr, COMPRESSIONS))} or None, not {segment_compression!r}; "
            "nothing was written"
        )
    if segment_bytes is None and segment_events is None:
        if segment_compression is not None:
            raise LogOpenError(
                f"{location}: segment_compression needs segment_bytes or segment_events "
                "(when to roll); nothing was written"
            )
        return None
    return RollPolicy(segment_bytes, segment_events, segment_compression)  # type: ignore[arg-type]


def segments_dir(log_path: Path) -> Path:
    """The directory of the sealed segments of the log at ``log_path``."""
    return log_path.with_name(log_path.name + SEGMENTS_SUFFIX)


def segment_name(
    first_seq: int, last_seq: int, compression: str | None, generation: int = 0
) -> str:
    """The file name of the sealed segment holding ``first_seq`` to ``last_seq``, rewritten
    ``generation`` times by erasures."""
    again = f".g{generation}" if generation else ""
    return f"{first_seq:012d}-{last_seq:012d}{again}{_EXTENSIONS[compression]}"


def _reached(step: str) -> None:
    """Called after each step of a roll or an erasure (a seam for crash tests)."""


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
        elif info.bytes < 1 or info.stored < 1:
            problem = f"the segment {info.name} is empty"
        if problem is not None:
            raise LogCorruptError(str(path), info.first_seq, problem)
        seq, prev = info.last_seq, info.last_hash


# -- writing -----------------------------------------------------------------------------


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _directory_mode(mode: int) -> int:
    """The segments directory's permission for logs of ``mode``: whoever may read the log
    may list and read its segments."""
    return 0o700 | (0o050 if mode & 0o040 else 0) | (0o005 if mode & 0o004 else 0)


def write_atomically(path: Path, data: bytes, mode: int, step: str) -> None:
    """Replace ``path`` with ``data``: a temporary file beside it, synced, renamed, the
    directory synced. ``_reached`` is called with ``step`` + ``-written`` and ``-renamed``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, mode
    )
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    _reached(step + "-written")
    os.rename(temporary, path)
    _sync_dir(path.parent)
    _reached(step + "-renamed")


def compress(data: bytes, compression: str | None) -> bytes:
    """``data`` as a segment file of ``compression`` stores it."""
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "lzma":
        return lzma.compress(data)
    return data


def manifest_bytes(segments: list[SegmentInfo]) -> bytes:
    """The manifest listing ``segments``."""
    return _manifest_encoder.encode(Manifest(MANIFEST_FORMAT, segments)) + b"\n"


def seal_segment(
    log_path: Path,
    sealed: Sealed | None,
    data: bytes,
    prev_hash: str,
    policy: RollPolicy,
    mode: int,
) -> None:
    """Write ``data`` (whole batches, the log file's lines) as the next sealed segment and
    commit it in the manifest: the first half of a roll (the caller replaces the log file).
    """
    directory = segments_dir(log_path)
    first = decode_event(data.split(b"\n", 1)[0])
    last = decode_event(data[:-1].rsplit(b"\n", 1)[-1])
    try:
        directory.mkdir(mode=_directory_mode(mode), exist_ok=True)
        if directory.is_symlink() or not directory.is_dir():
            raise LogWriteError(
                f"{directory}: the segments directory is not a directory (a link?); "
                "the log was not rolled"
            )
        stored = compress(data, policy.compression)
        name = segment_name(first.seq, last.seq, policy.compression)
        write_atomically(directory / name, stored, mode, "segment")
        info = SegmentInfo(
            name=name,
            first_seq=first.seq,
            last_seq=last.seq,
            prev_hash=prev_hash,
            last_hash=last.hash,
            bytes=len(data),
            stored=len(stored),
            compression=policy.compression,
        )
        segments = [*([] if sealed is None else sealed.segments), info]
        write_atomically(directory / MANIFEST, manifest_bytes(segments), mode, "manifest")
    except OSError as exc:
        raise LogWriteError(
            f"{directory}: cannot seal a segment ({exc.strerror}); the log was not rolled "
            "(its events are all in the log file)"
        ) from exc


def replace_log_file(log_path: Path, data: bytes, mode: int) -> None:
    """Replace the log file with one holding ``data`` (what follows the sealed segments):
    the second half of a roll, or the repair of a roll that stopped after its commit."""
    temporary = log_path.with_name(f".{log_path.name}.{os.getpid()}.next")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        fd = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, mode
        )
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        _reached("log-written")
        os.rename(temporary, log_path)
        _sync_dir(log_path.parent)
        _reached("log-renamed")
    except OSError as exc:
        raise LogWriteError(
            f"{log_path}: cannot start the log file after sealing a segment "
            f"({exc.strerror}); the next writer finishes the roll"
        ) from exc


def erase(
    log_path: Path,
    sealed: Sealed | None,
    removed: dict[str, int],
    unsealed: int,
    mode: int,
) -> Erasure:
    """Erase, in the sealed segments, the content of every ``created`` and ``set`` event of
    a run in ``removed`` older than the run's removal (its seq there), called holding the
    log's lock. Each rewritten segment is checked line by line first (nothing forged is
    laundered), written under a new name (gzip when it was not compressed: the padding is
    what is reclaimed), committed in the manifest, then the old file is removed."""
    if sealed is None:
        return Erasure(unsealed=unsealed)
    directory = segments_dir(log_path)
    _remove_strays(directory, sealed)
    infos = list(sealed.segments)
    counts = {"erased": 0, "segments": 0, "before": 0, "after": 0, "v1": 0, "short": 0}
    retired: list[Path] = []
    for index, info in enumerate(infos):
        data = b"".join(_chunks(sealed, index))
        lines = data[:-1].split(b"\n")
        prev = info.prev_hash
        changed = 0
        for number, line in enumerate(lines):
            event = decode_event(line)
            if line_hash(line, prev) != event.hash:
                raise LogCorruptError(
                    str(sealed.path(index)),
                    event.seq,
                    "hash link broken: the segment does not verify; nothing was erased",
                )
            prev = event.hash
            if type(event) is not ObjectCreated and type(event) is not FieldSet:
                continue
            removal = removed.get(event.run_id)
            if removal is None or event.seq > removal:
                continue
            if event.v != 2:
                counts["v1"] += 1
                continue
            try:
                lines[number] = erased_line(line)
            except ValueError:
                counts["short"] += 1
                continue
            changed += 1
        if not changed:
            continue
        compression = info.compression or "gzip"
        new_data = b"\n".join(lines) + b"\n"
        stored = compress(new_data, compression)
        name = segment_name(info.first_seq, info.last_seq, compression, info.generation + 1)
        write_atomically(directory / name, stored, mode, "erased-segment")
        infos[index] = msgspec.structs.replace(
            info,
            name=name,
            stored=len(stored),
            compression=compression,
            erased=info.erased + changed,
            generation=info.generation + 1,
        )
        retired.append(sealed.path(index))
        counts["erased"] += changed
        counts["segments"] += 1
        counts["before"] += info.stored
        counts["after"] += len(stored)
    if retired:
        write_atomically(directory / MANIFEST, manifest_bytes(infos), mode, "erased-manifest")
        for path in retired:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        _sync_dir(directory)
    return Erasure(
        erased=counts["erased"],
        segments=counts["segments"],
        bytes_before=counts["before"],
        bytes_after=counts["after"],
        unsealed=unsealed,
        version_1=counts["v1"],
        too_short=counts["short"],
    )


_SEGMENT_FILE: Final = re.compile(r"^(\.)?\d{12}-\d{12}(\.g\d+)?\.jsonl(\.gz|\.xz)?(\.\d+\.tmp)?$")


def _remove_strays(directory: Path, sealed: Sealed) -> None:
    """Remove segment files the manifest does not list (a roll or an erasure that stopped
    before or after its commit left them; an old one may hold erased content)."""
    listed = {info.name for info in sealed.segments}
    for entry in os.scandir(directory):
        if entry.name not in listed and _SEGMENT_FILE.match(entry.name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


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


__all__ = [
    "COMPRESSIONS",
    "MANIFEST",
    "SEGMENTS_SUFFIX",
    "Erasure",
    "LogBytes",
    "Manifest",
    "RollPolicy",
    "Sealed",
    "SegmentInfo",
    "compress",
    "erase",
    "manifest_bytes",
    "replace_log_file",
    "roll_policy",
    "seal_segment",
    "sealed_prefix",
    "segment_name",
    "segments_dir",
    "write_atomically",
]
