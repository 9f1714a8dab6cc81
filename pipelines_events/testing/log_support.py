"""What the log engine test mixins share: the events they write and the suite's plumbing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

from pipelines_events.events import GENESIS_HASH, START, TASK_RESULT, AnyEvent, FieldSet
from pipelines_events.log.base import EventLog
from pipelines_events.log.chain import encode_event, seal
from pipelines_events.log.open import LogTarget, open_log

__all__ = ["LogTestCase", "chain_problems", "draft", "write_batches"]


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


class LogTestCase:
    """The base of the log engine test mixins: what an engine provides, and the plumbing."""

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
