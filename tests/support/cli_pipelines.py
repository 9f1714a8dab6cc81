"""Pipelines the command-line tests run by dotted path (``tests.support.cli_pipelines.Letters``)."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from pipelines_events import Pipeline, Task


class Options(msgspec.Struct, forbid_unknown_fields=True):
    """The input data :class:`Letters` accepts."""

    fail_on: str | None = None


class Numbered(Task):
    """Runs once per number; raises for the pipeline object named by ``fail_on``."""

    InputType = Options

    def get_iterator(self) -> Any:
        return [1, 2]

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        if cleaned_data.fail_on == self.pipeline_object and self.task_object == 2:
            raise RuntimeError(f"{self.pipeline_object} {self.task_object} refused")


class Closing(Task):
    """Runs once (no task iterator)."""

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        return None


class Letters(Pipeline):
    """Two pipeline objects, two tasks: three task results per object."""

    closing = Closing()
    numbered = Numbered()
    ordering: ClassVar[dict[str, list[str]]] = {"closing": ["numbered"]}

    def get_iterator(self) -> Any:
        return ["a", "b"]


class Single(Pipeline):
    """No pipeline iterator, one task."""

    pipeline_id = "single"
    only = Closing()


class BrokenIterator(Pipeline):
    """Its iterator raises while the run is being built."""

    only = Closing()

    def get_iterator(self) -> Any:
        raise OSError("the source is offline")


class NotAPipeline:
    """A class that is not a Pipeline."""


def not_a_class() -> None:
    """A function, not a class."""


HOSTILE = "x[/bold][red]\x1b]0;pwned\x07\x1b[2J\r\b\x9b\u202e\x00"
"""Rich markup, an OSC title change, an ESC sequence, CR, BS, a C1 CSI, a bidi override, NUL."""


class Shouting(Task):
    """Fails for the second task object, with :data:`HOSTILE` in its message."""

    def get_iterator(self) -> Any:
        return [f"[i]one{HOSTILE}", f"[i]two{HOSTILE}"]

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        if self.task_object.startswith("[i]two"):
            raise RuntimeError(f"boom {HOSTILE}")


class Hostile(Pipeline):
    """Markup and control characters in its id, its pipeline objects and its messages."""

    pipeline_id = f"evil{HOSTILE}"
    shouting = Shouting()

    def get_iterator(self) -> Any:
        return [f"[bold]lima{HOSTILE}"]


class Nap(Task):
    """Sleeps a long time on its first object (a run to interrupt or kill)."""

    def get_iterator(self) -> Any:
        return [1, 2]

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        if self.task_object == 1:
            import time

            time.sleep(60)


class Sleepy(Pipeline):
    """Two pipeline objects; the first task result of the first sleeps for a minute."""

    nap = Nap()

    def get_iterator(self) -> Any:
        return ["first", "second"]
