"""The event types of the log.

Every event is a frozen :class:`msgspec.Struct`; the union :data:`AnyEvent` is tagged by
the ``type`` member of each JSON line. Their line encoding and the hash chain are in
:mod:`pipelines_events.log.chain`. See ``docs/reference/events.rst`` for the schema.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any, Final, Literal

import msgspec

from pipelines_events.errors import InvalidValueError
from pipelines_events.status import PipelineTaskStatus

SCHEMA_VERSION: Final = 2
"""Schema version written into every event; readers refuse events of a newer version.

Version 1 chained each line's bytes; version 2 chains the SHA-256 of each line, so that
an event's content can be erased (:class:`Erased`) while the chain still verifies. Logs
written in version 1 stay readable (see :mod:`pipelines_events.log.chain`)."""

SCHEMA_VERSIONS: Final = (1, 2)
"""Every schema version ever written; a log may step up from 1 to 2 once, never down."""

GENESIS_HASH: Final = "0" * 64
"""The hash the first event of a log chains to."""

PIPELINE_EXECUTION: Final = "pipeline_execution"
PIPELINE_RESULT: Final = "pipeline_result"
TASK_EXECUTION: Final = "task_execution"
TASK_RESULT: Final = "task_result"
KINDS: Final = (PIPELINE_EXECUTION, PIPELINE_RESULT, TASK_EXECUTION, TASK_RESULT)
"""The four kinds of result object, parents before children."""

Kind = Literal["pipeline_execution", "pipeline_result", "task_execution", "task_result"]

DATETIME: Final = "datetime"
STATUS: Final = "status"
"""Type tags of values JSON has no type for (see :func:`encode_value`)."""


class Event(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="type"):
    """Members every event carries.

    ``seq`` counts events from 1 without gaps; ``more`` is the number of events that
    follow in the same atomic batch (0 on a batch's last event); ``hash`` chains the
    event to the one before it. ``seq``, ``hash`` (and ``ts`` when empty) are given by
    the log when the event is appended.
    """

    v: int = 0
    seq: int = 0
    ts: str = ""
    run_id: str
    kind: str
    id: str
    more: int = 0
    hash: str = ""


class ObjectCreated(Event, tag="created", frozen=True):
    """A result object came into being with its initial attributes.

    ``types`` tags the attributes whose values JSON cannot tell apart (datetimes, statuses).
    """

    parent_id: str | None = None
    attrs: dict[str, Any] = {}
    types: dict[str, str] = {}


class FieldSet(Event, tag="set", frozen=True):
    """One ``set_`` call: ``field`` of object ``id`` now holds ``value``.

    ``vtype`` tags values JSON cannot tell apart (``"datetime"``, ``"status"``).
    """

    field: str
    value: Any = None
    vtype: str | None = None


class RunRemoved(Event, tag="removed", frozen=True):
    """A run left the storage (``cleanup``); its earlier events stay in the log for audit.

    ``kind`` is ``pipeline_execution`` and ``id`` is the run's execution id.
    """


class Erased(Event, tag="erased", frozen=True):
    """An event of a removed run whose content was erased (``cleanup --erase``).

    It keeps the erased event's ``seq``, ``ts``, ``more`` and ``hash`` and, when the line
    has room for them, its ``run_id``, ``kind`` and ``id`` (else they are empty); ``digest``
    is the SHA-256 (hex) of the erased line without its hash member, which the chain links
    (schema version 2 only). Projections ignore it; appends refuse it.
    """

    digest: str


AnyEvent = ObjectCreated | FieldSet | RunRemoved | Erased
"""Every event type that can appear in a log."""


class LogPosition(msgspec.Struct, frozen=True):
    """A point in a log: the byte offset after an event, that event's seq and hash."""

    offset: int = 0
    seq: int = 0
    hash: str = GENESIS_HASH


START: Final = LogPosition()
"""The position before a log's first event."""


class _Clock:
    """The last whole second formatted, so most timestamps format only the microseconds."""

    second = -1
    prefix = ""


_clock = _Clock()


def now_text() -> str:
    """The current UTC time as the log writes it: ISO 8601 with microseconds."""
    # Round to the microsecond: a clock given as a float (freezegun) is a hair low.
    micros = (time.time_ns() + 500) // 1000
    seconds = micros // 1_000_000
    if seconds != _clock.second:
        _clock.prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))
        _clock.second = seconds
    # str() of 1_000_000 + micros gives the six zero-padded digits faster than a format.
    return _clock.prefix + str(1_000_000 + micros % 1_000_000)[1:] + "+00:00"


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """Format an aware datetime as ISO 8601 in UTC, the way the log stores times."""
    if moment.tzinfo is UTC:
        return moment.isoformat()
    return moment.astimezone(UTC).isoformat()


def parse_time(text: str) -> datetime:
    """Parse a time stored by :func:`format_time` back to an aware datetime."""
    return datetime.fromisoformat(text)


_STATUS_BY_VALUE: Final = {status.value: status for status in PipelineTaskStatus}
_SCALARS: Final = frozenset({str, int, bool, type(None)})
_CONTAINERS: Final = frozenset({dict, list, tuple})


def encode_value(field: str, value: Any) -> tuple[Any, str | None]:
    """Return ``(json_value, vtype)`` for a value to store in ``field``.

    Datetimes (aware only) and statuses are stored with a type tag and come back as
    themselves; str, int, float, bool, None, lists, tuples (as lists) and dicts with str
    keys are stored as JSON. Anything else raises :class:`InvalidValueError` naming the
    field and the offending type; nothing is stored then.
    """
    kind = type(value)
    if kind in _SCALARS:
        if kind is str and not value.isascii():
            _check_text(field, value)
        elif kind is int and value.bit_length() > _MAX_INT_BITS:
            _refuse_big_int(field, field, value)
        return value, None
    if kind is PipelineTaskStatus:
        return value.value, STATUS
    if kind is datetime or isinstance(value, datetime):  # subclasses too (freezegun's)
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidValueError(
                f"field {field!r}: a naive datetime ({value.isoformat()}) cannot be stored; "
                "give an aware datetime (with a timezone)"
            )
        try:
            return format_time(value), DATETIME
        except OverflowError:
            raise InvalidValueError(
                f"field {field!r}: the datetime {value.isoformat()} is out of range once "
                "converted to UTC and cannot be stored"
            ) from None
    _check_json(field, value, field, set(), 0)
    return value, None


def tag_value(value: Any) -> tuple[Any, str | None]:
    """Return ``(json_value, vtype)`` for a value held in a projection, without checks.

    The inverse of :func:`decode_value`: statuses and datetimes (kept with their own
    offset, ``isoformat``) get their type tag, anything else is returned as it is.
    """
    kind = type(value)
    if kind is PipelineTaskStatus:
        return value.value, STATUS
    if kind is datetime or isinstance(value, datetime):
        return value.isoformat(), DATETIME
    return value, None


def copy_value(value: Any) -> Any:
    """A copy of ``value`` whose lists and dicts are new (at every level); the other
    values (str, int, float, bool, None, statuses, datetimes) are shared, being immutable.

    Tuples become lists, as a replay of the log gives them back.
    """
    kind = type(value)
    if kind is dict:
        return {key: copy_value(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [copy_value(item) for item in value]
    return value


def decode_value(value: Any, vtype: str | None) -> Any:
    """Turn a stored JSON value and its type tag back into the value that was set."""
    if vtype is None:
        return value
    if vtype == STATUS:
        return _STATUS_BY_VALUE[value]
    if vtype == DATETIME:
        return datetime.fromisoformat(value)
    raise InvalidValueError(f"unknown value type tag {vtype!r}")


def decode_status(value: Any) -> PipelineTaskStatus:
    """Return the status stored as ``value``, or raise :class:`InvalidValueError`."""
    try:
        return _STATUS_BY_VALUE[value]
    except (KeyError, TypeError):
        raise InvalidValueError(f"{value!r} is not a status") from None


_MAX_INT_BITS: Final = 4000 * 3
"""Ints longer than this (about 3,600 digits) are refused: Python will not turn ints of
more than 4,300 digits into text, and no JSON reader keeps them exact anyway."""

MAX_DEPTH: Final = 64
"""The deepest nesting of lists and dicts a value may have (``[]`` is 1 level, ``[[]]``
2); deeper values are refused, so every reader (decoding, rendering, copies, snapshots)
handles every stored value from any call depth."""


def _refuse_big_int(field: str, where: str, value: int) -> None:
    raise InvalidValueError(
        f"field {field!r}: {where} is an int of {value.bit_length()} bits; ints longer than "
        f"{_MAX_INT_BITS} bits cannot be stored (store it as a str)"
    )


def _shorten(where: str, limit: int = 60) -> str:
    """``where`` (a path into a value) cut to ``limit`` characters in the middle."""
    if len(where) <= limit:
        return where
    half = (limit - 1) // 2
    return where[:half] + "…" + where[-half:]


def _check_text(field: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValueError(
            f"field {field!r}: the string holds {text[exc.start : exc.end]!r} at index "
            f"{exc.start}, which is not valid Unicode (a lone surrogate) and cannot be stored"
        ) from None


def _check_json(field: str, value: Any, where: str, active: set[int], depth: int) -> None:
    kind = type(value)
    if kind in _SCALARS:
        if kind is str and not value.isascii():
            _check_text(field if where == field else f"{field}: {where}", value)
        elif kind is int and value.bit_length() > _MAX_INT_BITS:
            _refuse_big_int(field, where, value)
        return
    if kind is float:
        if not math.isfinite(value):
            raise InvalidValueError(
                f"field {field!r}: {where} is the float {value!r}; JSON cannot hold NaN or infinity"
            )
        return
    if kind in _CONTAINERS:
        if depth >= MAX_DEPTH:
            raise InvalidValueError(
                f"field {field!r}: the value nests lists and dicts more than {MAX_DEPTH} "
                f"levels deep ({_shorten(where)} is level {depth + 1}); at most {MAX_DEPTH} "
                "levels can be stored"
            )
        marker = id(value)
        if marker in active:
            raise InvalidValueError(
                f"field {field!r}: {where} contains itself (a cycle); JSON cannot hold a cycle"
            )
        active.add(marker)
        if kind is dict:
            for key, item in value.items():
                if type(key) is not str:
                    raise InvalidValueError(
                        f"field {field!r}: {where} has a key of type {type(key).__name__} "
                        f"({key!r}); JSON object keys must be str"
                    )
                if not key.isascii():
                    _check_text(field if where == field else f"{field}: {where}", key)
                _check_json(field, item, f"{where}[{key!r}]", active, depth + 1)
        else:
            for index, item in enumerate(value):
                _check_json(field, item, f"{where}[{index}]", active, depth + 1)
        active.discard(marker)
        return
    hint = ""
    if kind is datetime or kind is PipelineTaskStatus:
        hint = " (datetimes and statuses are stored only as a field's whole value)"
    raise InvalidValueError(
        f"field {field!r}: {where} is of type {kind.__module__}.{kind.__qualname__}, "
        f"which JSON cannot hold{hint}; store str, int, float, bool, None, lists and dicts"
    )


def encode_attrs(attrs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Encode a created object's attributes; returns ``(json_attrs, types)``."""
    out: dict[str, Any] = {}
    types: dict[str, str] = {}
    for name, value in attrs.items():
        stored, vtype = encode_value(name, value)
        out[name] = stored
        if vtype is not None:
            types[name] = vtype
    return out, types


def decode_attrs(attrs: dict[str, Any], types: dict[str, str]) -> dict[str, Any]:
    """Turn stored attributes and their type tags back into the values that were set."""
    if not types:
        return dict(attrs)
    out = dict(attrs)
    for name, vtype in types.items():
        if name in out:
            out[name] = decode_value(out[name], vtype)
    return out
