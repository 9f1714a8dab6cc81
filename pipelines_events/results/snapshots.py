"""Snapshots: the projections' state at a log position, so opening skips the replay.

A snapshot's body (msgpack) holds the log position it reflects and each projection's
bytes. The storage encodes and decodes the body; the log's engine keeps the bytes
safely (:attr:`pipelines_events.log.base.EventLog.snapshots`: a file beside the file log,
checksummed, written atomically). A snapshot is only a cache: the log is the record, and
a snapshot that is damaged, does not match its log or cannot be trusted is ignored (with
a warning) in favour of a full replay.
"""

from __future__ import annotations

from typing import Final

import msgspec

from pipelines_events.errors import SnapshotError
from pipelines_events.events import SCHEMA_VERSION, LogPosition

FORMAT: Final = 2
"""Version of the snapshot layout (2: the results and history parts are JSON)."""


class SnapshotIgnored(UserWarning):
    """A snapshot could not be used; the storage replayed the whole log instead."""


class Snapshot(msgspec.Struct, frozen=True):
    """The state of the projections (``parts``, by name) after ``position`` in the log."""

    position: LogPosition
    parts: dict[str, bytes]
    schema: int = SCHEMA_VERSION
    format: int = FORMAT


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """The body a snapshot store keeps for ``snapshot``."""
    return msgspec.msgpack.encode(snapshot)


def decode_snapshot(body: bytes, where: str) -> Snapshot:
    """The snapshot in ``body`` (read from ``where``); raises :class:`SnapshotError`
    when it cannot be read or is of a format or schema this version does not read."""
    try:
        snapshot = msgspec.msgpack.decode(body, type=Snapshot)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise SnapshotError(f"{where}: the snapshot cannot be read: {exc}") from None
    if snapshot.format != FORMAT or snapshot.schema > SCHEMA_VERSION:
        raise SnapshotError(
            f"{where}: snapshot format {snapshot.format}, schema {snapshot.schema} is not one "
            f"this version reads (format {FORMAT}, schema up to {SCHEMA_VERSION})"
        )
    return snapshot
