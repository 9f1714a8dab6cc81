"""Events, their encoding, the hash chain, and the encoding of stored values."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines_events.errors import InvalidValueError
from pipelines_events.events import (
    DATETIME,
    GENESIS_HASH,
    SCHEMA_VERSION,
    STATUS,
    FieldSet,
    ObjectCreated,
    RunRemoved,
    decode_attrs,
    decode_status,
    decode_value,
    encode_attrs,
    encode_value,
    format_time,
    parse_time,
)
from pipelines_events.log.chain import HASH_SUFFIX_LEN, decode_event, encode_event, link_ok, seal
from pipelines_events.status import PipelineTaskStatus


def through_json(field: str, value: Any) -> Any:
    """Store ``value`` in a FieldSet, encode and decode the event, and decode the value."""
    stored, vtype = encode_value(field, value)
    draft = FieldSet(run_id="r", kind="task_result", id="t", field=field, value=stored, vtype=vtype)
    event = decode_event(encode_event(draft))
    assert isinstance(event, FieldSet)
    return decode_value(event.value, event.vtype)


# -- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -7,
        2**80,
        1.5,
        -0.25,
        1e300,
        "",
        "plain",
        "ünïcødé ✓ 日本 🎉",
        [],
        {},
        [1, "two", 3.0, None, True],
        {"a": 1, "b": [1, {"c": None}], "d": {"e": {"f": "g"}}},
        [[[]], {"": []}],
    ],
)
def test_json_values_round_trip(value: Any) -> None:
    assert encode_value("f", value) == (value, None)
    result = through_json("f", value)
    assert result == value
    assert type(result) is type(value)


def test_tuples_come_back_as_lists() -> None:
    assert through_json("f", (1, (2, "x"), [3])) == [1, [2, "x"], [3]]
    assert through_json("f", {"k": (1, 2)}) == {"k": [1, 2]}


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 5, 12, 0, tzinfo=UTC),
        datetime(2026, 11, 5, 12, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 11, 5, 23, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=-8))),
    ],
)
def test_aware_datetimes_round_trip_aware_and_equal(moment: datetime) -> None:
    stored, vtype = encode_value("started", moment)
    assert vtype == DATETIME
    assert isinstance(stored, str)
    back = through_json("started", moment)
    assert isinstance(back, datetime)
    assert back.tzinfo is not None
    assert back == moment
    assert back.utcoffset() == timedelta(0)  # stored in UTC


@pytest.mark.parametrize("status", list(PipelineTaskStatus), ids=lambda s: s.name)
def test_statuses_round_trip(status: PipelineTaskStatus) -> None:
    assert encode_value("status", status) == (status.value, STATUS)
    assert through_json("status", status) is status
    assert decode_status(status.value) is status


@pytest.mark.parametrize("bad", ["FINISHED", "", None, 3, ["DONE"]])
def test_decode_status_refuses_non_statuses(bad: Any) -> None:
    with pytest.raises(InvalidValueError, match="is not a status"):
        decode_status(bad)


def test_decode_value_refuses_unknown_tag() -> None:
    with pytest.raises(InvalidValueError, match="unknown value type tag 'uuid'"):
        decode_value("x", "uuid")


def test_attrs_round_trip() -> None:
    moment = datetime(2026, 11, 5, 12, tzinfo=UTC)
    attrs = {"status": PipelineTaskStatus.RUNNING, "started": moment, "data": {"x": [1]}, "n": 2}
    stored, types = encode_attrs(attrs)
    assert types == {"status": STATUS, "started": DATETIME}
    event = decode_event(
        encode_event(
            ObjectCreated(run_id="r", kind="task_result", id="t", attrs=stored, types=types)
        )
    )
    assert isinstance(event, ObjectCreated)
    assert decode_attrs(event.attrs, event.types) == attrs
    assert decode_attrs({"a": 1}, {}) == {"a": 1}


def test_encode_attrs_refuses_and_names_the_attribute() -> None:
    with pytest.raises(InvalidValueError, match=r"field 'blob'.*bytes"):
        encode_attrs({"ok": 1, "blob": b"x"})


# -- refusals --------------------------------------------------------------------------


class Thing:
    pass


def _cyclic_list() -> list[Any]:
    value: list[Any] = [1]
    value.append(value)
    return value


def _cyclic_dict() -> dict[str, Any]:
    value: dict[str, Any] = {"a": 1}
    value["self"] = value
    return value


def _deep_cycle() -> dict[str, Any]:
    inner: list[Any] = []
    value = {"a": [inner]}
    inner.append(value)
    return value


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (b"raw", r"field 'f': f is of type builtins\.bytes, which JSON cannot hold"),
        (bytearray(b"raw"), r"field 'f': .*builtins\.bytearray"),
        ({1, 2}, r"field 'f': f is of type builtins\.set"),
        (frozenset({1}), r"field 'f': .*builtins\.frozenset"),
        (Thing(), r"field 'f': f is of type .*Thing, which JSON cannot hold"),
        (1 + 2j, r"field 'f': .*builtins\.complex"),
        (math.nan, r"field 'f': f is the float nan; JSON cannot hold NaN or infinity"),
        (math.inf, r"field 'f': f is the float inf; JSON cannot hold NaN"),
        (-math.inf, r"field 'f': f is the float -inf; JSON cannot hold NaN"),
        ([1, math.nan], r"field 'f': f\[1\] is the float nan"),
        ({"a": {"b": [math.inf]}}, r"field 'f': f\['a'\]\['b'\]\[0\] is the float inf"),
        ((0, -math.inf), r"field 'f': f\[1\] is the float -inf"),
        ([b"x"], r"field 'f': f\[0\] is of type builtins\.bytes"),
        ({"s": {1}}, r"field 'f': f\['s'\] is of type builtins\.set"),
        (_cyclic_list(), r"field 'f': f\[1\] contains itself \(a cycle\)"),
        (_cyclic_dict(), r"field 'f': f\['self'\] contains itself \(a cycle\)"),
        (_deep_cycle(), r"field 'f': .*contains itself \(a cycle\)"),
        ({1: "x"}, r"field 'f': f has a key of type int \(1\); JSON object keys must be str"),
        ({"a": {None: 1}}, r"field 'f': f\['a'\] has a key of type NoneType"),
        ({("a",): 1}, r"field 'f': f has a key of type tuple"),
        (
            datetime(2026, 11, 5, 12, 0),
            r"field 'f': a naive datetime \(2026-11-05T12:00:00\) cannot be stored",
        ),
        ("ab\ud800cd", r"field 'f': .*'\\ud800' at index 2.*lone surrogate"),
        (["ok", "\udfff"], r"field .f: f\[1\].*'\\udfff' at index 0.*lone surrogate"),
        ({"k": "é\ud800"}, r"field .f: f\['k'\].*'\\ud800' at index 1.*lone surrogate"),
        ({"\ud800": 1}, r"field 'f'.*'\\ud800' at index 0.*lone surrogate"),
        (
            [datetime(2026, 11, 5, tzinfo=UTC)],
            r"field 'f': f\[0\] is of type datetime\.datetime, which JSON cannot hold "
            r"\(datetimes and statuses are stored only as a field's whole value\)",
        ),
        (
            {"when": datetime(2026, 11, 5)},
            r"field 'f': f\['when'\] is of type datetime\.datetime",
        ),
        (
            {"s": PipelineTaskStatus.DONE},
            r"field 'f': f\['s'\] is of type pipelines_events\.status\.PipelineTaskStatus.*"
            r"whole value",
        ),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), r"field 'f': .*out of range"),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else "pattern",
)
def test_refused_values_name_the_field_and_the_type(value: Any, pattern: str) -> None:
    with pytest.raises(InvalidValueError, match=pattern):
        encode_value("f", value)


def test_invalid_value_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        encode_value("f", b"x")


def test_shared_but_acyclic_values_are_accepted() -> None:
    shared = [1, 2]
    value = {"a": shared, "b": shared, "c": [shared, shared]}
    assert encode_value("f", value) == (value, None)
    assert through_json("f", value) == {"a": [1, 2], "b": [1, 2], "c": [[1, 2], [1, 2]]}


def test_subclasses_of_json_types_are_refused() -> None:
    class Name(str):
        pass

    with pytest.raises(InvalidValueError, match=r"field 'f': f is of type .*Name"):
        encode_value("f", Name("x"))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_any_json_value_round_trips(value: Any) -> None:
    assert through_json("f", value) == value


# -- event encoding and the hash chain -------------------------------------------------


def test_events_are_tagged_by_type() -> None:
    created = ObjectCreated(run_id="r", kind="pipeline_execution", id="e")
    field_set = FieldSet(run_id="r", kind="pipeline_execution", id="e", field="x", value=1)
    removed = RunRemoved(run_id="r", kind="pipeline_execution", id="e")
    assert encode_event(created).startswith(b'{"type":"created"')
    assert encode_event(field_set).startswith(b'{"type":"set"')
    assert encode_event(removed).startswith(b'{"type":"removed"')
    for event in (created, field_set, removed):
        assert decode_event(encode_event(event)) == event


def test_events_are_frozen() -> None:
    event = FieldSet(run_id="r", kind="task_result", id="t", field="x")
    with pytest.raises(AttributeError):
        event.seq = 3  # type: ignore[misc]


def test_decode_event_refuses_unknown_types_and_bad_json() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_event(b'{"type":"bogus","run_id":"r","kind":"k","id":"i"}')
    with pytest.raises(msgspec.DecodeError):
        decode_event(b'{"type":')


def _body(seq: int) -> bytes:
    event = FieldSet(
        v=SCHEMA_VERSION,
        seq=seq,
        ts="t",
        run_id="r",
        kind="task_result",
        id="t",
        field="x",
        value=seq,
    )
    return encode_event(event)


def test_seal_and_link_ok_chain_lines() -> None:
    line1, hash1 = seal(_body(1), GENESIS_HASH)
    line2, hash2 = seal(_body(2), hash1)
    assert line1.endswith(f',"hash":"{hash1}"}}\n'.encode())
    assert len(hash1) == 64 and hash1 != hash2
    assert link_ok(line1[:-1], GENESIS_HASH)
    assert link_ok(line2[:-1], hash1)
    assert not link_ok(line2[:-1], GENESIS_HASH)  # reordered
    assert not link_ok(line1[:-1], hash1)
    tampered = line2[:-1].replace(b'"value":2', b'"value":3')
    assert tampered != line2[:-1]
    assert not link_ok(tampered, hash1)
    assert not link_ok(b"", GENESIS_HASH)
    assert not link_ok(b"x" * HASH_SUFFIX_LEN, GENESIS_HASH)
    event = decode_event(line2[:-1])
    assert event.hash == hash2 and event.seq == 2


def test_format_and_parse_time() -> None:
    moment = datetime(2026, 11, 5, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    text = format_time(moment)
    assert text == "2026-11-05T12:00:00+00:00"
    assert parse_time(text) == moment
    assert parse_time(text).tzinfo is not None


def test_datetimes_made_while_time_is_frozen_are_stored_as_datetimes() -> None:
    from freezegun import freeze_time

    with freeze_time("2026-11-27 10:00:00"):
        frozen = datetime.now(UTC)
    # Outside the freeze, ``datetime`` is the real class again and ``frozen`` a subclass.
    assert type(frozen) is not datetime
    stored, vtype = encode_value("started", frozen)
    assert (stored, vtype) == ("2026-11-27T10:00:00+00:00", "datetime")
    assert decode_value(stored, vtype) == datetime(2026, 11, 27, 10, tzinfo=UTC)
