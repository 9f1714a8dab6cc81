"""Smoke tests of the benchmark baselines: they store what they are told, in both modes."""

from __future__ import annotations

import hashlib
import json
import pathlib
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.baselines import (
    BASELINES,
    DONE,
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    RUNNING,
    TASK_EXECUTION,
    TASK_RESULT,
    Baseline,
    BuiltRun,
    drive_pipeline,
    load_baseline,
    raw,
)

pytest.importorskip("django")
pytest.importorskip("eventsourcing")

BASELINE_NAMES = sorted(BASELINES)


@pytest.fixture(
    params=[(name, durable) for name in BASELINE_NAMES for durable in (True, False)],
    ids=lambda param: f"{param[0]}-{'durable' if param[1] else 'unsynced'}",
)
def baseline(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    name, durable = request.param
    instance = load_baseline(name)(tmp_path, durable)
    yield instance
    instance.close()


def _pragma(baseline: Any, name: str) -> Any:
    """``PRAGMA name`` on the baseline's own connection."""
    if baseline.name == "eventsourcing-sqlite":
        return baseline.pragma(name)
    if baseline.name == "django-orm-sqlite":
        with baseline.connection.cursor() as cursor:
            cursor.execute(f"PRAGMA {name}")
            return cursor.fetchone()[0]
    return baseline.connection.execute(f"PRAGMA {name}").fetchone()[0]


def _status_in_db(baseline: Any, kind: str, object_id: str) -> str:
    """The stored status of one object, read with a separate sqlite3 connection."""
    with sqlite3.connect(baseline.path) as connection:
        if baseline.name == "eventsourcing-sqlite":
            rows = connection.execute(
                "SELECT state FROM stored_events WHERE originator_id = ? "
                "ORDER BY originator_version",
                (uuid.UUID(object_id).hex,),
            ).fetchall()
            statuses = [json.loads(state).get("status") for (state,) in rows]
            latest: str = [status for status in statuses if status is not None][-1]
            return latest
        row = connection.execute(f"SELECT status FROM {kind} WHERE id = ?", (object_id,)).fetchone()
        status: str = row[0]
        return status


def test_durability_pragmas(baseline: Any) -> None:
    assert _pragma(baseline, "synchronous") == (2 if baseline.durable else 0)
    assert _pragma(baseline, "journal_mode").upper() == baseline.journal_mode


def test_build_status_changes_and_set_field_read_back(baseline: Any) -> None:
    built = baseline.build("run-1", 2, ["first", "second"], 3)

    assert len(built.pipeline_result_ids) == 2
    assert len(built.task_execution_ids) == 4
    assert len(built.task_result_ids) == 12
    execution = baseline.get(PIPELINE_EXECUTION, built.execution_id)
    assert execution["run_id"] == "run-1"
    assert execution["status"] == "PENDING"
    assert execution["input_data"] == {"source": "s3://bucket/run-1.csv"}
    task_execution = baseline.get(TASK_EXECUTION, built.task_execution_ids[1])
    assert task_execution["task_id"] == "second"
    assert task_execution["pipeline_result_id"] == built.pipeline_result_ids[0]
    assert task_execution["config"] == {"task": "second", "retries": 3}

    task_result_id = built.task_result_ids[4]
    baseline.status_change(TASK_RESULT, task_result_id, RUNNING)
    running = baseline.get(TASK_RESULT, task_result_id)
    assert running["status"] == RUNNING
    assert running["started"] is not None
    assert running["completed"] is None
    assert running["message"] == "Task is running"
    baseline.status_change(TASK_RESULT, task_result_id, "RUNTIME_ERROR")
    failed = baseline.get(TASK_RESULT, task_result_id)
    assert failed["status"] == "RUNTIME_ERROR"
    assert failed["started"] == running["started"]
    assert failed["completed"] >= failed["started"]
    assert failed["serializable_task_object"] == {"index": 1, "row": "0-1"}
    assert _status_in_db(baseline, TASK_RESULT, task_result_id) == "RUNTIME_ERROR"

    baseline.set_field(PIPELINE_RESULT, built.pipeline_result_ids[1], "message", "hello")
    baseline.set_field(TASK_EXECUTION, built.task_execution_ids[0], "config", {"x": [1, 2]})
    assert baseline.get(PIPELINE_RESULT, built.pipeline_result_ids[1])["message"] == "hello"
    assert baseline.get(TASK_EXECUTION, built.task_execution_ids[0])["config"] == {"x": [1, 2]}
    untouched = baseline.get(TASK_RESULT, built.task_result_ids[5])
    assert (untouched["status"], untouched["started"]) == ("PENDING", None)

    with pytest.raises(ValueError, match="no settable field 'nope'"):
        baseline.set_field(TASK_RESULT, task_result_id, "nope", 1)
    with pytest.raises(ValueError, match="unknown status 'WAITING'"):
        baseline.status_change(TASK_RESULT, task_result_id, "WAITING")


def test_run_pipeline_ends_with_everything_done(baseline: Any, tmp_path: pathlib.Path) -> None:
    baseline.run_pipeline("run-2", 6)

    with sqlite3.connect(baseline.path) as connection:
        if baseline.name == "eventsourcing-sqlite":
            count = connection.execute("SELECT count(*) FROM stored_events").fetchone()[0]
            # 1 + 1 + 2 + 6 objects created, 2 * 6 + 2 + 1 + 1 status changes
            assert count == 10 + 16
            return
        for kind in (PIPELINE_EXECUTION, PIPELINE_RESULT, TASK_EXECUTION, TASK_RESULT):
            statuses = connection.execute(f"SELECT status, completed FROM {kind}").fetchall()
            assert statuses, kind
            assert all(status == DONE and completed for status, completed in statuses), kind
        assert connection.execute("SELECT count(*) FROM task_result").fetchone()[0] == 6
        started = connection.execute("SELECT count(started) FROM task_result").fetchone()[0]
        assert started == 6


def test_baselines_reopen_an_existing_directory(tmp_path: pathlib.Path) -> None:
    for name in BASELINE_NAMES:
        first: Any = load_baseline(name)(tmp_path, False)
        built = first.build("run-1", 1, ["a"], 1)
        first.close()
        second: Any = load_baseline(name)(tmp_path, False)
        second.status_change(TASK_RESULT, built.task_result_ids[0], DONE)
        assert second.get(TASK_RESULT, built.task_result_ids[0])["status"] == DONE
        second.close()


def test_drive_pipeline_order() -> None:
    class Recording:
        name = "recording"
        durable = False

        def __init__(self) -> None:
            self.changes: list[tuple[str, str, str]] = []

        def build(
            self, run_id: str, n_pipeline_results: int, tasks: list[str], n_task_results: int
        ) -> BuiltRun:
            assert (n_pipeline_results, len(tasks), n_task_results) == (1, 2, 2)
            return BuiltRun(run_id, "e", ("p",), ("t1", "t2"), ("r1", "r2", "r3", "r4"))

        def status_change(self, kind: str, object_id: str, status: str) -> None:
            self.changes.append((kind, object_id, status))

    recording = Recording()
    drive_pipeline(recording, "run", 4)  # type: ignore[arg-type]
    assert recording.changes[:2] == [(TASK_RESULT, "r1", RUNNING), (TASK_RESULT, "r1", DONE)]
    assert recording.changes[8:] == [
        (TASK_EXECUTION, "t1", DONE),
        (TASK_EXECUTION, "t2", DONE),
        (PIPELINE_RESULT, "p", DONE),
        (PIPELINE_EXECUTION, "e", DONE),
    ]


def test_load_baseline_refuses_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown baseline 'mongo'"):
        load_baseline("mongo")
    baseline_type: type[Baseline] = load_baseline("sqlite-plain")
    assert baseline_type.name == "sqlite-plain"


@pytest.mark.parametrize("durable", [True, False])
def test_raw_append_writes_a_hash_chain(tmp_path: pathlib.Path, durable: bool) -> None:
    path = tmp_path / "raw.jsonl"
    seconds = raw.append_seconds_per_event(path, 20, durable=durable, lock=True)

    assert seconds > 0
    previous = raw.GENESIS_HASH
    lines = path.read_bytes().splitlines()
    assert len(lines) == 20
    for seq, line in enumerate(lines, start=1):
        body, _, tail = line.partition(b',"hash":"')
        assert hashlib.sha256(previous + body + b"}").hexdigest().encode() == tail[:-2]
        event = json.loads(line)
        assert (event["type"], event["seq"], event["field"]) == ("set", seq, "status")
        previous = tail[:-2]


def test_raw_append_breakdown_has_every_step(tmp_path: pathlib.Path) -> None:
    costs = raw.append_breakdown(tmp_path, 50, n_fsync=3)
    assert set(costs) == {"encode", "sha256", "write", "flock_pair", "fsync", "total"}
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def event_file(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("raw") / "events.jsonl"
    size = raw.write_event_file(path, 4_003, events_per_object=5)
    assert size == path.stat().st_size > raw.CHUNK_SIZE  # two chunks, a line split across
    return path


@pytest.mark.parametrize("into", ["dict", "struct"])
@pytest.mark.parametrize("batch", [False, True])
def test_raw_replay_folds_generated_files(event_file: pathlib.Path, into: Any, batch: bool) -> None:
    path = event_file
    folded = raw.fold_file(path, into=into, batch=batch)
    assert len(folded) == 801
    if into == "struct":
        assert sorted(set(folded.values())) == [3, 5]
    assert raw.replay_seconds(path, into=into, batch=batch) > 0


@pytest.mark.parametrize("into", ["dict", "struct"])
def test_raw_replay_accepts_any_lines_with_id_and_type(tmp_path: pathlib.Path, into: Any) -> None:
    path = tmp_path / "other.jsonl"
    path.write_bytes(
        b'{"type":"a","id":"x","extra":[1,2]}\n\n{"id":"y","type":"b"}\n{"id":"x","type":"c"}'
    )
    expected = {"x": 5, "y": 2} if into == "dict" else {"x": 2, "y": 1}
    assert raw.fold_file(path, into=into) == expected
    assert raw.fold_file(path, into=into, batch=True) == expected


@pytest.mark.parametrize("name", ["django-orm-sqlite", "sqlite-plain"])
@pytest.mark.parametrize("durable", [True, False])
def test_sql_baselines_run_in_wal_mode_by_default(
    tmp_path: pathlib.Path, name: str, durable: bool
) -> None:
    instance: Any = load_baseline(name)(tmp_path, durable)
    try:
        assert _pragma(instance, "journal_mode").lower() == "wal"
        assert _pragma(instance, "synchronous") == (2 if durable else 0)  # FULL / OFF
    finally:
        instance.close()


def test_interleaved_rounds_alternate_the_sides() -> None:
    from benchmarks.measure import interleaved, median

    calls: list[str] = []

    def side(name: str, value: float) -> Any:
        def run() -> float:
            calls.append(name)
            return value

        return run

    figures = interleaved(3, {"ours": side("ours", 1.0), "theirs": side("theirs", 2.0)})
    assert calls == ["ours", "theirs"] * 3
    assert figures == {"ours": [1.0] * 3, "theirs": [2.0] * 3}
    assert median([3.0, 1.0, 2.0]) == 2.0


@pytest.fixture(scope="module")
def tiny_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, list[str]]:
    from benchmarks.make_log import make_log

    path = tmp_path_factory.mktemp("tiny") / "tiny.jsonl"
    _, _, run_ids = make_log(path, 200)
    return path, run_ids


def test_rss_cli_and_sha256_measures(tiny_log: tuple[pathlib.Path, list[str]]) -> None:
    from benchmarks.measure import cli_seconds, rss_after_open, sha256_seconds

    path, run_ids = tiny_log
    rss, peak = rss_after_open(path)
    bare, _ = rss_after_open(None)
    assert bare > 0 and 0 < rss <= peak
    assert cli_seconds(["show", run_ids[0], "--log", str(path)]) > 0
    assert sha256_seconds(path) > 0
    with pytest.raises(subprocess.CalledProcessError, match="returned non-zero exit status"):
        cli_seconds(["show", "no-such-run", "--log", str(path)])


def test_history_writers_and_pipeline_rows(
    tiny_log: tuple[pathlib.Path, list[str]], tmp_path: pathlib.Path
) -> None:
    from benchmarks import run

    path, run_ids = tiny_log
    report = run.Report()
    run.bench_history(report, path, 200, run_ids)
    run.bench_writers(report, tmp_path, 5, 3, rounds=1, writers=2)
    run.bench_pipeline(report, tmp_path, 4, 4, rounds=1)
    rows = {row.scenario: row for row in report.rows}
    assert rows["show RUN on 200 events (CLI process)"].target == "< 0.3 s"
    assert rows["verify 200 events (CLI process)"].baseline == "SHA-256 of the file, one pass"
    assert rows["RSS after opening 200 events (snapshot), fresh process"].value > 0
    index_rss = rows["RSS after opening 200 events (run index) and listing runs, fresh process"]
    assert index_rss.value > 0 and index_rss.target == "< 200 MB, flat in history"
    fsync_writers = rows["set_ calls/s, 2 writers on one log, durability fsync"]
    assert fsync_writers.ratio is not None and fsync_writers.target == ">= 4x"
    assert fsync_writers.durability.startswith("fsync")
    django = rows["pipeline with 4 task results vs django-orm-sqlite (fsync)"]
    assert (django.target, django.best is not None) == ("<= 0.2x", True)
    assert rows["pipeline with 4 task results vs sqlite-plain (none)"].target == "<= 0.5x"
    assert all(row.durability for row in report.rows if row.scenario.startswith("pipeline"))


def test_postgres_pipeline_figures(pg: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import postgres
    from benchmarks.run import run_pipeline_on

    assert run_pipeline_on(pg.log_url, "fsync", 4) > 0
    log = pg.open()
    assert [run.status for run in log.run_summaries()] == ["DONE"]
    figures = postgres.pipeline_figures(pg.url, [4], 1)
    assert set(figures[4]) == {"postgresql", "file log", "sqlite3"}
    assert all(len(times) == 1 and times[0] > 0 for times in figures[4].values())
    assert "sqlite3 WAL synchronous=FULL" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["alone", "leader", "leader50"])
def test_group_commit_modes_run_and_clean_up(tmp_path: pathlib.Path, mode: str) -> None:
    from benchmarks.group_commit import commits_per_second

    assert commits_per_second(tmp_path, 3, mode, 5) > 0
    assert list(tmp_path.iterdir()) == []  # the file and its sync word are removed
