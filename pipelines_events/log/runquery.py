"""A page of the runs a run index lists: the query (the filters of ``runs``, newest first,
a limit) and the answer (the runs shown and how many matched in all).

Engines answer :meth:`~pipelines_events.log.base.EventLog.run_page` with
:meth:`RunQuery.select` over their summaries, or, like the file log's index, in SQL with
the same meaning; :meth:`RunQuery.matches` is that meaning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import msgspec

from pipelines_events.errors import InvalidValueError
from pipelines_events.events import AnyEvent
from projections.runs import RunsProjection, RunState


class RunSummary(msgspec.Struct, frozen=True):
    """One run as an engine's run index keeps it, updated with every append."""

    run_id: str
    pipeline_id: str
    status: str
    started: str | None
    completed: str | None
    counts: dict[str, int]
    first_seq: int
    last_seq: int
    removed: bool = False


def summary_of(state: RunState) -> RunSummary:
    """The summary of the run ``state`` folds."""
    return RunSummary(
        run_id=state.run_id,
        pipeline_id=state.pipeline_id,
        status=state.status,
        started=state.started,
        completed=state.completed,
        counts=dict(state.counts),
        first_seq=state.first_seq,
        last_seq=state.last_seq,
        removed=state.removed,
    )


def summaries_as_of(
    summaries: Iterable[RunSummary],
    through_seq: int | None,
    run_events: Callable[[str], list[AnyEvent]],
) -> list[RunSummary]:
    """``summaries`` as they stood at the event ``through_seq``: a run changed after it is
    folded again from its events up to it (``run_events`` gives them); one begun after
    it is left out."""
    if through_seq is None:
        return list(summaries)
    found = []
    for summary in summaries:
        if summary.last_seq <= through_seq:
            found.append(summary)
            continue
        runs = RunsProjection()
        for event in run_events(summary.run_id):
            if event.seq > through_seq:
                break
            runs.apply(event)
        state = runs.get(summary.run_id)
        if state is not None:
            found.append(summary_of(state))
    return found


def started_micros(text: object) -> int | None:
    """Microseconds since the epoch of a stored start time (ISO 8601 text; one without an
    offset is read as UTC), or None when there is none or it is not a time."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _micros(moment)


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class RunQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Which runs to list, newest first: those not removed, of ``pipeline_id``, whose status
    is ``status`` (a status name), started in ``[since, until]`` (a run with no start time
    matches no time bound); at most ``limit`` of them (None: all). With ``through_seq``,
    the runs as they stood at that event: begun at or before it, each with its summary
    then (:func:`summaries_as_of`)."""

    pipeline_id: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None
    through_seq: int | None = None

    def __post_init__(self) -> None:
        for name in ("limit", "through_seq"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 0):
                raise InvalidValueError(f"{name} must be a whole number, 0 or more, not {value!r}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, datetime):
                raise InvalidValueError(f"{name} must be a datetime, not {value!r}")

    @property
    def since_micros(self) -> int | None:
        """``since`` in microseconds since the epoch (naive: UTC)."""
        return None if self.since is None else _micros(self.since)

    @property
    def until_micros(self) -> int | None:
        """``until`` in microseconds since the epoch (naive: UTC)."""
        return None if self.until is None else _micros(self.until)

    def matches(self, summary: RunSummary) -> bool:
        """Whether the run of ``summary`` is one this query lists."""
        if summary.removed:
            return False
        if self.through_seq is not None and summary.first_seq > self.through_seq:
            return False
        if self.pipeline_id is not None and summary.pipeline_id != self.pipeline_id:
            return False
        if self.status is not None and summary.status != self.status:
            return False
        if self.since is None and self.until is None:
            return True
        started = started_micros(summary.started)
        if started is None:
            return False
        since, until = self.since_micros, self.until_micros
        return (since is None or started >= since) and (until is None or started <= until)

    def select(self, summaries: Iterable[RunSummary]) -> RunPage:
        """The page of ``summaries`` (any order) this query asks for."""
        found = sorted(
            (summary for summary in summaries if self.matches(summary)),
            key=lambda summary: summary.first_seq,
            reverse=True,
        )
        shown = found if self.limit is None else found[: self.limit]
        return RunPage(runs=shown, total=len(found))


class RunPage(msgspec.Struct, frozen=True):
    """The runs a :class:`RunQuery` lists, newest first (at most its limit), and how many
    runs matched it in all."""

    runs: list[RunSummary]
    total: int


__all__ = [
    "RunPage",
    "RunQuery",
    "RunSummary",
    "started_micros",
    "summaries_as_of",
    "summary_of",
]
