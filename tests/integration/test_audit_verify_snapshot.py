"""``verify`` checks the snapshot beside the log, and agrees with the writers on what a
torn tail is: bytes at the end that are not a torn write are damage at a real line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipelines_events import audit
from pipelines_events.cli import main
from pipelines_events.errors import LogCorruptError
from pipelines_events.events import START, LogPosition
from pipelines_events.log.chain import decode_event
from pipelines_events.log.memory import MemoryEventLog, drop_memory_store
from pipelines_events.log.open import open_log
from pipelines_events.results import helpers
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.snapshots import decode_snapshot, encode_snapshot
from pipelines_events.status import PipelineTaskStatus as S
from pipelines_events.testing import ExamplePipeline, ExampleReporter, ExampleRunner
from pipelines_events.testing import ExampleTask as Task
from tests.support.snapshot_support import read_snapshot, write_snapshot

LETTERS = "tests.support.cli_pipelines.Letters"

NO_INDEX = {"run_index": False}
"""Storages that fold the whole log and keep a snapshot (no run index)."""


@pytest.fixture(autouse=True)
def fresh_storage() -> Any:
    helpers.reset_storage_object()
    yield
    helpers.reset_storage_object()


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def verify_cli(
    capsys: pytest.CaptureFixture[str], log: Path, *options: str
) -> tuple[int, list[str]]:
    capsys.readouterr()
    status = main(["verify", "--log", str(log), *options])
    return status, capsys.readouterr().out.splitlines()


@pytest.fixture
def log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Runs ``ok`` (DONE) and ``bad`` (RUNTIME_ERROR), and a snapshot of both."""
    path = tmp_path / "x.jsonl"
    for run_id, data in (("ok", "{}"), ("bad", '{"fail_on": "b"}')):
        main(["run", LETTERS, "--run-id", run_id, "--input", data, "--log", str(path), "-q"])
    EventLogPipelineResultsStorage(
        path, log_options=NO_INDEX, snapshot_every=1
    ).close()  # writes the snapshot
    capsys.readouterr()
    return path


def damage_line_3(log: Path) -> None:
    """Change a status on line 3 of ``log`` to one no storage knows (same length)."""
    lines = log.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"PENDING"', b'"PENDINg"', 1)
    log.write_bytes(b"\n".join(lines))


def snapshot_of(log: Path) -> Path:
    return log.with_name(log.name + ".snapshot")


def forge(log: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite the snapshot with ``change`` applied to its results, at the same position and
    with a valid checksum: what someone with write access to the directory can do."""
    path = snapshot_of(log)
    snapshot = read_snapshot(path)
    results = msgspec.json.decode(snapshot.parts["results"])
    change(results)
    parts = {**snapshot.parts, "results": msgspec.json.encode(results)}
    write_snapshot(path, msgspec.structs.replace(snapshot, parts=parts))


def execution_record(results: dict[str, Any], run_id: str) -> list[Any]:
    """A record is ``[kind, id, run_id, parent_id, ...]``."""
    return next(r for r in results["records"] if r[0] == "pipeline_execution" and r[2] == run_id)


def attrs(record: list[Any]) -> dict[str, Any]:
    """The fields of a snapshot record (its first dict)."""
    return next(part for part in record if isinstance(part, dict))


def ghost(results: dict[str, Any]) -> None:
    record = list(execution_record(results, "ok"))
    record[1] = record[2] = "ghost"
    results["records"].append(record)


def test_a_true_snapshot_matches(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = audit.verify(log)
    assert report.ok and report.snapshot_state == audit.SNAPSHOT_MATCHES
    assert report.snapshot == str(snapshot_of(log)) and report.snapshot_seq == report.head_seq
    status, lines = verify_cli(capsys, log)
    assert status == 0
    assert lines[-1] == f"snapshot {snapshot_of(log)}: matches the log at seq {report.head_seq}"


def test_no_snapshot_is_said_and_passes(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot_of(log).unlink()
    report = audit.verify(log)
    assert report.ok and report.snapshot is None and report.snapshot_state == audit.SNAPSHOT_NONE
    status, lines = verify_cli(capsys, log)
    assert status == 0
    assert lines[-1] == "no snapshot: storages read runs from the engine's run index"


def test_a_snapshot_with_other_state_fails_verify_and_names_it(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def cover_up(results: dict[str, Any]) -> None:
        attrs(execution_record(results, "bad"))["message"] = "all fine"

    forge(log, cover_up)
    # What the forged snapshot does: storages and `runs` serve its state.
    storage = EventLogPipelineResultsStorage(log, log_options=NO_INDEX, readonly=True)
    bad = storage.get_pipeline_execution("bad")
    assert bad is not None and bad.get_message() == "all fine"
    execution_id = bad.get_id()
    storage.close()
    before = files(log.parent)

    report = audit.verify(log)
    assert not report.ok and report.line is None
    assert report.snapshot_state == audit.SNAPSHOT_DIFFERS
    expected = (
        f"{snapshot_of(log)}: the snapshot at seq {report.head_seq} does not hold what a "
        f"replay of the log up to there gives: pipeline_execution {execution_id} of run 'bad', "
        "field 'message': the snapshot holds 'all fine', the log 'RuntimeError: b 2 refused'. "
        "Storages opening the log would start from this false state: remove the snapshot"
    )
    assert (report.reason or "").startswith(expected)
    assert report.snapshot_reason == report.reason

    status, lines = verify_cli(capsys, log)
    assert status == 1
    assert lines[0].startswith(f"FAILED: {expected}")
    assert lines[1].startswith(f"the log itself verifies: {log}: ")
    status, lines = verify_cli(capsys, log, "--format", "json")
    assert status == 1
    assert json.loads(lines[0])["snapshot_state"] == "differs"
    assert files(log.parent) == before  # verify changed nothing

    # Removing it, as the message says, makes the storage replay the log.
    snapshot_of(log).unlink()
    storage = EventLogPipelineResultsStorage(log, log_options=NO_INDEX, readonly=True)
    bad = storage.get_pipeline_execution("bad")
    assert bad is not None and bad.get_status() is S.RUNTIME_ERROR
    assert bad.get_message() == "RuntimeError: b 2 refused"
    storage.close()


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (
            lambda r: r.update(records=[x for x in r["records"] if x[2] != "bad"]),
            "of run 'bad' is missing from the snapshot",
        ),
        (ghost, "the snapshot holds pipeline_execution ghost, which the log never created"),
        (
            lambda r: r.update(removed_runs=["ok"]),
            "the runs removed by cleanup differ: the snapshot holds ['ok'], the log []",
        ),
        (
            lambda r: attrs(execution_record(r, "ok")).update(input_data={"n": 1}),
            "of run 'ok', field 'input_data': the snapshot holds {'n': 1}, the log {}",
        ),
    ],
)
def test_each_kind_of_false_snapshot_is_named(
    log: Path, change: Callable[[dict[str, Any]], None], detail: str
) -> None:
    forge(log, change)
    report = audit.verify(log)
    assert not report.ok and report.snapshot_state == audit.SNAPSHOT_DIFFERS
    assert detail in (report.reason or "")


def test_a_snapshot_inside_a_batch_fails(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = log.read_bytes().split(b"\n")
    inside = decode_event(lines[4])  # the fifth of the thirteen objects created in one batch
    assert inside.more > 0
    offset = sum(len(line) + 1 for line in lines[:5])
    path = snapshot_of(log)
    snapshot = read_snapshot(path)
    position = LogPosition(offset, inside.seq, inside.hash)
    write_snapshot(path, msgspec.structs.replace(snapshot, position=position))
    report = audit.verify(log)
    assert not report.ok and report.snapshot_state == audit.SNAPSHOT_DIFFERS
    ends = inside.seq + inside.more
    assert f"its position (seq {inside.seq}) is inside the batch that ends at seq {ends}" in (
        report.reason or ""
    )
    assert verify_cli(capsys, log)[0] == 1


def test_an_unusable_snapshot_is_reported_as_ignored_and_passes(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = snapshot_of(log)
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    report = audit.verify(log)
    assert report.ok and report.snapshot_state == audit.SNAPSHOT_IGNORED
    assert (
        report.snapshot_reason == f"{path}: the snapshot is damaged (its checksum does not match)"
    )
    status, lines = verify_cli(capsys, log)
    assert status == 0
    assert lines[-1] == (
        "note: snapshot ignored: storages do not use it and replay the whole log "
        f"({path}: the snapshot is damaged (its checksum does not match))"
    )

    # A position that is not an event of the log: ignored too (the storage seeks there).
    snapshot = _valid(log)
    far = LogPosition(snapshot.position.offset + 1000, snapshot.position.seq + 5, "0" * 64)
    write_snapshot(path, msgspec.structs.replace(snapshot, position=far))
    report = audit.verify(log)
    assert report.ok and report.snapshot_state == audit.SNAPSHOT_IGNORED
    assert "its position is not an event of the log: " in (report.snapshot_reason or "")

    # A link to a true snapshot: the storage never reads through a link, so neither does verify.
    _valid(log)
    true_copy = log.with_name("elsewhere.snapshot")
    path.rename(true_copy)
    path.symlink_to(true_copy)
    report = audit.verify(log)
    assert report.ok and report.snapshot_state == audit.SNAPSHOT_IGNORED
    assert "symbolic link" in (report.snapshot_reason or "")


def test_a_snapshot_whose_state_cannot_be_restored_is_ignored_with_or_without_damage(
    log: Path,
) -> None:
    # A valid envelope and checksum around a results part no storage can restore: the
    # storage ignores it, so verify says ignored (it restores only when the bytes differ).
    path = snapshot_of(log)
    snapshot = read_snapshot(path)
    parts = {**snapshot.parts, "results": b'{"records": "not a list"}'}
    write_snapshot(path, msgspec.structs.replace(snapshot, parts=parts))
    with pytest.warns(UserWarning, match="snapshot ignored"):  # the storage replays
        EventLogPipelineResultsStorage(log, log_options=NO_INDEX).close()
    report = audit.verify(log)
    assert report.ok and report.snapshot_state == audit.SNAPSHOT_IGNORED
    assert str(path) in (report.snapshot_reason or "")

    # The same snapshot beside a log damaged before its position: still ignored, not
    # "unchecked" (nothing a storage would use is left unchecked).
    damage_line_3(log)
    report = audit.verify(log)
    assert not report.ok and report.line == 3
    assert report.snapshot_state == audit.SNAPSHOT_IGNORED


def _valid(log: Path) -> Any:
    snapshot_of(log).unlink()
    EventLogPipelineResultsStorage(log, log_options=NO_INDEX, snapshot_every=1).close()
    return read_snapshot(snapshot_of(log))


def test_a_log_damaged_before_the_snapshot_leaves_it_unchecked(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damage_line_3(log)
    report = audit.verify(log)
    assert not report.ok and report.line == 3
    assert report.snapshot_state == audit.SNAPSHOT_UNCHECKED
    assert report.snapshot_reason == (
        f"the log could not be replayed up to the snapshot's position (seq {report.snapshot_seq})"
    )
    status, lines = verify_cli(capsys, log)
    assert status == 1 and lines[0].startswith(f"FAILED: {log}: line 3: ")
    assert lines[-1] == f"note: snapshot {snapshot_of(log)} not checked: {report.snapshot_reason}"


# -- verify and the writers agree -------------------------------------------------------------


def test_text_appended_at_the_end_is_damage_at_its_line_for_verify_and_writers(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = audit.head(log)
    with log.open("ab") as out:
        out.write(b"appended by hand")
    before = files(log.parent)

    report = audit.verify(log)
    assert not report.ok and report.line == head.seq + 1
    assert report.head == head and report.unfinished_bytes == 0
    assert report.reason == (
        f"the file ends (16 bytes from byte {head.offset} on: b'appended by hand') with bytes "
        "that are not the start of an event, so they are not a torn write: writers refuse to "
        "open the log until they are removed (were they appended by hand?)"
    )
    status, lines = verify_cli(capsys, log)
    assert status == 1
    assert lines[0] == f"FAILED: {log}: line {head.seq + 1}: {report.reason}"

    # The writers refuse the same bytes at the same line (they said "line 0").
    with pytest.raises(LogCorruptError) as caught:
        EventLogPipelineResultsStorage(log, log_options=NO_INDEX)
    assert caught.value.line == head.seq + 1
    assert str(caught.value).startswith(
        f"{log}: line {head.seq + 1}: the file ends (line {head.seq + 1} on, 16 bytes: "
        "b'appended by hand') with bytes that are not the start of an event"
    )
    assert files(log.parent) == before

    # A torn write is not damage: a note for verify, and writers cut it.
    log.write_bytes(before[log.name][: head.offset] + b'{"type":"FieldSet","v":1,"se')
    report = audit.verify(log)
    assert report.ok and report.unfinished_bytes == 28 and report.head == head
    with pytest.warns(UserWarning, match="removed 28 bytes"):
        EventLogPipelineResultsStorage(log, log_options=NO_INDEX).close()
    assert log.stat().st_size == head.offset


def test_a_true_snapshot_of_a_log_without_byte_offsets_matches(tmp_path: Path) -> None:
    """An engine whose cursors carry no byte offset (memory, PostgreSQL): the snapshot is
    compared at its seq, not at the first batch (it was reported false, verify failed)."""
    path = tmp_path / "log.jsonl"
    storage = EventLogPipelineResultsStorage(path, log_options=NO_INDEX, durability="none")
    for run in ("a", "b", "c"):
        execution = storage.build_pipeline_execution(
            ExamplePipeline("p", [Task("t")]), run, ExampleRunner(), ExampleReporter(), None
        )
        execution.set_message(f"hi {run}")
    storage.write_snapshot()
    storage.close()
    assert audit.verify(path).snapshot_state == "matches"
    memory = MemoryEventLog("verify-snapshot")
    try:
        with open_log(path, readonly=True) as source:
            for batch in source.read(START):
                memory.append([msgspec.structs.replace(e, hash="") for e in batch.events])
            data = source.snapshots.load()
        assert data is not None
        snapshot = decode_snapshot(data, "snapshot")
        at = memory.cursor_at(snapshot.position.seq)
        assert at.offset == 0 and snapshot.position.seq > 5
        memory.snapshots.save(encode_snapshot(msgspec.structs.replace(snapshot, position=at)))
        report = audit.verify("memory://verify-snapshot")
        assert (report.ok, report.snapshot_state, report.snapshot_seq) == (
            True,
            "matches",
            snapshot.position.seq,
        )
    finally:
        memory.close()
        drop_memory_store("verify-snapshot")
