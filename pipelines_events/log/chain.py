"""The hash chain and the line encoding of events, shared by every engine.

A line is the event's JSON (msgspec) with a last member ``"hash"``. Its *head* is the
line's bytes before ``,"hash":``. In schema version 2 (written now) the hash is the
SHA-256 (hex) of the previous event's hash followed by the line's *digest*, the SHA-256
(hex) of its head, so a link verifies from the digest alone and an erased event
(:class:`~pipelines_events.events.Erased`, which keeps the digest) still verifies. In
version 1 the hash is the SHA-256 of the previous hash followed by the head itself. A
log may hold version 1 lines followed by version 2 lines, never the reverse. Every
engine stores, and verifies, exactly these bytes, so identical events give identical
chains on every engine (a run copied from one engine to another keeps its hashes).
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
    Erased,
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


class _Peek(msgspec.Struct):
    type: str = ""
    v: int = 0
    digest: str = ""


_peek = msgspec.json.Decoder(_Peek).decode
_sha256 = hashlib.sha256


def content_digest(head: bytes) -> str:
    """The digest of a line's head (its bytes before ``,"hash":``): SHA-256, hex."""
    return _sha256(head).hexdigest()


def link_hash(prev_hash: str, digest: str) -> str:
    """The version 2 hash of a line whose digest is ``digest``, after ``prev_hash``."""
    return _sha256((prev_hash + digest).encode("ascii")).hexdigest()


def head_hash(head: bytes, prev_hash: str, version: int = SCHEMA_VERSION) -> str:
    """The hash of a line whose head is ``head`` in schema ``version``, after ``prev_hash``."""
    if version == 1:
        return _sha256(prev_hash.encode("ascii") + head).hexdigest()
    return _sha256((prev_hash + _sha256(head).hexdigest()).encode("ascii")).hexdigest()


def _peeked(line: bytes) -> _Peek | None:
    try:
        return _peek(line)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return None


def seal(body: bytes, prev_hash: str) -> tuple[bytes, str]:
    """Return the line (with its newline) and hash of an encoded event chained to ``prev_hash``.

    ``body`` is the event encoded with an empty ``hash`` and ends with ``}``; it is chained
    by the rule of its ``v`` (version 1 for ``v`` 1, version 2 otherwise).
    """
    head = body[:-1]
    peek = _peeked(body)
    digest = head_hash(head, prev_hash, 1 if peek is not None and peek.v == 1 else 2)
    return b"".join((head, HASH_HEAD, digest.encode("ascii"), b'"}\n')), digest


def line_hash(line: bytes, prev_hash: str) -> str:
    """The hash ``line`` (without its newline) must carry after ``prev_hash``, by the rule
    of its version: an erased line links its ``digest``."""
    peek = _peeked(line)
    if peek is not None and peek.type == "erased":
        return link_hash(prev_hash, peek.digest)
    version = 1 if peek is not None and peek.v == 1 else 2
    return head_hash(line[:-HASH_SUFFIX_LEN], prev_hash, version)


def event_hash(event: AnyEvent, line: bytes, prev_hash: str) -> str:
    """The hash ``line`` (without its newline), decoded as ``event``, must carry."""
    if type(event) is Erased:
        return link_hash(prev_hash, event.digest)
    return head_hash(line[:-HASH_SUFFIX_LEN], prev_hash, 1 if event.v == 1 else 2)


def link_ok(line: bytes, prev_hash: str) -> bool:
    """Whether ``line`` (without its newline) chains to ``prev_hash`` through its own hash."""
    if len(line) <= HASH_SUFFIX_LEN or line[-HASH_SUFFIX_LEN:-66] != HASH_HEAD:
        return False
    return line[-66:-2] == line_hash(line, prev_hash).encode("ascii")


def erased_line(line: bytes) -> bytes:
    """The line (without newline) that replaces the version 2 ``line`` (without newline)
    once its content is erased: the same seq, batch place and hash, and the same length
    (padded with spaces before its hash member), so byte offsets after it do not move.

    It keeps the event's ``ts``, and its ``run_id``, ``kind`` and ``id`` when they fit in
    the line's length, else leaves them empty. Raises :class:`ValueError` for a line that
    cannot be erased: not a version 2 event, already erased, or too short to hold a digest.
    """
    event = decode_event(line)
    if type(event) is Erased:
        raise ValueError(f"seq {event.seq} is erased already")
    if event.v != 2:
        raise ValueError(
            f"seq {event.seq} is a schema version {event.v} event: its link hashes its "
            "content, which cannot be erased without breaking the chain"
        )
    digest = content_digest(line[:-HASH_SUFFIX_LEN])
    kept = {"ts": event.ts, "run_id": event.run_id, "kind": event.kind, "id": event.id}
    for blank in ((), ("kind", "id"), ("kind", "id", "run_id")):
        fields = {name: "" if name in blank else value for name, value in kept.items()}
        erased = Erased(v=2, seq=event.seq, more=event.more, digest=digest, **fields)
        head = _encoder.encode(erased)[:-1]
        room = len(line) - HASH_SUFFIX_LEN - len(head)
        if room >= 0:
            return b"".join((head, b" " * room, line[-HASH_SUFFIX_LEN:]))
    raise ValueError(f"seq {event.seq} is too short a line to hold the digest of its content")


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
    head = body[:-1]
    digest = _sha256((prev_hash + _sha256(head).hexdigest()).encode("ascii")).hexdigest()
    msgspec.structs.force_setattr(event, "hash", digest)
    return event, b"".join((head, HASH_HEAD, digest.encode("ascii"), b'"}\n')), len(body)


_EVENT_TYPES: Final = (ObjectCreated, FieldSet, RunRemoved)
_TAGS: Final = {ObjectCreated: "created", FieldSet: "set", RunRemoved: "removed"}


def check_drafts(location: str, drafts: Sequence[object]) -> None:
    """Raise :class:`LogWriteError` naming ``location`` when a draft is not an event."""
    for index, draft in enumerate(drafts):
        if isinstance(draft, Erased):
            raise LogWriteError(
                f"{location}: event {index + 1} of the batch is an erased event: only "
                "cleanup's erasure writes those, in place; nothing was written"
            )
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
            digest = link_hash(prev_hash, content_digest(head))  # version 2
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
    "content_digest",
    "decode_event",
    "encode_event",
    "erased_line",
    "event_hash",
    "head_hash",
    "line_hash",
    "link_hash",
    "link_ok",
    "seal",
    "seal_batch",
]
