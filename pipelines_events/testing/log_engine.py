"""The log engine tests of its identity, its snapshot store and its run index."""

from __future__ import annotations

import pytest

from pipelines_events.events import (
    PIPELINE_EXECUTION,
    TASK_RESULT,
    FieldSet,
    ObjectCreated,
    RunRemoved,
)
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
