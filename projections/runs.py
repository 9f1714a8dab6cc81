"""Run summaries: one small record per run, folded from its events (for run indexes).

An engine that keeps a run index (a table beside the events, an index file) folds every
appended batch with :class:`RunsProjection` and stores the summaries it changed, so that
listing runs never needs the whole history.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipelines_events.events import (
    KINDS,
    PIPELINE_EXECUTION,
    AnyEvent,
    FieldSet,
    ObjectCreated,
    RunRemoved,
)

_SUMMARY_FIELDS = frozenset({"status", "started", "completed"})


class RunState:
    """The summary of one run: what ``runs`` lists and filters on."""

    __slots__ = (
        "completed",
        "counts",
        "execution_id",
        "first_seq",
        "last_seq",
        "pipeline_id",
        "removed",
        "run_id",
        "started",
        "status",
    )

    def __init__(self, run_id: str, first_seq: int) -> None:
        self.run_id = run_id
        self.execution_id = ""
        self.pipeline_id = ""
        self.status = ""
        self.started: str | None = None
        self.completed: str | None = None
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.first_seq = first_seq
        self.last_seq = first_seq
        self.removed = False

    def as_dict(self) -> dict[str, object]:
        """The summary as plain values (for a table row or an index entry)."""
        return {name: getattr(self, name) for name in self.__slots__}


class RunsProjection:
    """Folds events into one :class:`RunState` per run id.

    Values are kept as the log has them (statuses and timestamps as text). A removed
    run keeps its summary with ``removed`` set; a run built again after its removal
    starts a new summary.
    """

    def __init__(self) -> None:
        self._runs: dict[str, RunState] = {}

    def apply(self, event: AnyEvent) -> RunState:
        """Fold one event; returns the summary it changed."""
        run_id = event.run_id
        state = self._runs.get(run_id)
        # The event types are final: a type test, not isinstance; most events set a field.
        if type(event) is FieldSet:
            if state is None:
                state = self._runs[run_id] = RunState(run_id, event.seq)
            state.last_seq = event.seq
            field = event.field
            if field in _SUMMARY_FIELDS and event.id == state.execution_id:
                value = None if event.value is None else str(event.value)
                if field == "status":
                    state.status = value or ""
                elif field == "started":
                    state.started = value
                else:
                    state.completed = value
            return state
        if type(event) is ObjectCreated and event.kind == PIPELINE_EXECUTION:
            if state is None or state.removed:
                state = self._runs[run_id] = RunState(run_id, event.seq)
            state.execution_id = event.id
            state.pipeline_id = str(event.attrs.get("pipeline_id", ""))
            state.status = str(event.attrs.get("status", ""))
        elif state is None:
            state = self._runs[run_id] = RunState(run_id, event.seq)
        state.last_seq = event.seq
        if type(event) is ObjectCreated:
            state.counts[event.kind] = state.counts.get(event.kind, 0) + 1
        elif type(event) is RunRemoved:
            state.removed = True
        return state

    def apply_all(self, events: Iterable[AnyEvent]) -> set[str]:
        """Fold ``events``; returns the run ids whose summaries changed."""
        apply = self.apply
        return {apply(event).run_id for event in events}

    def restore(self, states: Iterable[RunState]) -> None:
        """Continue from summaries kept elsewhere (a run index's rows): each replaces the
        summary of its run id."""
        for state in states:
            self._runs[state.run_id] = state

    def get(self, run_id: str) -> RunState | None:
        """The summary of ``run_id``, or None."""
        return self._runs.get(run_id)

    def runs(self) -> list[RunState]:
        """Every summary, in the order the runs began."""
        return sorted(self._runs.values(), key=lambda state: state.first_seq)
