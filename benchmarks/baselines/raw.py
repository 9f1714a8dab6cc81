"""The raw ceiling: what appending and replaying JSON lines costs with nothing else around.

(a) :func:`append_seconds_per_event`: per event, msgspec-encode a small struct shaped like
the project's state-change event, chain it with SHA-256 over the previous hash and the
line's bytes, ``os.write`` the line on an ``O_APPEND`` descriptor (optionally inside an
``flock`` pair, optionally followed by ``os.fsync``). :func:`append_breakdown` times each
of those steps on its own.

(b) :func:`replay_seconds`: stream any JSON-lines file whose lines are objects with
``"id"`` and ``"type"`` members: read 1 MiB chunks, split lines, msgspec-decode each line
(into ``dict`` or a permissive struct that keeps only ``id`` and ``type``) and fold into a
dict keyed by ``id``. :func:`write_event_file` writes such a file of N events quickly.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pathlib
import time
import uuid
from typing import Any, Final, Literal

import msgspec

GENESIS_HASH: Final = b"0" * 64
CHUNK_SIZE: Final = 1 << 20
TIMESTAMP: Final = "2026-11-27T10:00:00.000000+00:00"
"""The fixed timestamp of generated events (clock reads are not part of the ceiling)."""
_HASH_OPEN: Final = b',"hash":"'


class RawSetEvent(msgspec.Struct, kw_only=True, tag="set", tag_field="type"):
    """A state change shaped like the project's ``FieldSet`` event (one ``set_`` call)."""

    v: int = 1
    seq: int
    ts: str
    run_id: str
    kind: str
    id: str
    field: str
    value: Any = None


class RawCreatedEvent(msgspec.Struct, kw_only=True, tag="created", tag_field="type"):
    """An object's creation shaped like the project's ``ObjectCreated`` event."""

    v: int = 1
    seq: int
    ts: str
    run_id: str
    kind: str
    id: str
    parent_id: str | None = None
    attrs: dict[str, Any] = {}


class AnyLine(msgspec.Struct):
    """A permissive view of a line: only ``id`` and ``type`` are decoded, the rest skipped."""

    id: str
    type: str


def _chained(body: bytes, previous: bytes) -> tuple[bytes, bytes]:
    """The line for ``body`` (a JSON object) with its ``hash`` member, and that hash."""
    digest = hashlib.sha256(previous + body).hexdigest().encode()
    return body[:-1] + _HASH_OPEN + digest + b'"}\n', digest


def _set_event(seq: int, run_id: str, object_id: str) -> RawSetEvent:
    return RawSetEvent(
        seq=seq,
        ts=TIMESTAMP,
        run_id=run_id,
        kind="task_result",
        id=object_id,
        field="status",
        value="RUNNING",
    )


def append_seconds_per_event(
    path: pathlib.Path, n: int, *, durable: bool = False, lock: bool = False
) -> float:
    """Append ``n`` chained events to ``path`` one ``os.write`` each; seconds per event.

    ``durable`` adds an ``os.fsync`` after every write, ``lock`` an ``flock``
    LOCK_EX/LOCK_UN pair around it. Events go to 100 object ids of one run.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    encoder = msgspec.json.Encoder()
    run_id = str(uuid.uuid4())
    ids = [str(uuid.uuid4()) for _ in range(100)]
    previous = GENESIS_HASH
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = time.perf_counter()
        for seq in range(1, n + 1):
            body = encoder.encode(_set_event(seq, run_id, ids[seq % 100]))
            line, previous = _chained(body, previous)
            if lock:
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            if durable:
                os.fsync(fd)
            if lock:
                fcntl.flock(fd, fcntl.LOCK_UN)
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
    return elapsed / n


def append_breakdown(directory: pathlib.Path, n: int, *, n_fsync: int = 200) -> dict[str, float]:
    """Microseconds per event of each step of (a), timed on its own.

    Keys: ``encode``, ``sha256``, ``write``, ``flock_pair``, ``fsync`` (the last over
    ``n_fsync`` write+fsync rounds minus the write) and ``total`` (the unsynced loop of
    :func:`append_seconds_per_event`).
    """
    encoder = msgspec.json.Encoder()
    run_id = str(uuid.uuid4())
    ids = [str(uuid.uuid4()) for _ in range(100)]
    events = [_set_event(seq, run_id, ids[seq % 100]) for seq in range(1, n + 1)]
    result: dict[str, float] = {}

    start = time.perf_counter()
    bodies = [encoder.encode(event) for event in events]
    result["encode"] = (time.perf_counter() - start) / n * 1e6

    previous = GENESIS_HASH
    lines = []
    start = time.perf_counter()
    for body in bodies:
        line, previous = _chained(body, previous)
        lines.append(line)
    result["sha256"] = (time.perf_counter() - start) / n * 1e6

    path = pathlib.Path(directory) / "raw-breakdown.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        start = time.perf_counter()
        for line in lines:
            os.write(fd, line)
        result["write"] = (time.perf_counter() - start) / n * 1e6

        start = time.perf_counter()
        for _ in range(n):
            fcntl.flock(fd, fcntl.LOCK_EX)
            fcntl.flock(fd, fcntl.LOCK_UN)
        result["flock_pair"] = (time.perf_counter() - start) / n * 1e6

        start = time.perf_counter()
        for line in lines[:n_fsync]:
            os.write(fd, line)
            os.fsync(fd)
        rounds = min(n_fsync, n)
        result["fsync"] = (time.perf_counter() - start) / rounds * 1e6 - result["write"]
    finally:
        os.close(fd)
    path.unlink()
    result["total"] = append_seconds_per_event(path, n) * 1e6
    path.unlink()
    return result


def write_event_file(
    path: pathlib.Path, n_events: int, *, events_per_object: int = 5, chain: bool = True
) -> int:
    """Write ``n_events`` JSON lines shaped like the project's events to ``path``; its size.

    Every ``events_per_object``-th event creates a new task result, the others set a
    field of the most recent one; ``chain`` computes the real SHA-256 chain (else every
    ``hash`` is the genesis hash). Lines are written in batches of 10,000.
    """
    encoder = msgspec.json.Encoder()
    run_id = str(uuid.uuid4())
    parent_id = str(uuid.uuid4())
    fields = ("status", "started", "message", "status", "completed")
    previous = GENESIS_HASH
    object_id = ""
    size = 0
    with open(path, "wb") as out:
        batch: list[bytes] = []
        for seq in range(1, n_events + 1):
            step = (seq - 1) % events_per_object
            event: RawCreatedEvent | RawSetEvent
            if step == 0:
                object_id = str(uuid.uuid4())
                event = RawCreatedEvent(
                    seq=seq,
                    ts=TIMESTAMP,
                    run_id=run_id,
                    kind="task_result",
                    id=object_id,
                    parent_id=parent_id,
                    attrs={"status": "PENDING", "serializable_task_object": {"index": seq}},
                )
            else:
                field = fields[step % len(fields)]
                event = RawSetEvent(
                    seq=seq,
                    ts=TIMESTAMP,
                    run_id=run_id,
                    kind="task_result",
                    id=object_id,
                    field=field,
                    value=TIMESTAMP if field in ("started", "completed") else "RUNNING",
                )
            body = encoder.encode(event)
            if chain:
                line, previous = _chained(body, previous)
            else:
                line = body[:-1] + _HASH_OPEN + GENESIS_HASH + b'"}\n'
            batch.append(line)
            if len(batch) >= 10_000:
                size += out.write(b"".join(batch))
                batch.clear()
        size += out.write(b"".join(batch))
    return size


def fold_file(
    path: pathlib.Path, *, into: Literal["dict", "struct"] = "dict", batch: bool = False
) -> dict[str, int]:
    """Stream ``path`` and fold it: object id -> members counted over its events.

    ``into="dict"`` decodes each line into a ``dict`` and counts its members;
    ``into="struct"`` decodes into :class:`AnyLine` (unknown members skipped) and counts
    1 per event. ``batch`` decodes each chunk's complete lines with one
    ``Decoder.decode_lines`` call instead of one ``decode`` per line. A last line
    without its newline is decoded too.
    """
    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
        dict[str, Any] if into == "dict" else AnyLine
    )
    folded: dict[str, int] = {}
    get = folded.get

    def fold(buffer: bytes) -> None:
        if into == "dict":
            events: list[dict[str, Any]] = (
                decoder.decode_lines(buffer)
                if batch
                else [decoder.decode(line) for line in buffer.splitlines() if line]
            )
            for event in events:
                object_id = event["id"]
                folded[object_id] = get(object_id, 0) + len(event)
        else:
            views: list[AnyLine] = (
                decoder.decode_lines(buffer)
                if batch
                else [decoder.decode(line) for line in buffer.splitlines() if line]
            )
            for view in views:
                folded[view.id] = get(view.id, 0) + 1

    rest = b""
    with open(path, "rb", buffering=0) as source:
        while chunk := source.read(CHUNK_SIZE):
            buffer = rest + chunk if rest else chunk
            cut = buffer.rfind(b"\n") + 1
            rest = buffer[cut:]
            if cut:
                fold(buffer[:cut])
    if rest.strip():
        fold(rest)
    return folded


def replay_seconds(
    path: pathlib.Path, *, into: Literal["dict", "struct"] = "dict", batch: bool = False
) -> float:
    """Seconds :func:`fold_file` takes over ``path``."""
    start = time.perf_counter()
    fold_file(path, into=into, batch=batch)
    return time.perf_counter() - start
