"""Appending without catching up (``JsonlEventLog.append_unread``, what a plain ``set_``
does): the batch chains to the file's last batch, the position stays before what was not
read, the next read hands over everything in log order, and a torn tail or damage at the
end is still settled before anything is written."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from pipelines_events.errors import AppendUnreadUnavailable, LogCorruptError, ProjectionError
from pipelines_events.events import START, AnyEvent, FieldSet
from pipelines_events.log import EventLog, JsonlEventLog, TornWriteRepaired, read_events
from pipelines_events.log.memory import MemoryEventLog
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from tests.reliability.common import TinyPipeline, TinyTask, all_events, build


def _set(object_id: str, value: object) -> FieldSet:
    return FieldSet(run_id="run-1", kind="task_result", id=object_id, field="n", value=value)


def test_at_the_end_it_is_an_append(log_path: Path) -> None:
    with JsonlEventLog(log_path, durability="none") as log:
        seen: list[list[AnyEvent]] = []
        written = log.append_unread([_set("a", 1), _set("a", 2)], on_written=seen.append)
        assert [e.seq for e in written] == [1, 2]
        assert seen == [written]
        assert log.position.seq == 2
        assert not log.has_new()
        assert list(log.read_new()) == []


def test_other_writers_events_are_left_to_the_next_read(log_path: Path) -> None:
    with (
        JsonlEventLog(log_path, durability="none") as one,
        JsonlEventLog(log_path, durability="none") as two,
    ):
        first = one.append([_set("a", 1)])
        seen: list[list[AnyEvent]] = []
        mine = two.append_unread([_set("b", 2)], on_written=seen.append)
        # Chained to the other writer's event, which this writer has not read.
        assert mine[0].seq == 2
        assert seen == []
        assert two.position == START
        more = two.append_unread([_set("b", 3)], on_written=seen.append)
        assert more[0].seq == 3
        assert seen == []
        third = one.append([_set("a", 4)])  # catches up on seq 2 and 3
        assert [e.seq for e in third] == [2, 3, 4]
        # The next read hands over everything after the position, in log order, once.
        assert list(two.read_new()) == [*first, *mine, *more, third[-1]]
        assert list(two.read_new()) == []
        # A plain append after unread ones catches up from the position as always.
        assert [e.seq for e in two.append([_set("b", 5)])] == [5]
    assert [e.seq for e in read_events(log_path)] == [1, 2, 3, 4, 5]  # the chain verifies


def test_a_torn_tail_is_cut_first(log_path: Path) -> None:
    with JsonlEventLog(log_path, durability="none") as log:
        log.append([_set("a", 1)])
        with open(log_path, "ab") as raw:
            raw.write(b'{"type":"set","field":"n","val')  # a writer died mid-write
        with pytest.warns(TornWriteRepaired, match="removed 30 bytes"):
            written = log.append_unread([_set("a", 2)])
        assert written[0].seq == 2
    assert [e.seq for e in read_events(log_path)] == [1, 2]


def test_an_unfinished_batch_at_a_line_end_is_cut(log_path: Path) -> None:
    with (
        JsonlEventLog(log_path, durability="none") as log,
        JsonlEventLog(log_path, durability="none") as other,
    ):
        log.append([_set("a", 1)])
        other.append([_set("b", 1), _set("b", 2)])
        data = log_path.read_bytes()
        # Keep the batch's first line only: a write stopped exactly at a line end.
        cut = data.index(b"\n", data.index(b"\n") + 1) + 1
        os.truncate(log_path, cut)
        with pytest.warns(TornWriteRepaired):
            written = log.append_unread([_set("a", 2)])
        assert written[0].seq == 2
    assert [e.seq for e in read_events(log_path)] == [1, 2]


def test_an_edited_last_line_is_refused_and_nothing_is_written(log_path: Path) -> None:
    with (
        JsonlEventLog(log_path, durability="none") as log,
        JsonlEventLog(log_path, durability="none") as other,
    ):
        log.append([_set("a", 1)])
        other.append([_set("b", 1)])
        first, last = log_path.read_bytes().splitlines(keepends=True)
        log_path.write_bytes(first + last.replace(b'"value":1,', b'"value":7,'))
        before = log_path.read_bytes()
        with pytest.raises(LogCorruptError, match="line 2: hash link broken"):
            log.append_unread([_set("a", 2)])
        assert log_path.read_bytes() == before


def test_a_repeated_line_is_found_by_the_line_count(log_path: Path) -> None:
    """The last line chains to the one before it, but a line before it is repeated: its
    seq does not match the lines counted, and the full scan names the line."""
    with (
        JsonlEventLog(log_path, durability="none") as log,
        JsonlEventLog(log_path, durability="none") as other,
    ):
        log.append([_set("a", 1)])
        other.append([_set("b", 1)])
        other.append([_set("b", 2)])
        lines = log_path.read_bytes().splitlines(keepends=True)
        log_path.write_bytes(lines[0] + lines[1] + lines[1] + lines[1] + lines[2])
        before = log_path.read_bytes()
        with pytest.raises(LogCorruptError, match="line 3: expected seq 3, found seq 2"):
            log.append_unread([_set("a", 2)])
        assert log_path.read_bytes() == before


def test_engines_without_it_say_so() -> None:
    log = MemoryEventLog()
    assert isinstance(log, EventLog)
    assert not log.supports_append_unread
    with pytest.raises(NotImplementedError, match="always catches up before appending"):
        log.append_unread([_set("a", 1)])


def test_a_log_with_segments_catches_up_instead(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    with JsonlEventLog(path) as plain:
        assert plain.supports_append_unread
    with JsonlEventLog(path, segment_events=2) as rolling:
        assert not rolling.supports_append_unread
        before = path.read_bytes()
        with pytest.raises(AppendUnreadUnavailable, match="the log has segments"):
            rolling.append_unread([_set("a", 1)])
        assert path.read_bytes() == before


def test_a_storage_goes_on_when_another_writer_rolls_the_log(tmp_path: Path) -> None:
    # One storage appends unread; another, set to roll, seals the file under it.
    path = tmp_path / "log.jsonl"
    plain = EventLogPipelineResultsStorage(path=str(path))
    rolling = EventLogPipelineResultsStorage(path=str(path), log_options={"segment_events": 4})
    execution = build(plain, "run-1")
    other = rolling.get_pipeline_execution("run-1")
    assert other is not None
    statuses = [PipelineTaskStatus.RUNNING, PipelineTaskStatus.PENDING]
    for number in range(6):
        other.set_status(statuses[number % 2])
        execution.set_status(statuses[(number + 1) % 2])
    assert (tmp_path / "log.jsonl.segments").is_dir()
    fresh = EventLogPipelineResultsStorage(path=str(path)).get_pipeline_execution("run-1")
    assert fresh is not None and fresh.get_status() == PipelineTaskStatus.RUNNING
    assert plain.get_pipeline_execution("run-1").get_status() == PipelineTaskStatus.RUNNING
    seqs = [event.seq for event in all_events(path)]
    assert seqs == list(range(1, len(seqs) + 1))


# -- through the storage ------------------------------------------------------------------


def _task_result(storage: EventLogPipelineResultsStorage, run_id: str) -> Any:
    build(storage, run_id, TinyPipeline("p", objects=None, tasks=[TinyTask("t", [0])]))
    (result,) = storage.get_task_results(run_id=run_id)
    return result


def test_a_read_folds_the_unread_events_before_it_returns(log_path: Path) -> None:
    one = EventLogPipelineResultsStorage(log_path, durability="none", snapshots=False)
    two = EventLogPipelineResultsStorage(log_path, durability="none", snapshots=False)
    try:
        mine = _task_result(one, "run-a")
        theirs = _task_result(two, "run-b")
        theirs.set_n(1)
        mine.set_n(2)  # appended after run-b, which this storage has not read
        assert one.log.position.seq < one.log.head().seq
        assert one.get_pipeline_execution("run-b") is not None
        assert one.log.position == one.log.head()
        assert mine.get_n() == 2
        # The same field set by both, in log order: the later one wins on both sides.
        shared = one.get_task_results(run_id="run-b")[0]
        theirs.set_n(3)
        shared.set_n(4)
        assert shared.get_n() == 4
        assert theirs.get_n() == 4
    finally:
        one.close()
        two.close()


def _writer(path: str, run_id: str, calls: int) -> None:
    storage = EventLogPipelineResultsStorage(path, durability="fsync", snapshots=False)
    result = _task_result(storage, run_id)
    fd = os.open(path, os.O_RDONLY)
    try:
        for value in range(calls):
            result.set_n(value)
            result.save()
            # Committed: the event is in the file, read through another descriptor.
            data = os.pread(fd, 1 << 20, max(0, os.fstat(fd).st_size - (1 << 20)))
            marks = (b'"field":"n"', f'"value":{value},'.encode(), result.get_id().encode())
            assert any(all(m in line for m in marks) for line in data.splitlines())
    finally:
        os.close(fd)
        storage.close()


def test_writer_processes_commit_every_event_once_on_one_chain(log_path: Path) -> None:
    EventLogPipelineResultsStorage(log_path, snapshots=False).close()
    context = multiprocessing.get_context("fork")
    writers, calls = 4, 40
    processes = [
        context.Process(target=_writer, args=(str(log_path), f"run-{index}", calls))
        for index in range(writers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0] * writers
    events = all_events(log_path)  # verifies seq, batches and the hash chain
    values = sorted((e.run_id, e.value) for e in events if type(e) is FieldSet and e.field == "n")
    assert values == sorted((f"run-{i}", v) for i in range(writers) for v in range(calls))
    storage = EventLogPipelineResultsStorage(log_path, readonly=True, snapshots=False)
    try:
        for index in range(writers):
            (result,) = storage.get_task_results(run_id=f"run-{index}")
            assert result.get_n() == calls - 1
    finally:
        storage.close()


def test_an_unfoldable_event_of_another_writer_stops_the_next_read(log_path: Path) -> None:
    """A set_ does not read what others appended, so it is written after an event that
    cannot be folded; the next read stops at that event, and once a read has met it,
    writes catch up first and are refused, as reads are."""
    storage = EventLogPipelineResultsStorage(log_path, durability="none", snapshots=False)
    try:
        mine = _task_result(storage, "run-a")
        with JsonlEventLog(log_path, durability="none") as other:
            ghost = other.append(
                [FieldSet(run_id="run-a", kind="task_result", id="ghost", field="x", value=1)]
            )[-1]
        mine.set_n(1)
        assert [e.seq for e in read_events(log_path)][-2:] == [ghost.seq, ghost.seq + 1]
        expected = f"seq {ghost.seq}: sets 'x' on task_result ghost, which was never"
        with pytest.raises(ProjectionError, match=expected):
            mine.get_n()
        assert storage.log.position.seq == ghost.seq - 1
        size = log_path.stat().st_size
        with pytest.raises(ProjectionError, match=expected):
            mine.set_n(2)
        assert log_path.stat().st_size == size
    finally:
        storage.close()


def _forked_sets(storage: EventLogPipelineResultsStorage, run_id: str) -> None:
    (result,) = storage.get_task_results(run_id=run_id)
    for value in range(10, 15):
        result.set_n(value)
    storage.close()


def test_a_forked_child_goes_on_from_the_parents_unread_appends(log_path: Path) -> None:
    one = EventLogPipelineResultsStorage(log_path, durability="none", snapshots=False)
    two = EventLogPipelineResultsStorage(log_path, durability="none", snapshots=False)
    try:
        mine = _task_result(one, "run-a")
        _task_result(two, "run-b")
        mine.set_n(1)  # after run-b, unread: the position stays before both
        assert one.log.position.seq < one.log.head().seq
        child = multiprocessing.get_context("fork").Process(
            target=_forked_sets, args=(one, "run-a")
        )
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert mine.get_n() == 14
        values = [e.value for e in read_events(log_path) if type(e) is FieldSet]
        assert values[-6:] == [1, 10, 11, 12, 13, 14]
    finally:
        one.close()
        two.close()
