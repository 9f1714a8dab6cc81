"""The interface every event log engine implements."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence

from pipelines_events.events import AnyEvent, LogPosition


class EventLog(abc.ABC):
    """An append-only sequence of events with contiguous ``seq`` and a hash chain.

    A log object has a *position*: everything before it has been handed to the caller.
    :meth:`read_new` and :meth:`append` hand over what lies after it, in log order.
    """

    @property
    @abc.abstractmethod
    def position(self) -> LogPosition:
        """The position after the last event handed to the caller."""

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the log lives (a file path, a URL), for messages."""

    @abc.abstractmethod
    def seek(self, position: LogPosition) -> None:
        """Continue from ``position``, after checking that it is a real event boundary."""

    @abc.abstractmethod
    def has_new(self) -> bool:
        """Whether anything may have been appended after the position (a cheap check)."""

    @abc.abstractmethod
    def read_new(self) -> Iterator[AnyEvent]:
        """Yield the complete batches appended after the position, advancing it."""

    @abc.abstractmethod
    def append(self, drafts: Sequence[AnyEvent]) -> list[AnyEvent]:
        """Append ``drafts`` as one atomic batch.

        Returns, in log order, the events other writers appended since the position,
        then the new events with their ``seq``, ``ts`` and ``hash``.
        """

    @abc.abstractmethod
    def commit(self) -> None:
        """Make every appended event durable as the log's durability mode promises."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the log's resources; the object cannot be used afterwards."""
