"""A log to import, read whole and checked before anything is written anywhere.

:func:`read_source` reads with bounded memory per line, verifies the hash chain, and
checks every event as the storage would fold it; any problem is an
:class:`~pipelines_events.audit._core.ImportRefusedError` naming the line.
"""

from __future__ import annotations

import os
import stat
from datetime import datetime
from typing import Any, Final

from pipelines_events.audit._core import ImportRefusedError, LogPath
from pipelines_events.errors import LogOpenError, PipelinesEventsError
from pipelines_events.events import (
    KINDS,
    PIPELINE_EXECUTION,
    START,
    STATUS,
    AnyEvent,
    Erased,
    FieldSet,
    ObjectCreated,
    RunRemoved,
    decode_value,
    parse_time,
)
from pipelines_events.log.base import DEFAULT_MAX_EVENT_BYTES
from pipelines_events.log.chain import HASH_SUFFIX_LEN, encode_event
from pipelines_events.log.open import is_url, open_log, redact_url
from pipelines_events.results.base import IDENTIFYING_FIELDS, encode_field_value
from projections.digest import DigestProjection
from projections.history import HistoryProjection
from projections.results import ResultsProjection

SEQ_SLACK: Final = 20
"""Bytes a line may grow by when sequenced again in the target (a longer seq)."""
MAX_LINE: Final = DEFAULT_MAX_EVENT_BYTES - SEQ_SLACK
"""The longest line an import accepts: the target's event limit, less :data:`SEQ_SLACK`."""

_CHUNK: Final = 1 << 20
_LINE_START: Final = b'{"type":"'
_MEMBERS: Final = frozenset({"id", "run_id", "kind", "parent_id"})
"""Names that are members of every event, never attributes of an object."""
_NAMED: Final = IDENTIFYING_FIELDS - _MEMBERS
"""Identifying attributes given at creation (``pipeline_id``, ``task_id``, ...): str only."""
_TAGS: Final = ("datetime", STATUS)
_LEVEL: Final = {kind: index for index, kind in enumerate(KINDS)}


class _Object:
    __slots__ = ("kind", "line", "run_id")

    def __init__(self, kind: str, run_id: str, line: int) -> None:
        self.kind = kind
        self.run_id = run_id
        self.line = line


def read_source(path: LogPath, *, max_line: int = MAX_LINE) -> list[list[AnyEvent]]:
    """Every batch of the log at ``path``, after checking the whole of it.

    The file must be a regular file (a pipe or device is refused without blocking);
    a line longer than ``max_line`` bytes is refused before it is read whole. Raises
    :class:`~pipelines_events.errors.LogCorruptError` for a broken chain and
    :class:`ImportRefusedError` for an event no storage could fold.
    """
    name = os.fspath(path)
    if is_url(name):
        return _read_engine(name, max_line)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise LogOpenError(f"{name}: no such log file") from None
    except OSError as exc:
        raise LogOpenError(f"{name}: cannot open the log: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LogOpenError(f"{name}: the log path is not a regular file")
        size = info.st_size
        _check_line_lengths(fd, size, name, max_line)
        batches: list[list[AnyEvent]] = []
        end = START
        with open_log(name, readonly=True) as log:
            for batch in log.read(START):
                if batch.cursor.offset > size:
                    break  # appended since the checks: not part of this import
                batches.append(batch.events)
                end = batch.cursor
        _check_tail(fd, end.offset, size, name, end.seq + 1)
    finally:
        os.close(fd)
    check_events(name, batches)
    return batches


def _read_engine(url: str, max_line: int) -> list[list[AnyEvent]]:
    """The batches of the log at ``url`` up to its head now (its engine verifies the
    chain), checked as :func:`read_source` checks a file's."""
    name = redact_url(url)
    batches: list[list[AnyEvent]] = []
    with open_log(url, readonly=True) as log:
        end = log.head()
        for batch in log.read(START):
            if batch.cursor.seq > end.seq:
                break  # appended since: not part of this import
            for event in batch.events:
                if len(encode_event(event)) + HASH_SUFFIX_LEN > max_line:
                    raise ImportRefusedError(
                        name,
                        event.seq,
                        f"the event is longer than {max_line} bytes, more than the target "
                        "log takes in one event",
                    )
            batches.append(batch.events)
    check_events(name, batches)
    return batches


def _check_line_lengths(fd: int, size: int, name: str, max_line: int) -> None:
    """Refuse a line longer than ``max_line`` bytes, reading at most a chunk at a time."""
    offset = 0
    line = 1  # the line the last part of the chunk belongs to
    length = 0  # bytes of that line read so far
    while offset < size:
        chunk = os.pread(fd, min(_CHUNK, size - offset), offset)
        if not chunk:
            break
        offset += len(chunk)
        parts = chunk.split(b"\n")
        lengths = [len(part) for part in parts]
        lengths[0] += length
        if max(lengths) > max_line:
            at = next(index for index, value in enumerate(lengths) if value > max_line)
            raise ImportRefusedError(
                name,
                line + at,
                f"the line is longer than {max_line} bytes, more than the target log "
                "takes in one event",
            )
        line += len(parts) - 1
        length = lengths[-1]


def _check_tail(fd: int, end: int, size: int, name: str, line: int) -> None:
    """Refuse bytes after the last whole batch unless they can be a batch being written."""
    if end >= size:
        return
    tail = os.pread(fd, min(size - end, 64), end)
    if not tail.strip(b"\0") or tail[: len(_LINE_START)] == _LINE_START[: len(tail)]:
        return  # an unfinished batch: left out, as every reader leaves it out
    raise ImportRefusedError(
        name,
        line,
        f"the file ends with {size - end} bytes that are not an event ({tail[:40]!r})",
    )


def check_events(name: str, batches: list[list[AnyEvent]]) -> None:
    """Check every event of ``batches`` (a log read from its start) as an import needs.

    Each event must fold in the storage's projections, and more: it stays within its
    run, does not change identifying fields, names objects of the right kind, and its
    values decode exactly as the storage decodes them.
    """
    objects: dict[str, _Object] = {}
    executions: dict[str, str] = {}  # run id -> the id of its live execution
    results, digest, history = ResultsProjection(), DigestProjection(), HistoryProjection()
    for batch in batches:
        for event in batch:
            line = event.seq
            try:
                _check_event(event, objects, executions)
            except _Refused as exc:
                raise ImportRefusedError(name, line, exc.reason) from None
            except RecursionError:
                raise ImportRefusedError(name, line, "a value is nested too deeply") from None
            try:
                results.apply(event)
                digest.apply(event)
            except (PipelinesEventsError, ValueError, TypeError, KeyError, RecursionError) as exc:
                raise ImportRefusedError(
                    name, line, f"no storage could fold this event: {exc}"
                ) from None
        try:
            history.batch(batch)
        except (PipelinesEventsError, ValueError, TypeError, KeyError, RecursionError) as exc:
            raise ImportRefusedError(
                name, batch[0].seq, f"no storage could fold this batch: {exc}"
            ) from None


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _check_event(
    event: AnyEvent,
    objects: dict[str, _Object],
    executions: dict[str, str],
) -> None:
    if type(event) is Erased:
        raise _Refused(
            f"seq {event.seq} is an erased event (cleanup --erase): its content is gone, so "
            "it cannot be imported (export the runs to keep: exports leave erased events out)"
        )
    kind, object_id, run_id = event.kind, event.id, event.run_id
    if kind not in _LEVEL:
        raise _Refused(f"{kind!r} is not a kind of result object; the kinds are {', '.join(KINDS)}")
    if not run_id:
        raise _Refused(f"{kind} {object_id!r} has an empty run id")
    if not object_id:
        raise _Refused(f"a {kind} of run {run_id!r} has an empty id")
    _check_ts(event.ts)
    if type(event) is ObjectCreated:
        _check_created(event, objects, executions)
        objects[object_id] = _Object(kind, run_id, event.seq)
        if kind == PIPELINE_EXECUTION:
            executions[run_id] = object_id
        return
    known = objects.get(object_id)
    what = "sets a field of" if type(event) is FieldSet else "removes the run of"
    if known is None:
        raise _Refused(f"{what} {kind} {object_id}, which no earlier line creates")
    if known.run_id != run_id:
        raise _Refused(
            f"an event of run {run_id!r} {what} {known.kind} {object_id} of run "
            f"{known.run_id!r} (created at line {known.line}): an event stays within its run"
        )
    if known.kind != kind:
        raise _Refused(
            f"names {object_id} as a {kind}, but line {known.line} creates it as a {known.kind}"
        )
    if type(event) is RunRemoved:
        if kind != PIPELINE_EXECUTION:
            raise _Refused(f"a removal names a {kind}; it names the run's pipeline_execution")
        executions.pop(run_id, None)
        return
    assert type(event) is FieldSet
    _check_set(event)


def _check_ts(ts: str) -> None:
    try:
        moment = parse_time(ts)
    except (ValueError, TypeError):
        raise _Refused(f"the event's time {ts!r} is not an ISO 8601 time") from None
    if moment.utcoffset() is None:
        raise _Refused(f"the event's time {ts!r} has no timezone")


def _check_created(
    event: ObjectCreated, objects: dict[str, _Object], executions: dict[str, str]
) -> None:
    kind, object_id, run_id = event.kind, event.id, event.run_id
    earlier = objects.get(object_id)
    if earlier is not None:
        raise _Refused(f"creates {kind} {object_id} again: line {earlier.line} creates it already")
    parent_id = event.parent_id
    if kind == PIPELINE_EXECUTION:
        if parent_id is not None:
            raise _Refused(f"the pipeline_execution {object_id} has a parent ({parent_id})")
        if run_id in executions:
            first = objects[executions[run_id]].line
            raise _Refused(
                f"creates a second pipeline_execution for run {run_id!r} (line {first} "
                "creates its execution)"
            )
    else:
        expected = KINDS[_LEVEL[kind] - 1]
        parent = objects.get(parent_id) if parent_id is not None else None
        if parent is None:
            raise _Refused(
                f"{kind} {object_id} names the parent {parent_id}, which no earlier line creates"
            )
        if parent.run_id != run_id:
            raise _Refused(
                f"{kind} {object_id} of run {run_id!r} names the parent {parent_id} of run "
                f"{parent.run_id!r}: an object stays within its run"
            )
        if parent.kind != expected:
            raise _Refused(
                f"{kind} {object_id} names the parent {parent_id}, a {parent.kind}; the parent "
                f"of a {kind} is a {expected}"
            )
        if executions.get(run_id) is None:
            raise _Refused(f"{kind} {object_id} is created in run {run_id!r}, which was removed")
    for name, tag in event.types.items():
        if tag not in _TAGS:
            raise _Refused(f"attribute {name!r} has the unknown type tag {tag!r}")
        if name not in event.attrs:
            raise _Refused(f"the type tag {tag!r} names the attribute {name!r}, which is not there")
    if "status" not in event.attrs:
        raise _Refused(f"{kind} {object_id} is created without a status")
    for name, stored in event.attrs.items():
        _check_attr(name, stored, event.types.get(name))


def _check_attr(name: str, stored: Any, tag: str | None) -> None:
    if name in _MEMBERS:
        raise _Refused(f"the attribute {name!r} is a member of every event, not an attribute")
    if name in _NAMED:
        if type(stored) is not str or tag is not None:
            raise _Refused(f"the identifying attribute {name!r} is not a str: {stored!r}")
        return
    _check_value(name, stored, tag)


def _check_set(event: FieldSet) -> None:
    field = event.field
    if field in IDENTIFYING_FIELDS:
        raise _Refused(
            f"sets {field!r} of {event.kind} {event.id}: that field identifies the object and "
            "is fixed when the object is built"
        )
    if not field.isidentifier():
        raise _Refused(f"sets the field {field!r}: a field name is an identifier")
    _check_value(field, event.value, event.vtype)


def _check_value(field: str, stored: Any, tag: str | None) -> None:
    """``stored`` with type tag ``tag`` decodes, and is a value ``set_`` accepts for ``field``."""
    if tag is not None and tag not in _TAGS:
        raise _Refused(f"field {field!r} has the unknown type tag {tag!r}")
    try:
        value = decode_value(stored, tag)
    except (KeyError, TypeError, ValueError):
        what = "a status" if tag == STATUS else "an ISO 8601 time"
        raise _Refused(f"field {field!r}: {stored!r} (tagged {tag!r}) is not {what}") from None
    if isinstance(value, datetime) and value.utcoffset() is None:
        raise _Refused(f"field {field!r}: the time {stored!r} has no timezone")
    try:
        encode_field_value(field, value)
    except PipelinesEventsError as exc:
        raise _Refused(str(exc)) from None
