"""Damage to a log is a precise error that changes nothing; a torn tail is repaired on open."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipelines_events.errors import LogCorruptError
from pipelines_events.events import GENESIS_HASH, SCHEMA_VERSION, AnyEvent, FieldSet, encode_value
from pipelines_events.log import JsonlEventLog, TornWriteRepaired, read_events
from pipelines_events.log.chain import encode_event, seal

replace = msgspec.structs.replace

# The sample log (see conftest.py), one line per event:
#   1 created ex-1          batch of 1
#   2 set status RUNNING    batch of 2 (more 1)
#   3 set started                      (more 0)
#   4 created pr-1          batch of 1
#   5 set status DONE       batch of 3 (more 2)
#   6 set completed                    (more 1)
#   7 set message "...ü..."            (more 0)
#   8 removed ex-1          batch of 1


def fs(field: str, value: Any) -> FieldSet:
    stored, vtype = encode_value(field, value)
    return FieldSet(
        run_id="run-1", kind="task_result", id="t1", field=field, value=stored, vtype=vtype
    )


def lines_of(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def sealed(event: AnyEvent, prev_hash: str) -> bytes:
    """The line (no newline) of ``event`` chained to ``prev_hash``: a valid-looking forgery."""
    line, _ = seal(encode_event(replace(event, hash="")), prev_hash)
    return line[:-1]


def rechain(events: list[AnyEvent]) -> list[bytes]:
    """Seal every event again from the start: a forger who rewrites the whole chain."""
    lines = []
    prev = GENESIS_HASH
    for event in events:
        line, prev = seal(encode_event(replace(event, hash="")), prev)
        lines.append(line[:-1])
    return lines


def assert_corrupt(path: Path, line: int, reason: str) -> None:
    """Every way of opening the log reports the damage at ``line``; the file is unchanged."""
    before = path.read_bytes()
    seen: list[AnyEvent] = []
    with pytest.raises(LogCorruptError) as info:
        seen.extend(read_events(path))
    error = info.value
    assert error.line == line, error
    assert reason in error.reason, error
    assert error.path == str(path)
    assert str(error) == f"{path}: line {line}: {error.reason}"
    assert all(event.seq < line for event in seen)  # only whole batches before the damage
    assert path.read_bytes() == before

    with warnings.catch_warnings():
        warnings.simplefilter("error", TornWriteRepaired)  # damage is never "repaired"
        log = JsonlEventLog(path, durability="none")
    with log:
        with pytest.raises(LogCorruptError) as info:
            list(log.read_new())
        assert (info.value.line, info.value.reason) == (line, error.reason)
        with pytest.raises(LogCorruptError) as info:
            log.append([fs("x", 1)])
        assert info.value.line == line
    assert path.read_bytes() == before


@pytest.fixture
def sample(sample_log: tuple[Path, list[AnyEvent]]) -> tuple[Path, list[AnyEvent], list[bytes]]:
    path, events = sample_log
    lines = lines_of(path)
    assert len(lines) == len(events) == 8
    return path, events, lines


Sample = tuple[Path, list[AnyEvent], list[bytes]]


def test_the_sample_log_is_sound(sample: Sample) -> None:
    path, events, _ = sample
    assert list(read_events(path)) == events
    assert [e.more for e in events] == [0, 1, 0, 0, 2, 1, 0, 0]


# -- damage in the middle ------------------------------------------------------------------


def test_bad_json_line(sample: Sample) -> None:
    path, _, lines = sample
    lines[3] = b'{"type":"created","run_id":oops}'
    write_lines(path, lines)
    assert_corrupt(path, 4, "not valid JSON")


def test_unknown_event_type(sample: Sample) -> None:
    path, _, lines = sample
    lines[3] = lines[3].replace(b'"type":"created"', b'"type":"vanished"')
    write_lines(path, lines)
    assert_corrupt(path, 4, "not a valid event")


def test_unknown_event_type_with_a_valid_hash(sample: Sample) -> None:
    path, events, lines = sample
    body = encode_event(replace(events[3], hash="")).replace(b'"type":"created"', b'"type":"gone"')
    lines[3] = seal(body, events[2].hash)[0][:-1]
    write_lines(path, lines)
    assert_corrupt(path, 4, "not a valid event")


def test_deleted_line_leaves_a_gap(sample: Sample) -> None:
    path, _, lines = sample
    del lines[3]
    write_lines(path, lines)
    assert_corrupt(
        path, 4, "expected seq 4, found seq 5 (a line is missing, repeated or out of order)"
    )


def test_deleted_first_line(sample: Sample) -> None:
    path, _, lines = sample
    write_lines(path, lines[1:])
    assert_corrupt(path, 1, "expected seq 1, found seq 2")


def test_repeated_line(sample: Sample) -> None:
    path, _, lines = sample
    lines.insert(4, lines[3])
    write_lines(path, lines)
    assert_corrupt(path, 5, "expected seq 5, found seq 4")


def test_swapped_lines(sample: Sample) -> None:
    path, _, lines = sample
    lines[5], lines[6] = lines[6], lines[5]
    write_lines(path, lines)
    assert_corrupt(path, 6, "expected seq 6, found seq 7")


def test_edited_value_breaks_the_hash_link(sample: Sample) -> None:
    path, _, lines = sample
    assert b'"DONE"' in lines[4]
    lines[4] = lines[4].replace(b'"DONE"', b'"CANCELLED"')
    write_lines(path, lines)
    assert_corrupt(path, 5, "hash link broken")


def test_edited_and_resealed_line_breaks_the_next_link(sample: Sample) -> None:
    path, events, lines = sample
    lines[4] = sealed(replace(events[4], value="CANCELLED"), events[3].hash)
    write_lines(path, lines)
    assert_corrupt(path, 6, "hash link broken")


def test_edited_last_line(sample: Sample) -> None:
    path, _, lines = sample
    lines[7] = lines[7].replace(b'"ex-1"', b'"ex-2"')
    write_lines(path, lines)
    assert_corrupt(path, 8, "hash link broken")


def test_inserted_line(sample: Sample) -> None:
    path, events, lines = sample
    lines.insert(4, sealed(replace(events[7], seq=5), events[3].hash))
    write_lines(path, lines)
    assert_corrupt(path, 6, "expected seq 6, found seq 5")


def test_inserted_copy_of_another_line(sample: Sample) -> None:
    path, _, lines = sample
    lines.insert(2, lines[0])
    write_lines(path, lines)
    assert_corrupt(path, 3, "expected seq 3, found seq 1")


def test_newer_schema_version(sample: Sample) -> None:
    path, events, _ = sample
    events[3] = replace(events[3], v=SCHEMA_VERSION + 1)
    write_lines(path, rechain(events))  # every hash is valid: only the version check catches it
    assert_corrupt(
        path,
        4,
        f"written with schema version {SCHEMA_VERSION + 1}; this pipelines-events reads versions "
        f"up to {SCHEMA_VERSION}: upgrade pipelines-events",
    )


def test_newer_schema_version_with_a_stale_hash(sample: Sample) -> None:
    path, _, lines = sample
    lines[3] = lines[3].replace(f'"v":{SCHEMA_VERSION},'.encode(), b'"v":7,')
    write_lines(path, lines)
    assert_corrupt(path, 4, "written with schema version 7")


def test_schema_version_never_written(sample: Sample) -> None:
    path, events, _ = sample
    events[3] = replace(events[3], v=0)
    write_lines(path, rechain(events))
    assert_corrupt(path, 4, "schema version 0 is not a version ever written")


def test_wrong_seq_with_valid_hashes(sample: Sample) -> None:
    path, events, _ = sample
    events[3] = replace(events[3], seq=40)
    write_lines(path, rechain(events))
    assert_corrupt(path, 4, "expected seq 4, found seq 40")


def test_spliced_batch_with_valid_hashes(sample: Sample) -> None:
    path, events, _ = sample
    events[5] = replace(events[5], more=5)
    write_lines(path, rechain(events))
    assert_corrupt(path, 6, "the batch that began at seq 5 expected 1 more events here, found 5")


def test_invalid_utf8(sample: Sample) -> None:
    path, _, lines = sample
    assert b'"started"' in lines[2]
    lines[2] = lines[2].replace(b'"started"', b'"st\xffrted"')
    write_lines(path, lines)
    assert_corrupt(path, 3, "not valid UTF-8 (byte ")


def test_binary_file(log_path: Path) -> None:
    chunks = [os.urandom(300).replace(b"\n", b"") for _ in range(5)]
    tail = os.urandom(40).replace(b"\n", b"")  # no newline at the end: looks torn
    log_path.write_bytes(b"\xff" + b"\n".join(chunks) + b"\n" + tail)
    os.chmod(log_path, 0o600)
    assert_corrupt(log_path, 1, "not valid UTF-8 (byte 0: b'\\xff'); is this a log file?")


def test_empty_line(sample: Sample) -> None:
    path, _, lines = sample
    lines.insert(3, b"")
    write_lines(path, lines)
    assert_corrupt(path, 4, "empty line")


def test_empty_line_at_the_end(sample: Sample) -> None:
    path, _, lines = sample
    write_lines(path, [*lines, b""])
    assert_corrupt(path, 9, "empty line")


def test_blank_line(sample: Sample) -> None:
    path, _, lines = sample
    lines.insert(0, b"   ")
    write_lines(path, lines)
    assert_corrupt(path, 1, "empty line")


def test_an_empty_file_is_an_empty_log(log_path: Path) -> None:
    log_path.touch(mode=0o600)
    assert list(read_events(log_path)) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log = JsonlEventLog(log_path)
    with log:
        assert list(log.read_new()) == []
        (event,) = log.append([fs("a", 1)])
    assert event.seq == 1
    assert list(read_events(log_path)) == [event]


def test_damage_found_by_a_reader_that_already_read_part(sample: Sample) -> None:
    path, events, _ = sample
    with JsonlEventLog(path, readonly=True) as log:
        assert list(log.read_new()) == events
        position = log.position
        with path.open("ab") as file:
            file.write(sealed(replace(events[0], seq=9), "f" * 64) + b"\n")
        with pytest.raises(LogCorruptError, match="line 9: hash link broken") as info:
            list(log.read_new())
        assert info.value.line == 9
        assert log.position == position


# -- torn tails ---------------------------------------------------------------------------


def _cut(path: Path, size: int) -> None:
    with path.open("r+b") as file:
        file.truncate(size)


def _ends(path: Path) -> list[int]:
    """Byte offset after each line."""
    ends, total = [], 0
    for line in lines_of(path):
        total += len(line) + 1
        ends.append(total)
    return ends


def test_partial_last_line_is_repaired_on_open(sample: Sample) -> None:
    path, events, _ = sample
    ends = _ends(path)
    _cut(path, ends[7] - 10)
    with pytest.warns(
        TornWriteRepaired, match=rf"removed {ends[7] - 10 - ends[6]} bytes after byte {ends[6]}"
    ):
        log = JsonlEventLog(path)
    assert path.stat().st_size == ends[6]
    with log:
        assert list(log.read_new()) == events[:7]
        (event,) = log.append([fs("a", 1)])
    assert event.seq == 8
    assert event.hash != events[7].hash
    assert list(read_events(path)) == [*events[:7], event]


def test_batch_cut_after_a_complete_line_is_removed_whole(sample: Sample) -> None:
    path, events, _ = sample
    ends = _ends(path)
    _cut(path, ends[5])  # lines 5 and 6 of the batch 5-7 are complete, 7 is missing
    assert list(read_events(path)) == events[:4]  # a reader never sees the partial batch
    assert path.stat().st_size == ends[5]  # and changes nothing
    with pytest.warns(TornWriteRepaired, match=rf"after byte {ends[3]}"):
        log = JsonlEventLog(path)
    assert path.stat().st_size == ends[3]
    with log:
        assert list(log.read_new()) == events[:4]
        out = log.append([fs("a", 1)])
    assert [e.seq for e in out] == [5]
    assert list(read_events(path)) == [*events[:4], *out]


def test_readonly_reader_waits_for_the_rest_of_a_batch(log_path: Path) -> None:
    with JsonlEventLog(log_path, durability="none") as writer:
        first = writer.append([fs("a", 1)])
        batch = writer.append([fs("b", 2), fs("c", 3), fs("d", 4)])
    data = log_path.read_bytes()
    start = len(data) - sum(len(line) + 1 for line in data[:-1].split(b"\n")[1:])
    _cut(log_path, start)
    with JsonlEventLog(log_path, readonly=True) as reader:
        assert list(reader.read_new()) == first
        for size in range(start + 1, len(data)):
            with log_path.open("ab") as file:
                file.write(data[size - 1 : size])
            assert list(reader.read_new()) == []
            assert reader.position.seq == 1
        with log_path.open("ab") as file:
            file.write(data[-1:])
        assert list(reader.read_new()) == batch
    assert log_path.read_bytes() == data


def test_append_repairs_a_tail_torn_while_the_log_was_open(log_path: Path) -> None:
    with JsonlEventLog(log_path) as log, JsonlEventLog(log_path, readonly=True) as reader:
        first = log.append([fs("a", 1)])
        size = log.size()
        torn = b'{"type":"set","v":1,"seq":2,"ts":"2026'
        with log_path.open("ab") as file:  # another writer died mid-write
            file.write(torn)
        assert list(reader.read_new()) == first
        with pytest.warns(
            TornWriteRepaired, match=rf"removed {len(torn)} bytes after byte {size}:"
        ):
            second = log.append([fs("b", 2)])
        assert [e.seq for e in second] == [2]
        assert list(reader.read_new()) == second
    assert list(read_events(log_path)) == [*first, *second]


def _build(path: Path, batches: list[list[AnyEvent]]) -> tuple[list[AnyEvent], list[AnyEvent]]:
    """Write ``batches`` plus a last batch of three; return the events before it and in it."""
    before: list[AnyEvent] = []
    with JsonlEventLog(path, durability="none") as log:
        for batch in batches:
            before.extend(log.append(batch))
        last = log.append([fs("x", "ü" * 5), fs("y", [1, 2]), fs("z", None)])
    return before, last


@pytest.mark.parametrize("history", ["alone", "after_others"])
def test_cutting_the_last_batch_at_every_byte(
    tmp_path: Path, sample_batches: list[list[AnyEvent]], history: str
) -> None:
    full_path = tmp_path / "full.jsonl"
    before, last = _build(full_path, sample_batches if history == "after_others" else [])
    data = full_path.read_bytes()
    start = sum(len(line) + 1 for line in data[:-1].split(b"\n")[: len(before)])
    assert data[start - 1 : start] in (b"\n", b"")
    path = tmp_path / "cut.jsonl"
    path.touch(mode=0o600)  # the mode a log gets: no warning about its permissions
    for size in range(start, len(data) + 1):
        expected = [*before, *last] if size == len(data) else before
        path.write_bytes(data[:size])
        assert list(read_events(path)) == expected, size
        assert path.stat().st_size == size  # the reader changed nothing
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            log = JsonlEventLog(path, durability="none")
        torn = start < size < len(data)
        assert [w.category for w in caught] == ([TornWriteRepaired] if torn else []), size
        with log:
            assert list(log.read_new()) == expected, size
            assert path.read_bytes() == data[: len(data) if size == len(data) else start]
            (event,) = log.append([fs("after", size)])
            assert event.seq == len(expected) + 1
        assert list(read_events(path)) == [*expected, event], size


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"hello world", "is this file a pipelines-events log?"),
        (b"# notes\nno newline at the end", "not valid JSON"),
    ],
)
def test_a_file_that_is_not_a_log_is_never_cut(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(LogCorruptError) as caught, JsonlEventLog(path) as log:
        list(log.read_new())
    assert caught.value.line == 1
    assert reason in caught.value.reason
    assert path.read_bytes() == content


def test_a_tail_of_zero_bytes_is_a_torn_write(
    tmp_path: Path, sample_batches: list[list[AnyEvent]]
) -> None:
    path = tmp_path / "log.jsonl"
    with JsonlEventLog(path) as log:
        for batch in sample_batches:
            log.append(batch)
    intact = path.read_bytes()
    path.write_bytes(intact + b"\0" * 100)  # the size grew, the data never reached the disk
    with pytest.warns(TornWriteRepaired):
        JsonlEventLog(path).close()
    assert path.read_bytes() == intact
