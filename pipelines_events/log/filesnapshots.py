"""The file log's snapshot store: one file beside the log, kept safely.

The file holds a SHA-256 of its body on its first line, then the body (the bytes the
storage gave, which the store never interprets). It is written to a temporary file and
renamed into place, so readers see a whole snapshot or the previous one. A snapshot is
only read when it is a plain file of the log's owner, of a bounded size, opened without
following a link.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from pipelines_events.errors import SnapshotError
from pipelines_events.log.base import SnapshotStore

SLACK_BYTES: Final = 1 << 20
"""Bytes a snapshot may hold beyond twice its log's size (see :func:`size_bound`)."""

ABANDONED_AFTER: Final = 3600.0
"""Seconds after which a temporary snapshot file is taken as left by a writer that died."""


def size_bound(log_size: int) -> int:
    """The largest snapshot read for a log of ``log_size`` bytes: twice the log plus 1 MiB.

    Each part of a snapshot holds values in the log's own encoding, each taken from an
    event of the log, so no part is larger than the log; the slack covers the framing.
    """
    return 2 * max(log_size, 0) + SLACK_BYTES


def snapshot_path(log_path: Path) -> Path:
    """Where the snapshot of the log at ``log_path`` lives."""
    return log_path.with_name(log_path.name + ".snapshot")


def write_snapshot_file(
    path: Path, body: bytes, mode: int = 0o600, owner: int | None = None
) -> None:
    """Write ``body`` (after its checksum line) to ``path`` atomically (temporary file,
    fsync, rename).

    The temporary file is created new (never through a link) and renamed over ``path``,
    which replaces whatever is there (a link included) without following it. With
    ``owner`` (the log's uid) the file is given to that user, or, when that is not
    permitted, not written: readers ignore a snapshot of another owner.
    """
    digest = hashlib.sha256(body).hexdigest().encode("ascii")
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        if owner is not None and os.fstat(handle).st_uid != owner:
            os.fchown(handle, owner, -1)
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as out:
            out.write(digest + b"\n" + body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _remove_abandoned(path)


def _remove_abandoned(path: Path) -> None:
    """Remove temporary snapshot files that writers killed mid-write left behind.

    Only files older than :data:`ABANDONED_AFTER` go: a younger one may be another
    process's snapshot being written right now.
    """
    now = time.time()
    for leftover in path.parent.glob(glob.escape(path.name) + ".*"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > ABANDONED_AFTER:
                leftover.unlink()


_KINDS: Final = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_snapshot_file(
    path: Path, *, owner: int | None = None, max_bytes: int | None = None
) -> bytes:
    """The body of the snapshot file at ``path``, checked; raises :class:`SnapshotError`
    saying what is wrong.

    The file is opened without following a link and without blocking, and must be a
    regular file, owned by ``owner`` (a uid) when given, of at most ``max_bytes`` when
    given (:func:`size_bound` of the log's size), whose checksum line matches its body.
    """
    data = _read_file(path, owner, max_bytes)
    digest, newline, body = data.partition(b"\n")
    if not newline or len(digest) != 64:
        raise SnapshotError(f"{path}: not a snapshot file (no checksum line)")
    if hashlib.sha256(body).hexdigest().encode("ascii") != digest:
        raise SnapshotError(f"{path}: the snapshot is damaged (its checksum does not match)")
    return body


def _read_file(path: Path, owner: int | None, max_bytes: int | None) -> bytes:
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            raise SnapshotError(
                f"{path}: the snapshot is a symbolic link; a snapshot is never read through a link"
            ) from None
        raise SnapshotError(f"{path}: cannot read the snapshot: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SnapshotError(
                f"{path}: the snapshot is {_kind(info.st_mode)}, not a regular file"
            )
        if owner is not None and info.st_uid != owner:
            raise SnapshotError(
                f"{path}: the snapshot is owned by uid {info.st_uid}, not by the log's "
                f"owner (uid {owner})"
            )
        if max_bytes is not None and info.st_size > max_bytes:
            raise SnapshotError(
                f"{path}: the snapshot is {info.st_size} bytes, over its bound of {max_bytes} "
                "bytes (twice the log's size plus 1 MiB)"
            )
        chunks = []
        read = 0
        while chunk := os.read(fd, 1 << 24):
            chunks.append(chunk)
            read += len(chunk)
            if max_bytes is not None and read > max_bytes:
                raise SnapshotError(
                    f"{path}: the snapshot grew over its bound of {max_bytes} bytes while read"
                )
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read the snapshot: {exc.strerror}") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


class FileSnapshotStore(SnapshotStore):
    """The snapshot file beside a log file: read only from the log's owner and within
    :func:`size_bound` of the log's size; written atomically with the log's mode."""

    def __init__(self, log_path: Path, *, mode: int, log_size: Callable[[], int]) -> None:
        self._log_path = log_path
        self._path = snapshot_path(log_path)
        self._mode = mode
        self._log_size = log_size

    @property
    def location(self) -> str:
        return str(self._path)

    @property
    def path(self) -> Path:
        """The snapshot file."""
        return self._path

    def load(self) -> bytes | None:
        if not os.path.lexists(self._path):
            return None
        try:
            owner = os.stat(self._log_path).st_uid
        except OSError as exc:
            raise SnapshotError(f"{self._path}: cannot read the log: {exc.strerror}") from None
        return read_snapshot_file(self._path, owner=owner, max_bytes=size_bound(self._log_size()))

    def save(self, data: bytes) -> None:
        write_snapshot_file(self._path, data, self._mode, os.stat(self._log_path).st_uid)
