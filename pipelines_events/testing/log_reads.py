"""The log engine tests of seq, the chain, batches and reads after a cursor."""

from __future__ import annotations

import msgspec

from pipelines_events.events import (
    START,
    FieldSet,
)
from pipelines_events.log.base import Batch, group_batches
from pipelines_events.testing.log_support import (
    LogTestCase,
    chain_problems,
    draft,
)

__all__ = ["LogReadTests"]


class LogReadTests(LogTestCase):
    """Seq is contiguous, the chain valid; batches are read whole, after a cursor."""

    __test__ = False

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
