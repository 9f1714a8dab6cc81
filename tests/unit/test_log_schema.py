"""Schema version 2: each link hashes the previous hash and the SHA-256 of the line, so an
erased event verifies; logs written in version 1 stay readable and verifiable."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import msgspec
import pytest

from pipelines_events import audit
from pipelines_events.cli.app import main
from pipelines_events.errors import LogCorruptError, LogWriteError
from pipelines_events.events import (
    GENESIS_HASH,
    PIPELINE_EXECUTION,
    SCHEMA_VERSION,
    START,
    Erased,
    FieldSet,
    RunRemoved,
)
from pipelines_events.log.chain import (
    HASH_SUFFIX_LEN,
    content_digest,
    decode_event,
    encode_event,
    erased_line,
    link_ok,
    seal,
)
from pipelines_events.log.jsonl import JsonlEventLog, read_events
from pipelines_events.log.memory import MemoryEventLog, drop_memory_store
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage

FIXTURE = Path(__file__).parents[1] / "support" / "fixtures" / "v1-log.jsonl"
"""A log written by pipelines-events before schema version 2 (two runs of one task; the
run ``old-one`` removed by a ``removed`` event at seq 45)."""
V1_HEAD = "45:4e9b898783779d3d79d0ef9b71fd7a4a303130c1f94d1111950ead8a38e16d6e"


@pytest.fixture
def v1_log(tmp_path: Path) -> Path:
    path = tmp_path / "v1.jsonl"
    shutil.copyfile(FIXTURE, path)
    path.chmod(0o600)
    return path


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


ID = "3fc2789d-dd8e-4a50-b471-c8118a3fb962"


def fs(value: object, field: str = "x") -> FieldSet:
    """A ``set`` event with room for an erased line's digest."""
    padded = {"n": value, "pad": "." * 64}
    return FieldSet(run_id="r", kind="task_result", id=ID, field=field, value=padded)


def test_new_events_are_version_2_and_link_the_digest_of_their_line(tmp_path: Path) -> None:
    assert SCHEMA_VERSION == 2
    with JsonlEventLog(tmp_path / "x.jsonl") as log:
        log.append([fs(1), fs(2)])
    prev = GENESIS_HASH
    for line in lines_of(tmp_path / "x.jsonl"):
        event = decode_event(line)
        assert event.v == 2
        digest = hashlib.sha256(line[:-HASH_SUFFIX_LEN]).hexdigest()
        assert event.hash == hashlib.sha256((prev + digest).encode()).hexdigest()
        assert link_ok(line, prev)
        prev = event.hash


def test_a_version_1_log_stays_readable_and_verifiable(
    v1_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = list(read_events(v1_log))
    assert len(events) == 45 and {event.v for event in events} == {1}
    report = audit.verify(v1_log, expect=V1_HEAD)
    assert report.ok, report.reason
    assert str(report.head) == V1_HEAD
    storage = EventLogPipelineResultsStorage(v1_log, readonly=True)
    assert [e.get_run_id() for e in storage.get_pipeline_executions()] == ["old-two"]
    storage.close()
    assert main(["verify", "--log", str(v1_log), "--expect", V1_HEAD]) == 0
    assert main(["show", "old-two", "--log", str(v1_log)]) == 0
    assert "old-two" in capsys.readouterr().out


def test_a_version_1_log_continues_in_version_2_and_verifies_across(v1_log: Path) -> None:
    before = v1_log.read_bytes()
    storage = EventLogPipelineResultsStorage(v1_log)
    execution = storage.get_pipeline_execution("old-two")
    assert execution is not None
    execution.set_status_message("continued")  # type: ignore[attr-defined]  # set_<field> is made at run time
    storage.close()
    assert v1_log.read_bytes().startswith(before)
    versions = [event.v for event in read_events(v1_log)]
    assert versions[:45] == [1] * 45 and set(versions[45:]) == {2}
    report = audit.verify(v1_log, expect=V1_HEAD)
    assert report.ok, report.reason
    assert report.events == len(versions)


def test_a_version_1_line_after_version_2_lines_is_damage(v1_log: Path) -> None:
    with JsonlEventLog(v1_log) as log:
        list(log.read_new())
        (appended,) = log.append([fs(1)])
    assert appended.v == 2
    # A valid-looking version 1 line after it: every hash is right, the order is not.
    forged = msgspec.structs.replace(appended, v=1, seq=47, hash="")
    line, _ = seal(encode_event(forged), appended.hash)
    with v1_log.open("ab") as file:
        file.write(line)
    with pytest.raises(LogCorruptError) as info:
        list(read_events(v1_log))
    assert info.value.line == 47
    assert "a schema version 1 event after version 2 events" in info.value.reason
    report = audit.verify(v1_log)
    assert not report.ok and report.line == 47


def test_an_erased_line_keeps_seq_batch_and_hash_and_the_chain_verifies(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    with JsonlEventLog(path) as log:
        log.append([fs(1)])
        log.append([fs(2), fs(3)])
        log.append([fs(4)])
    lines = lines_of(path)
    original = decode_event(lines[1])
    digest = content_digest(lines[1][:-HASH_SUFFIX_LEN])
    lines[1] = erased_line(lines[1])
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    events = list(read_events(path))
    erased = events[1]
    assert type(erased) is Erased
    assert (erased.seq, erased.more, erased.hash) == (2, 1, original.hash)
    assert erased.digest == digest and len(lines[1]) == len(lines_of(path)[1])
    assert b'"value"' not in lines[1]
    report = audit.verify(path)  # the chain holds; an erasure of a run never removed does not
    assert not report.ok and "which no later event removes" in (report.reason or "")
    with JsonlEventLog(path) as log:
        log.append([RunRemoved(run_id="r", kind=PIPELINE_EXECUTION, id="e")])
    report = audit.verify(path)
    assert report.ok and report.erased == 1
    lines = lines_of(path)[:4]
    # The digest is checked: change it and the link breaks.
    forged = lines[1].replace(erased.digest.encode(), b"0" * 64)
    path.write_bytes(b"".join(line + b"\n" for line in [lines[0], forged, *lines[2:]]))
    with pytest.raises(LogCorruptError) as info:
        list(read_events(path))
    assert info.value.line == 2 and "hash link broken" in info.value.reason


def test_the_erased_digest_is_the_sha256_of_the_line_it_replaced(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    with JsonlEventLog(path) as log:
        log.append(
            [fs("a status message long enough to leave room for the digest" * 2, field="message")]
        )
    (line,) = lines_of(path)
    erased = decode_event(erased_line(line))
    assert isinstance(erased, Erased)
    assert erased.digest == hashlib.sha256(line[:-HASH_SUFFIX_LEN]).hexdigest()
    assert json.loads(erased_line(line))["type"] == "erased"
    assert (erased.run_id, erased.kind, erased.id) == ("r", "task_result", ID)
    assert len(erased_line(line)) == len(line)


def test_a_short_line_keeps_fewer_identifiers_or_cannot_be_erased(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    with JsonlEventLog(path) as log:
        log.append([FieldSet(run_id="r", kind="task_result", id=ID, field="x", value="y" * 30)])
        log.append([FieldSet(run_id="r", kind="task_result", id="t", field="x")])
    roomy, tight = lines_of(path)
    erased = decode_event(erased_line(roomy))
    assert (erased.kind, erased.id, erased.run_id) == ("", "", "r") and erased.ts
    assert len(erased_line(roomy)) == len(roomy)
    with pytest.raises(ValueError, match="seq 2 is too short a line to hold the digest"):
        erased_line(tight)


def test_version_1_lines_and_erased_lines_cannot_be_erased(v1_log: Path) -> None:
    line = lines_of(v1_log)[0]
    with pytest.raises(ValueError, match="schema version 1 event: its link hashes its content"):
        erased_line(line)
    path = v1_log.with_name("x.jsonl")
    with JsonlEventLog(path) as log:
        log.append([fs(1)])
    once = erased_line(lines_of(path)[0])
    with pytest.raises(ValueError, match="seq 1 is erased already"):
        erased_line(once)


def test_an_erased_event_cannot_be_appended(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    draft = Erased(run_id="r", kind=PIPELINE_EXECUTION, id="e", digest="0" * 64)
    with JsonlEventLog(path) as log, pytest.raises(LogWriteError) as info:
        log.append([draft])
    assert "an erased event: only cleanup's erasure writes those" in str(info.value)
    assert path.read_bytes() == b""
    memory = MemoryEventLog("schema-v2")
    try:
        with pytest.raises(LogWriteError, match="an erased event"):
            memory.append([draft])
        assert memory.head().seq == 0
    finally:
        memory.close()
        drop_memory_store("schema-v2")


def test_file_and_memory_engines_store_the_same_version_2_lines(tmp_path: Path) -> None:
    drafts = [[fs(1)], [fs(2), fs(3)]]
    file_log = JsonlEventLog(tmp_path / "x.jsonl")
    memory = MemoryEventLog("schema-v2-same")
    try:
        for batch in drafts:
            stamped = [msgspec.structs.replace(d, ts="2026-12-01T00:00:00+00:00") for d in batch]
            file_log.append(stamped)
            memory.append(stamped)
        file_events = [e for b in file_log.read(START) for e in b.events]
        memory_events = [e for b in memory.read(START) for e in b.events]
        assert file_events == memory_events and len(file_events) == 3
    finally:
        file_log.close()
        memory.close()
        drop_memory_store("schema-v2-same")
