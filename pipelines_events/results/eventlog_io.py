"""The event I/O of the event-log storage: catch-up, the fold, appends and atomic blocks.

:class:`EventLogIO` is the base of
:class:`~pipelines_events.results.eventlog.EventLogPipelineResultsStorage`: it folds what
other processes appended, appends events (one at a time, or the events of an atomic block
as one batch) and folds them in log order. One lock per storage covers catch-up, append
and fold; atomic blocks are per thread.
"""

from __future__ import annotations

import abc
import contextlib
import gc
from collections.abc import Callable, Iterator
from typing import Final

from pipelines_events.errors import (
    AppendUnreadUnavailable,
    LogError,
    ProjectionError,
    ReadOnlyStorageError,
)
from pipelines_events.events import AnyEvent
from pipelines_events.results.base import Batch
from pipelines_events.results.eventlog_reads import ReadModelStorage

_BIG_GROUP: Final = 1000
"""Catch-ups that hand over more events than this in all run with the cyclic garbage
collector paused."""


class EventLogIO(ReadModelStorage, abc.ABC):
    """A read-model storage whose read model is moved by folding an event log: the events
    in and out of the event-log storage (its subclass sets the attributes below)."""

    _readonly: bool
    _append_unread: bool
    _fold_failed: bool  # the last fold stopped at an event: writes catch up
    _unsnapshotted: int

    def _refuse_write(self, what: str) -> None:
        if self._readonly:
            raise ReadOnlyStorageError(
                f"cannot {what}: the storage of {self._log.location} was opened read-only; "
                "nothing was written"
            )

    # -- events in and out ------------------------------------------------------------

    def refresh(self) -> None:
        """Fold the events other processes appended since the last look."""
        if self.reads_are_held or not self._log.has_new():
            return
        with self._lock:
            self._read_log()

    def _read_log(self) -> None:
        groups = self._log.read_groups()
        folded = 0
        for group in groups:
            folded += len(group)
            if folded > _BIG_GROUP:
                with _gc_paused():
                    self._fold(group)
                    for group in groups:
                        self._fold(group)
                return
            self._fold(group)

    def _fold(self, events: list[AnyEvent]) -> None:
        """Fold ``events``, the last the log handed over. When one cannot be folded, the
        log goes back to just before it: it is not skipped, the next read meets it again."""
        apply_results, apply_digest = self._model.appliers
        try:
            for event in events:
                apply_results(event)
                apply_digest(event)
        except BaseException as exc:
            self._fold_failed = True
            self._unsnapshotted += events.index(event)
            try:
                self._log.seek(self._log.cursor_at(event.seq - 1))
            except LogError as seek_error:
                exc.add_note(f"and the storage could not stay before it: {seek_error}")
            if isinstance(exc, ProjectionError):
                raise ProjectionError(self._fold_error(exc, event)) from exc
            raise
        self._fold_failed = False
        self._unsnapshotted += len(events)

    def _fold_error(self, exc: ProjectionError, event: AnyEvent) -> str:
        reason = str(exc)
        where = f"seq {event.seq}"
        if not reason.startswith(f"{where}:"):
            reason = f"{where}: {reason}"
        return (
            f"{self._log.location}: {reason} (the storage does not read past this event; "
            "`pipelines-events verify` checks the log)"
        )

    def _emit(self, drafts: list[AnyEvent]) -> None:
        if self._readonly:
            self._refuse_write("write events")
        local = self._local
        pending = local.pending
        if pending is not None:
            pending.extend(drafts)
            return
        if (
            self._append_unread
            and not local.holding_reads
            and not self._fold_failed
            and self._log.supports_append_unread
        ):
            # What other writers appended is left to the next read, which folds it, and
            # then this batch, in log order; with nothing before it, it is folded now.
            # (After a fold error, a write catches up as reads do and is refused.)
            try:
                self._log.append_unread(drafts, on_written=self._fold)
                return
            except AppendUnreadUnavailable:
                pass  # rolled by another writer, nothing written: catch up and append
        self._log.append(drafts, on_caught_up=self._fold_caught, on_written=self._fold)

    def _fold_caught(self, caught: list[AnyEvent]) -> bool:
        """Fold, under the log's lock, what other writers appended before an append: if it
        cannot be folded, nothing is written."""
        if caught:
            self._fold(caught)
        return True

    def atomic(self, require: Callable[[], bool] | None = None) -> _AtomicBlock:
        """Append every event emitted inside the block as one batch; none if it raises.

        ``require`` is checked under the log's lock against the caught-up state; when it
        is False the batch is dropped and ``Batch.stored`` is False. The block belongs to
        the thread that enters it: other threads' events are not part of it.
        """
        return _AtomicBlock(self, require)

    def _append_block(self, pending: list[AnyEvent], require: Callable[[], bool] | None) -> bool:
        """Append ``pending`` as one batch; returns whether it was stored. Everything is
        folded under the log's lock, in log order: first what other writers appended (if
        that cannot be folded, nothing is written), then the batch."""
        self._refuse_write("write events")
        if require is None:
            self._log.append(pending, on_caught_up=self._fold_caught, on_written=self._fold)
            return True

        def check(caught: list[AnyEvent]) -> bool:
            if caught:
                self._fold(caught)
            return self._check(require)

        return bool(self._log.append(pending, on_caught_up=check, on_written=self._fold))

    def _check(self, require: Callable[[], bool]) -> bool:
        """Evaluate ``require`` against the caught-up state without reading the log again."""
        with self.reads_held():
            return require()

    def commit(self) -> None:
        """Make every appended event durable as the log's durability promises."""
        self._log.commit()


class _AtomicBlock:
    """The context manager :meth:`EventLogIO.atomic` returns (a class,
    not a generator: it is on the path of every status change)."""

    __slots__ = ("_batch", "_outer", "_require", "_storage")

    def __init__(self, storage: EventLogIO, require: Callable[[], bool] | None) -> None:
        self._storage = storage
        self._require = require
        self._batch = Batch()
        self._outer = False

    def __enter__(self) -> Batch:
        local = self._storage._local
        if local.pending is None:
            local.pending = []
            self._outer = True
        return self._batch

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if not self._outer:
            return
        storage = self._storage
        local = storage._local
        pending, local.pending = local.pending, None
        if kind is None and pending:
            self._batch.stored = storage._append_block(pending, self._require)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building many long-lived objects: it would rescan them
    again and again for nothing (that doubles replay time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
