"""A tiny buildable pipeline and a storage-independent picture of a storage's state."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines_events.events import AnyEvent, FieldSet
from pipelines_events.log import read_events
from pipelines_events.results.base import (
    PipelineResultsStorage,
    PipelineStorageObject,
)

EXTRA_FIELDS = ("payload", "note", "count", "data")
"""Fields the reliability tests ``set_``; :func:`snapshot` reads them on every object."""

MISSING = "<missing>"


@dataclass
class TinyTask:
    """A task as ``build_pipeline_execution`` needs it (``BuildableTask``)."""

    pipeline_task: str
    objects: list[Any] | None = None
    task_id: str = ""

    def __post_init__(self) -> None:
        self.task_id = self.task_id or f"tests.reliability.{self.pipeline_task}"

    def get_serializable_config(self) -> Any:
        return {"name": self.pipeline_task}

    def get_iterator(self) -> Any:
        return self.objects

    def get_serializable_task_object(self, obj: Any) -> Any:
        return obj


@dataclass
class TinyPipeline:
    """A pipeline as ``build_pipeline_execution`` needs it (``BuildablePipeline``)."""

    pipeline_id: str = "tiny"
    objects: list[Any] | None = None
    tasks: list[TinyTask] = field(default_factory=lambda: [TinyTask("first")])

    def get_id(self) -> str:
        return self.pipeline_id

    def get_iterator(self) -> Any:
        return self.objects

    def get_serializable_pipeline_object(self, obj: Any) -> Any:
        return obj

    def get_build_tasks(self) -> Sequence[TinyTask]:
        return self.tasks


class Runner:
    """Stands for the runner recorded on an execution."""


class Reporter:
    """Stands for the reporter recorded on an execution."""


def build(
    storage: PipelineResultsStorage, run_id: str, pipeline: TinyPipeline | None = None
) -> PipelineStorageObject:
    """Build run ``run_id`` of ``pipeline`` (a one-result, one-task pipeline by default)."""
    return storage.build_pipeline_execution(
        pipeline or TinyPipeline(), run_id, Runner(), Reporter(), {"run": run_id}
    )


def describe(obj: PipelineStorageObject, fields: Sequence[str] = EXTRA_FIELDS) -> dict[str, Any]:
    """Everything the public API tells about ``obj`` and the objects below it (no ids)."""
    out: dict[str, Any] = {
        "kind": obj.kind,
        "run_id": obj.get_run_id(),
        "pipeline_id": obj.get_pipeline_id(),
        "task_id": obj.get_task_id(),
        "status": obj.get_status().name,
        "started": obj.get_started(),
        "completed": obj.get_completed(),
        "message": obj.get_message(),
    }
    for name in fields:
        try:
            out[name] = getattr(obj, f"get_{name}")()
        except AttributeError:
            out[name] = MISSING
    out["children"] = [describe(child, fields) for child in obj.get_children()]
    return out


def snapshot(storage: PipelineResultsStorage) -> dict[str, Any]:
    """The state of every run and the digest, comparable across storages."""
    digest = storage.get_pipeline_digest()
    return {
        "runs": [describe(execution) for execution in storage.get_pipeline_executions()],
        "digest": {
            pipeline_id: (
                item.total_runs,
                item.total_success,
                item.total_failure,
                item.last_ran,
                item.average_runtime,
            )
            for pipeline_id, item in sorted(digest.items())
        },
    }


def all_events(path: str | os.PathLike[str]) -> list[AnyEvent]:
    """Every event of the log at ``path``, verified (hash chain, seq, batches) by reading."""
    events = list(read_events(path))
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    return events


def payload_counts(events: list[AnyEvent], field_name: str = "payload") -> Counter[Any]:
    """How often each value was set on field ``field_name``."""
    return Counter(
        event.value for event in events if type(event) is FieldSet and event.field == field_name
    )


def file_state(path: Path) -> bytes | None:
    """The bytes of ``path``, or None when there is no such file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
