"""Checking the PostgreSQL log's rows: each row's line decoded, its hash link and batch
columns verified.
"""

from __future__ import annotations

from typing import Any

import msgspec

from pipelines_events.errors import (
    LogCorruptError,
)
from pipelines_events.events import (
    SCHEMA_VERSION,
    SCHEMA_VERSIONS,
    AnyEvent,
)
from pipelines_events.log.chain import (
    HASH_HEAD,
    HASH_SUFFIX_LEN,
    decode_event,
    event_hash,
)


def _decode(line: bytes, seq: int, name: str) -> AnyEvent:
    try:
        return decode_event(line)
    except msgspec.ValidationError as exc:
        raise LogCorruptError(name, seq, f"not a valid event: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise LogCorruptError(name, seq, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise LogCorruptError(name, seq, "a value nests too deeply to decode") from None


# Long on purpose: the per-row loop of every read; each check raises its own message.
def _verify(rows: list[tuple[Any, ...]], seq: int, prev: str, name: str) -> list[AnyEvent]:
    """Decode and verify rows ``(seq, more, hash, line)`` that follow ``seq``/``prev``."""
    events: list[AnyEvent] = []
    cut = -HASH_SUFFIX_LEN
    head_end = cut + len(HASH_HEAD)
    version = -1  # the schema version of the last row (-1: none yet)
    for row_seq, more, digest_column, raw in rows:
        seq += 1
        line = bytes(raw)
        if row_seq != seq:
            raise LogCorruptError(
                name, seq, f"expected seq {seq}, found seq {row_seq} (an event is missing)"
            )
        event = _decode(line, seq, name)
        if line[cut:head_end] != HASH_HEAD or not line.endswith(b'"}'):
            raise LogCorruptError(name, seq, 'the line does not end with its "hash" member')
        if event.v not in SCHEMA_VERSIONS or event.v < version:
            if event.v > SCHEMA_VERSION:
                raise LogCorruptError(
                    name,
                    seq,
                    f"written with schema version {event.v}; this pipelines-events reads "
                    f"versions up to {SCHEMA_VERSION}: upgrade pipelines-events to read this log",
                )
            if event.v in SCHEMA_VERSIONS:
                raise LogCorruptError(
                    name,
                    seq,
                    f"a schema version {event.v} event after version {version} events: a log "
                    "only ever steps up from version 1 to 2",
                )
            raise LogCorruptError(
                name, seq, f"schema version {event.v} is not a version ever written"
            )
        version = event.v
        digest = event_hash(event, line, prev)
        if event.seq != seq:
            raise LogCorruptError(
                name, seq, f"the line says seq {event.seq}, but its row is seq {seq}"
            )
        if event.hash != digest:
            raise LogCorruptError(
                name,
                seq,
                f"hash link broken: the line does not chain to the previous event's hash "
                f"{prev[:12]}... (the line, or one before it, was edited)",
            )
        if digest_column != digest or more != event.more:
            raise LogCorruptError(
                name, seq, "the row's hash or more column does not match its line"
            )
        if events and events[-1].more and events[-1].more != event.more + 1:
            raise LogCorruptError(
                name,
                seq,
                f"the batch expected {events[-1].more - 1} more events here, found "
                f"{event.more} (a batch was cut or spliced)",
            )
        prev = digest
        events.append(event)
    return events
