"""The digest projection: per pipeline id, how its pipeline results fared."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from pipelines_events.errors import SnapshotError
from pipelines_events.events import (
    PIPELINE_RESULT,
    AnyEvent,
    FieldSet,
    ObjectCreated,
    RunRemoved,
    decode_attrs,
    decode_value,
    parse_time,
)
from pipelines_events.status import PipelineTaskStatus

_SUCCESS = PipelineTaskStatus.success_statuses()
_FAILED = PipelineTaskStatus.failed_statuses()


@dataclass(frozen=True)
class PipelineDigestItem:
    """How the pipeline results of one pipeline id fared.

    ``total_runs`` counts its pipeline results, ``total_success`` the DONE ones,
    ``total_failure`` those in a failed status (CANCELLED included); ``last_ran`` is the
    latest start; ``average_runtime`` is the mean of completed - started in seconds over
    the results that have both. Every field defaults to no runs.
    """

    total_runs: int = 0
    total_success: int = 0
    total_failure: int = 0
    last_ran: datetime | None = None
    average_runtime: float | None = None


PipelineDigest = dict[str, PipelineDigestItem]
"""Digest items by pipeline id."""


class _Result:
    __slots__ = ("completed", "pipeline_id", "run_id", "started", "status")

    def __init__(self, pipeline_id: str, run_id: str, attrs: dict[str, Any]) -> None:
        self.pipeline_id = pipeline_id
        self.run_id = run_id
        status = attrs.get("status")
        self.status = status if isinstance(status, PipelineTaskStatus) else None
        started, completed = attrs.get("started"), attrs.get("completed")
        self.started = started if isinstance(started, datetime) else None
        self.completed = completed if isinstance(completed, datetime) else None


class _Totals:
    __slots__ = ("failure", "last_ran", "runtime", "success", "timed", "total")

    def __init__(self) -> None:
        self.total = 0
        self.success = 0
        self.failure = 0
        self.last_ran: datetime | None = None
        self.runtime = timedelta(0)
        self.timed = 0


class _SnapshotResult(msgspec.Struct, array_like=True):
    id: str
    pipeline_id: str
    run_id: str
    status: str | None
    started: str | None
    completed: str | None


class DigestProjection:
    """Digest items per pipeline id, kept up to date event by event."""

    def __init__(self) -> None:
        self._results: dict[str, _Result] = {}
        self._by_run: dict[str, list[str]] = {}
        self._totals: dict[str, _Totals] = {}

    def apply(self, event: AnyEvent) -> None:
        """Fold one event into the digest."""
        if type(event) is FieldSet:
            result = self._results.get(event.id)
            if result is not None and event.field in ("status", "started", "completed"):
                self._change(result, event.field, decode_value(event.value, event.vtype))
        elif type(event) is ObjectCreated:
            if event.kind == PIPELINE_RESULT:
                attrs = decode_attrs(event.attrs, event.types)
                pipeline_id = attrs.get("pipeline_id")
                self._add(event.id, _Result(str(pipeline_id), event.run_id, attrs))
        elif type(event) is RunRemoved:
            for result_id in self._by_run.pop(event.run_id, ()):
                self._discard(self._results.pop(result_id))

    def apply_all(self, events: Iterable[AnyEvent]) -> None:
        """Fold events in log order."""
        for event in events:
            self.apply(event)

    def _add(self, result_id: str, result: _Result) -> None:
        self._results[result_id] = result
        self._by_run.setdefault(result.run_id, []).append(result_id)
        totals = self._totals.setdefault(result.pipeline_id, _Totals())
        totals.total += 1
        self._count(totals, result, 1)
        if result.started is not None and (
            totals.last_ran is None or result.started > totals.last_ran
        ):
            totals.last_ran = result.started

    def _discard(self, result: _Result) -> None:
        totals = self._totals[result.pipeline_id]
        totals.total -= 1
        self._count(totals, result, -1)
        if totals.total == 0:
            del self._totals[result.pipeline_id]
        elif result.started is not None and result.started == totals.last_ran:
            totals.last_ran = self._latest_start(result.pipeline_id)

    def _latest_start(self, pipeline_id: str) -> datetime | None:
        return max(
            (
                r.started
                for r in self._results.values()
                if r.pipeline_id == pipeline_id and r.started is not None
            ),
            default=None,
        )

    def _change(self, result: _Result, field: str, value: Any) -> None:
        totals = self._totals[result.pipeline_id]
        old = getattr(result, field)
        self._count(totals, result, -1)
        setattr(result, field, value)
        self._count(totals, result, 1)
        if field != "started":
            return
        if value is not None and (totals.last_ran is None or value > totals.last_ran):
            totals.last_ran = value
        elif old is not None and old == totals.last_ran:
            # The latest start moved back (or was cleared): find the latest one left.
            totals.last_ran = self._latest_start(result.pipeline_id)

    @staticmethod
    def _count(totals: _Totals, result: _Result, sign: int) -> None:
        if result.status in _SUCCESS:
            totals.success += sign
        elif result.status in _FAILED:
            totals.failure += sign
        if result.started is not None and result.completed is not None:
            totals.runtime += (result.completed - result.started) * sign
            totals.timed += sign

    def digest(self) -> PipelineDigest:
        """The digest: one item per pipeline id."""
        return {
            pipeline_id: PipelineDigestItem(
                total_runs=t.total,
                total_success=t.success,
                total_failure=t.failure,
                last_ran=t.last_ran,
                average_runtime=t.runtime.total_seconds() / t.timed if t.timed else None,
            )
            for pipeline_id, t in self._totals.items()
        }

    def snapshot(self) -> bytes:
        """The state as bytes, for :meth:`restore`."""
        items = [
            _SnapshotResult(
                result_id,
                r.pipeline_id,
                r.run_id,
                None if r.status is None else r.status.value,
                None if r.started is None else r.started.isoformat(),
                None if r.completed is None else r.completed.isoformat(),
            )
            for result_id, r in self._results.items()
        ]
        return msgspec.msgpack.encode(items)

    @classmethod
    def restore(cls, data: bytes) -> DigestProjection:
        """A projection holding the state :meth:`snapshot` wrote."""
        try:
            items = msgspec.msgpack.decode(data, type=list[_SnapshotResult])
            projection = cls()
            for item in items:
                result = _Result(item.pipeline_id, item.run_id, {})
                result.status = None if item.status is None else PipelineTaskStatus(item.status)
                result.started = None if item.started is None else parse_time(item.started)
                result.completed = None if item.completed is None else parse_time(item.completed)
                if item.id in projection._results:
                    raise ValueError(f"pipeline result {item.id} appears twice")
                projection._add(item.id, result)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError) as exc:
            raise SnapshotError(f"digest snapshot is damaged: {exc}") from None
        return projection
