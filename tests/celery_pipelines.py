"""Pipelines the Celery runner's tests run on real workers (imported there by id)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from pipelines_events import Pipeline, Task


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
    """Three items; raises for ``"<pipeline object>/<item>"`` named by ``fail``."""

    InputType = Options

    def get_iterator(self) -> Any:
        return [1, 2, 3]

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        time.sleep(cleaned_data.pause)
        if cleaned_data.fail == f"{self.pipeline_object}/{self.task_object}":
            raise ValueError(f"item {self.task_object} of {self.pipeline_object} is dirty")


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
