"""The storage interface of the seed: where result objects live."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pipelines_events.errors import InvalidValueError
from pipelines_events.results.checks import not_implemented
from pipelines_events.results.objects import (
    PipelineExecution,
    PipelineResult,
    TaskExecution,
    TaskResult,
)
from pipelines_events.results.planning import BuildablePipeline
from pipelines_events.status import PipelineTaskStatus
from projections.digest import PipelineDigest, PipelineDigestItem

__all__ = ["PipelineResultsStorage"]


class PipelineResultsStorage:
    """Where result objects live. Subclass it to write a custom storage.

    A storage may implement only the methods it is used for (a read-only dashboard
    storage, say): the others raise :class:`NotImplementedError` naming the class and
    the method.

    Queries return objects oldest first; the ``get_x(_id)`` lookups return None for an
    id that does not exist.
    """

    def build_pipeline_execution(
        self,
        pipeline: BuildablePipeline,
        run_id: str,
        runner: object,
        reporter: object,
        input_data: Any,
        build_all: bool = True,
    ) -> PipelineExecution:
        """Create the execution of a run and, with ``build_all``, every object below it.

        Without ``build_all`` only the execution is created (to record a config error).
        """
        raise not_implemented(self, "build_pipeline_execution")

    def get_pipeline_digest(self) -> PipelineDigest:
        """Per pipeline id: runs, successes, failures, last ran, average runtime.

        By default built from :meth:`get_pipeline_results` (so a storage that answers the
        queries has a digest); a storage that keeps a digest of its own overrides it.
        """
        grouped: dict[str, list[PipelineResult]] = {}
        for result in self.get_pipeline_results():
            grouped.setdefault(result.get_pipeline_id(), []).append(result)
        return {pipeline_id: _digest_item(results) for pipeline_id, results in grouped.items()}

    def get_pipeline_executions(
        self, pipeline_id: str | None = None
    ) -> Sequence[PipelineExecution]:
        """Executions, optionally of one pipeline."""
        raise not_implemented(self, "get_pipeline_executions")

    def get_pipeline_execution(self, run_id: str) -> PipelineExecution | None:
        """The execution of run ``run_id``."""
        raise not_implemented(self, "get_pipeline_execution")

    def get_pipeline_results(
        self, run_id: str | None = None, pipeline_id: str | None = None
    ) -> Sequence[PipelineResult]:
        """Pipeline results, optionally of one run or one pipeline."""
        raise not_implemented(self, "get_pipeline_results")

    def get_pipeline_result(self, _id: str) -> PipelineResult | None:
        """The pipeline result with id ``_id``."""
        raise not_implemented(self, "get_pipeline_result")

    def get_task_executions(
        self, run_id: str | None = None, pipeline_result_id: str | None = None
    ) -> Sequence[TaskExecution]:
        """Task executions, optionally of one run or one pipeline result."""
        raise not_implemented(self, "get_task_executions")

    def get_task_execution(self, _id: str) -> TaskExecution | None:
        """The task execution with id ``_id``."""
        raise not_implemented(self, "get_task_execution")

    def get_task_results(
        self,
        run_id: str | None = None,
        pipeline_result_id: str | None = None,
        task_execution_id: str | None = None,
    ) -> Sequence[TaskResult]:
        """Task results, optionally of one run, pipeline result or task execution."""
        raise not_implemented(self, "get_task_results")

    def get_task_result(self, _id: str) -> TaskResult | None:
        """The task result with id ``_id``."""
        raise not_implemented(self, "get_task_result")

    def cleanup(self, before: datetime | None = None) -> list[str]:
        """Remove finished runs (completed before ``before`` when given); returns their ids.

        Runs that are still PENDING or RUNNING are never removed. Checks ``before`` (an
        aware datetime or None: :class:`InvalidValueError` otherwise, nothing removed),
        then calls :meth:`_cleanup`, which a storage implements.
        """
        if before is not None and (not isinstance(before, datetime) or before.utcoffset() is None):
            raise InvalidValueError(f"before: give an aware datetime or None, not {before!r}")
        return self._cleanup(before)

    def _cleanup(self, before: datetime | None) -> list[str]:
        """What :meth:`cleanup` does once ``before`` is checked."""
        raise not_implemented(self, "cleanup")

    def close(self) -> None:
        """Release what the storage holds open (nothing, unless a subclass holds files)."""


def _digest_item(results: list[PipelineResult]) -> PipelineDigestItem:
    """How ``results`` (the pipeline results of one pipeline id) fared."""
    statuses = [r.get_status() for r in results]
    starts = [s for s in (r.get_started() for r in results) if s is not None]
    runtimes = [
        (completed - started).total_seconds()
        for started, completed in ((r.get_started(), r.get_completed()) for r in results)
        if started is not None and completed is not None
    ]
    return PipelineDigestItem(
        total_runs=len(results),
        total_success=sum(s in PipelineTaskStatus.success_statuses() for s in statuses),
        total_failure=sum(s in PipelineTaskStatus.failed_statuses() for s in statuses),
        last_ran=max(starts, default=None),
        average_runtime=sum(runtimes) / len(runtimes) if runtimes else None,
    )
