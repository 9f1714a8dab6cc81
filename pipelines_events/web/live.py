"""Live updates: the log's events after a seq, as server-sent event messages.

Each message's id is the seq of the event it carries, so a browser that reconnects with
``Last-Event-ID: N`` gets exactly the events after seq N: none twice, none missed. The
stream only sends events the storage has already read and chained (up to its position,
always the end of a complete batch), and it reads them from the file by byte offset, so
resuming costs a binary search over the file, not a replay.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Final

import msgspec

from pipelines_events.cli import render
from pipelines_events.errors import PipelinesEventsError
from pipelines_events.events import (
    PIPELINE_EXECUTION,
    AnyEvent,
    LogPosition,
    ObjectCreated,
    RunRemoved,
)
from pipelines_events.log.chain import decode_event
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
    """Reads the complete lines of a log file by byte offset (``os.pread``: thread-safe)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _line_start(self, offset: int, end: int) -> int:
        """The first line start at or after ``offset`` (``end`` when there is none)."""
        if offset <= 0:
            return 0
        position = offset - 1
        while position < end:
            data = os.pread(self._fd, min(CHUNK, end - position), position)
            if not data:
                break
            newline = data.find(b"\n")
            if newline >= 0:
                return min(position + newline + 1, end)
            position += len(data)
        return end

    def _seq_at(self, start: int, end: int) -> int:
        """The seq of the event on the line starting at ``start``."""
        line = self._line(start, end)
        try:
            return decode_event(line).seq
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise LiveError(
                f"{self.path}: the line at byte {start} is not an event: {exc}"
            ) from None

    def _line(self, start: int, end: int) -> bytes:
        parts: list[bytes] = []
        position = start
        while position < end and position - start < _MAX_LINE:
            data = os.pread(self._fd, min(CHUNK, end - position), position)
            if not data:
                break
            newline = data.find(b"\n")
            if newline >= 0:
                parts.append(data[:newline])
                return b"".join(parts)
            parts.append(data)
            position += len(data)
        raise LiveError(f"{self.path}: no complete line at byte {start}")

    def offset_after(self, seq: int, head: LogPosition) -> int:
        """The byte offset of the event after seq ``seq`` (``head.offset`` when ``seq`` is
        the head's or later)."""
        end = head.offset
        if seq <= 0:
            return 0
        if seq >= head.seq:
            return end
        low, high = 0, end  # the answer is a line start in [low, high]; low is one
        while low < high:
            middle = self._line_start((low + high) // 2, high)
            if middle >= high:
                if self._seq_at(low, end) > seq:
                    return low
                low = self._line_start(low + 1, high)
                continue
            if self._seq_at(middle, end) > seq:
                high = middle
            else:
                low = self._line_start(middle + 1, high)
        return high

    def events(self, start: int, end: int, limit: int) -> Iterator[tuple[AnyEvent, int]]:
        """Up to ``limit`` events on the complete lines in ``[start, end)``, each with the
        offset after its line."""
        position = start
        sent = 0
        pending = b""
        while position < end and sent < limit:
            data = os.pread(self._fd, min(CHUNK, end - position), position)
            if not data:
                raise LiveError(f"{self.path}: the file ends before byte {end}")
            data = pending + data
            base = position - len(pending)
            position += len(data) - len(pending)
            cursor = 0
            while sent < limit:
                newline = data.find(b"\n", cursor)
                if newline < 0:
                    break
                line = data[cursor:newline]
                try:
                    event = decode_event(line)
                except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                    where = base + cursor
                    raise LiveError(
                        f"{self.path}: the line at byte {where} is not an event: {exc}"
                    ) from None
                cursor = newline + 1
                sent += 1
                yield event, base + cursor
            pending = data[cursor:]
            if len(pending) > _MAX_LINE:
                raise LiveError(f"{self.path}: a line after byte {base + cursor} has no end")


def messages(
    storage: EventLogPipelineResultsStorage,
    tail: LogTail,
    start: int,
    end: int,
    expected: int,
    run_id: str | None,
) -> tuple[list[LiveMessage], int, int]:
    """The messages for the events in ``[start, end)`` of the log, the first of which must
    have seq ``expected``; only those of run ``run_id`` when it is given.

    Returns the messages, the offset after the last event read and the seq expected next.
    Call with the storage caught up to ``end`` at least (its state is attached).
    """
    events: list[AnyEvent] = []
    offset = start
    for event, after in tail.events(start, end, MAX_MESSAGES):
        if event.seq != expected:
            raise LiveError(
                f"{tail.path}: expected the event with seq {expected} at byte {offset}, "
                f"found seq {event.seq}: the log was replaced or changed; reload the page"
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
