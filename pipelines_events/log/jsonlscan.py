"""The file log's verifying scan: every line checked (its JSON, schema version, seq and
hash link) while a writer may append or roll under it, and ``read_events``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import msgspec

from pipelines_events.errors import (
    LogCorruptError,
    LogError,
)
from pipelines_events.events import (
    SCHEMA_VERSION,
    SCHEMA_VERSIONS,
    AnyEvent,
    LogPosition,
)
from pipelines_events.log.chain import (
    HASH_HEAD,
    HASH_SUFFIX_LEN,
    decode_event,
    event_hash,
    line_hash,
    link_ok,
)
from pipelines_events.log.jsonlfile import (
    _CHUNK,
    _MAX_RESTARTS,
    _pread,
    _size,
)
from pipelines_events.log.jsonlhelped import helped_scan, helper_min_bytes
from pipelines_events.log.segments import LogBytes


def scan(
    fd: int | LogBytes,
    position: LogPosition,
    name: str,
    *,
    limit: int | None = None,
    group: bool = False,
) -> Iterator[tuple[list[AnyEvent], LogPosition]]:
    """Yield each complete batch after ``position`` with the position after it (with
    ``group``, all the complete batches of each chunk read, as one list).

    Verifies every line (JSON, event type, schema version, seq, batch, hash link) and
    raises :class:`LogCorruptError` with the line number on the first bad one. Stops
    before an unfinished last line or batch. ``limit`` stops at that byte offset.
    A line that fails because a writer cut a torn tail and appended while it was read
    is read again; a file shorter than ``position`` raises :class:`LogError`. A long read
    checks the hash links in a helper process on another core
    (:mod:`pipelines_events.log.jsonlhelped`), with the same result.
    """
    end = _size(fd) if limit is None else limit
    if end < position.offset and limit is None:
        raise LogError(_shrunk(name, end, position.offset))
    remaining = end - position.offset
    min_bytes = helper_min_bytes() if remaining > 0 else None
    if min_bytes is not None and remaining >= min_bytes:
        for item in helped_scan(fd, position, end, group=group):
            if isinstance(item, LogPosition):
                position = item  # not plain version 2 lines: on with the careful scan
                break
            yield item
        else:
            return
    yield from _scan(fd, position, name, end, group)


# Long on purpose: the hot loop of every read and of open; its state (carry, batch, the
# last complete batch, the restart after a torn tail was cut) lives in locals so that
# each line costs one hash and one decode, without a call per line.
def _scan(
    fd: int | LogBytes, position: LogPosition, name: str, end: int, group: bool
) -> Iterator[tuple[list[AnyEvent], LogPosition]]:
    """:func:`scan` on this core, from ``position`` up to byte ``end``."""
    offset = position.offset
    seq = position.seq
    prev = position.hash
    batch: list[AnyEvent] = []
    done, done_offset, done_seq, done_hash = 0, offset, seq, prev
    mark = position  # after the last batch yielded
    restarts = 0
    carry = b""
    read_at = offset
    sha256 = hashlib.sha256
    decode = decode_event
    version = -1  # the schema version of the last line read (-1: none yet)
    cut = -HASH_SUFFIX_LEN
    head_end = cut + len(HASH_HEAD)
    while read_at < end:
        chunk = _pread(fd, min(_CHUNK, end - read_at), read_at)
        if not chunk:
            break
        read_at += len(chunk)
        data = carry + chunk if carry else chunk
        lines = data.split(b"\n")
        carry = lines.pop()
        try:
            for line in lines:
                seq += 1
                if version == 1:
                    digest = sha256(prev.encode() + line[:cut]).hexdigest()
                else:
                    digest = sha256((prev + sha256(line[:cut]).hexdigest()).encode()).hexdigest()
                try:
                    event = decode(line)
                except (
                    msgspec.DecodeError,
                    msgspec.ValidationError,
                    UnicodeDecodeError,
                    RecursionError,
                ):
                    event = _check_line(line, seq, prev, name, batch[done:], version)
                if (
                    event.hash != digest
                    or event.seq != seq
                    or event.v != version
                    or line[cut:head_end] != HASH_HEAD
                    or (batch and batch[-1].more and batch[-1].more != event.more + 1)
                ):
                    # Another version, an erased line, or damage: the careful check.
                    event = _check_line(line, seq, prev, name, batch[done:], version)
                    version = event.v
                    digest = event.hash
                prev = digest
                offset += len(line) + 1
                batch.append(event)
                if event.more == 0:
                    if not group:
                        mark = LogPosition(offset, seq, prev)
                        yield batch, mark
                        batch = []
                    else:
                        done_offset, done_seq, done_hash, done = offset, seq, prev, len(batch)
        except LogCorruptError:
            if group:
                mark = LogPosition(done_offset, done_seq, done_hash)
            if restarts == _MAX_RESTARTS or not _changed(fd, mark, batch[done:], line, offset):
                raise
            # A writer cut the torn tail this scan had partly read and appended after it:
            # read again from the last complete batch.
            restarts += 1
            batch = batch[:done]
            offset, seq, prev = mark.offset, mark.seq, mark.hash
            carry = b""
            read_at = offset
            continue
        if group and done:
            yield batch[:done], LogPosition(done_offset, done_seq, done_hash)
            batch = batch[done:]
            done = 0


def _changed(
    fd: int | LogBytes, mark: LogPosition, pending: list[AnyEvent], line: bytes, line_offset: int
) -> bool:
    """Whether the bytes from ``mark`` to the end of ``line`` (read as ``pending`` and
    ``line``) are no longer in the file: a scan read them across a repair."""
    length = line_offset + len(line) + 1 - mark.offset
    fresh = _pread(fd, length, mark.offset)
    if len(fresh) != length or not fresh.endswith(line + b"\n"):
        return True
    parts = fresh[: length - len(line) - 1].split(b"\n")
    if len(parts) != len(pending) + 1:
        return True
    prev = mark.hash
    for part, event in zip(parts, pending, strict=False):
        prev = line_hash(part, prev)
        if prev != event.hash:
            return True
    return False


def _shrunk(name: str, size: int, offset: int) -> str:
    return (
        f"{name}: the log is {size} bytes, shorter than the {offset} bytes already read from "
        "it: it was truncated or replaced in place (a backup restored over it?) while it was "
        "open; nothing more is read or written through this handle: open the log again"
    )


_TOO_DEEP = (
    "a value nests lists and dicts too deeply to decode (written by another tool? "
    "pipelines-events never writes one nested more than 64 levels deep)"
)


def _check_line(
    line: bytes, seq: int, prev: str, name: str, batch: list[AnyEvent], version: int = 0
) -> AnyEvent:
    """The event of ``line`` once every check passes (``version``: the last line's schema
    version, 0 when unknown), else :class:`LogCorruptError` with the most precise reason."""
    if not link_ok(line, prev):
        _raise_bad_line(line, seq, prev, name)
    try:
        event = decode_event(line)
    except msgspec.ValidationError as exc:
        raise LogCorruptError(name, seq, f"not a valid event: {exc}") from None
    except msgspec.DecodeError as exc:
        raise LogCorruptError(name, seq, f"not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise LogCorruptError(name, seq, f"not valid UTF-8: {exc.reason}") from None
    except RecursionError:
        raise LogCorruptError(name, seq, _TOO_DEEP) from None
    if event.v not in SCHEMA_VERSIONS:
        _raise_version(event.v, seq, name)
    if event.v < version:
        raise LogCorruptError(
            name,
            seq,
            f"a schema version {event.v} event after version {version} events: a log only "
            "ever steps up from version 1 to 2 (a line was moved or spliced in)",
        )
    if event.seq != seq:
        raise LogCorruptError(
            name,
            seq,
            f"expected seq {seq}, found seq {event.seq} (a line is missing, repeated "
            "or out of order)",
        )
    if batch and batch[-1].more != event.more + 1:
        raise LogCorruptError(
            name,
            seq,
            f"the batch that began at seq {batch[0].seq} expected {batch[-1].more - 1} "
            f"more events here, found {event.more} (a batch was cut or spliced)",
        )
    if event.hash != event_hash(event, line, prev):
        raise LogCorruptError(name, seq, 'the "hash" member does not match the line')
    return event


def _raise_version(version: int, seq: int, name: str) -> None:
    if version > SCHEMA_VERSION:
        raise LogCorruptError(
            name,
            seq,
            f"written with schema version {version}; this pipelines-events reads "
            f"versions up to {SCHEMA_VERSION}: upgrade pipelines-events to read this log",
        )
    raise LogCorruptError(name, seq, f"schema version {version} is not a version ever written")


def _raise_bad_line(line: bytes, seq: int, prev: str, name: str) -> None:
    """Explain why a line fails its hash link, most specific reason first."""
    if not line.strip():
        raise LogCorruptError(name, seq, "empty line")
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LogCorruptError(
            name,
            seq,
            f"not valid UTF-8 (byte {exc.start}: {line[exc.start : exc.start + 1]!r}); "
            "is this a log file?",
        ) from None
    try:
        event = decode_event(line)
    except msgspec.ValidationError as exc:
        raise LogCorruptError(name, seq, f"not a valid event: {exc}") from None
    except msgspec.DecodeError as exc:
        raise LogCorruptError(name, seq, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise LogCorruptError(name, seq, _TOO_DEEP) from None
    if event.v > SCHEMA_VERSION:
        _raise_version(event.v, seq, name)
    if event.seq != seq:
        raise LogCorruptError(
            name,
            seq,
            f"expected seq {seq}, found seq {event.seq} (a line is missing, repeated "
            "or out of order)",
        )
    if len(line) <= HASH_SUFFIX_LEN or not line.endswith(b'"}'):
        raise LogCorruptError(name, seq, 'the line does not end with its "hash" member')
    raise LogCorruptError(
        name,
        seq,
        f"hash link broken: the line does not chain to the previous event's hash "
        f"{prev[:12]}... (the line, or one before it, was edited)",
    )
