"""The hash chain and the line encoding of events, shared by every engine.

A line is the event's JSON (msgspec) with a last member ``"hash"``: the SHA-256 (hex) of
the previous event's hash followed by the line's bytes before ``,"hash":``. Every engine
stores, and verifies, exactly these bytes, so identical events give identical chains on
every engine (a run copied from one engine to another keeps its hashes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

import msgspec

from pipelines_events.errors import EventTooLargeError, LogWriteError
from pipelines_events.events import (
    GENESIS_HASH,
    SCHEMA_VERSION,
    AnyEvent,
    FieldSet,
    ObjectCreated,
    RunRemoved,
    now_text,
)

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)

encode_event = _encoder.encode
"""Encode an event to JSON bytes (without its ``hash`` when ``hash`` is empty)."""

decode_event = _decoder.decode
"""Decode one JSON line (bytes) to an event; raises :class:`msgspec.DecodeError`."""

HASH_HEAD: Final = b',"hash":"'
"""The bytes that open the last member of every line."""
HASH_SUFFIX_LEN: Final = len(HASH_HEAD) + 64 + 2
"""Bytes of ``,"hash":"<64 hex>"}`` at the end of every line (before the newline)."""


def seal(body: bytes, prev_hash: str) -> tuple[bytes, str]:
    """Return the line (with its newline) and hash of an encoded event chained to ``prev_hash``.

    ``body`` is the event encoded with an empty ``hash`` and ends with ``}``.
    """
    head = body[:-1]
    digest = hashlib.sha256(prev_hash.encode("ascii") + head).hexdigest()
    return b"".join((head, HASH_HEAD, digest.encode("ascii"), b'"}\n')), digest


def link_ok(line: bytes, prev_hash: str) -> bool:
    """Whether ``line`` (without its newline) chains to ``prev_hash`` through its own hash."""
    if len(line) <= HASH_SUFFIX_LEN or line[-HASH_SUFFIX_LEN:-66] != HASH_HEAD:
        return False
    digest = hashlib.sha256(prev_hash.encode("ascii") + line[:-HASH_SUFFIX_LEN]).hexdigest()
    return line[-66:-2] == digest.encode("ascii")


def line_hash(line: bytes, prev_hash: str) -> str:
    """The hash ``line`` (without its newline) must carry after ``prev_hash``."""
    return hashlib.sha256(prev_hash.encode("ascii") + line[:-HASH_SUFFIX_LEN]).hexdigest()


def chain_draft(
    draft: AnyEvent, *, seq: int, more: int, ts: str, prev_hash: str
) -> tuple[AnyEvent, bytes, int]:
    """Seal ``draft`` as the event ``seq`` of a log whose event ``seq - 1`` has ``prev_hash``.

    Returns the event (``v``, ``seq``, ``ts``, ``more`` and ``hash`` set), its line with
    the newline, and the length of the line without its hash member (compare it with an
    engine's limit before storing). Every engine appends through this function.
    """
    event = msgspec.structs.replace(draft, v=SCHEMA_VERSION, seq=seq, ts=ts, more=more, hash="")
    body = _encoder.encode(event)
    line, digest = seal(body, prev_hash)
    msgspec.structs.force_setattr(event, "hash", digest)
    return event, line, len(body)


_EVENT_TYPES: Final = (ObjectCreated, FieldSet, RunRemoved)


def check_drafts(location: str, drafts: Sequence[object]) -> None:
    """Raise :class:`LogWriteError` naming ``location`` when a draft is not an event."""
    for index, draft in enumerate(drafts):
        if not isinstance(draft, _EVENT_TYPES):
            raise LogWriteError(
                f"{location}: event {index + 1} of the batch is not an event: {draft!r}; "
                "nothing was written"
            )


def seal_batch(
    location: str, drafts: Sequence[AnyEvent], *, seq: int, prev_hash: str, max_event_bytes: int
) -> tuple[list[AnyEvent], list[bytes]]:
    """Seal ``drafts`` as one batch after the event ``seq`` whose hash is ``prev_hash``.

    Returns the events and their lines (with newlines). A draft without ``ts`` gets the
    time now (one time for the whole batch). Raises :class:`LogWriteError` for a draft
    that is not an event and :class:`EventTooLargeError` for a line over
    ``max_event_bytes``, both naming ``location``: the caller has written nothing yet.
    """
    count = len(drafts)
    limit = max_event_bytes - HASH_SUFFIX_LEN
    if count == 1 and type(draft := drafts[0]) in _EVENT_TYPES:
        # One set_: the loop below, inlined (it is on the path of every call).
        event = msgspec.structs.replace(
            draft, v=SCHEMA_VERSION, seq=seq + 1, ts=draft.ts or now_text(), more=0, hash=""
        )
        body = _encoder.encode(event)
        if len(body) <= limit:
            head = body[:-1]
            digest = hashlib.sha256(prev_hash.encode("ascii") + head).hexdigest()
            msgspec.structs.force_setattr(event, "hash", digest)
            return [event], [b"".join((head, HASH_HEAD, digest.encode("ascii"), b'"}\n'))]
    now = ""
    events: list[AnyEvent] = []
    lines: list[bytes] = []
    check_drafts(location, drafts)
    for index, draft in enumerate(drafts):
        seq += 1
        ts = draft.ts
        if not ts:
            ts = now = now or now_text()
        event, line, length = chain_draft(
            draft, seq=seq, more=count - 1 - index, ts=ts, prev_hash=prev_hash
        )
        if length > limit:
            field = getattr(draft, "field", None)
            note = f", field {field!r}" if field else ""
            raise EventTooLargeError(
                f"{location}: event {index + 1} of the batch ({draft.kind} {draft.id}{note}) "
                f"encodes to {length + HASH_SUFFIX_LEN} bytes, over the log's limit of "
                f"{max_event_bytes} bytes; nothing was written"
            )
        prev_hash = event.hash
        events.append(event)
        lines.append(line)
    return events, lines


__all__ = [
    "GENESIS_HASH",
    "HASH_HEAD",
    "HASH_SUFFIX_LEN",
    "chain_draft",
    "check_drafts",
    "decode_event",
    "encode_event",
    "line_hash",
    "link_ok",
    "seal",
    "seal_batch",
]
