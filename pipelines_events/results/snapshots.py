"""Snapshot files: the projections' state at a log position, so opening skips the replay.

A snapshot file holds a SHA-256 of its body on its first line, then the body (msgpack):
the log position it reflects and each projection's bytes. It is written to a temporary
file and renamed into place, so readers see a whole snapshot or the previous one. A
snapshot is only a cache: the log is the record, and a snapshot that is damaged or does
not match its log is ignored (with a warning) in favour of a full replay.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Final

import msgspec

from pipelines_events.errors import SnapshotError
from pipelines_events.events import SCHEMA_VERSION, LogPosition

FORMAT: Final = 1
"""Version of the snapshot file layout."""


class SnapshotIgnored(UserWarning):
    """A snapshot could not be used; the storage replayed the whole log instead."""


class Snapshot(msgspec.Struct, frozen=True):
    """The state of the projections (``parts``, by name) after ``position`` in the log."""

    position: LogPosition
    parts: dict[str, bytes]
    schema: int = SCHEMA_VERSION
    format: int = FORMAT


def snapshot_path(log_path: Path) -> Path:
    """Where the snapshot of the log at ``log_path`` lives."""
    return log_path.with_name(log_path.name + ".snapshot")


def write_snapshot(path: Path, snapshot: Snapshot, mode: int = 0o600) -> None:
    """Write ``snapshot`` to ``path`` atomically (temporary file, fsync, rename)."""
    body = msgspec.msgpack.encode(snapshot)
    digest = hashlib.sha256(body).hexdigest().encode("ascii")
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
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


ABANDONED_AFTER: Final = 3600.0
"""Seconds after which a temporary snapshot file is taken as left by a writer that died."""


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


def read_snapshot(path: Path) -> Snapshot:
    """Read and check a snapshot; raises :class:`SnapshotError` saying what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read the snapshot: {exc.strerror}") from None
    digest, newline, body = data.partition(b"\n")
    if not newline or len(digest) != 64:
        raise SnapshotError(f"{path}: not a snapshot file (no checksum line)")
    if hashlib.sha256(body).hexdigest().encode("ascii") != digest:
        raise SnapshotError(f"{path}: the snapshot is damaged (its checksum does not match)")
    try:
        snapshot = msgspec.msgpack.decode(body, type=Snapshot)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SnapshotError(f"{path}: the snapshot cannot be read: {exc}") from None
    if snapshot.format != FORMAT or snapshot.schema > SCHEMA_VERSION:
        raise SnapshotError(
            f"{path}: snapshot format {snapshot.format}, schema {snapshot.schema} is not one "
            f"this version reads (format {FORMAT}, schema up to {SCHEMA_VERSION})"
        )
    return snapshot
