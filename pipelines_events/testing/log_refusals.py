"""The log engine tests of failed appends, bad input and refused use."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from pipelines_events.errors import EventTooLargeError, LogError, LogWriteError
from pipelines_events.events import (
    START,
    TASK_RESULT,
    AnyEvent,
    FieldSet,
)
from pipelines_events.log.memory import MemoryEventLog
from pipelines_events.testing.log_support import (
    LogTestCase,
    chain_problems,
    draft,
)

__all__ = ["LogRefusalTests"]


class LogRefusalTests(LogTestCase):
    """A failed append writes nothing of its batch; bad input is refused."""

    __test__ = False

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
