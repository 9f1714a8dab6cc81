"""The storage tests of the digest: per pipeline id, runs, successes, failures and times."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time

from pipelines_events.results.base import (
    PipelineResultsStorage,
)
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing.capabilities import StorageTestCase
from pipelines_events.testing.examples import (
    CANCELLED,
    DONE,
    FAILED,
    RUNNING,
    RUNTIME_ERROR,
    T0,
    _build,
    _single_pipeline,
    _status,
    _tree,
)

__all__ = ["DigestTests"]


class DigestTests(StorageTestCase):
    """The digest counts pipeline results per pipeline id (``supports_digest``)."""

    __test__ = False

    def test_digest_of_an_empty_storage(self, storage: PipelineResultsStorage) -> None:
        digest = self.read_digest(storage)
        if digest is None:
            return  # the refusal is checked
        assert digest == {}

    def test_digest_counts_pending_results(self, storage: PipelineResultsStorage) -> None:
        _build(storage)
        digest = self.read_digest(storage)
        if digest is None:
            return  # the refusal is checked
        item = digest["tests.ExamplePipeline"]
        assert (item.total_runs, item.total_success, item.total_failure) == (2, 0, 0)
        assert item.last_ran is None
        assert item.average_runtime is None

    def test_digest_per_pipeline(self, storage: PipelineResultsStorage) -> None:
        with freeze_time(T0) as frozen:
            # tests.Single, run-1: one result, done in 10 s.
            (_, _, (a1, a2)) = _tree(_build(storage, "run-1", _single_pipeline()))
            a1.report_status_change(None, RUNNING)
            frozen.tick(timedelta(seconds=10))
            a1.report_status_change(None, DONE)
            a2.report_status_change(None, DONE)
            # tests.Single, run-2: one result failing after 20 s, started later.
            frozen.tick(timedelta(seconds=50))
            (_, _, (b1, b2)) = _tree(_build(storage, "run-2", _single_pipeline()))
            b1.report_status_change(None, RUNNING)
            frozen.tick(timedelta(seconds=20))
            b1.report_status_change(None, RUNTIME_ERROR, "boom")
            b2.report_status_change(None, CANCELLED)
            # tests.Single, run-3: one result still running, started last.
            frozen.tick(timedelta(seconds=30))
            (_, _, (c1, _c2)) = _tree(_build(storage, "run-3", _single_pipeline()))
            c1.report_status_change(None, RUNNING)
            # tests.ExamplePipeline, run-4: two results, one done in 4 s, one cancelled.
            frozen.tick(timedelta(seconds=10))
            (results, _, task_results) = _tree(_build(storage, "run-4"))
            for task_result in task_results[:4]:
                task_result.report_status_change(None, RUNNING)
            frozen.tick(timedelta(seconds=4))
            for task_result in task_results[:4]:
                task_result.report_status_change(None, DONE)
            task_results[4].report_status_change(None, CANCELLED)
            for task_result in task_results[5:]:
                task_result.report_status_change(None, DONE)
        assert [_status(storage, r) for r in results] == [DONE, CANCELLED]
        digest = self.read_digest(storage)
        if digest is None:
            return  # the refusal is checked
        assert set(digest) == {"tests.SinglePipeline", "tests.ExamplePipeline"}
        single = digest["tests.SinglePipeline"]
        assert (single.total_runs, single.total_success, single.total_failure) == (3, 1, 1)
        assert single.last_ran == T0 + timedelta(seconds=110)
        assert single.average_runtime == 15.0
        example = digest["tests.ExamplePipeline"]
        # A cancelled pipeline result is a failure, as in the original.
        assert (example.total_runs, example.total_success, example.total_failure) == (2, 1, 1)
        assert example.last_ran == T0 + timedelta(seconds=120)
        assert example.average_runtime == 4.0

    @pytest.mark.parametrize("failure", FAILED, ids=lambda s: s.name)
    def test_digest_counts_every_failed_status_cancelled_included(
        self, storage: PipelineResultsStorage, failure: PipelineTaskStatus
    ) -> None:
        (results, _, _) = _tree(_build(storage, pipeline=_single_pipeline()))
        results[0].report_status_change(None, failure, propagate=False)
        digest = self.read_digest(storage)
        if digest is None:
            return  # the refusal is checked
        item = digest["tests.SinglePipeline"]
        assert (item.total_runs, item.total_success, item.total_failure) == (1, 0, 1)

    def test_digest_follows_set_calls(self, storage: PipelineResultsStorage) -> None:
        (results, _, _) = _tree(_build(storage, pipeline=_single_pipeline()))
        result = results[0]
        result.set_started(T0 + timedelta(hours=1))
        result.set_completed(T0 + timedelta(hours=1, seconds=8))
        result.set_status(DONE)
        digest = self.read_digest(storage)
        if digest is None:
            return  # the refusal is checked
        item = digest["tests.SinglePipeline"]
        assert (item.total_success, item.total_failure) == (1, 0)
        assert item.last_ran == T0 + timedelta(hours=1)
        assert item.average_runtime == 8.0
        result.set_started(T0)
        result.set_completed(T0 + timedelta(seconds=2))
        item = storage.get_pipeline_digest()["tests.SinglePipeline"]
        assert item.last_ran == T0
        assert item.average_runtime == 2.0
