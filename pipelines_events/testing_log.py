"""The log conformance suite: the behaviour every :class:`~pipelines_events.log.base.EventLog`
engine must have, as a test class any engine subclasses.

Subclass :class:`EventLogConformance` in a test module, set ``__test__ = True`` and give
the class ``make_log(**options)`` (a new, empty log of the engine, opened with the
engine's ``options``) and ``log_target(log)`` (what :func:`~pipelines_events.log.open.open_log`
takes to open another handle on the same log, in this process or, when
``separate_processes`` is True, in a child process)::

    class TestMyLog(EventLogConformance):
        __test__ = True

        def make_log(self, **options):
            return open_log(self.tmp_path / "log.jsonl", **options)

        def log_target(self, log):
            return str(self.tmp_path / "log.jsonl")

``self.tmp_path`` is a fresh directory per test. Logs the suite opens are closed by it.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

from pipelines_events.errors import EventTooLargeError, LogError, LogWriteError
from pipelines_events.events import (
    GENESIS_HASH,
    PIPELINE_EXECUTION,
    START,
    TASK_RESULT,
    AnyEvent,
    FieldSet,
    ObjectCreated,
    RunRemoved,
)
from pipelines_events.log.base import Batch, Cursor, EventLog, group_batches
from pipelines_events.log.chain import encode_event, seal
from pipelines_events.log.memory import MemoryEventLog
from pipelines_events.log.open import LogTarget, open_log


def draft(writer: str, number: int, part: int = 0, *, value: Any = None) -> FieldSet:
    """An event of writer ``writer``, batch ``number``, part ``part`` of the batch."""
    return FieldSet(
        run_id=f"run-{writer}",
        kind=TASK_RESULT,
        id=f"{writer}-{number}-{part}",
        field="message",
        value=f"{writer} {number} {part}" if value is None else value,
    )


def write_batches(
    target: LogTarget, options: dict[str, Any], writer: str, batches: int, size: int
) -> None:
    """Append ``batches`` batches of ``size`` events as ``writer`` (run in child processes)."""
    with open_log(target, **options) as log:
        for number in range(batches):
            log.append([draft(writer, number, part) for part in range(size)])
            log.commit()


def chain_problems(events: list[AnyEvent]) -> list[str]:
    """What is wrong with the seq and hash chain of ``events`` (the whole log, in order)."""
    problems = []
    prev = GENESIS_HASH
    for index, event in enumerate(events, 1):
        if event.seq != index:
            problems.append(f"event {index} has seq {event.seq}")
        body = encode_event(msgspec.structs.replace(event, hash=""))
        _, digest = seal(body, prev)
        if digest != event.hash:
            problems.append(f"seq {event.seq}: hash {event.hash[:12]} does not chain")
        prev = event.hash
    return problems


class EventLogConformance:
    """Tests every event log engine passes; see the module's docstring."""

    __test__: ClassVar[bool] = False
    separate_processes: ClassVar[bool] = True
    """Whether :meth:`log_target` opens the same log in another process (False: the
    concurrent-writer tests run their writers as threads with handles of their own)."""

    tmp_path: Path

    # -- what an engine provides ---------------------------------------------------------

    def make_log(self, **options: Any) -> EventLog:
        """A new, empty log of the engine, opened with ``options``."""
        raise NotImplementedError

    def log_target(self, log: EventLog) -> LogTarget:
        """What :func:`open_log` takes to open ``log`` again."""
        raise NotImplementedError

    def open_again(self, log: EventLog, **options: Any) -> EventLog:
        """Another handle on the log ``log`` (another writer or reader)."""
        return self._track(open_log(self.log_target(log), **options))

    # -- the suite's plumbing ------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _conformance_setup(self, tmp_path: Path) -> Iterator[None]:
        self.tmp_path = tmp_path
        self._opened: list[EventLog] = []
        yield
        for log in reversed(self._opened):
            log.close()

    def _track(self, log: EventLog) -> EventLog:
        self._opened.append(log)
        return log

    def new_log(self, **options: Any) -> EventLog:
        """:meth:`make_log`, closed at the end of the test."""
        return self._track(self.make_log(**options))

    @staticmethod
    def all_events(log: EventLog) -> list[AnyEvent]:
        return [event for batch in log.read(START) for event in batch.events]

    # -- seq and chain -------------------------------------------------------------------

    def test_seq_is_contiguous_and_the_chain_valid(self) -> None:
        log = self.new_log()
        assert log.head() == START
        assert list(log.read(START)) == [] and list(log.read(START, limit=1)) == []
        assert log.wait(START, 0) is False and not log.has_new()
        written = []
        for number, size in enumerate([1, 3, 2, 1]):
            written += log.append([draft("a", number, part) for part in range(size)])
        events = self.all_events(log)
        assert [event.seq for event in events] == list(range(1, 8))
        assert events == written
        assert chain_problems(events) == []
        head = log.head()
        assert (head.seq, head.hash) == (7, events[-1].hash)
        assert log.cursor_at(7) == head
        assert log.cursor_at(0) == START
        assert (log.cursor_at(3).seq, log.cursor_at(3).hash) == (3, events[2].hash)
        assert log.position == head

    def test_appended_events_get_seq_ts_more_and_hash(self) -> None:
        log = self.new_log()
        events = log.append([draft("a", 0, 0), draft("a", 0, 1, value={"n": [1, 2]})])
        assert [(e.seq, e.more) for e in events] == [(1, 1), (2, 0)]
        assert all(e.ts and len(e.hash) == 64 and e.v >= 1 for e in events)
        assert isinstance(events[1], FieldSet) and events[1].value == {"n": [1, 2]}
        stamped = log.append([msgspec.structs.replace(draft("a", 1), ts="2026-01-01T00:00:00Z")])
        assert stamped[0].ts == "2026-01-01T00:00:00Z"

    # -- batches -------------------------------------------------------------------------

    def test_batches_are_read_whole(self) -> None:
        log = self.new_log()
        sizes = [3, 1, 2, 4]
        for number, size in enumerate(sizes):
            log.append([draft("a", number, part) for part in range(size)])
        batches = list(log.read(START))
        assert [len(batch.events) for batch in batches] == sizes
        assert all(isinstance(batch, Batch) for batch in batches)
        assert [batch.cursor.seq for batch in batches] == [3, 4, 6, 10]
        for batch in batches:
            assert [e.more for e in batch.events] == list(range(len(batch.events) - 1, -1, -1))
        reader = self.open_again(log)
        assert [len(b) for b in reader.read_batches()] == sizes
        assert reader.position == log.head()
        assert [len(b) for b in group_batches(self.all_events(log))] == sizes

    def test_read_with_a_limit(self) -> None:
        log = self.new_log()
        for number, size in enumerate([3, 1, 2]):
            log.append([draft("a", number, part) for part in range(size)])
        # The first batch is always whole; later ones only while within the limit.
        assert [len(b.events) for b in log.read(START, limit=1)] == [3]
        assert [len(b.events) for b in log.read(START, limit=4)] == [3, 1]
        assert [len(b.events) for b in log.read(START, limit=5)] == [3, 1]
        assert [len(b.events) for b in log.read(START, limit=6)] == [3, 1, 2]
        after = log.cursor_at(3)
        assert [b.cursor.seq for b in log.read(after, limit=1)] == [4]
        assert list(log.read(log.head())) == []
        assert log.position == log.head()  # read moves no position

    def test_reading_from_a_cursor_continues_after_it(self) -> None:
        log = self.new_log()
        for number in range(5):
            log.append([draft("a", number, 0), draft("a", number, 1)])
        reader = self.open_again(log)
        cursor = reader.cursor_at(4)
        assert [e.seq for b in reader.read(cursor) for e in b.events] == [5, 6, 7, 8, 9, 10]
        reader.seek(cursor)
        assert [e.seq for e in reader.read_new()] == [5, 6, 7, 8, 9, 10]
        assert not reader.has_new()

    def test_head_and_has_new_see_what_another_handle_appended(self) -> None:
        log = self.new_log()
        reader = self.open_again(log)
        assert reader.head() == START and not reader.has_new()
        log.append([draft("a", 0), draft("a", 0, 1)])
        assert reader.head() == log.head() and reader.head().seq == 2
        assert reader.has_new()
        assert reader.position == START  # head() reads the engine, it moves nothing
        assert [e.seq for e in reader.read_new()] == [1, 2]
        assert reader.position == log.head() and not reader.has_new()

    # -- several writers -----------------------------------------------------------------

    def test_a_writer_catches_up_before_it_appends(self) -> None:
        first = self.new_log()
        second = self.open_again(first)
        mine = first.append([draft("a", 0, 0), draft("a", 0, 1)])
        result = second.append([draft("b", 0)])
        assert [e.seq for e in result] == [1, 2, 3]
        assert result[:2] == mine
        handed: list[list[AnyEvent]] = []

        def accept(caught: list[AnyEvent]) -> bool:
            handed.append(caught)
            return True

        result = first.append([draft("a", 1)], on_caught_up=accept)
        assert [[e.seq for e in caught] for caught in handed] == [[3]]
        assert [e.seq for e in result] == [4]
        written: list[AnyEvent] = []
        second.append([draft("b", 1)], on_written=written.extend)
        assert [e.seq for e in written] == [5]
        assert chain_problems(self.all_events(first)) == []

    def test_concurrent_writers_write_every_event_once(self) -> None:
        log = self.new_log()
        writers, batches, size = 3, 15, 2
        names = [f"w{index}" for index in range(writers)]
        target = self.log_target(log)
        if self.separate_processes:
            context = multiprocessing.get_context("spawn")
            processes = [
                context.Process(target=write_batches, args=(target, {}, name, batches, size))
                for name in names
            ]
            for process in processes:
                process.start()
            for process in processes:
                process.join(120)
            assert [process.exitcode for process in processes] == [0] * writers
        else:
            threads = [
                threading.Thread(target=write_batches, args=(target, {}, name, batches, size))
                for name in names
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        events = self.all_events(log)
        assert chain_problems(events) == []
        ids = sorted(event.id for event in events)
        expected = sorted(
            f"{name}-{number}-{part}"
            for name in names
            for number in range(batches)
            for part in range(size)
        )
        assert ids == expected
        for batch in log.read(START):  # no batch interleaves with another
            assert len({e.id.rsplit("-", 1)[0] for e in batch.events}) == 1

    def test_a_follower_never_skips_or_repeats_an_event(self) -> None:
        log = self.new_log()
        follower = self.open_again(log, readonly=True)
        writers, batches, size = 2, 20, 3
        target = self.log_target(log)
        if self.separate_processes:
            context = multiprocessing.get_context("spawn")
            workers: list[Any] = [
                context.Process(target=write_batches, args=(target, {}, f"f{i}", batches, size))
                for i in range(writers)
            ]
        else:
            workers = [
                threading.Thread(target=write_batches, args=(target, {}, f"f{i}", batches, size))
                for i in range(writers)
            ]
        for worker in workers:
            worker.start()
        seen: list[AnyEvent] = []
        cursor: Cursor = START
        deadline = time.monotonic() + 120
        total = writers * batches * size
        while len(seen) < total and time.monotonic() < deadline:
            follower.wait(cursor, 0.2)
            for batch in follower.read(cursor, limit=4):
                assert batch.events[-1].more == 0
                seen.extend(batch.events)
                cursor = batch.cursor
        for worker in workers:
            worker.join(120)
        assert [event.seq for event in seen] == list(range(1, total + 1))
        assert chain_problems(seen) == []

    def test_wait_times_out_and_wakes_on_an_append(self) -> None:
        log = self.new_log()
        log.append([draft("a", 0)])
        head = log.head()
        started = time.monotonic()
        assert log.wait(head, 0.1) is False
        assert time.monotonic() - started >= 0.09
        assert log.wait(START, 0) is True
        writer = self.open_again(log)
        timer = threading.Timer(0.2, lambda: writer.append([draft("b", 0)]))
        timer.start()
        try:
            started = time.monotonic()
            assert log.wait(head, 30) is True
            assert time.monotonic() - started < 20
        finally:
            timer.join()

    # -- failed appends ------------------------------------------------------------------

    def test_a_too_large_event_writes_nothing_of_its_batch(self) -> None:
        log = self.new_log(max_event_bytes=512)
        log.append([draft("a", 0)])
        head = log.head()
        with pytest.raises(EventTooLargeError, match=r"event 2 of the batch .*nothing was written"):
            log.append([draft("a", 1, 0), draft("a", 1, 1, value="x" * 600)])
        assert log.head() == head
        assert len(self.all_events(log)) == 1
        assert [e.seq for e in log.append([draft("a", 2)])] == [2]
        assert chain_problems(self.all_events(log)) == []

    def test_a_draft_that_is_not_an_event_writes_nothing_of_its_batch(self) -> None:
        log = self.new_log()
        log.append([draft("a", 0)])
        head = log.head()
        bad: Any = {"kind": TASK_RESULT, "id": "x"}
        with pytest.raises(LogWriteError, match=r"event 2 of the batch is not an event.*nothing"):
            log.append([draft("a", 1), bad])
        with pytest.raises(TypeError):  # a value the encoding cannot hold
            log.append([draft("a", 1), draft("a", 1, 1, value=object())])
        assert log.head() == head and log.position == head
        assert [e.id for e in self.all_events(log)] == ["a-0-0"]

    def test_reads_give_back_the_encoded_values_not_the_drafts(self) -> None:
        log = self.new_log()
        value: dict[str, Any] = {"n": [1], "pair": (1, 2)}
        log.append([draft("a", 0, value=value)])
        value["n"].append(2)  # the caller changes its value after the append
        for events in (self.all_events(log), list(self.open_again(log).read_new())):
            stored = events[0]
            assert isinstance(stored, FieldSet)
            assert stored.value == {"n": [1], "pair": [1, 2]}

    def test_a_refused_catch_up_writes_nothing(self) -> None:
        log = self.new_log()
        other = self.open_again(log)
        other.append([draft("b", 0)])
        handed: list[list[AnyEvent]] = []

        def refuse(caught: list[AnyEvent]) -> bool:
            handed.append(caught)
            return False

        assert log.append([draft("a", 0)], on_caught_up=refuse) == []
        assert [[e.seq for e in caught] for caught in handed] == [[1]]
        assert [e.id for e in self.all_events(log)] == ["b-0-0"]

    def test_an_exception_in_the_catch_up_writes_nothing(self) -> None:
        log = self.new_log()

        def fail(caught: list[AnyEvent]) -> bool:
            raise RuntimeError("no")

        with pytest.raises(RuntimeError, match="no"):
            log.append([draft("a", 0)], on_caught_up=fail)
        assert self.all_events(log) == []
        assert log.head() == START

    # -- bad input -----------------------------------------------------------------------

    def test_bad_cursors_and_arguments_are_refused(self) -> None:
        log = self.new_log()
        log.append([draft("a", 0), draft("a", 0, 1)])
        head = log.head()
        beyond = msgspec.structs.replace(head, seq=9)
        wrong = msgspec.structs.replace(head, hash="f" * 64)
        text: Any = "1:abc"
        number_text: Any = "1"
        limit_text: Any = "2"
        replace: Any = msgspec.structs.replace
        # Forged cursors: the right seq with a float, a bool or a text where an int is.
        misshapen = [
            replace(head, seq=float(head.seq)),
            replace(log.cursor_at(1), seq=True),
            replace(head, offset=float(head.offset)),
            replace(head, offset="0"),
            replace(head, offset=-1),
            replace(head, hash=None),
            (head.offset, head.seq, head.hash),
        ]
        with MemoryEventLog() as other:  # another log's cursor at the same seq
            other.append([draft("o", 0), draft("o", 0, 1)])
            foreign = other.head()
        cases: list[tuple[Any, str]] = [
            *[
                (lambda cursor=cursor, call=call: call(cursor), "not a cursor")
                for cursor in misshapen
                for call in (log.seek, log.read, lambda cursor: log.wait(cursor, 0))
            ],
            (lambda: log.seek(foreign), ""),
            (lambda: log.read(foreign), ""),
            (lambda: log.seek(beyond), "9"),
            (lambda: log.seek(wrong), ""),
            (lambda: log.seek(text), "cursor"),
            (lambda: log.cursor_at(3), "3"),
            (lambda: log.cursor_at(-1), "-1"),
            (lambda: log.cursor_at(number_text), "'1'"),
            (lambda: log.read(beyond), "9"),
            (lambda: log.read(wrong), ""),
            (lambda: log.read(START, limit=0), "limit"),
            (lambda: log.read(START, limit=limit_text), "limit"),
            (lambda: log.wait(beyond, 0), "9"),
            (lambda: log.wait(head, -1), "timeout"),
        ]
        for call, excerpt in cases:
            with pytest.raises(LogError) as info:
                call()
            assert excerpt in str(info.value)
            assert log.location in str(info.value)
        assert log.head() == head
        assert log.position == head
        assert len(self.all_events(log)) == 2

    def test_a_read_only_log_refuses_writes(self) -> None:
        log = self.new_log()
        log.append([draft("a", 0)])
        reader = self.open_again(log, readonly=True)
        assert reader.readonly and not log.readonly
        with pytest.raises(LogError, match="read-only"):
            reader.append([draft("r", 0)])
        assert [e.id for e in reader.read_new()] == ["a-0-0"]
        assert len(self.all_events(log)) == 1

    def test_a_closed_log_refuses_use(self) -> None:
        log = self.make_log()
        log.append([draft("a", 0)])
        log.close()
        for call in (lambda: log.append([draft("a", 1)]), log.head, lambda: log.read(START)):
            with pytest.raises(LogError, match="closed"):
                call()

    # -- identity, durability and snapshots ----------------------------------------------

    def test_identity_members(self) -> None:
        log = self.new_log(durability="none")
        assert log.durability == "none"
        assert isinstance(log.location, str) and log.location
        assert log.lock.acquire(timeout=1)
        log.lock.release()
        log.append([draft("a", 0)])
        log.commit()

    def test_the_snapshot_store_keeps_bytes(self) -> None:
        log = self.new_log()
        log.append([draft("a", 0)])
        store = log.snapshots
        assert store.load() is None
        store.save(b"\x00snapshot body\xff")
        assert store.load() == b"\x00snapshot body\xff"
        assert self.open_again(log).snapshots.load() == b"\x00snapshot body\xff"
        store.save(b"newer")
        assert store.load() == b"newer"
        assert isinstance(store.location, str) and store.location

    # -- the run index -------------------------------------------------------------------

    def test_the_run_index(self) -> None:
        log = self.new_log()
        log.append(
            [
                ObjectCreated(
                    run_id="r1",
                    kind=PIPELINE_EXECUTION,
                    id="e1",
                    attrs={"pipeline_id": "p", "status": "PENDING"},
                ),
                ObjectCreated(run_id="r1", kind=TASK_RESULT, id="t1", parent_id="e1"),
            ]
        )
        log.append(
            [
                ObjectCreated(
                    run_id="r2", kind=PIPELINE_EXECUTION, id="e2", attrs={"status": "PENDING"}
                )
            ]
        )
        log.append(
            [
                FieldSet(
                    run_id="r1", kind=PIPELINE_EXECUTION, id="e1", field="status", value="DONE"
                ),
                FieldSet(
                    run_id="r1",
                    kind=PIPELINE_EXECUTION,
                    id="e1",
                    field="completed",
                    value="2026-01-01T00:00:00+00:00",
                ),
            ]
        )
        log.append([RunRemoved(run_id="r2", kind=PIPELINE_EXECUTION, id="e2")])
        if not log.supports_run_index:
            with pytest.raises(NotImplementedError, match="no run index"):
                log.run_summaries()
            return
        summaries = {summary.run_id: summary for summary in log.run_summaries()}
        assert [s.run_id for s in log.run_summaries()] == ["r1", "r2"]
        first = summaries["r1"]
        assert (first.pipeline_id, first.status, first.completed) == (
            "p",
            "DONE",
            "2026-01-01T00:00:00+00:00",
        )
        assert first.counts[TASK_RESULT] == 1 and first.counts[PIPELINE_EXECUTION] == 1
        assert (first.first_seq, first.last_seq) == (1, 5)
        assert summaries["r2"].removed and not first.removed
        assert [e.seq for e in log.run_events("r1")] == [1, 2, 4, 5]
        assert [e.seq for e in log.run_events("r2")] == [3, 6]
        assert log.run_events("nope") == []
        assert (log.run_of("t1"), log.run_of("e2"), log.run_of("nope")) == ("r1", "r2", None)
        other = self.open_again(log)
        other.append([ObjectCreated(run_id="r3", kind=PIPELINE_EXECUTION, id="e3")])
        assert log.run_of("e3") == "r3"


__all__ = ["EventLogConformance", "chain_problems", "draft", "write_batches"]
