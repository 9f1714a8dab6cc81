"""Importing an export someone else wrote: every bad line is refused, and nothing is written.

Each hostile export here is a valid, correctly hash-chained log (its lines are sealed
again with the chain functions) whose content no storage could fold, so each test proves
the semantic check, not the hash check. Each test checks that the message names the
export's line and the problem, and that the target log is byte for byte the same after
the refusal and still opens.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipelines_events import audit
from pipelines_events.cli import main
from pipelines_events.errors import InvalidValueError, LogCorruptError, LogOpenError
from pipelines_events.events import (
    GENESIS_HASH,
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    SCHEMA_VERSION,
    TASK_EXECUTION,
    TASK_RESULT,
    AnyEvent,
    FieldSet,
    ObjectCreated,
    RunRemoved,
)
from pipelines_events.log import read_events
from pipelines_events.log.chain import decode_event, encode_event, seal
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from tests.support.audit_support import drive_run

replace = msgspec.structs.replace


@pytest.fixture
def original(tmp_path: Path) -> Path:
    """A log with runs run-0 and run-1."""
    path = tmp_path / "original.jsonl"
    storage = EventLogPipelineResultsStorage(path, durability="none")
    drive_run(storage, "run-0", fail=None, cities=("oslo",))
    drive_run(storage, "run-1")
    storage.close()
    return path


@pytest.fixture
def events(original: Path, tmp_path: Path) -> list[AnyEvent]:
    """The events of run-1, as ``export`` writes them (seq from 1)."""
    out = tmp_path / "run-1.jsonl"
    audit.export(original, "run-1", out)
    return list(read_events(out))


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """The log to import into: it holds run-9 already."""
    path = tmp_path / "target.jsonl"
    storage = EventLogPipelineResultsStorage(path, durability="none")
    drive_run(storage, "run-9", fail=None, cities=("cairo",))
    storage.close()
    return path


def sealed(path: Path, events: list[AnyEvent]) -> Path:
    """Write ``events`` as a log that verifies: seq from 1, each line chained to the last."""
    prev = GENESIS_HASH
    lines = []
    for seq, event in enumerate(events, 1):
        line, prev = seal(encode_event(replace(event, v=SCHEMA_VERSION, seq=seq, hash="")), prev)
        lines.append(line)
    path.write_bytes(b"".join(lines))
    assert audit.verify(path).ok  # the chain is sound: what follows is refused on content
    return path


def index_of(events: list[AnyEvent], test: Callable[[AnyEvent], bool]) -> int:
    return next(i for i, event in enumerate(events) if test(event))


def is_set(field: str, kind: str | None = None) -> Callable[[AnyEvent], bool]:
    return lambda e: type(e) is FieldSet and e.field == field and kind in (None, e.kind)


def is_created(kind: str) -> Callable[[AnyEvent], bool]:
    return lambda e: type(e) is ObjectCreated and e.kind == kind


def edited(events: list[AnyEvent], index: int, **changes: Any) -> list[AnyEvent]:
    out = list(events)
    out[index] = replace(out[index], **changes)
    return out


def appended(events: list[AnyEvent], event: AnyEvent) -> list[AnyEvent]:
    """``events`` with ``event`` as a batch of its own at the end."""
    return [*events, replace(event, more=0)]


def refused(source: Path, target: Path, error: type[Exception] = audit.ImportRefusedError) -> str:
    """Import ``source`` into ``target`` through the API and the command; both must refuse
    and leave the target as it was, a log a storage opens. Returns the message."""
    before = target.read_bytes()
    listing = sorted(p.name for p in target.parent.iterdir())
    with pytest.raises(error) as info:
        audit.import_log(source, target)
    message = str(info.value)
    assert target.read_bytes() == before
    with pytest.raises(error):
        audit.Replay(source, into=target)
    assert target.read_bytes() == before
    assert main(["replay", str(source), "--into", str(target)]) == 2
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == listing
    storage = EventLogPipelineResultsStorage(target, snapshots=False)
    assert storage.get_pipeline_execution("run-9") is not None
    storage.close()
    assert target.read_bytes() == before
    assert audit.verify(target).ok
    return message


def line_of(index: int) -> str:
    return f"line {index + 1}:"


# -- the baseline: a sound export goes in ----------------------------------------------------


def test_a_resealed_sound_export_imports(events: list[AnyEvent], target: Path, tmp_path: Path):
    source = sealed(tmp_path / "sound.jsonl", events)
    (outcome,) = audit.import_log(source, target)
    assert (outcome.action, outcome.events) == ("imported", len(events))
    assert audit.verify(target).ok


# -- runs, objects, kinds --------------------------------------------------------------------


def test_an_event_of_one_run_touching_an_object_of_another(
    events: list[AnyEvent], target: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    i = index_of(events, is_set("status", TASK_RESULT))
    source = sealed(tmp_path / "x.jsonl", edited(events, i, run_id="run-9"))
    message = refused(source, target)
    assert message.startswith(f"{source}: {line_of(i)} an event of run 'run-9' sets a field of")
    assert "of run 'run-1' (created at line" in message
    assert message.endswith("an event stays within its run; nothing was imported")
    assert f"{source}: {line_of(i)}" in capsys.readouterr().err


def test_an_object_created_under_a_parent_of_another_run(
    events: list[AnyEvent], target: Path, tmp_path: Path
) -> None:
    i = index_of(events, is_created(PIPELINE_RESULT))
    source = sealed(tmp_path / "x.jsonl", edited(events, i, run_id="run-other"))
    message = refused(source, target)
    assert f"{line_of(i)} pipeline_result {events[i].id} of run 'run-other' names the parent" in (
        message
    )
    assert "of run 'run-1': an object stays within its run" in message


@pytest.mark.parametrize("field", ["pipeline_id", "run_id", "parent_id", "task_id", "id"])
def test_a_change_of_an_identifying_field(
    events: list[AnyEvent], target: Path, tmp_path: Path, field: str
) -> None:
    i = index_of(events, is_set("message", TASK_RESULT))
    source = sealed(tmp_path / "x.jsonl", edited(events, i, field=field, value="other"))
    message = refused(source, target)
    assert f"{line_of(i)} sets {field!r} of task_result {events[i].id}: that field identifies" in (
        message
    )


def test_a_field_name_that_is_not_an_identifier(
    events: list[AnyEvent], target: Path, tmp_path: Path
) -> None:
    i = index_of(events, is_set("message"))
    source = sealed(tmp_path / "x.jsonl", edited(events, i, field="not a name"))
    assert f"{line_of(i)} sets the field 'not a name'" in refused(source, target)


def test_a_set_on_an_unknown_object(events: list[AnyEvent], target: Path, tmp_path: Path) -> None:
    ghost = FieldSet(
        run_id="run-1", kind=TASK_RESULT, id="no-such-object", field="message", value="boo",
        ts=events[-1].ts,
    )  # fmt: skip
    source = sealed(tmp_path / "x.jsonl", appended(events, ghost))
    message = refused(source, target)
    assert f"{line_of(len(events))} sets a field of task_result no-such-object, which no " in (
        message
    )


def test_a_set_naming_an_object_as_another_kind(
    events: list[AnyEvent], target: Path, tmp_path: Path
) -> None:
    i = index_of(events, is_set("status", TASK_RESULT))
    source = sealed(tmp_path / "x.jsonl", edited(events, i, kind=TASK_EXECUTION))
    message = refused(source, target)
    assert f"{line_of(i)} names {events[i].id} as a task_execution, but line" in message
    assert "creates it as a task_result" in message


def test_an_unknown_parent(events: list[AnyEvent], target: Path, tmp_path: Path) -> None:
    i = index_of(events, is_created(TASK_RESULT))
    source = sealed(tmp_path / "x.jsonl", edited(events, i, parent_id="nobody"))
    message = refused(source, target)
    assert f"{line_of(i)} task_result {events[i].id} names the parent nobody, which no " in message


def test_a_parent_of_the_wrong_kind(events: list[AnyEvent], target: Path, tmp_path: Path) -> None:
    execution = events[index_of(events, is_created(PIPELINE_EXECUTION))]
    i = index_of(events, is_created(TASK_RESULT))
    source = sealed(tmp_path / "x.jsonl", edited(events, i, parent_id=execution.id))
    message = refused(source, target)
    assert f"{line_of(i)} task_result {events[i].id} names the parent {execution.id}, a " in message
    assert "the parent of a task_result is a task_execution" in message


def test_an_execution_with_a_parent_and_a_second_execution(
    events: list[AnyEvent], target: Path, tmp_path: Path
) -> None:
    i = index_of(events, is_created(PIPELINE_EXECUTION))
    orphan = edited(events, i, parent_id="someone")
    message = refused(sealed(tmp_path / "a.jsonl", orphan), target)
    assert f"{line_of(i)} the pipeline_execution {events[i].id} has a parent" in message
    second = replace(events[i], id="second-execution")
    message = refused(sealed(tmp_path / "b.jsonl", appended(events, second)), target)
    assert f"{line_of(len(events))} creates a second pipeline_execution for run 'run-1'" in message


@pytest.mark.parametrize("kind", ["pipeline_thing", "", "TASK_RESULT"])
def test_an_unknown_kind(events: list[AnyEvent], target: Path, tmp_path: Path, kind: str) -> None:
    i = index_of(events, is_set("status", TASK_RESULT))
    source = sealed(tmp_path / "x.jsonl", edited(events, i, kind=kind))
    message = refused(source, target)
    assert f"{line_of(i)} {kind!r} is not a kind of result object; the kinds are " in message


def test_a_removal_of_something_else_than_a_run(
    events: list[AnyEvent], target: Path, tmp_path: Path
) -> None:
    result = events[index_of(events, is_created(PIPELINE_RESULT))]
    removal = RunRemoved(run_id="run-1", kind=PIPELINE_RESULT, id=result.id, ts=events[-1].ts)
    source = sealed(tmp_path / "x.jsonl", appended(events, removal))
    message = refused(source, target)
    assert f"{line_of(len(events))} a removal names a pipeline_result" in message


def test_duplicate_creation_within_the_source(
    events: list[AnyEvent], target: Path, tmp_path: Path
) -> None:
    i = index_of(events, is_created(TASK_RESULT))
    source = sealed(tmp_path / "x.jsonl", appended(events, events[i]))
    message = refused(source, target)
    assert (
        f"{line_of(len(events))} creates task_result {events[i].id} again: {line_of(i)[:-1]}"
        in (message)
    )


def test_a_created_object_whose_id_exists_in_the_target_under_another_run(
    events: list[AnyEvent], target: Path, tmp_path: Path
) -> None:
    taken = next(
        e for e in read_events(target) if type(e) is ObjectCreated and e.kind == TASK_RESULT
    )
    i = index_of(events, is_created(TASK_RESULT))
    mine = events[i].id
    renamed = [replace(e, id=taken.id) if e.id == mine else e for e in events]
    renamed = [
        replace(e, parent_id=taken.id) if type(e) is ObjectCreated and e.parent_id == mine else e
        for e in renamed
    ]
    source = sealed(tmp_path / "x.jsonl", renamed)
    message = refused(source, target, audit.ImportConflictError)
    assert message == (
        f"{target}: cannot import run 'run-1': its object {taken.id} already exists there in "
        "run 'run-9'; nothing was imported"
    )


def test_a_created_object_whose_id_exists_in_the_target_as_another_kind(
    events: list[AnyEvent], target: Path, tmp_path: Path
) -> None:
    # The target holds the start of a run-1 whose task execution has the id the export
    # gives a task result.
    i = index_of(events, is_created(TASK_RESULT))
    j = index_of(events, is_created(TASK_EXECUTION))
    assert j < i
    start = [*events[:j], replace(events[j], id=events[i].id)]
    taken = [replace(e, more=len(start) - 1 - k) for k, e in enumerate(start)]
    conflicting = tmp_path / "conflicting.jsonl"
    audit.import_log(sealed(conflicting, taken), target)
    source = sealed(tmp_path / "x.jsonl", events)
    message = refused(source, target, audit.ImportConflictError)
    assert f"its object {events[i].id} already exists there as a task_execution" in message


# -- values that do not decode ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "vtype", "problem"),
    [
        ("status", "FINISHED", "status", "'FINISHED' (tagged 'status') is not a status"),
        ("status", 5, "status", "field 'status': 5 (tagged 'status') is not a status"),
        ("status", "DONE", None, "field 'status': give a PipelineTaskStatus, not str 'DONE'"),
        ("started", "yesterday", "datetime", "'yesterday' (tagged 'datetime') is not an ISO"),
        ("started", 12, "datetime", "12 (tagged 'datetime') is not an ISO 8601 time"),
        (
            "started",
            "2026-11-05T12:00:00",
            "datetime",
            "the time '2026-11-05T12:00:00' has no timezone",
        ),
        ("completed", "2026-11-05T12:00:00+00:00", None, "give an aware datetime or None, not str"),
        ("payload", "1.5", "decimal", "field 'payload' has the unknown type tag 'decimal'"),
        ("message", 7, None, "field 'message': give a str, not int"),
        ("payload", 2**12001, None, "ints longer than 12000 bits cannot be stored"),
    ],
    ids=lambda value: str(value)[:20],
)
def test_a_value_that_does_not_decode(
    events: list[AnyEvent],
    target: Path,
    tmp_path: Path,
    field: str,
    value: Any,
    vtype: str | None,
    problem: str,
) -> None:
    i = index_of(events, is_set("status", TASK_RESULT))
    source = sealed(tmp_path / "x.jsonl", edited(events, i, field=field, value=value, vtype=vtype))
    message = refused(source, target)
    assert message.startswith(f"{source}: {line_of(i)} ")
    assert problem in message and message.endswith("; nothing was imported")


@pytest.mark.parametrize(
    ("attrs", "types", "problem"),
    [
        ({"status": "LOST"}, {"status": "status"}, "'LOST' (tagged 'status') is not a status"),
        ({"status": "PENDING"}, {}, "field 'status': give a PipelineTaskStatus, not str 'PENDING'"),
        (
            {"status": "PENDING", "started": "soon"},
            {"status": "status", "started": "datetime"},
            "'soon' (tagged 'datetime') is not an ISO",
        ),
        (
            {"status": "PENDING"},
            {"status": "status", "x": "status"},
            "tag 'status' names the attribute 'x', which is not",
        ),
        (
            {"status": "PENDING", "x": 1},
            {"status": "status", "x": "money"},
            "attribute 'x' has the unknown type tag 'money'",
        ),
        ({}, {}, "is created without a status"),
        (
            {"status": "PENDING", "run_id": "run-2"},
            {"status": "status"},
            "'run_id' is a member of every event",
        ),
        (
            {"status": "PENDING", "task_id": 5},
            {"status": "status"},
            "identifying attribute 'task_id' is not a str: 5",
        ),
    ],
)
def test_created_attributes_that_do_not_decode(
    events: list[AnyEvent],
    target: Path,
    tmp_path: Path,
    attrs: dict[str, Any],
    types: dict[str, str],
    problem: str,
) -> None:
    i = index_of(events, is_created(TASK_RESULT))
    source = sealed(tmp_path / "x.jsonl", edited(events, i, attrs=attrs, types=types))
    message = refused(source, target)
    assert f"{source}: {line_of(i)} " in message and problem in message


@pytest.mark.parametrize("ts", ["", "noon", "2026-11-05T12:00:00"])
def test_an_event_time_that_does_not_decode(
    events: list[AnyEvent], target: Path, tmp_path: Path, ts: str
) -> None:
    i = index_of(events, is_set("status", TASK_RESULT))
    source = sealed(tmp_path / "x.jsonl", edited(events, i, ts=ts))
    message = refused(source, target)
    assert f"{line_of(i)} the event's time {ts!r} " in message


def test_a_value_nested_too_deeply_to_read(
    events: list[AnyEvent], target: Path, tmp_path: Path
) -> None:
    i = index_of(events, is_set("message", TASK_RESULT))
    source = sealed(tmp_path / "x.jsonl", events)
    lines = source.read_bytes().split(b"\n")
    deep = b"[" * 5000 + b"]" * 5000
    body = encode_event(replace(events[i], seq=i + 1, value="DEEP", hash=""))
    prev = decode_event(lines[i - 1]).hash if i else GENESIS_HASH
    lines[i], prev = seal(body.replace(b'"DEEP"', deep), prev)
    lines[i] = lines[i][:-1]
    for k in range(i + 1, len(events)):
        line, prev = seal(encode_event(replace(events[k], seq=k + 1, hash="")), prev)
        lines[k] = line[:-1]
    source.write_bytes(b"\n".join(lines))
    message = refused(source, target, LogCorruptError)
    assert message.startswith(f"{source}: {line_of(i)} a value nests lists and dicts too deeply")


# -- broken and odd files --------------------------------------------------------------------


def test_an_export_whose_chain_is_broken(
    events: list[AnyEvent], target: Path, tmp_path: Path
) -> None:
    source = sealed(tmp_path / "x.jsonl", events)
    lines = source.read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b'"PENDING"', b'"DONE"', 1).replace(b'"RUNNING"', b'"DONE"', 1)
    source.write_bytes(b"\n".join(lines))
    message = refused(source, target, LogCorruptError)
    assert message.startswith(f"{source}: line 5: hash link broken")


def test_a_huge_line_is_refused_before_it_is_read_whole(target: Path, tmp_path: Path) -> None:
    source = tmp_path / "huge.jsonl"
    with source.open("wb") as out:
        out.write(b"x" * (3 << 20))  # one line of 3 MiB, no newline
    message = refused(source, target)
    assert message.startswith(f"{source}: line 1: the line is longer than")


def test_a_huge_line_after_good_ones(events: list[AnyEvent], target: Path, tmp_path: Path) -> None:
    source = sealed(tmp_path / "x.jsonl", events)
    with source.open("ab") as out:
        out.write(b"{" + b" " * (2 << 20) + b"}\n")
    message = refused(source, target)
    assert message.startswith(f"{source}: line {len(events) + 1}: the line is longer than")


def test_text_appended_after_the_last_batch(
    events: list[AnyEvent], target: Path, tmp_path: Path
) -> None:
    source = sealed(tmp_path / "x.jsonl", events)
    with source.open("ab") as out:
        out.write(b"appended by someone")
    message = refused(source, target)
    assert message.startswith(f"{source}: line {len(events) + 1}: the file ends with 19 bytes")
    assert "that are not an event (b'appended by someone')" in message


def test_an_unfinished_last_batch_is_left_out_as_readers_leave_it_out(
    events: list[AnyEvent], target: Path, tmp_path: Path
) -> None:
    source = sealed(tmp_path / "x.jsonl", events)
    whole = source.read_bytes()
    last = whole[:-1].rsplit(b"\n", 1)[1]
    source.write_bytes(whole + last[: len(last) // 2])  # a writer killed mid-line
    (outcome,) = audit.import_log(source, target)
    assert (outcome.action, outcome.events) == ("imported", len(events))
    assert audit.verify(target).ok


def test_a_fifo_or_a_device_is_refused_without_blocking(target: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            audit.import_log(fifo, target)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # unblock it before failing
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        pytest.fail("importing a FIFO blocked")
    assert isinstance(outcome[0], LogOpenError)
    assert str(outcome[0]) == f"{fifo}: the log path is not a regular file"
    message = refused(Path("/dev/zero"), target, LogOpenError)
    assert message == "/dev/zero: the log path is not a regular file"


def test_a_target_that_is_a_fifo_or_a_device_is_refused(
    events: list[AnyEvent], tmp_path: Path
) -> None:
    source = sealed(tmp_path / "x.jsonl", events)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    listing = sorted(p.name for p in tmp_path.iterdir())
    for target in (fifo, Path("/dev/null")):
        with pytest.raises(LogOpenError, match=f"^{target}: the log path is not a regular file$"):
            audit.import_log(source, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == listing


def test_a_log_imported_into_itself(target: Path) -> None:
    message = refused(target, target, InvalidValueError)
    assert "a log cannot be imported into itself; nothing was imported" in message
    link = target.parent / "link.jsonl"
    link.symlink_to(target.name)
    assert "into itself" in refused(link, target, InvalidValueError)


def test_nothing_is_created_when_the_target_is_missing(
    events: list[AnyEvent], tmp_path: Path
) -> None:
    i = index_of(events, is_set("status", TASK_RESULT))
    source = sealed(tmp_path / "x.jsonl", edited(events, i, kind="nope"))
    missing = tmp_path / "new" / "target.jsonl"
    with pytest.raises(audit.ImportRefusedError):
        audit.import_log(source, missing)
    assert not missing.parent.exists()
