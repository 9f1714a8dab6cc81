"""Pages of runs from the file log's run index (``runs`` with its filters and --limit):
chosen in SQL, they are what a full fold lists, with the runs a read-only handle indexed
only in memory merged in, and with or without the index's ordering (an index file written
before it had one)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines_events.errors import InvalidValueError
from pipelines_events.log import JsonlEventLog, fileindex
from pipelines_events.log.fileindex import index_path
from pipelines_events.log.runquery import RunQuery
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing import ExamplePipeline, ExampleReporter, ExampleRunner, ExampleTask

Storage = EventLogPipelineResultsStorage


def _run(storage: Storage, run_id: str, pipeline_id: str, status: PipelineTaskStatus) -> None:
    pipeline = ExamplePipeline(pipeline_id, [ExampleTask("t", objects=range(2))], objects=["x"])
    storage.build_pipeline_execution(pipeline, run_id, ExampleRunner(), ExampleReporter(), {})
    execution = storage.get_pipeline_execution(run_id)
    assert execution is not None
    if run_id != "r5":  # one run never started
        execution.set_started(datetime(2026, 1, int(run_id[1:]), 12, tzinfo=UTC))
    execution.set_status(status)


def _record(path: Path, runs: list[tuple[str, str, PipelineTaskStatus]]) -> None:
    with closing(Storage(path, durability="none")) as storage:
        for run_id, pipeline_id, status in runs:
            _run(storage, run_id, pipeline_id, status)
        storage.run_index()  # the index file covers them all


DONE, FAILED = PipelineTaskStatus.DONE, PipelineTaskStatus.RUNTIME_ERROR
FIRST = [
    ("r1", "a", DONE),
    ("r2", "b", FAILED),
    ("r3", "a", FAILED),
    ("r4", "a", DONE),
    ("r5", "b", DONE),
]
LATER = [("r6", "a", FAILED), ("r7", "b", DONE)]


def _folded(path: Path, query: RunQuery) -> tuple[list[str], int]:
    """The page as a storage that folds the whole log (no run index) lists it."""
    with closing(Storage(path, readonly=True, log_options={"run_index": False})) as storage:
        assert storage.find_runs(query) is None
        runs = []
        for execution in reversed(list(storage.get_pipeline_executions())):
            started = execution.get_started()
            if (
                (query.pipeline_id is None or execution.get_pipeline_id() == query.pipeline_id)
                and (query.status is None or execution.get_status().name == query.status)
                and (query.since is None or (started is not None and started >= query.since))
                and (query.until is None or (started is not None and started <= query.until))
            ):
                runs.append(execution.get_run_id())
    return runs if query.limit is None else runs[: query.limit], len(runs)


def _paged(path: Path, query: RunQuery, *, readonly: bool = True) -> tuple[list[str], int]:
    with closing(Storage(path, readonly=readonly)) as storage:
        page = storage.find_runs(query)
        assert page is not None
        return [summary.run_id for summary in page.runs], page.total


def _queries(path: Path) -> list[RunQuery]:
    with closing(Storage(path, readonly=True)) as storage:
        starts = sorted(
            started
            for execution in storage.get_pipeline_executions()
            if (started := execution.get_started()) is not None
        )
    middle = starts[len(starts) // 2]
    return [
        RunQuery(),
        RunQuery(limit=2),
        RunQuery(limit=0),
        RunQuery(pipeline_id="a"),
        RunQuery(pipeline_id="b", limit=1),
        RunQuery(status="RUNTIME_ERROR"),
        RunQuery(pipeline_id="a", status="DONE", limit=5),
        RunQuery(since=middle),
        RunQuery(until=middle, limit=1),
        RunQuery(since=starts[0], until=starts[-1], status="DONE"),
        RunQuery(since=datetime(2999, 1, 1, tzinfo=UTC)),
    ]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "runs.jsonl"
    _record(path, FIRST)
    return path


def test_pages_from_the_index_are_what_a_full_fold_lists(log: Path) -> None:
    for query in _queries(log):
        assert _paged(log, query) == _folded(log, query), query
    assert _paged(log, RunQuery(pipeline_id="a", limit=2)) == (["r4", "r3"], 3)
    assert _paged(log, RunQuery(status="RUNTIME_ERROR")) == (["r3", "r2"], 2)


@pytest.mark.parametrize("in_sql", [True, False], ids=["merged into SQL", "chosen in Python"])
def test_a_read_only_handle_merges_the_runs_it_indexed_in_memory(
    log: Path, monkeypatch: pytest.MonkeyPatch, in_sql: bool
) -> None:
    if not in_sql:  # as when more runs than _TAIL_IN_SQL are indexed only in memory
        monkeypatch.setattr(fileindex, "_TAIL_IN_SQL", 0)
    size = index_path(log).stat().st_size
    # Appended without a read: the index file does not cover them.
    with closing(Storage(log, durability="none", log_options={"run_index": False})) as writer:
        for run_id, pipeline_id, status in LATER:
            _run(writer, run_id, pipeline_id, status)
        changed = writer.get_pipeline_execution("r1")
        assert changed is not None
        changed.set_status(FAILED)  # a run the file has, changed in the tail
    before = index_path(log).read_bytes()
    for query in _queries(log):
        assert _paged(log, query) == _folded(log, query), query
    assert index_path(log).read_bytes() == before and index_path(log).stat().st_size == size
    assert _paged(log, RunQuery(status="RUNTIME_ERROR")) == (["r6", "r3", "r2", "r1"], 4)
    assert _paged(log, RunQuery(pipeline_id="b", limit=1)) == (["r7"], 3)
    # A writer indexes the tail into the file; the pages stay the same.
    for query in _queries(log):
        assert _paged(log, query, readonly=False) == _folded(log, query), query


def test_an_index_file_without_its_ordering_pages_the_same_and_a_writer_adds_it(
    log: Path,
) -> None:
    with sqlite3.connect(index_path(log)) as db:
        db.execute("DROP INDEX runs_by_first_seq")
    expected = {repr(query): _folded(log, query) for query in _queries(log)}
    before = index_path(log).read_bytes()
    for query in _queries(log):
        assert _paged(log, query) == expected[repr(query)]
    assert index_path(log).read_bytes() == before  # a reader changes nothing
    with closing(Storage(log)) as storage:
        storage.run_index()
        assert isinstance(storage.log, JsonlEventLog) and storage.log.run_index is not None
        assert storage.log.run_index.rebuilds == 0  # not rebuilt: the ordering is added
    with closing(sqlite3.connect(index_path(log))) as db:
        names = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert "runs_by_first_seq" in names


def test_a_page_leaves_out_runs_begun_after_the_storage_position(log: Path) -> None:
    with closing(Storage(log, readonly=True)) as reader, reader.reads_held():
        _record(log, LATER)
        page = reader.find_runs(RunQuery())
        assert page is not None
        assert ([s.run_id for s in page.runs], page.total) == (["r5", "r4", "r3", "r2", "r1"], 5)
    assert _paged(log, RunQuery(limit=1)) == (["r7"], 7)


@pytest.mark.parametrize("readonly", [True, False], ids=["read-only", "writer"])
def test_a_page_shows_each_run_as_it_stood_at_the_storage_position(
    log: Path, readonly: bool
) -> None:
    with closing(Storage(log, readonly=readonly)) as reader, reader.reads_held():
        with closing(Storage(log, durability="none")) as writer:
            for run_id in ("r1", "r2"):  # DONE and FAILED at the reader's position
                execution = writer.get_pipeline_execution(run_id)
                assert execution is not None
                execution.set_status(FAILED if run_id == "r1" else DONE)
            writer.cleanup()  # removes every finished run
        expected = {
            "DONE": (["r5", "r4", "r1"], 3),
            "RUNTIME_ERROR": (["r3", "r2"], 2),
        }
        for status, (runs, total) in expected.items():
            page = reader.find_runs(RunQuery(status=status))
            assert page is not None
            assert ([s.run_id for s in page.runs], page.total) == (runs, total)
            assert {s.status for s in page.runs} == {status}
            # What the page says is what the storage shows at its position.
            for summary in page.runs:
                execution = reader.get_pipeline_execution(summary.run_id)
                assert execution is not None
                assert execution.get_status().name == status
        page = reader.find_runs(RunQuery(limit=2))
        assert page is not None and [s.run_id for s in page.runs] == ["r5", "r4"]
    # Once the reads move on: the runs were all finished, and cleanup removed them.
    assert _paged(log, RunQuery()) == ([], 0)


def test_a_limit_past_sqlite_integers_lists_every_run(log: Path) -> None:
    for limit in (2**63 - 1, 2**63, 10**30):
        assert _paged(log, RunQuery(limit=limit)) == (["r5", "r4", "r3", "r2", "r1"], 5)
        assert _paged(log, RunQuery(limit=limit, through_seq=limit)) == (
            ["r5", "r4", "r3", "r2", "r1"],
            5,
        )
    done = _cli("runs", "--log", str(log), "--limit", str(2**64), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert [run["run_id"] for run in json.loads(done.stdout)] == ["r5", "r4", "r3", "r2", "r1"]


def test_find_runs_refuses_what_is_not_a_query(log: Path) -> None:
    with (
        closing(Storage(log, readonly=True)) as storage,
        pytest.raises(InvalidValueError, match="RunQuery"),
    ):
        storage.find_runs({"limit": 2})  # type: ignore[arg-type]  # the bad value under test


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines_events", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_runs_command_filters_and_counts_through_the_index(log: Path) -> None:
    done = _cli("runs", "--log", str(log), "--pipeline", "a", "--limit", "2", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert [run["run_id"] for run in json.loads(done.stdout)] == ["r4", "r3"]
    assert "showing the newest 2 of 3 runs" in done.stderr
    done = _cli("runs", "--log", str(log), "--status", "runtime_error", "--format", "json")
    assert [run["run_id"] for run in json.loads(done.stdout)] == ["r3", "r2"]
    assert "showing" not in done.stderr
    done = _cli("runs", "--log", str(log), "--since", "2999-01-01", "--format", "json")
    assert done.returncode == 0 and json.loads(done.stdout) == []
