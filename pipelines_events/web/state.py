"""What the routes of the web app share: the log opened read-only, the lock that
serialises its use, the reader of new events, the verify cache."""

from __future__ import annotations

import threading
from typing import Final

from pipelines_events.errors import PipelinesEventsError
from pipelines_events.events import LogPosition
from pipelines_events.log.open import LogTarget
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.web import data, live

POLL_INTERVAL: Final = 0.2
"""Seconds between two looks at the log by a live stream with nothing new to send."""


class AppState:
    """What the routes share: the storage, its lock, the file reader, the verify cache."""

    def __init__(self, path: LogTarget) -> None:
        self.path = path
        self.storage = EventLogPipelineResultsStorage(path, readonly=True)
        try:
            self.tail = live.LogTail(self.storage.log)
        except BaseException:
            self.storage.close()
            raise
        self.lock = threading.Lock()
        self.verify = data.VerifyCache(str(path))
        self.closing = False

    def head(self) -> LogPosition:
        with self.lock:
            return data.head_of(self.storage)

    def wait(self, after: LogPosition) -> bool:
        """Wait until a batch follows ``after`` in the log, or POLL_INTERVAL passes."""
        try:
            return self.storage.log.wait(after, POLL_INTERVAL)
        except PipelinesEventsError:
            return False  # the log closed under the wait: the loop sees it next

    def messages(
        self, start: LogPosition, end: LogPosition, expected: int, run_id: str | None
    ) -> tuple[list[live.LiveMessage], LogPosition, int]:
        with self.lock:
            return live.messages(self.storage, self.tail, start, end, expected, run_id)

    def close(self) -> None:
        self.closing = True
        with self.lock:
            self.tail.close()
            self.storage.close()


__all__ = ["POLL_INTERVAL", "AppState"]
