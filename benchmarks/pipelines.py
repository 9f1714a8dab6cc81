"""The pipeline the benchmarks run: two tasks, ``extract`` then ``load``, each with a task
iterator of ``items`` objects (its config), doing no work of their own."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from pipelines_events.pipeline import Pipeline
from pipelines_events.reporters import PipelineReporter
from pipelines_events.results.base import PipelineStorageObject
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.task import Task


class ItemsConfig(msgspec.Struct, forbid_unknown_fields=True):
    """How many objects a task's iterator yields."""

    items: int = 1


class ExtractTask(Task):
    """Yields ``items`` objects; does nothing with them."""

    ConfigType = ItemsConfig

    def get_iterator(self) -> Any:
        return range(self.get_config().items)

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        return None


class LoadTask(ExtractTask):
    """Runs after ``extract``; does nothing either."""


class QuietReporter(PipelineReporter):
    """Hears every status change and keeps none (no logging cost in the timings)."""

    def report_context_object(
        self, context_object: PipelineStorageObject, status: PipelineTaskStatus, message: str
    ) -> None:
        return None  # not even the object's description is built

    def report(
        self, context_object: PipelineStorageObject, status: PipelineTaskStatus, message: str
    ) -> None:
        return None


def benchmark_pipeline(task_results: int) -> type[Pipeline]:
    """A pipeline class whose run has ``task_results`` task results in all."""
    half = max(1, task_results // 2)

    class BenchmarkPipeline(Pipeline):
        pipeline_id = "benchmarks.pipelines.BenchmarkPipeline"
        extract = ExtractTask(config={"items": half})
        load = LoadTask(config={"items": task_results - half})
        ordering: ClassVar[dict[str, list[str]]] = {"load": ["extract"]}

    return BenchmarkPipeline
