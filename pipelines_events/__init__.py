"""pipelines-events: the results storage of a pipeline framework, as an event-sourced log.

``Pipeline`` and ``Task`` are imported on first use, so importing a lower layer (the
statuses, events or the log) does not import the runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pipelines_events.pipeline import Pipeline
    from pipelines_events.task import Task

__all__ = ["Pipeline", "Task", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Pipeline":
        from pipelines_events.pipeline import Pipeline

        return Pipeline
    if name == "Task":
        from pipelines_events.task import Task

        return Task
    raise AttributeError(f"module 'pipelines_events' has no attribute {name!r}")
