"""A catalogue of forged logs: ``verify`` names the first bad line and why, API and CLI alike."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from pipelines_events import audit
from pipelines_events.cli import main
from pipelines_events.errors import InvalidValueError, LogOpenError
from pipelines_events.events import GENESIS_HASH, START
from pipelines_events.log import JsonlEventLog
from pipelines_events.log.chain import decode_event, encode_event, seal
from pipelines_events.log.memory import MemoryEventLog, drop_memory_store
from pipelines_events.log.open import open_log
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from tests.support.audit_support import drive_run, log_lines, write_lines

# The log of one run driven by hand (see tests.support.audit_support.drive_run), one event a line:
#   1-13   the run's thirteen objects, created in one batch
#   14-15  a task result RUNNING (status, started), 16-17 its task execution, 18-19 ...
#   20-21  the execution RUNNING (status, started)
#   22-23  the first task result DONE (status, completed) ...


@pytest.fixture
def original(tmp_path: Path) -> Path:
    path = tmp_path / "original.jsonl"
    storage = EventLogPipelineResultsStorage(path, durability="none")
    drive_run(storage)
    storage.close()
    return path


def rechain(lines: list[bytes]) -> list[bytes]:
    """Seal every line again from the genesis hash: a forger who rewrites the whole chain."""
    out = []
    prev = GENESIS_HASH
    for line in lines:
        event = msgspec.structs.replace(decode_event(line), hash="")
        sealed, prev = seal(encode_event(event), prev)
        out.append(sealed[:-1])
    return out


def edit_value(lines: list[bytes]) -> list[bytes]:
    assert b'"value":"DONE"' in lines[21]
    lines[21] = lines[21].replace(b'"value":"DONE"', b'"value":"RUNTIME_ERROR"')
    return lines


def delete_line(lines: list[bytes]) -> list[bytes]:
    del lines[19]
    return lines


def insert_copy(lines: list[bytes]) -> list[bytes]:
    lines.insert(19, lines[9])
    return lines


def insert_sealed(lines: list[bytes]) -> list[bytes]:
    """A forger who seals the inserted line onto the chain, with the seq it takes."""
    prev = decode_event(lines[18]).hash
    forged = msgspec.structs.replace(decode_event(lines[21]), seq=20, more=0, hash="")
    line, _ = seal(encode_event(forged), prev)
    lines.insert(19, line[:-1])
    return lines


def swap_lines(lines: list[bytes]) -> list[bytes]:
    lines[19], lines[20] = lines[20], lines[19]
    return lines


def truncate_middle(lines: list[bytes]) -> list[bytes]:
    """Bytes cut from the middle of line 20 to the middle of line 24."""
    data = b"\n".join(lines)
    start = data.index(lines[19]) + 30
    end = data.index(lines[23]) + 50
    return (data[:start] + data[end:]).split(b"\n")


FORGERIES: list[tuple[str, Callable[[list[bytes]], list[bytes]], int, str]] = [
    ("edited value", edit_value, 22, "hash link broken"),
    ("deleted line", delete_line, 20, "expected seq 20, found seq 21"),
    ("inserted copy of a line", insert_copy, 20, "expected seq 20, found seq 10"),
    ("inserted line sealed onto the chain", insert_sealed, 21, "expected seq 21, found seq 20"),
    ("two lines swapped", swap_lines, 20, "expected seq 20, found seq 21"),
    ("truncated middle", truncate_middle, 20, "not valid JSON"),
]


def forge(original: Path, tmp_path: Path, change: Callable[[list[bytes]], list[bytes]]) -> Path:
    forged = tmp_path / "forged.jsonl"
    write_lines(forged, change(log_lines(original)))
    return forged


@pytest.mark.parametrize(
    ("change", "line", "reason"),
    [pytest.param(c, n, r, id=name) for name, c, n, r in FORGERIES],
)
def test_each_forgery_is_caught_at_its_line(
    original: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: Callable[[list[bytes]], list[bytes]],
    line: int,
    reason: str,
) -> None:
    forged = forge(original, tmp_path, change)
    before = forged.read_bytes()

    report = audit.verify(forged)
    assert not report.ok
    assert report.line == line
    assert reason in (report.reason or "")
    assert report.head_seq < line

    assert main(["verify", "--log", str(forged)]) == 1
    out = capsys.readouterr().out
    assert f"FAILED: {forged}: line {line}: " in out
    assert reason in out.replace("\n", " ")

    assert main(["verify", "--log", str(forged), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["ok"], data["line"]) == (False, line)
    assert reason in data["reason"]
    assert forged.read_bytes() == before


def test_an_intact_log_verifies(original: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = audit.verify(original)
    head = audit.head(original)
    lines = log_lines(original)
    assert report.ok and report.line is None and report.reason is None
    assert report.events == len(lines) == head.seq == report.head_seq
    assert report.runs == 1
    assert report.bytes == original.stat().st_size
    assert report.head_hash == head.hash == decode_event(lines[-1]).hash
    assert report.batches == sum(1 for line in lines if decode_event(line).more == 0)

    assert main(["verify", "--log", str(original)]) == 0
    out = capsys.readouterr().out
    assert f"OK: {original}: {report.events} events in {report.batches} batches, 1 run" in out
    assert f"head {head}" in out
    assert main(["verify", "--log", str(original), "--expect", str(head)]) == 0
    assert f"extends the expected head {head}" in capsys.readouterr().out


def test_a_rewritten_chain_is_caught_only_by_the_expected_head(
    original: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = audit.head(original)
    early = decode_event(log_lines(original)[9])  # before the edited line 22
    forged = forge(original, tmp_path, lambda lines: rechain(edit_value(lines)))

    # Every line checks out on its own: JSON, seq, batches, the chain.
    assert audit.verify(forged).ok
    assert main(["verify", "--log", str(forged)]) == 0
    capsys.readouterr()

    report = audit.verify(forged, expect=kept)
    assert not report.ok
    assert report.line == kept.seq
    assert "no longer extends the recorded head" in (report.reason or "")
    assert main(["verify", "--log", str(forged), "--expect", str(kept)]) == 1
    out = capsys.readouterr().out
    assert f"FAILED: {forged}: line {kept.seq}: the event at seq {kept.seq} has the hash" in out

    # A head recorded before the edit still holds: the lines before it were not touched.
    assert audit.verify(forged, expect=f"{early.seq}:{early.hash}").ok


def test_events_removed_from_the_end_are_caught_by_the_expected_head(
    original: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = audit.head(original)
    lines = log_lines(original)
    cut = max(i for i, line in enumerate(lines[:-1]) if decode_event(line).more == 0)
    forged = forge(original, tmp_path, lambda lines: lines[: cut + 1])
    assert audit.verify(forged).ok
    report = audit.verify(forged, expect=str(kept))
    assert not report.ok
    assert report.line == cut + 2
    assert f"the log ends at seq {cut + 1}, before the expected head seq {kept.seq}" in (
        report.reason or ""
    )
    assert main(["verify", "--log", str(forged), "--expect", str(kept)]) == 1
    assert "events were removed from its end" in capsys.readouterr().out


def test_an_unfinished_last_batch_is_noted_not_failed(
    original: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torn = tmp_path / "torn.jsonl"
    data = original.read_bytes()
    torn.write_bytes(data + data.split(b"\n")[14][:40])
    report = audit.verify(torn)
    assert report.ok
    assert report.unfinished_bytes == 40
    assert report.head == audit.head(original)
    assert audit.head(torn) == audit.head(original)
    assert main(["verify", "--log", str(torn)]) == 0
    assert "40 bytes after the head are an unfinished batch" in capsys.readouterr().out
    assert torn.read_bytes() == data + data.split(b"\n")[14][:40]


def test_a_log_without_byte_offsets_has_no_unfinished_batch(
    original: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An engine whose cursors carry no byte offset (memory, PostgreSQL) stores whole
    batches only: verify counts what it holds, and notes no unfinished batch (it noted
    all of it)."""
    memory = MemoryEventLog("verify-offsets")
    try:
        with open_log(original, readonly=True) as source:
            for batch in source.read(START):
                memory.append([msgspec.structs.replace(e, hash="") for e in batch.events])
        report = audit.verify("memory://verify-offsets")
        held = memory.stored_bytes()
        assert (report.ok, report.unfinished_bytes, report.bytes) == (True, 0, held)
        assert held == original.stat().st_size
        assert main(["verify", "--log", "memory://verify-offsets"]) == 0
        assert "unfinished" not in capsys.readouterr().out
    finally:
        memory.close()
        drop_memory_store("verify-offsets")


def test_progress_is_reported_in_bytes(original: Path) -> None:
    calls: list[tuple[int, int]] = []
    audit.verify(original, progress=lambda done, total: calls.append((done, total)))
    size = original.stat().st_size
    assert calls[-1] == (size, size)
    assert all(total == size for _, total in calls)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_head_of_an_empty_log_and_of_a_growing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "log.jsonl"
    JsonlEventLog(path).close()
    assert audit.head(path) == audit.Head(0, GENESIS_HASH, 0)
    assert main(["head", "--log", str(path)]) == 0
    assert capsys.readouterr().out == f"0:{GENESIS_HASH}\n"
    storage = EventLogPipelineResultsStorage(path, durability="none")
    drive_run(storage)
    position = storage.log.position
    storage.close()
    assert main(["head", "--log", str(path)]) == 0
    assert capsys.readouterr().out == f"{position.seq}:{position.hash}\n"
    assert main(["head", "--log", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "seq": position.seq,
        "hash": position.hash,
        "offset": position.offset,
    }


def test_head_of_a_log_whose_tail_is_damaged_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"not": "an event"}\n')
    with pytest.raises(Exception, match="line 1: "):
        audit.head(path)


@pytest.mark.parametrize(
    "text",
    ["12", "12:abc", "abc:" + "0" * 64, "12:" + "g" * 64, "-1:" + "0" * 64, "0:" + "1" * 64, ""],
)
def test_a_bad_expected_head_is_refused(
    original: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    with pytest.raises(InvalidValueError, match="is not a head"):
        audit.parse_head(text)
    before = original.read_bytes()
    assert main(["verify", "--log", str(original), f"--expect={text}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pipelines-events: error: ")
    assert f"{text!r} is not a head" in err
    assert original.read_bytes() == before


@pytest.mark.parametrize("command", [["verify"], ["head"]])
def test_a_missing_log_is_an_error_and_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    assert main([*command, "--log", str(missing)]) == 2
    assert f"{missing}: no such log file" in capsys.readouterr().err
    assert not missing.exists()
    with pytest.raises(LogOpenError, match="no such log file"):
        audit.verify(missing)
    assert not missing.exists()


def test_a_terminal_gets_a_progress_bar_on_stderr(
    original: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    module = importlib.import_module("pipelines_events.audit.verify")
    monkeypatch.setattr(module, "PROGRESS_STEP", 1024)
    assert main(["verify", "--log", str(original)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"OK: {original}: ")
    assert "verifying" in captured.err
