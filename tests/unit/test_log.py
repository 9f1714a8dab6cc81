"""The JSON-lines event log: appends, the hash chain, readers, options and refusals."""

from __future__ import annotations

import os
import stat
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines_events.errors import EventTooLargeError, LogCorruptError, LogError, LogOpenError
from pipelines_events.events import (
    GENESIS_HASH,
    SCHEMA_VERSION,
    START,
    AnyEvent,
    FieldSet,
    LogPosition,
    ObjectCreated,
    RunRemoved,
    decode_attrs,
    decode_value,
    encode_attrs,
    encode_value,
    parse_time,
)
from pipelines_events.log import (
    DURABILITY_MODES,
    EventLog,
    JsonlEventLog,
    LogPermissionsWarning,
    read_events,
)
from pipelines_events.log.chain import decode_event, encode_event, link_ok, seal
from pipelines_events.status import PipelineTaskStatus


def fs(field: str, value: Any, *, object_id: str = "t1", run_id: str = "run-1") -> FieldSet:
    stored, vtype = encode_value(field, value)
    return FieldSet(
        run_id=run_id, kind="task_result", id=object_id, field=field, value=stored, vtype=vtype
    )


def check_chain(path: Path, events: list[AnyEvent]) -> None:
    """Every line of the file is the sealed encoding of its event and links to the one before."""
    lines = path.read_bytes().split(b"\n")
    assert lines.pop() == b""
    assert len(lines) == len(events)
    prev = GENESIS_HASH
    for number, (line, event) in enumerate(zip(lines, events, strict=True), start=1):
        assert event.seq == number
        assert link_ok(line, prev)
        sealed, digest = seal(encode_event(msgspec.structs.replace(event, hash="")), prev)
        assert sealed == line + b"\n"
        assert digest == event.hash
        assert decode_event(line) == event
        prev = event.hash


# -- appending and reading back ---------------------------------------------------------


def test_append_gives_seq_hash_version_and_ts(
    log_path: Path, sample_batches: list[list[AnyEvent]]
) -> None:
    appended: list[AnyEvent] = []
    with JsonlEventLog(log_path) as log:
        assert isinstance(log, EventLog)
        assert log.position == START
        for batch in sample_batches:
            out = log.append(batch)
            assert len(out) == len(batch)
            for draft, event in zip(batch, out, strict=True):
                assert type(event) is type(draft)
                assert msgspec.structs.replace(
                    event, v=0, seq=0, ts="", more=0, hash=""
                ) == msgspec.structs.replace(draft, more=0)
            appended.extend(out)
            assert log.position == LogPosition(log.size(), appended[-1].seq, appended[-1].hash)
    assert [e.seq for e in appended] == list(range(1, 9))
    assert all(e.v == SCHEMA_VERSION for e in appended)
    for event in appended:
        moment = parse_time(event.ts)
        assert moment.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - moment) < timedelta(minutes=5)
    check_chain(log_path, appended)


def test_batches_carry_more_down_to_zero(log_path: Path) -> None:
    with JsonlEventLog(log_path) as log:
        out = log.append([fs("a", 1), fs("b", 2), fs("c", 3)])
        single = log.append([fs("d", 4)])
    assert [e.more for e in out] == [2, 1, 0]
    assert len({e.ts for e in out}) == 1  # one batch, one time
    assert [e.more for e in single] == [0]


def test_read_back_equals_what_was_appended(
    sample_log: tuple[Path, list[AnyEvent]],
) -> None:
    path, appended = sample_log
    assert list(read_events(path)) == appended
    with JsonlEventLog(path) as log:
        assert list(log.read_new()) == appended
        assert log.position.seq == 8
        assert list(log.read_new()) == []
    with JsonlEventLog(path, readonly=True) as log:
        assert list(log.read_new()) == appended


def test_values_survive_the_log(log_path: Path) -> None:
    moment = datetime(2026, 11, 5, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    attrs = {"status": PipelineTaskStatus.PENDING, "created": moment, "data": {"k": [1, 2.5]}}
    stored, types = encode_attrs(attrs)
    values = [PipelineTaskStatus.RUNNING, moment, {"a": ["ü", None, True]}, 2**70, -0.5]
    with JsonlEventLog(log_path) as log:
        log.append(
            [ObjectCreated(run_id="r", kind="task_result", id="t1", attrs=stored, types=types)]
        )
        log.append([fs(f"f{i}", v) for i, v in enumerate(values)])
    created, *sets = read_events(log_path)
    assert isinstance(created, ObjectCreated)
    assert decode_attrs(created.attrs, created.types) == attrs
    assert [decode_value(e.value, e.vtype) for e in sets if isinstance(e, FieldSet)] == values


def test_explicit_ts_is_kept(log_path: Path) -> None:
    with JsonlEventLog(log_path) as log:
        (event,) = log.append([msgspec.structs.replace(fs("a", 1), ts="2020-01-01T00:00:00+00:00")])
    assert event.ts == "2020-01-01T00:00:00+00:00"


@freeze_time("2026-11-05 12:34:56.789", tz_offset=0)
def test_ts_is_the_current_utc_time(log_path: Path) -> None:
    with JsonlEventLog(log_path) as log:
        out = log.append([fs("a", 1), fs("b", 2)])
    assert [e.ts for e in out] == ["2026-11-05T12:34:56.789000+00:00"] * 2
    assert [e.ts for e in read_events(log_path)] == [e.ts for e in out]


def test_empty_append_returns_what_others_appended(log_path: Path) -> None:
    with JsonlEventLog(log_path) as first, JsonlEventLog(log_path) as second:
        assert first.append([]) == []
        out = second.append([fs("a", 1)])
        assert first.append([]) == out
        assert first.position == second.position


# -- two writers on one file --------------------------------------------------------------


def test_a_second_log_object_sees_and_continues(log_path: Path) -> None:
    with JsonlEventLog(log_path) as first, JsonlEventLog(log_path) as second:
        a = first.append([fs("a", 1), fs("b", 2)])
        assert list(second.read_new()) == a
        assert list(second.read_new()) == []
        b = second.append([fs("c", 3)])
        assert [e.seq for e in b] == [3]
        c = first.append([fs("d", 4), fs("e", 5)])
        assert c[:1] == b  # caught-up events first, then its own
        assert [e.seq for e in c] == [3, 4, 5]
        assert [e.more for e in c[1:]] == [1, 0]
        assert list(second.read_new()) == c[1:]
        d = second.append([fs("f", 6)])
        assert [e.seq for e in d] == [6]
    everything = a + b + c[1:] + d
    assert list(read_events(log_path)) == everything
    check_chain(log_path, everything)


def test_read_new_sees_only_new_bytes(log_path: Path) -> None:
    with JsonlEventLog(log_path) as writer, JsonlEventLog(log_path, readonly=True) as reader:
        assert list(reader.read_new()) == []
        first = writer.append([fs("a", 1)])
        assert list(reader.read_new()) == first
        second = writer.append([fs("b", 2), fs("c", 3)])
        assert list(reader.read_new()) == second
        assert reader.position == writer.position


# -- durability and options -----------------------------------------------------------------


@pytest.mark.parametrize("durability", ["fsync", "none"])
def test_durability_modes_work(log_path: Path, durability: Any) -> None:
    with JsonlEventLog(log_path, durability=durability) as log:
        assert log.durability == durability
        out = log.append([fs("a", 1)])
        log.commit()
        out += log.append([fs("b", 2), fs("c", 3)])
    assert list(read_events(log_path)) == out


def test_fsync_is_the_default(log_path: Path) -> None:
    assert DURABILITY_MODES == ("fsync", "none")
    with JsonlEventLog(log_path) as log:
        assert log.durability == "fsync"
        assert log.max_event_bytes == 1 << 20
        assert log.path == log_path
        assert log.location == str(log_path)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"durability": "always"}, r"durability must be one of 'fsync', 'none', not 'always'"),
        ({"durability": None}, r"durability must be one of .* not None"),
        ({"mode": 0o1777}, r"mode must be a permission between 0o000 and 0o777, not 1023"),
        ({"mode": -1}, r"mode must be a permission .* not -1"),
        ({"mode": "600"}, r"mode must be a permission .* not '600'"),
        ({"max_event_bytes": 100}, r"max_event_bytes must be an int of at least 256, not 100"),
        ({"max_event_bytes": 1e6}, r"max_event_bytes must be an int .* not 1000000\.0"),
        ({"max_event_bytes": True}, r"max_event_bytes must be an int .* not True"),
    ],
)
def test_invalid_options_are_refused(log_path: Path, kwargs: dict[str, Any], pattern: str) -> None:
    with pytest.raises(LogOpenError, match=pattern):
        JsonlEventLog(log_path, **kwargs)
    assert not log_path.exists()


def test_invalid_path_is_refused() -> None:
    with pytest.raises(LogOpenError, match="the log path must be a str or path, not 42"):
        JsonlEventLog(42)  # type: ignore[arg-type]


def test_new_file_is_private_by_default(log_path: Path) -> None:
    JsonlEventLog(log_path).close()
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600


def test_custom_mode_is_honoured(log_path: Path) -> None:
    old = os.umask(0o022)
    try:
        JsonlEventLog(log_path, mode=0o640).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o640


def test_mode_does_not_change_an_existing_file(log_path: Path) -> None:
    log_path.touch(mode=0o644)
    os.chmod(log_path, 0o644)
    with pytest.warns(LogPermissionsWarning, match="permissions 0o644 are too open"):
        JsonlEventLog(log_path, mode=0o600).close()
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o644


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "log.jsonl"
    with JsonlEventLog(path) as log:
        out = log.append([fs("a", 1)])
    assert list(read_events(path)) == out


# -- paths that cannot be used -----------------------------------------------------------------


@pytest.mark.parametrize("readonly", [False, True])
def test_a_directory_is_refused(tmp_path: Path, readonly: bool) -> None:
    with pytest.raises(LogOpenError, match=rf"^{tmp_path}: the log path is a directory"):
        JsonlEventLog(tmp_path, readonly=readonly)


def test_a_parent_that_is_a_file_is_refused_at_open(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    path = tmp_path / "file" / "log.jsonl"
    with pytest.raises(LogOpenError, match=rf"^{path}: cannot create the log's directory"):
        JsonlEventLog(path)
    assert (tmp_path / "file").read_text() == "not a directory"


def test_readonly_log_of_a_missing_file_is_refused(log_path: Path) -> None:
    with pytest.raises(LogOpenError, match=rf"^{log_path}: no such log file"):
        JsonlEventLog(log_path, readonly=True)
    with pytest.raises(LogOpenError, match="no such log file"):
        list(read_events(log_path))
    assert not log_path.exists()


def test_readonly_log_refuses_append(sample_log: tuple[Path, list[AnyEvent]]) -> None:
    path, _ = sample_log
    before = path.read_bytes()
    with (
        JsonlEventLog(path, readonly=True) as log,
        pytest.raises(LogError, match=rf"^{path}: the log was opened read-only"),
    ):
        log.append([fs("a", 1)])
    assert path.read_bytes() == before


def test_closed_log_refuses_use(log_path: Path) -> None:
    log = JsonlEventLog(log_path)
    log.close()
    log.close()  # closing twice is harmless
    with pytest.raises(LogError, match="the log is closed"):
        log.append([fs("a", 1)])
    with pytest.raises(LogError, match="the log is closed"):
        list(log.read_new())


# -- events too large ------------------------------------------------------------------------------


def test_an_event_over_the_limit_is_refused_and_nothing_is_written(
    sample_log: tuple[Path, list[AnyEvent]],
) -> None:
    path, appended = sample_log
    before = path.read_bytes()
    with JsonlEventLog(path, max_event_bytes=512) as log:
        assert list(log.read_new()) == appended
        position = log.position
        with pytest.raises(
            EventTooLargeError,
            match=r"event 2 of the batch \(task_result t1, field 'big'\) encodes to \d+ bytes, "
            r"over the log's limit of 512 bytes; nothing was written",
        ):
            log.append([fs("small", 1), fs("big", "x" * 1000), fs("after", 2)])
        assert path.read_bytes() == before
        assert log.position == position
        (event,) = log.append([fs("small", 1)])
    assert event.seq == len(appended) + 1
    assert list(read_events(path)) == [*appended, event]


def test_an_event_exactly_at_the_limit_is_accepted(log_path: Path) -> None:
    """The limit counts the whole line, newline included."""

    def draft(value: str) -> FieldSet:
        return msgspec.structs.replace(fs("v", value), ts="2026-11-05T12:00:00+00:00")

    with JsonlEventLog(log_path, max_event_bytes=300) as log:
        (event,) = log.append([draft("")])
        pad = 300 - log.size()
        (big,) = log.append([draft("x" * pad)])
        assert log.size() - log.position.offset == 0
        assert len(log_path.read_bytes().split(b"\n")[1]) + 1 == 300
        before = log_path.read_bytes()
        with pytest.raises(EventTooLargeError, match="encodes to 301 bytes"):
            log.append([draft("x" * (pad + 1))])
        assert log_path.read_bytes() == before
    assert list(read_events(log_path)) == [event, big]


# -- seek --------------------------------------------------------------------------------


def test_seek_continues_from_a_position(sample_log: tuple[Path, list[AnyEvent]]) -> None:
    path, appended = sample_log
    with JsonlEventLog(path, readonly=True) as log:
        seen = []
        positions = []
        for event in log.read_new():
            seen.append(event)
            if event.more == 0:
                positions.append((log.position, len(seen)))
    assert seen == appended
    for position, count in positions:
        with JsonlEventLog(path) as log:
            log.seek(position)
            assert log.position == position
            assert list(log.read_new()) == appended[count:]
            log.seek(START)
            assert list(log.read_new()) == appended
        assert list(read_events(path, position=position)) == appended[count:]


def test_seek_then_append_continues_the_chain(sample_log: tuple[Path, list[AnyEvent]]) -> None:
    path, appended = sample_log
    with JsonlEventLog(path) as log:
        log.seek(LogPosition(path.stat().st_size, appended[-1].seq, appended[-1].hash))
        (event,) = log.append([fs("a", 1)])
    assert event.seq == 9
    check_chain(path, [*appended, event])


def test_seek_to_a_bogus_position_is_refused(sample_log: tuple[Path, list[AnyEvent]]) -> None:
    path, appended = sample_log
    size = path.stat().st_size
    first_end = path.read_bytes().index(b"\n") + 1
    with JsonlEventLog(path, readonly=True) as log:
        with pytest.raises(LogError, match=rf"no event ends at byte {first_end - 1} "):
            log.seek(LogPosition(first_end - 1, 1, appended[0].hash))
        with pytest.raises(LogError, match=rf"no event ends at byte {size + 10} \(the log has "):
            log.seek(LogPosition(size + 10, 8, appended[-1].hash))
        with pytest.raises(LogError, match=r"not a cursor of this log: LogPosition\(offset=-1"):
            log.seek(LogPosition(-1, 0, GENESIS_HASH))
        with pytest.raises(LogError, match=r"is seq 1 hash .*, not seq 2"):
            log.seek(LogPosition(first_end, 2, appended[0].hash))
        with pytest.raises(LogError, match=r"is seq 1 hash .*, not seq 1 hash 000000000000"):
            log.seek(LogPosition(first_end, 1, GENESIS_HASH))
        assert log.position == START  # unchanged by the refusals
        assert list(log.read_new()) == appended


# -- property: any batches survive append, close, reopen, read ------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
aware_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.builds(
        timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
    ),
)
values = json_values | aware_datetimes | st.sampled_from(PipelineTaskStatus)
ids = st.text(min_size=1, max_size=8)


def _as_json(value: Any) -> Any:
    """What JSON gives back for ``value``: tuples become lists."""
    if isinstance(value, tuple | list):
        return [_as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    return value


@st.composite
def drafts(draw: st.DrawFn) -> tuple[AnyEvent, Any]:
    """A draft event and the value(s) it carries before encoding."""
    choice = draw(st.sampled_from(["created", "set", "removed"]))
    run_id, object_id = draw(ids), draw(ids)
    if choice == "created":
        attrs = draw(st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=4))
        stored, types = encode_attrs(attrs)
        parent = draw(st.none() | ids)
        created = ObjectCreated(
            run_id=run_id,
            kind="task_result",
            id=object_id,
            parent_id=parent,
            attrs=stored,
            types=types,
        )
        return created, attrs
    if choice == "set":
        field = draw(st.text(min_size=1, max_size=6))
        value = draw(values)
        stored, vtype = encode_value(field, value)
        field_set = FieldSet(
            run_id=run_id,
            kind="task_execution",
            id=object_id,
            field=field,
            value=stored,
            vtype=vtype,
        )
        return field_set, value
    return RunRemoved(run_id=run_id, kind="pipeline_execution", id=object_id), None


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(drafts(), min_size=1, max_size=4), min_size=1, max_size=5))
def test_any_batches_survive_append_close_reopen_read(
    batches: list[list[tuple[AnyEvent, Any]]],
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "log.jsonl"
        appended: list[AnyEvent] = []
        with JsonlEventLog(path, durability="none") as log:
            for batch in batches:
                appended.extend(log.append([draft for draft, _ in batch]))
        originals = [pair for batch in batches for pair in batch]
        with JsonlEventLog(path, durability="none") as log:
            reread = list(log.read_new())
        # Tuples in values come back as lists: compare what the log holds.
        appended = [decode_event(encode_event(e)) for e in appended]
        assert reread == appended
        assert list(read_events(path)) == appended
        check_chain(path, appended)
        offset = 0
        for batch in batches:
            sizes = [e.more for e in reread[offset : offset + len(batch)]]
            assert sizes == list(range(len(batch) - 1, -1, -1))
            offset += len(batch)
        for event, (draft, original) in zip(reread, originals, strict=True):
            assert type(event) is type(draft)
            assert (event.run_id, event.kind, event.id) == (draft.run_id, draft.kind, draft.id)
            if isinstance(event, FieldSet):
                assert decode_value(event.value, event.vtype) == _as_json(original)
            elif isinstance(event, ObjectCreated):
                assert decode_attrs(event.attrs, event.types) == _as_json(original)


def _sealed_file(path: Path, mores: list[int]) -> None:
    from pipelines_events.events import GENESIS_HASH, SCHEMA_VERSION
    from pipelines_events.log.chain import encode_event, seal

    prev, lines = GENESIS_HASH, []
    for seq, more in enumerate(mores, start=1):
        event = FieldSet(
            v=SCHEMA_VERSION,
            seq=seq,
            ts="2026-11-27T00:00:00+00:00",
            run_id="r",
            kind="task_result",
            id="t",
            field="n",
            value=seq,
            more=more,
        )
        line, prev = seal(encode_event(event), prev)
        lines.append(line)
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize("mores", [[0, 0, 0], [1, 0, 2, 1, 0, 0], [3, 2, 1, 0]])
def test_grouped_reading_gives_the_batches_reading_does(tmp_path: Path, mores: list[int]) -> None:
    path = tmp_path / "log.jsonl"
    _sealed_file(path, mores)
    with (
        JsonlEventLog(path, readonly=True) as by_batch,
        JsonlEventLog(path, readonly=True) as by_group,
    ):
        batches = [event for batch in by_batch.read_batches() for event in batch]
        groups = [event for group in by_group.read_groups() for event in group]
        assert groups == batches
        assert [e.seq for e in groups] == list(range(1, len(mores) + 1))
        assert by_group.position == by_batch.position


@pytest.mark.parametrize(("mores", "line"), [([2, 0, 0], 2), ([0, 1, 1, 0], 3)])
def test_grouped_reading_finds_a_cut_batch(tmp_path: Path, mores: list[int], line: int) -> None:
    path = tmp_path / "log.jsonl"
    _sealed_file(path, mores)
    for read in ("read_batches", "read_groups"):
        with (
            pytest.raises(LogCorruptError, match="a batch was cut or spliced") as caught,
            JsonlEventLog(path, readonly=True) as log,
        ):
            list(getattr(log, read)())
        assert caught.value.line == line, read
