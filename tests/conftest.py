"""Fixtures shared by every test folder: sample batches of events and a log of them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines_events.events import (
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    AnyEvent,
    FieldSet,
    ObjectCreated,
    RunRemoved,
    encode_attrs,
    encode_value,
)
from pipelines_events.log import JsonlEventLog
from pipelines_events.status import PipelineTaskStatus


def _set(kind: str, object_id: str, field: str, value: object) -> FieldSet:
    stored, vtype = encode_value(field, value)
    return FieldSet(run_id="run-1", kind=kind, id=object_id, field=field, value=stored, vtype=vtype)


def _sample_batches() -> list[list[AnyEvent]]:
    """Five batches (eight events) of one run: the shape a status change gives."""
    attrs, types = encode_attrs({"status": PipelineTaskStatus.PENDING, "input": {"n": 1}})
    started = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
    completed = datetime(2026, 11, 5, 12, 5, tzinfo=UTC)
    return [
        [
            ObjectCreated(
                run_id="run-1", kind=PIPELINE_EXECUTION, id="ex-1", attrs=attrs, types=types
            )
        ],
        [
            _set(PIPELINE_EXECUTION, "ex-1", "status", PipelineTaskStatus.RUNNING),
            _set(PIPELINE_EXECUTION, "ex-1", "started", started),
        ],
        [
            ObjectCreated(
                run_id="run-1",
                kind=PIPELINE_RESULT,
                id="pr-1",
                parent_id="ex-1",
                attrs=attrs,
                types=types,
            )
        ],
        [
            _set(PIPELINE_EXECUTION, "ex-1", "status", PipelineTaskStatus.DONE),
            _set(PIPELINE_EXECUTION, "ex-1", "completed", completed),
            _set(PIPELINE_EXECUTION, "ex-1", "message", "all good: ünïcødé ✓"),
        ],
        [RunRemoved(run_id="run-1", kind=PIPELINE_EXECUTION, id="ex-1")],
    ]


@pytest.fixture
def sample_batches() -> list[list[AnyEvent]]:
    """Five batches of drafts (eight events) of one run: creations and status changes."""
    return _sample_batches()


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    """Where a test's log file goes (not created)."""
    return tmp_path / "log.jsonl"


@pytest.fixture
def sample_log(log_path: Path) -> tuple[Path, list[AnyEvent]]:
    """A closed log holding ``sample_batches``, and the events appended."""
    events: list[AnyEvent] = []
    with JsonlEventLog(log_path) as log:
        for batch in _sample_batches():
            events.extend(log.append(batch))
    return log_path, events
