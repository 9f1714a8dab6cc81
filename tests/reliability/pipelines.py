"""Pipelines the runner tests run, importable by worker processes (``tests.reliability.pipelines``).

Tasks write a marker file per task result (its process id) into the directory named by
the run's input data, and fail or die for the (city, item) pairs the input data names.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import msgspec

from pipelines_events.pipeline import Pipeline
from pipelines_events.task import Task


class Plan(msgspec.Struct):
    """The run's input data: where to write markers, what to fail, how long to take."""

    markers: str
    fail: list[list[Any]] = []
    die: list[list[Any]] = []
    sleep: float = 0.0


class Step(Task):
    """Writes a marker; raises for the pairs in ``fail``, exits the process for ``die``."""

    InputType = Plan

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        plan: Plan = cleaned_data
        key = [self.pipeline_object, self.task_object]
        if plan.sleep:
            time.sleep(plan.sleep)
        name = f"{run_id}.{self.pipeline_object}.{self.pipeline_task}.{self.task_object}"
        (Path(plan.markers) / name).write_text(str(os.getpid()))
        if [self.pipeline_task, *key] in plan.die:
            os._exit(3)
        if [self.pipeline_task, *key] in plan.fail:
            raise ValueError(f"cannot do {self.task_object} for {self.pipeline_object}")


class Items(Step):
    """Runs once per item."""

    def get_iterator(self) -> Any:
        return ["a", "b", "c", "d"]


class Cities(Pipeline):
    """Three cities; ``fetch`` per item, ``check`` once, ``store`` per item after ``fetch``."""

    fetch = Items()
    check = Step()
    store = Items()
    ordering = {"store": ["fetch", "check"]}  # noqa: RUF012

    def get_iterator(self) -> Any:
        return ["oslo", "lima", "rome"]


class Single(Pipeline):
    """No iterators: one pipeline result, one task result per task."""

    first = Step()
    second = Step()


class Slow(Pipeline):
    """One task that sleeps (the input data says how long)."""

    wait = Step()
