"""Status changes of a log, as other processes append them."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Final

from pipelines_events.audit._core import REMOVED, AuditChange, ChangeFold, LogPath, on_field
from pipelines_events.errors import InvalidValueError
from pipelines_events.events import PIPELINE_EXECUTION, AnyEvent, LogPosition
from pipelines_events.log.open import open_log
from pipelines_events.status import PipelineTaskStatus

POLL_INTERVAL: Final = 0.15
"""Seconds between two looks at the log when nothing new was there."""


class Follower:
    """The status changes of ``log`` (of run ``run_id`` only, when given), as they come.

    Iterating yields the status changes already in the log from seq ``from_seq`` on
    (none when it is None), then every status change other processes append, read as
    they land (a poll every ``poll_interval`` seconds). A creation counts as the change
    to the object's first status; a run leaving the storage is yielded too. Iteration
    ends after ``timeout`` seconds (:attr:`timed_out`), or with ``until_done`` once the
    run's execution is in a final status (:attr:`status`); otherwise it goes on.
    """

    def __init__(
        self,
        log: LogPath,
        run_id: str | None = None,
        *,
        from_seq: int | None = None,
        until_done: bool = False,
        timeout: float | None = None,
        poll_interval: float = POLL_INTERVAL,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if run_id is not None and (not isinstance(run_id, str) or not run_id):
            raise InvalidValueError(f"give a run id, not {run_id!r}")
        if from_seq is not None and (type(from_seq) is not int or from_seq < 0):
            raise InvalidValueError(f"from_seq: give an int of at least 0, not {from_seq!r}")
        if timeout is not None and not _seconds(timeout):
            raise InvalidValueError(f"timeout: give seconds (at least 0), not {timeout!r}")
        if not _seconds(poll_interval) or poll_interval <= 0:
            raise InvalidValueError(f"poll_interval: give seconds above 0, not {poll_interval!r}")
        if until_done and run_id is None:
            raise InvalidValueError("until_done needs the run id of the run to wait for")
        self.run_id = run_id
        self.from_seq = from_seq
        self.until_done = until_done
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._sleep = sleep
        self._clock = clock
        self._log = open_log(log, readonly=True)
        self.status: PipelineTaskStatus | None = None
        """The status of the run's execution, as last seen (None before it exists)."""
        self.timed_out = False
        """Whether iteration ended because ``timeout`` passed."""

    @property
    def position(self) -> LogPosition:
        """How far the log has been read."""
        return self._log.position

    @property
    def done(self) -> bool:
        """Whether the run's execution is in a final status."""
        return self.status is not None and self.status.is_final

    def close(self) -> None:
        """Stop reading the log (iteration closes it when it ends)."""
        self._log.close()

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[AuditChange]:
        fold = ChangeFold()
        deadline = None if self.timeout is None else self._clock() + self.timeout
        catching_up = True
        try:
            while True:
                read = False
                for batch in self._log.read_batches():
                    read = True
                    yield from self._changes(fold, batch, catching_up)
                    if not catching_up and self.until_done and self.done:
                        return
                if catching_up:
                    catching_up = False
                    if self.until_done and self.done:
                        return
                now = self._clock()
                if deadline is not None and now >= deadline:
                    self.timed_out = True
                    return
                if not read:
                    wait = self.poll_interval
                    if deadline is not None:
                        wait = min(wait, deadline - now)
                    if self._sleep is time.sleep:
                        # Woken as soon as a batch is in the log (or the wait ends).
                        self._log.wait(self._log.position, wait)
                    else:
                        self._sleep(wait)
        finally:
            self._log.close()

    def _changes(
        self, fold: ChangeFold, batch: list[AnyEvent], catching_up: bool
    ) -> Iterator[AuditChange]:
        if self.run_id is not None:
            batch = [event for event in batch if event.run_id == self.run_id]
            if not batch:
                return
        start = self.from_seq
        for change in fold.batch(batch):
            shown = change if change.action == REMOVED else on_field(change, "status")
            if shown is None:
                continue
            if (
                self.run_id is not None
                and shown.kind == PIPELINE_EXECUTION
                and isinstance(shown.new, PipelineTaskStatus)
            ):
                self.status = shown.new
            if catching_up and start is None:
                continue
            if start is not None and change.seq < start:
                continue
            yield shown


def _seconds(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )
