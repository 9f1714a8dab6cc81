"""Crashes: writers killed with SIGKILL lose nothing they acknowledged, and a log cut at
any byte opens, through the storage, as the state after some whole batch.

The SIGKILL harness runs ``crash_harness.DEFAULT_KILLS`` kills here; the full count runs
with ``PIPELINES_EVENTS_CRASH_KILLS=200 python -m pytest
tests/reliability/test_reliability_crash.py`` or ``python benchmarks/crash_full.py``.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines_events.log import JsonlEventLog
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from tests.reliability.common import TinyPipeline, TinyTask, build, snapshot
from tests.reliability.crash_harness import FULL_KILLS, kills_from_env, run_crash_rounds

pytestmark = pytest.mark.slow  # the quick subset (-m 'not slow') leaves these out

RUNNING = PipelineTaskStatus.RUNNING
DONE = PipelineTaskStatus.DONE

FULL_FOLD = {"run_index": False}
"""Storages that fold the whole log at open (what these tests compare)."""


def test_writers_killed_at_random_moments_lose_nothing_acknowledged(
    tmp_path: Path, record_property: Callable[[str, Any], None]
) -> None:
    kills = kills_from_env()
    report = run_crash_rounds(tmp_path, kills=kills)
    record_property("crash_report", report.summary())
    print(report.summary())
    assert report.lost == []
    assert report.kills == kills
    assert report.acknowledged > 0
    assert report.repaired_on_open + report.repaired_by_writers >= report.torn_tails


# -- cutting a log at every byte ------------------------------------------------------


def _pipeline() -> TinyPipeline:
    return TinyPipeline(
        "cut", objects=["a", "b"], tasks=[TinyTask("one", [1, 2]), TinyTask("two", None)]
    )


def _history(storage: EventLogPipelineResultsStorage) -> None:
    """A log with every kind of batch: builds, status changes with propagation, sets,
    an atomic block, a failure, and a cleanup."""
    build(storage, "done-run", TinyPipeline("cut"))
    (only,) = storage.get_task_results(run_id="done-run")
    only.report_status_change(None, RUNNING)
    only.report_status_change(None, DONE, "fine ✓")
    assert storage.cleanup(before=datetime.now(UTC) + timedelta(days=1)) == ["done-run"]
    build(storage, "run", _pipeline())
    first, second, *_ = storage.get_task_results(run_id="run")
    first.report_status_change(None, RUNNING, "started")
    first.set_payload({"rows": [1, 2.5, None, "ü"], "ok": True})
    with first.atomic():
        first.set_note("two fields")
        first.set_count(2)
    second.report_status_change(None, RUNNING)
    second.report_status_change(None, PipelineTaskStatus.RUNTIME_ERROR, "ValueError: boom")
    build(storage, "failed-run", TinyPipeline("cut"))  # a failed run, for the cleanup
    (failed,) = storage.get_task_results(run_id="failed-run")
    failed.report_status_change(None, PipelineTaskStatus.RUNTIME_ERROR, "ValueError: boom")


LAST_BATCHES: dict[str, Callable[[EventLogPipelineResultsStorage], None]] = {
    "status change": lambda s: s.get_task_results(run_id="run")[0].report_status_change(
        None, DONE, "ünïcødé message ✓", propagate=False
    ),
    "build": lambda s: build(s, "last", _pipeline()),
    "atomic sets": lambda s: _atomic(s),
    "cleanup": lambda s: s.cleanup(),
    "set": lambda s: s.get_task_results(run_id="run")[2].set_data(["x" * 300, {"k": "€"}]),
}


def _atomic(storage: EventLogPipelineResultsStorage) -> None:
    result = storage.get_task_results(run_id="run")[1]
    with result.atomic():
        result.set_payload("p")
        result.set_note("n" * 200)
        result.set_count(3)


class _Cut:
    """A file that holds a prefix of ``data``, set to another prefix cheaply (no rewrite
    from scratch, which on ext4 flushes the file on every close)."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path = path
        self.data = data
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)

    def set(self, size: int) -> None:
        current = os.fstat(self.fd).st_size
        if current < size:
            os.pwrite(self.fd, self.data[current:size], current)
        elif current > size:
            os.ftruncate(self.fd, size)

    def close(self) -> None:
        os.close(self.fd)


def _open_cut(cut: _Cut, size: int, *, full: bool) -> tuple[Any, list[str]]:
    """Open the storage on the first ``size`` bytes; its state (the public picture when
    ``full``, else the projections' own snapshots) and the warnings it gave."""
    cut.set(size)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        storage = EventLogPipelineResultsStorage(
            cut.path, durability="none", log_options={"run_index": False}
        )
    position = storage.log.position
    try:
        state = _state(storage, full=full)
        if full:  # queries and appends work on the repaired log, continuing the chain
            execution = storage.get_pipeline_execution("run")
            if execution is not None:
                execution.set_after_cut(size)
                assert storage.log.position.seq == position.seq + 1
    finally:
        storage.close()
    os.ftruncate(cut.fd, position.offset)  # a prefix of the data again
    return state, [type(w.message).__name__ for w in caught]


def _state(storage: EventLogPipelineResultsStorage, *, full: bool) -> Any:
    if full:
        return snapshot(storage)
    return storage.results.snapshot(), storage.get_pipeline_digest()


@pytest.mark.parametrize("last", list(LAST_BATCHES))
def test_the_last_batch_cut_at_every_byte_opens_as_before_or_after(
    tmp_path: Path, last: str
) -> None:
    full = tmp_path / "full.jsonl"
    storage = EventLogPipelineResultsStorage(
        full, durability="none", log_options={"run_index": False}
    )
    _history(storage)
    before = snapshot(storage), _state(storage, full=False)
    start = full.stat().st_size
    LAST_BATCHES[last](storage)
    after = snapshot(storage), _state(storage, full=False)
    storage.close()
    assert after[0] != before[0] and after[1] != before[1]
    data = full.read_bytes()
    cut = _Cut(tmp_path / "cut.jsonl", data)
    try:
        for size in range(start, len(data) + 1):
            full_check = size in (start, start + 1, len(data) - 1, len(data)) or size % 16 == 0
            state, warned = _open_cut(cut, size, full=full_check)
            expected = after if size == len(data) else before
            assert state == expected[0 if full_check else 1], f"cut at {size} of {len(data)}"
            torn = start < size < len(data)
            assert warned == (["TornWriteRepaired"] if torn else []), size
    finally:
        cut.close()


def test_a_whole_log_cut_at_every_byte_opens_as_a_whole_batch_prefix(tmp_path: Path) -> None:
    """For every byte offset of a log (a sample of them unless the full crash count is
    asked for), the storage opened on the cut file holds the state after the last whole
    batch before the cut: never part of a batch."""
    full = tmp_path / "full.jsonl"
    storage = EventLogPipelineResultsStorage(
        full, durability="none", log_options={"run_index": False}
    )
    _history(storage)
    storage.close()
    data = full.read_bytes()
    with JsonlEventLog(full, readonly=True) as log:
        events = list(log.read_new())
    boundaries = [0]
    offset = 0
    for event, line in zip(events, data.splitlines(keepends=True), strict=True):
        offset += len(line)
        if event.more == 0:
            boundaries.append(offset)
    assert boundaries[-1] == len(data)
    cut = _Cut(tmp_path / "cut.jsonl", data)
    try:
        states = {}
        for boundary in boundaries:
            states[boundary] = _open_cut(cut, boundary, full=True)[0]
            states[boundary] = (states[boundary], _open_cut(cut, boundary, full=False)[0])
        pairs = itertools.pairwise(boundaries)
        assert all(states[a] != states[b] for a, b in pairs)  # every batch changes the state
        whole = 0
        tried = 0
        for size in range(len(data) + 1):
            if size in states:
                whole = size
            if not _try_offset(data, size):
                continue
            tried += 1
            full_check = size % 32 == 0
            state, _ = _open_cut(cut, size, full=full_check)
            expected = states[whole][0 if full_check else 1]
            assert state == expected, f"cut at byte {size} of {len(data)}"
            assert os.fstat(cut.fd).st_size == whole  # repaired to the last whole batch
    finally:
        cut.close()
    print(f"{tried} of {len(data) + 1} byte offsets tried")
    assert tried == len(data) + 1 or not FULL


FULL = kills_from_env() >= FULL_KILLS
"""With the full crash count asked for, the whole-log sweep tries every byte offset."""


def _try_offset(data: bytes, size: int) -> bool:
    """Every offset in full mode; else those within 4 bytes of a line's start or end
    (the newline, the hash member) and every 7th one."""
    if FULL or size % 7 == 0 or size >= len(data) - 4:
        return True
    before = data.rfind(b"\n", 0, size)
    after = data.find(b"\n", size)
    return size - before <= 5 or (after != -1 and after - size <= 4)
