"""The log engine tests of several writers and of waiting for new events."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

from pipelines_events.events import (
    START,
    AnyEvent,
)
from pipelines_events.log.base import Cursor
from pipelines_events.testing.log_support import (
    LogTestCase,
    chain_problems,
    draft,
    write_batches,
)

__all__ = ["LogWriterTests"]


class LogWriterTests(LogTestCase):
    """Writers catch up before they append; followers see every event once."""

    __test__ = False

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
