"""Live updates: the log's events after a seq, as server-sent event messages.

Each message's id is the seq of the event it carries, so a browser that reconnects with
``Last-Event-ID: N`` gets exactly the events after seq N: none twice, none missed. The
stream only sends events the storage has already read and chained (up to its position,
always the end of a complete batch), and it reads them after a cursor of the log
(:meth:`~pipelines_events.log.base.EventLog.cursor_at`), so resuming costs no replay.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import msgspec

from pipelines_events.cli import render
from pipelines_events.errors import LogError, PipelinesEventsError
from pipelines_events.events import (
    PIPELINE_EXECUTION,
    START,
    AnyEvent,
    LogPosition,
    ObjectCreated,
    RunRemoved,
)
from pipelines_events.log.base import EventLog
from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResult,
    PipelineStorageObject,
    TaskExecution,
    TaskResult,
)
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.web.data import traceback_of

CHUNK: Final = 1 << 20
"""Bytes read from the log at a time."""
MAX_MESSAGES: Final = 2000
"""Events sent in one go before the stream looks at the log's head again."""
_MAX_LINE: Final = 64 << 20


class LiveError(PipelinesEventsError):
    """The log no longer holds what the stream expects (it was replaced or cut)."""


class LiveMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One event of the log as the page receives it (the ``data`` of an SSE message).

    ``run`` and ``object`` are the run's row and the object's state *now*, attached to the
    last event of that run and of that object among the events sent together; the page
    applies them as they come, so it ends up showing the state of the log.
    """

    seq: int
    type: str
    """``created``, ``set`` or ``removed``."""
    run_id: str
    kind: str
    id: str
    field: str | None = None
    run: render.RunSummary | None = None
    object: render.ResultState | None = None
    traceback: str | None = None


class LogTail:
    """Reads the complete batches of the storage's log after a cursor, through the log's
    interface (thread-safe: reading moves no position)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.path = log.location

    def close(self) -> None:
        """Nothing to release: the storage owns the log."""

    def cursor_after(self, seq: int, head: LogPosition) -> LogPosition:
        """The cursor after the event ``seq`` (``head`` when ``seq`` is the head's or
        later)."""
        if seq <= 0:
            return START
        if seq >= head.seq:
            return head
        try:
            return self.log.cursor_at(seq)
        except LogError as exc:
            raise LiveError(f"{self.path}: {exc}") from None

    def events(
        self, start: LogPosition, end: LogPosition, limit: int
    ) -> Iterator[tuple[AnyEvent, LogPosition]]:
        """The events of the complete batches after ``start`` up to ``end`` (about
        ``limit`` of them: whole batches), each batch's last with the cursor after it."""
        if start.seq >= end.seq:
            return
        try:
            for batch in self.log.read(start, limit=limit):
                last = len(batch.events) - 1
                for index, event in enumerate(batch.events):
                    yield event, batch.cursor if index == last else start
                if batch.cursor.seq >= end.seq:
                    return
        except LogError as exc:
            raise LiveError(f"{self.path}: {exc}; reload the page") from None


def messages(
    storage: EventLogPipelineResultsStorage,
    tail: LogTail,
    start: LogPosition,
    end: LogPosition,
    expected: int,
    run_id: str | None,
) -> tuple[list[LiveMessage], LogPosition, int]:
    """The messages for the events after the cursor ``start`` up to ``end``, the first of
    which must have seq ``expected``; only those of run ``run_id`` when it is given.

    Returns the messages, the cursor after the last event read and the seq expected next.
    Call with the storage caught up to ``end`` at least (its state is attached).
    """
    events: list[AnyEvent] = []
    offset = start
    for event, after in tail.events(start, end, MAX_MESSAGES):
        if event.seq != expected:
            raise LiveError(
                f"{tail.path}: expected the event with seq {expected} after seq "
                f"{offset.seq}, found seq {event.seq}: the log was replaced or changed; "
                "reload the page"
            )
        expected += 1
        offset = after
        if run_id is None or event.run_id == run_id:
            events.append(event)
    last_of_run: dict[str, int] = {}
    last_of_object: dict[str, int] = {}
    for index, event in enumerate(events):
        last_of_run[event.run_id] = index
        last_of_object[event.id] = index
    out: list[LiveMessage] = []
    for index, event in enumerate(events):
        message = LiveMessage(
            seq=event.seq,
            type=_type_of(event),
            run_id=event.run_id,
            kind=event.kind,
            id=event.id,
            field=getattr(event, "field", None),
        )
        if last_of_run[event.run_id] == index:
            execution = storage.get_pipeline_execution(event.run_id)
            if execution is not None:
                message.run = render.run_summary(storage, execution)
        if last_of_object[event.id] == index and not isinstance(event, RunRemoved):
            _attach_object(storage, message)
        out.append(message)
    return out, offset, expected


def _type_of(event: AnyEvent) -> str:
    if isinstance(event, ObjectCreated):
        return "created"
    if isinstance(event, RunRemoved):
        return "removed"
    return "set"


def _attach_object(storage: EventLogPipelineResultsStorage, message: LiveMessage) -> None:
    record = storage.results.get(message.id)
    if record is None or record.run_id != message.run_id:
        return
    obj: PipelineStorageObject | None
    if record.kind == PIPELINE_EXECUTION:
        obj = storage.get_pipeline_execution(record.run_id)
    else:
        obj = _lookup(storage, record.kind, record.id)
    if obj is None:
        return
    message.object = object_state(obj, record.parent_id)
    message.traceback = traceback_of(record)


def _lookup(storage: EventLogPipelineResultsStorage, kind: str, object_id: str) -> Any:
    getters = {
        "pipeline_result": storage.get_pipeline_result,
        "task_execution": storage.get_task_execution,
        "task_result": storage.get_task_result,
    }
    getter = getters.get(kind)
    return None if getter is None else getter(object_id)


def object_state(obj: PipelineStorageObject, parent_id: str | None) -> render.ResultState:
    """``obj`` as a line of ``show --format jsonl`` (the fields of
    :func:`~pipelines_events.cli.render.result_tree`, without the objects below it)."""
    started, completed = obj.get_started(), obj.get_completed()
    state = render.ResultState(
        kind=obj.kind,
        id=obj.get_id(),
        run_id=obj.get_run_id(),
        parent_id=parent_id,
        status=obj.get_status(),
        started=started,
        completed=completed,
        duration=None
        if started is None or completed is None
        else (completed - started).total_seconds(),
        message=obj.get_message(),
        pipeline_id=obj.get_pipeline_id(),
    )
    if isinstance(obj, PipelineExecution):
        state.input_data = obj.get_input_data()
    elif isinstance(obj, PipelineResult):
        state.pipeline_object = obj.get_serializable_pipeline_object()
    elif isinstance(obj, TaskExecution | TaskResult):
        state.pipeline_object = obj.get_serializable_pipeline_object()
        state.pipeline_task = obj.get_pipeline_task()
        state.task_id = obj.get_task_id()
        if isinstance(obj, TaskResult):
            state.task_object = obj.get_serializable_task_object()
    return state
