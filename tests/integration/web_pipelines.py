"""Pipelines the web page's tests run in other processes: tasks that take some time, so a
run is seen while it runs and its timeline has width."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import msgspec

from pipelines_events.pipeline import Pipeline
from pipelines_events.task import Task


class Pause(msgspec.Struct, forbid_unknown_fields=True):
    """How long each task result takes, in seconds."""

    seconds: float = 0.05


class Fetch(Task):
    InputType = Pause

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        time.sleep(cleaned_data.seconds)


class Clean(Task):
    """Fails for Lima's rainfall."""

    InputType = Pause

    def get_iterator(self) -> Any:
        return ["temperature", "rainfall"]

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        time.sleep(cleaned_data.seconds)
        if self.pipeline_object == "lima" and self.task_object == "rainfall":
            raise ValueError("lima rainfall reading 1: 'n/a' is not a number")  # <b>not bold</b>


class Summarise(Task):
    InputType = Pause

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        time.sleep(cleaned_data.seconds * 2)


class Weather(Pipeline):
    """Fetch, clean and summarise three cities; Lima's clean fails."""

    fetch = Fetch()
    clean = Clean()
    summarise = Summarise()
    ordering: ClassVar[dict[str, list[str]]] = {"summarise": ["clean"], "clean": ["fetch"]}

    def get_iterator(self) -> Any:
        return ["oslo", "lima", "cairo"]


class Calm(Pipeline):
    """One city, nothing fails."""

    fetch = Fetch()
    summarise = Summarise()
    ordering: ClassVar[dict[str, list[str]]] = {"summarise": ["fetch"]}

    def get_iterator(self) -> Any:
        return ["oslo"]
