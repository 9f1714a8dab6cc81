"""What the manifest of a file log's sealed segments says: the segments' names, their
entries, the manifest itself and the roll policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import msgspec

from pipelines_events.errors import LogOpenError

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
    size = _roll_at(location, "segment_bytes", segment_bytes)
    events = _roll_at(location, "segment_events", segment_events)
    if segment_compression is not None and segment_compression not in COMPRESSIONS:
        raise LogOpenError(
            f"{location}: segment_compression must be one of "
            f"{', '.join(map(repr, COMPRESSIONS))} or None, not {segment_compression!r}; "
            "nothing was written"
        )
    if size is None and events is None:
        if segment_compression is not None:
            raise LogOpenError(
                f"{location}: segment_compression needs segment_bytes or segment_events "
                "(when to roll); nothing was written"
            )
        return None
    compression = None if segment_compression is None else str(segment_compression)
    return RollPolicy(size, events, compression)


def _roll_at(location: str, name: str, value: object) -> int | None:
    """``value`` of option ``name`` checked: a whole number of at least 1, or None."""
    if value is None:
        return None
    if type(value) is not int or value < 1:
        raise LogOpenError(
            f"{location}: {name} must be a whole number of at least 1 (or None: never "
            f"roll by {name.split('_')[1]}), not {value!r}; nothing was written"
        )
    return value


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
