"""Replaying a log one batch (state transition) at a time, importing its runs as it goes."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import msgspec

from pipelines_events.audit._core import (
    AuditChange,
    ChangeFold,
    LogPath,
    iter_batches,
)
from pipelines_events.audit._source import read_source
from pipelines_events.audit.importing import (
    EXTENDED,
    IMPORTED,
    PRESENT,
    ImportOutcome,
    ImportSource,
    ImportTarget,
    check_not_same,
    read_target,
)
from pipelines_events.audit.view import StorageView, view_at
from pipelines_events.errors import (
    InvalidValueError,
)
from pipelines_events.events import AnyEvent
from pipelines_events.log.base import EventLog
from pipelines_events.log.open import open_log


class ReplayStep(msgspec.Struct, frozen=True, kw_only=True):
    """One state transition: a batch of the log (events ``first_seq``..``last_seq``)."""

    number: int
    first_seq: int
    last_seq: int
    time: datetime
    run_ids: list[str]
    changes: list[AuditChange]


def _check_speed(speed: float | None) -> float:
    if speed is None:
        return 0.0
    if (
        isinstance(speed, bool)
        or not isinstance(speed, int | float)
        or not math.isfinite(speed)
        or speed < 0
    ):
        raise InvalidValueError(
            f"speed: give a number of at least 0 (0: no waiting; 1: the original timing; "
            f"10: ten times faster), not {speed!r}"
        )
    return float(speed)


class Replay:
    """Steps through the log ``source``, one batch (state transition) at a time.

    With ``into``, the runs of ``source`` are imported into that log as the steps go
    (sequenced again onto its chain, times kept). The whole source is read and checked
    first (:class:`~pipelines_events.audit.ImportRefusedError` names the line of an
    event no storage could fold); a run already there with the same events adds
    nothing, one there with only its first batches gets the rest, and one there with
    different events is refused (:class:`ImportConflictError`), all before anything is
    written. Each batch is written under the target's lock after checking that the
    target still lacks it, so imports running at once write each event once.
    ``speed`` > 0 waits between steps for the original time between them divided by
    ``speed``.
    """

    def __init__(
        self,
        source: LogPath,
        *,
        into: LogPath | None = None,
        speed: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.into = into
        self.speed = _check_speed(speed)
        self._sleep = sleep
        self._clock = clock
        self._source: ImportSource | None = None
        self._target: ImportTarget | None = None
        self.outcomes: list[ImportOutcome] = []
        """One outcome per run of the source when ``into`` is given (what the import will
        do, then, once :meth:`steps` is done, what it did)."""
        if into is None:
            open_log(source, readonly=True).close()  # fail now on a missing file
            return
        check_not_same(source, into)
        checked = ImportSource(os.fspath(source), read_source(source))
        target = read_target(os.fspath(into), checked)
        target.check_all()
        self._source, self._target = checked, target
        self._first = dict(target.have)
        self._written = dict.fromkeys(checked.runs, 0)
        self.outcomes = self._outcomes(planned=True)

    def _outcomes(self, *, planned: bool) -> list[ImportOutcome]:
        assert self._source is not None and self._target is not None
        into = os.fspath(self.into) if self.into is not None else ""
        outcomes = []
        for run_id, run in self._source.runs.items():
            first, total = self._first[run_id], len(run.content)
            written = max(0, total - first) if planned else self._written[run_id]
            have = self._target.have[run_id]
            if written == 0:
                note = f"{into} also holds {have - total} later events of this run"
                outcomes.append(
                    ImportOutcome(
                        run_id=run_id, action=PRESENT, events=0, note=note if have > total else ""
                    )
                )
            elif first == 0:
                outcomes.append(ImportOutcome(run_id=run_id, action=IMPORTED, events=written))
            else:
                outcomes.append(
                    ImportOutcome(
                        run_id=run_id,
                        action=EXTENDED,
                        events=written,
                        note=f"{into} held its first {first} events",
                    )
                )
        return outcomes

    def steps(self) -> Iterator[ReplayStep]:
        """Each step in log order, written to ``into`` (when given) before it is yielded."""
        if self._source is None:
            yield from self._play((batch for batch, _ in iter_batches(self.source)), None)
            return
        needed = any(outcome.action != PRESENT for outcome in self.outcomes)
        writer = self._open_writer() if needed else None
        try:
            yield from self._play(iter(self._source.batches), writer)
        finally:
            if writer is not None:
                try:
                    writer.close()  # commits: durable as the target log promises
                finally:
                    self.outcomes = self._outcomes(planned=False)

    def _open_writer(self) -> EventLog:
        assert self.into is not None and self._target is not None
        writer = open_log(self.into)
        try:
            writer.seek(self._target.position)
        except BaseException:
            writer.close()
            raise
        return writer

    def _play(
        self, batches: Iterator[list[AnyEvent]], writer: EventLog | None
    ) -> Iterator[ReplayStep]:
        fold = ChangeFold()
        first: datetime | None = None
        started = 0.0
        for number, batch in enumerate(batches):
            changes = fold.batch(batch)
            moment = fold.time_of(batch[0])
            if self.speed > 0:
                if first is None:
                    first, started = moment, self._clock()
                else:
                    due = started + (moment - first).total_seconds() / self.speed
                    wait = due - self._clock()
                    if wait > 0:
                        self._sleep(wait)
            if writer is not None:
                self._write(writer, number)
            yield ReplayStep(
                number=number + 1,
                first_seq=batch[0].seq,
                last_seq=batch[-1].seq,
                time=moment,
                run_ids=list(dict.fromkeys(event.run_id for event in batch)),
                changes=changes,
            )

    def _write(self, writer: EventLog, number: int) -> None:
        """Append what the target lacks of batch ``number``, deciding under its lock."""
        target = self._target
        assert target is not None
        while True:
            drafts = target.drafts(number)
            if not drafts:
                return

            def still_lacking(caught: list[AnyEvent], drafts: list[AnyEvent] = drafts) -> bool:
                # Under the lock: fold what others appended, check again, write or retry.
                target.fold(caught)
                target.check_all()
                again = target.drafts(number)
                return len(again) == len(drafts) and all(
                    a is b for a, b in zip(again, drafts, strict=True)
                )

            written = writer.append(drafts, on_caught_up=still_lacking)
            if written:
                target.fold(written)
                target.written += len(written)
                for event in written:
                    self._written[event.run_id] += 1
                return

    def final_view(self) -> StorageView:
        """The state at the end of the source log."""
        return view_at(self.source)


def replay(
    source: LogPath,
    *,
    into: LogPath | None = None,
    speed: float | None = None,
    on_step: Callable[[ReplayStep], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[ReplayStep], StorageView, list[ImportOutcome]]:
    """Play ``source`` through :class:`Replay`; returns the steps, the final state and,
    with ``into``, what was imported per run. ``on_step`` hears of each step as it comes."""
    player = Replay(source, into=into, speed=speed, sleep=sleep)
    steps: list[ReplayStep] = []
    for step in player.steps():
        steps.append(step)
        if on_step is not None:
            on_step(step)
    return steps, player.final_view(), player.outcomes


def import_log(source: LogPath, into: LogPath) -> list[ImportOutcome]:
    """Import every run of ``source`` into ``into`` at once; see :class:`Replay`."""
    player = Replay(source, into=into)
    for _ in player.steps():
        pass
    return player.outcomes


__all__ = ["Replay", "ReplayStep", "import_log", "replay"]
