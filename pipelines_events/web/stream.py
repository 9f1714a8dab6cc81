"""The live stream: the server-sent events of the log's new events, as the page sees
them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Final

import msgspec
from starlette.concurrency import run_in_threadpool

from pipelines_events.errors import PipelinesEventsError
from pipelines_events.events import LogPosition
from pipelines_events.web.state import AppState

KEEPALIVE: Final = 15.0
"""Seconds of silence after which a live stream sends a comment line."""
_encoder: Final = msgspec.json.Encoder()


async def sse_stream(
    state: AppState, after: int, head: LogPosition, run_id: str | None
) -> AsyncIterator[str]:
    """The SSE messages of the events after seq ``after``, then of each new one."""
    yield "retry: 1000\n\n"
    if after > head.seq:
        yield (
            "event: reset\ndata: the log holds fewer events than the page has seen "
            f"(seq {after} > {head.seq}): reload\n\n"
        )
        return
    try:
        offset = await run_in_threadpool(state.tail.cursor_after, after, head)
        expected = after + 1
        quiet_since = time.monotonic()
        while not state.closing:
            head = await run_in_threadpool(state.head)
            if head.seq > offset.seq:
                sent, offset, expected = await run_in_threadpool(
                    state.messages, offset, head, expected, run_id
                )
                for message in sent:
                    payload = _encoder.encode(message).decode()
                    yield f"id: {message.seq}\nevent: change\ndata: {payload}\n\n"
                quiet_since = time.monotonic()
                continue
            if time.monotonic() - quiet_since > KEEPALIVE:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            # Woken as soon as a batch is in the log, or after POLL_INTERVAL at most.
            await run_in_threadpool(state.wait, head)
    except PipelinesEventsError as exc:
        text = str(exc).replace("\r", " ").replace("\n", " ")
        yield f"event: failure\ndata: {text}\n\n"


__all__ = ["KEEPALIVE", "sse_stream"]
