"""Pipelines the Celery runner's tests run on real workers (imported there by id)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from pipelines_events import Pipeline, Task
from pipelines_events.results.helpers import get_task_results
from pipelines_events.status import PipelineTaskStatus


class Options(msgspec.Struct):
    """Input data: which item fails, where the slow item leaves its marker."""

    fail: str | None = None
    marker_dir: str | None = None
    pause: float = 0.0


class Fetch(Task):
    """Three items per pipeline object."""

    InputType = Options

    def get_iterator(self) -> Any:
        return [1, 2, 3]

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        time.sleep(cleaned_data.pause)


class Clean(Task):
    """Three items; raises for ``"<pipeline object>/<item>"`` named by ``fail``, once
    the other items of its pipeline object have started (so that, as with the eager
    runner, none of them is left to be cancelled: the failing item is the last)."""

    InputType = Options

    def get_iterator(self) -> Any:
        return [1, 2, 3]

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        time.sleep(cleaned_data.pause)
        if cleaned_data.fail == f"{self.pipeline_object}/{self.task_object}":
            _wait_for_siblings(run_id, self.pipeline_object, self.task_object)
            raise ValueError(f"item {self.task_object} of {self.pipeline_object} is dirty")


def _wait_for_siblings(run_id: str, pipeline_object: Any, task_object: Any) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pending = [
            result
            for result in get_task_results(run_id=run_id)
            if result.get_pipeline_task() == "clean"
            and result.get_serializable_pipeline_object() == pipeline_object
            and result.get_serializable_task_object() != task_object
            and result.get_status() is PipelineTaskStatus.PENDING
        ]
        if not pending:
            return
        time.sleep(0.01)


class Summarise(Task):
    """Once per pipeline object."""

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        return None


class Cities(Pipeline):
    """Two pipeline objects; fetch, then clean (``parents``), then summarise
    (``ordering``)."""

    fetch = Fetch()
    clean = Clean(config={"parents": ["fetch"]})
    summarise = Summarise()
    ordering: ClassVar[dict[str, list[str]]] = {"summarise": ["clean"]}

    def get_iterator(self) -> Any:
        return ["oslo", "lima"]


class Slow(Task):
    """Item 2's first attempt writes its pid to ``marker_dir/slow-<pid>`` and sleeps
    (for the test to kill it); every later attempt and the other items end at once."""

    InputType = Options

    def get_iterator(self) -> Any:
        return [1, 2, 3]

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        if self.task_object != 2 or cleaned_data.marker_dir is None:
            return
        directory = Path(cleaned_data.marker_dir)
        if any(directory.glob("slow-*")):
            return
        (directory / f"slow-{os.getpid()}").write_text("started", encoding="utf-8")
        time.sleep(60)


class Killed(Pipeline):
    """One slow task, then one quick one."""

    slow = Slow()
    after = Summarise()


class Pause(Task):
    """Sleeps ``pause`` seconds."""

    InputType = Options

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        time.sleep(cleaned_data.pause)


class Once(Pipeline):
    """One task result that takes ``pause`` seconds."""

    only = Pause()


class Routed(Pipeline):
    """A task on the default queue, then one whose messages go to queue ``special``."""

    anywhere = Fetch()
    special = Fetch(config={"celery_queue": "special"})


class Many(Pipeline):
    """``n`` task results of a task that does nothing (for the benchmark)."""

    work = Summarise()


class BadQueue(Pipeline):
    """A task whose ``celery_queue`` is not a queue name, then another."""

    bad = Summarise(config={"celery_queue": 5})
    second = Summarise()


class Stranded(Pipeline):
    """A task whose messages go to queue ``nowhere`` (no worker consumes it), then
    another."""

    first = Summarise(config={"celery_queue": "nowhere"})
    then = Summarise()


class Probe(Task):
    """Four items; each fails if its ``task_object`` changes while it runs."""

    def get_iterator(self) -> Any:
        return [1, 2, 3, 4]

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        seen = self.task_object
        time.sleep(0.3)
        if self.task_object != seen:
            raise RuntimeError(f"task_object changed from {seen} to {self.task_object}")


class Threads(Pipeline):
    """One task whose task results notice another one sharing their task."""

    probe = Probe()
