"""The log engine tests of its identity, its snapshot store and its run index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from pipelines_events.events import (
    PIPELINE_EXECUTION,
    TASK_RESULT,
    AnyEvent,
    FieldSet,
    ObjectCreated,
    RunRemoved,
)
from pipelines_events.log.base import EventLog
from pipelines_events.log.runquery import RunQuery, summaries_as_of
from pipelines_events.testing.log_support import (
    LogTestCase,
    draft,
)

__all__ = ["LogEngineTests"]


class LogEngineTests(LogTestCase):
    """The members naming the log, the snapshot store and the run index."""

    __test__ = False

    # -- identity, durability and snapshots ----------------------------------------------

    def test_identity_members(self) -> None:
        log = self.new_log(durability="none")
        assert log.durability == "none"
        assert isinstance(log.location, str) and log.location
        assert log.lock.acquire(timeout=1)
        log.lock.release()
        log.append([draft("a", 0)])
        log.commit()

    def test_the_snapshot_store_keeps_bytes(self) -> None:
        log = self.new_log()
        log.append([draft("a", 0)])
        store = log.snapshots
        assert store.load() is None
        store.save(b"\x00snapshot body\xff")
        assert store.load() == b"\x00snapshot body\xff"
        assert self.open_again(log).snapshots.load() == b"\x00snapshot body\xff"
        store.save(b"newer")
        assert store.load() == b"newer"
        assert isinstance(store.location, str) and store.location

    # -- the run index -------------------------------------------------------------------

    def test_the_run_index(self) -> None:
        log = self.new_log()
        log.append(
            [
                ObjectCreated(
                    run_id="r1",
                    kind=PIPELINE_EXECUTION,
                    id="e1",
                    attrs={"pipeline_id": "p", "status": "PENDING"},
                ),
                ObjectCreated(run_id="r1", kind=TASK_RESULT, id="t1", parent_id="e1"),
            ]
        )
        log.append(
            [
                ObjectCreated(
                    run_id="r2", kind=PIPELINE_EXECUTION, id="e2", attrs={"status": "PENDING"}
                )
            ]
        )
        log.append(
            [
                FieldSet(
                    run_id="r1", kind=PIPELINE_EXECUTION, id="e1", field="status", value="DONE"
                ),
                FieldSet(
                    run_id="r1",
                    kind=PIPELINE_EXECUTION,
                    id="e1",
                    field="completed",
                    value="2026-01-01T00:00:00+00:00",
                ),
            ]
        )
        log.append([RunRemoved(run_id="r2", kind=PIPELINE_EXECUTION, id="e2")])
        if not log.supports_run_index:
            with pytest.raises(NotImplementedError, match="no run index"):
                log.run_summaries()
            return
        summaries = {summary.run_id: summary for summary in log.run_summaries()}
        assert [s.run_id for s in log.run_summaries()] == ["r1", "r2"]
        first = summaries["r1"]
        assert (first.pipeline_id, first.status, first.completed) == (
            "p",
            "DONE",
            "2026-01-01T00:00:00+00:00",
        )
        assert first.counts[TASK_RESULT] == 1 and first.counts[PIPELINE_EXECUTION] == 1
        assert (first.first_seq, first.last_seq) == (1, 5)
        assert summaries["r2"].removed and not first.removed
        assert [e.seq for e in log.run_events("r1")] == [1, 2, 4, 5]
        assert [e.seq for e in log.run_events("r2")] == [3, 6]
        assert log.run_events("nope") == []
        assert (log.run_of("t1"), log.run_of("e2"), log.run_of("nope")) == ("r1", "r2", None)
        other = self.open_again(log)
        other.append([ObjectCreated(run_id="r3", kind=PIPELINE_EXECUTION, id="e3")])
        assert log.run_of("e3") == "r3"

    # -- pages of the run index ------------------------------------------------------------

    def _paged_runs(self) -> EventLog:
        """A log of six runs: pipelines a and b, three statuses, start times with and without
        an offset, one missing, one not a time, and run r4 removed."""
        log = self.new_log()
        starts: list[object] = [
            "2026-01-01T10:00:00+00:00",
            "2026-01-02T10:00:00+02:00",  # 08:00 UTC
            None,
            "2026-01-03T10:00:00",  # no offset: read as UTC
            "not a time",
            "2026-01-04T00:00:00.5+00:00",
        ]
        statuses = ["DONE", "FAILED", "DONE", "RUNNING", "DONE", "DONE"]
        for number, (start, status) in enumerate(zip(starts, statuses, strict=True), 1):
            run_id, execution = f"r{number}", f"e{number}"
            pipeline = "a" if number % 2 else "b"
            events: list[AnyEvent] = [
                ObjectCreated(
                    run_id=run_id,
                    kind=PIPELINE_EXECUTION,
                    id=execution,
                    attrs={"pipeline_id": pipeline, "status": "PENDING"},
                ),
                FieldSet(
                    run_id=run_id,
                    kind=PIPELINE_EXECUTION,
                    id=execution,
                    field="status",
                    value=status,
                ),
            ]
            if start is not None:
                events.append(
                    FieldSet(
                        run_id=run_id,
                        kind=PIPELINE_EXECUTION,
                        id=execution,
                        field="started",
                        value=start,
                    )
                )
            log.append(events)
        log.append([RunRemoved(run_id="r4", kind=PIPELINE_EXECUTION, id="e4")])
        return log

    def _page(self, log: EventLog, **query: Any) -> tuple[list[str], int]:
        page = log.run_page(RunQuery(**query))
        summaries = summaries_as_of(log.run_summaries(), query.get("through_seq"), log.run_events)
        assert page == RunQuery(**query).select(summaries)
        return [summary.run_id for summary in page.runs], page.total

    def test_run_index_stored(self) -> None:
        log = self._paged_runs()
        # A writer's index is what readers use instead of the events: verify compares it.
        assert log.run_index_stored() is log.supports_run_index

    def test_run_pages(self) -> None:
        log = self._paged_runs()
        if not log.supports_run_index:
            with pytest.raises(NotImplementedError, match="no run index"):
                log.run_page(RunQuery())
            return
        utc = UTC
        assert self._page(log) == (["r6", "r5", "r3", "r2", "r1"], 5)
        assert self._page(log, limit=2) == (["r6", "r5"], 5)
        assert self._page(log, limit=0) == ([], 5)
        assert self._page(log, pipeline_id="a") == (["r5", "r3", "r1"], 3)
        assert self._page(log, pipeline_id="a", status="DONE", limit=1) == (["r5"], 3)
        assert self._page(log, status="FAILED") == (["r2"], 1)
        assert self._page(log, pipeline_id="nope") == ([], 0)
        # Time bounds are inclusive and compare instants; runs with no time never match.
        since = datetime(2026, 1, 2, 8, 0, tzinfo=utc)
        assert self._page(log, since=since) == (["r6", "r2"], 2)
        assert self._page(log, until=since) == (["r2", "r1"], 2)
        assert self._page(log, since=datetime(2026, 1, 1, 10, 0)) == (["r6", "r2", "r1"], 3)
        plus_two = timezone(timedelta(hours=2))
        assert self._page(log, until=datetime(2026, 1, 1, 12, 0, tzinfo=plus_two)) == (["r1"], 1)
        assert self._page(log, since=datetime(2026, 1, 4, 0, 0, 0, 500_001, tzinfo=utc)) == ([], 0)
        assert self._page(log, through_seq=5) == (["r2", "r1"], 2)
        assert self._page(log, through_seq=0) == ([], 0)
        # What another handle appended is in the next page.
        other = self.open_again(log)
        other.append(
            [
                ObjectCreated(
                    run_id="r7",
                    kind=PIPELINE_EXECUTION,
                    id="e7",
                    attrs={"pipeline_id": "a", "status": "DONE"},
                ),
            ]
        )
        other.append(
            [
                FieldSet(
                    run_id="r1", kind=PIPELINE_EXECUTION, id="e1", field="status", value="FAILED"
                )
            ]
        )
        assert self._page(log, pipeline_id="a", limit=2) == (["r7", "r5"], 4)
        assert self._page(log, status="FAILED") == (["r2", "r1"], 2)

    def test_run_pages_as_of_a_seq(self) -> None:
        log = self._paged_runs()
        if not log.supports_run_index:
            return
        through = log.head().seq
        other = self.open_again(log)
        other.append(
            [
                FieldSet(
                    run_id="r1", kind=PIPELINE_EXECUTION, id="e1", field="status", value="FAILED"
                ),
                FieldSet(
                    run_id="r2", kind=PIPELINE_EXECUTION, id="e2", field="status", value="DONE"
                ),
            ]
        )
        other.append([RunRemoved(run_id="r3", kind=PIPELINE_EXECUTION, id="e3")])
        # Each run as it stood at ``through``, whatever came after it.
        assert self._page(log, status="FAILED", through_seq=through) == (["r2"], 1)
        assert self._page(log, status="DONE", through_seq=through) == (["r6", "r5", "r3", "r1"], 4)
        page = log.run_page(RunQuery(through_seq=through, limit=1, pipeline_id="a"))
        assert [(run.run_id, run.status) for run in page.runs] == [("r5", "DONE")]
        assert page.total == 3
        summary = {run.run_id: run for run in log.run_page(RunQuery(through_seq=through)).runs}
        assert (summary["r1"].status, summary["r1"].last_seq) == ("DONE", 3)
        # Now: the new statuses, and r3 removed.
        assert self._page(log, status="FAILED") == (["r1"], 1)
        assert self._page(log, status="DONE") == (["r6", "r5", "r2"], 3)
