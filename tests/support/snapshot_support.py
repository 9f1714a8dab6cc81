"""Snapshot files read and written directly, for tests that inspect or forge them."""

from __future__ import annotations

from pathlib import Path

from pipelines_events.log.filesnapshots import (
    SLACK_BYTES,
    read_snapshot_file,
    size_bound,
    snapshot_path,
    write_snapshot_file,
)
from pipelines_events.results.snapshots import (
    Snapshot,
    SnapshotIgnored,
    decode_snapshot,
    encode_snapshot,
)

__all__ = [
    "SLACK_BYTES",
    "Snapshot",
    "SnapshotIgnored",
    "read_snapshot",
    "size_bound",
    "snapshot_path",
    "write_snapshot",
]


def read_snapshot(
    path: Path, *, owner: int | None = None, max_bytes: int | None = None
) -> Snapshot:
    """The snapshot in the file at ``path``, checked as the file log's store checks it."""
    return decode_snapshot(read_snapshot_file(path, owner=owner, max_bytes=max_bytes), str(path))


def write_snapshot(
    path: Path, snapshot: Snapshot, mode: int = 0o600, owner: int | None = None
) -> None:
    """Write ``snapshot`` to the file at ``path`` as the file log's store writes it."""
    write_snapshot_file(path, encode_snapshot(snapshot), mode, owner)
