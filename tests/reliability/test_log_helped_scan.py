"""Long reads of the file log check their hash links in a helper process on another core
(pipelines_events.log.jsonlhelped): they hand over exactly what the one-core scan hands
over, refuse exactly what it refuses with the same message, and fall back to it when the
helper cannot start or dies."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from pipelines_events.errors import InvalidValueError, LogCorruptError
from pipelines_events.events import START, FieldSet, LogPosition
from pipelines_events.log.chain import seal
from pipelines_events.log.jsonl import JsonlEventLog
from pipelines_events.log.jsonlhelped import HELPER_ENV
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing import (
    ExamplePipeline,
    ExampleReporter,
    ExampleRunner,
    ExampleTask,
    describe_storage,
)

FIXTURES = Path(__file__).parents[1] / "support" / "fixtures"
Read = list[tuple[list[tuple[int, str]], tuple[int, int, str]]]


def _write(path: Path, batches: int) -> None:
    """A log of ``batches`` batches of 1 to 3 events (several of the helper's chunks)."""
    with JsonlEventLog(path, durability="none", run_index=False) as log:
        for number in range(batches):
            size = 1 + number % 3
            log.append(
                [
                    FieldSet(
                        run_id=f"run-{number % 7}",
                        kind="task_result",
                        id=f"object-{number}",
                        field="message",
                        value="x" * (number % 50) + str(part),
                    )
                    for part in range(size)
                ]
            )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("helped") / "log.jsonl"
    _write(path, 6_000)  # about 2.5 MB: five chunks of the helper
    return path


@pytest.fixture
def log(pristine: Path, tmp_path: Path) -> Path:
    path = tmp_path / "log.jsonl"
    shutil.copy(pristine, path)
    return path


def _cursor(cursor: LogPosition) -> tuple[int, int, str]:
    return cursor.offset, cursor.seq, cursor.hash


def _read(path: Path, helper: str, monkeypatch: pytest.MonkeyPatch, *, group: bool) -> Read:
    """What a reader hands over, as (seq, hash) lists with the cursor after each."""
    monkeypatch.setenv(HELPER_ENV, helper)
    seen: Read = []
    with JsonlEventLog(path, readonly=True, run_index=False) as log:
        if group:
            for events in log.read_groups():
                cursor = log.position
                seen.append(([(e.seq, e.hash) for e in events], _cursor(cursor)))
        else:
            for batch in log.read(START):
                cursor = batch.cursor
                seen.append(([(e.seq, e.hash) for e in batch.events], _cursor(cursor)))
    return seen


def _flat(read: Read) -> list[tuple[int, str]]:
    return [event for events, _ in read for event in events]


def _read_or_error(
    path: Path, helper: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[tuple[int, str]], str | None]:
    """The events handed over before the read stopped, and its error message (if any)."""
    monkeypatch.setenv(HELPER_ENV, helper)
    handed: list[tuple[int, str]] = []
    with JsonlEventLog(path, readonly=True, run_index=False) as log:
        try:
            for events in log.read_groups():
                handed.extend((e.seq, e.hash) for e in events)
        except LogCorruptError as exc:
            return handed, str(exc)
    return handed, None


@pytest.mark.parametrize("group", [True, False], ids=["groups", "batches"])
def test_a_helped_read_hands_over_what_the_one_core_read_does(
    log: Path, monkeypatch: pytest.MonkeyPatch, group: bool
) -> None:
    one_core = _read(log, "off", monkeypatch, group=group)
    helped = _read(log, "1", monkeypatch, group=group)
    assert _flat(helped) == _flat(one_core)
    assert len(_flat(helped)) == sum(1 + n % 3 for n in range(6_000))
    assert helped[-1][1] == one_core[-1][1]  # the same cursor at the end
    if not group:
        assert helped == one_core  # batch by batch, cursor by cursor


def test_a_storage_opened_with_the_helper_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.jsonl"
    with closing(EventLogPipelineResultsStorage(path, durability="none")) as storage:
        for number in range(40):
            pipeline = ExamplePipeline(
                "p", [ExampleTask("a"), ExampleTask("b", objects=range(3))], objects=["x", "y"]
            )
            run_id = f"run-{number}"
            storage.build_pipeline_execution(
                pipeline, run_id, ExampleRunner(), ExampleReporter(), {}
            )
            for task_result in storage.get_task_results(run_id=run_id):
                task_result.set_status(PipelineTaskStatus.DONE)
    seen = {}
    for helper in ("off", "1"):
        monkeypatch.setenv(HELPER_ENV, helper)
        options = {"run_index": False}
        with closing(EventLogPipelineResultsStorage(path, readonly=True, log_options=options)) as s:
            seen[helper] = (describe_storage(s), s.get_pipeline_digest(), s.log.position)
    assert seen["1"] == seen["off"]
    assert len(seen["1"][0]["objects"]) > 40


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _put(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _edit_content(lines: list[bytes], at: int) -> None:
    lines[at] = lines[at].replace(b'"field":"message"', b'"field":"massage"', 1)


def _forge_hash(lines: list[bytes], at: int) -> None:
    lines[at] = lines[at][:-66] + b"0" * 64 + b'"}'


def _swap(lines: list[bytes], at: int) -> None:
    lines[at], lines[at + 1] = lines[at + 1], lines[at]


def _not_json(lines: list[bytes], at: int) -> None:
    lines[at] = b"{not json" + lines[at][9:]


def _drop(lines: list[bytes], at: int) -> None:
    del lines[at]


def _rechain_from(lines: list[bytes], at: int) -> None:
    """Edit a line and re-seal it and every line after it: a forger who rewrote the tail
    of the chain (links all hold; the edited line's own seq is wrong)."""
    prev = json.loads(lines[at - 1])["hash"]
    for number in range(at, len(lines)):
        body = json.loads(lines[number])
        if number == at:
            body["seq"] += 1
        body["hash"] = ""
        line, prev = seal(json.dumps(body, separators=(",", ":")).encode(), prev)
        lines[number] = line.rstrip(b"\n")


DAMAGE: dict[str, Callable[[list[bytes], int], None]] = {
    "content edited": _edit_content,
    "hash replaced": _forge_hash,
    "two lines swapped": _swap,
    "not JSON": _not_json,
    "a line removed": _drop,
    "the chain rewritten after a bad seq": _rechain_from,
}


@pytest.mark.parametrize("where", [1, 4_000, 11_500], ids=["first chunk", "middle", "last"])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damage_is_refused_as_the_one_core_read_refuses_it(
    log: Path, monkeypatch: pytest.MonkeyPatch, damage: str, where: int
) -> None:
    intact, _ = _read_or_error(log, "off", monkeypatch)
    lines = _lines(log)
    DAMAGE[damage](lines, where)
    _put(log, lines)
    one_core = _read_or_error(log, "off", monkeypatch)
    helped = _read_or_error(log, "1", monkeypatch)
    assert one_core[1] is not None and "line" in one_core[1]
    assert helped[1] == one_core[1]  # the same message
    # Each hands over only events before the damage (how many: a chunk or a group).
    for handed, _ in (one_core, helped):
        assert handed == intact[: len(handed)] and len(handed) <= where


def test_a_line_with_an_earlier_hash_member_reads_as_its_last_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line whose JSON holds "hash" twice, sealed properly: the decoded hash is the last
    member (the one the chain links), on both paths."""
    path = tmp_path / "twice.jsonl"
    _write(path, 50)
    lines = _lines(path)
    prev = json.loads(lines[-1])["hash"]
    body = b'{"hash":"early","type":"set","v":2,"seq":%d,"ts":"2026-01-01T00:00:00+00:00",' % (
        len(lines) + 1
    )
    body += b'"run_id":"r","kind":"task_result","id":"o","field":"message","value":1,"more":0,'
    body += b'"hash":""}'
    line, digest = seal(body, prev)
    _put(path, [*lines, line.rstrip(b"\n")])
    for helper in ("off", "1"):
        handed, error = _read_or_error(path, helper, monkeypatch)
        assert error is None and handed[-1] == (len(lines) + 1, digest)


def test_a_version_1_log_goes_on_in_version_2_and_reads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v1.jsonl"
    shutil.copy(FIXTURES / "v1-log.jsonl", path)
    path.chmod(0o600)
    with JsonlEventLog(path, durability="none", run_index=False) as log:
        for number in range(3_000):
            log.append(
                [FieldSet(run_id="r", kind="task_result", id="o", field="progress", value=number)]
            )
    one_core = _read(path, "off", monkeypatch, group=False)
    assert _read(path, "1", monkeypatch, group=False) == one_core


def test_a_torn_tail_stops_both_reads_at_the_same_batch(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = log.read_bytes()
    lines = data.split(b"\n")[:-1]
    # An unfinished batch (its first line says one more follows) and half a line.
    unfinished = json.loads(lines[-1])
    assert unfinished.get("more", 0) == 0
    with log.open("ab") as out:
        out.write(lines[-1][:40])
    one_core = _read(log, "off", monkeypatch, group=True)
    helped = _read(log, "1", monkeypatch, group=True)
    assert _flat(helped) == _flat(one_core) and helped[-1][1] == one_core[-1][1]


@pytest.mark.parametrize("python", ["/bin/false", "/nonexistent/python"])
def test_a_helper_that_dies_or_cannot_start_leaves_the_read_to_this_core(
    log: Path, monkeypatch: pytest.MonkeyPatch, python: str
) -> None:
    one_core = _read(log, "off", monkeypatch, group=False)
    monkeypatch.setattr(sys, "executable", python)
    assert _read(log, "1", monkeypatch, group=False) == one_core
    lines = _lines(log)
    _edit_content(lines, 3_000)
    _put(log, lines)
    helped = _read_or_error(log, "1", monkeypatch)
    assert helped[1] is not None and helped == _read_or_error(log, "off", monkeypatch)


def test_a_program_that_is_not_the_helper_is_never_believed(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interpreter path that runs something else (here a script answering "ok" to
    everything): without the helper's greeting its answers are not taken."""
    liar = tmp_path / "python3"
    liar.write_text("#!/bin/sh\nexec yes ok\n")
    liar.chmod(0o700)
    lines = _lines(log)
    _edit_content(lines, 3_000)
    _put(log, lines)
    expected = _read_or_error(log, "off", monkeypatch)
    monkeypatch.setattr(sys, "executable", str(liar))
    helped = _read_or_error(log, "1", monkeypatch)
    assert helped[1] is not None and helped[1] == expected[1]


def test_a_bad_setting_is_refused_naming_the_variable(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = log.read_bytes()
    monkeypatch.setenv(HELPER_ENV, "sometimes")
    with pytest.raises(InvalidValueError, match=HELPER_ENV):
        EventLogPipelineResultsStorage(log, log_options={"run_index": False})
    assert log.read_bytes() == before


def test_a_helped_read_while_a_writer_appends_hands_over_a_verified_prefix(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HELPER_ENV, "1")
    stop = threading.Event()

    def append() -> None:
        with JsonlEventLog(log, durability="none", run_index=False) as writer:
            number = 0
            while not stop.is_set() and number < 20_000:
                writer.append(
                    [
                        FieldSet(
                            run_id="w", kind="task_result", id="o", field="progress", value=number
                        )
                    ]
                )
                number += 1

    thread = threading.Thread(target=append)
    thread.start()
    try:
        reads = [_read_or_error(log, "1", monkeypatch) for _ in range(3)]
    finally:
        stop.set()
        thread.join()
    final, error = _read_or_error(log, "off", monkeypatch)
    assert error is None
    for handed, read_error in reads:
        assert read_error is None
        assert handed == final[: len(handed)]
