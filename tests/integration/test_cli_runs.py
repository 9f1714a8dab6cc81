"""The run commands: ``run``, ``runs``, ``show`` and ``demo``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pipelines_events.cli import commands_runs
from pipelines_events.conf import STORAGE_SETTING, settings
from pipelines_events.results.base import PipelineStorageObject
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus as S
from tests.support.cli_support import fresh_storage, run_cli  # noqa: F401  (a fixture)

LETTERS = "tests.support.cli_pipelines.Letters"
SINGLE = "tests.support.cli_pipelines.Single"
EVENTLOG = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"
MEMORY = "pipelines_events.results.memory.MemoryPipelineResultsStorage"
ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("fresh_storage")


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "x.jsonl"


def record(capsys: pytest.CaptureFixture[str], log: Path, *argv: str) -> int:
    status, _, _ = run_cli(capsys, "run", *argv, "--log", str(log), "--quiet")
    return status


@pytest.fixture
def three_runs(capsys: pytest.CaptureFixture[str], log: Path) -> Path:
    """``ok`` (DONE), ``bad`` (one RUNTIME_ERROR, one CANCELLED), ``one`` (DONE, pipeline
    ``single``)."""
    assert record(capsys, log, LETTERS, "--run-id", "ok", "--input", "{}") == 0
    assert record(capsys, log, LETTERS, "--run-id", "bad", "--input", '{"fail_on": "b"}') == 1
    assert record(capsys, log, SINGLE, "--run-id", "one") == 0
    return log


def parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# -- run --------------------------------------------------------------------------------------


def test_run_prints_the_status_changes_then_the_tree_and_exits_0_when_done(
    capsys: pytest.CaptureFixture[str], log: Path
) -> None:
    status, out, err = run_cli(
        capsys, "run", LETTERS, "--input", "{}", "--run-id", "r1", "--log", str(log)
    )

    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"run r1 · {LETTERS} · DONE · started ")
    assert "├── a · DONE" in out and "└── b · DONE" in out
    assert "numbered · DONE" in out and "closing · DONE" in out
    assert out.count("1 · DONE") == 2 and out.count("task result · DONE") == 2
    changes = [" ".join(line.split()) for line in err.splitlines()]
    assert changes[0] == f"RUNNING execution {LETTERS}"
    assert "DONE task result a / numbered / 2" in changes
    assert "DONE task execution b / closing" in changes
    assert changes[-1] == f"DONE execution {LETTERS}"
    # Each object changes twice (RUNNING, DONE): 1 execution, 2 + 4 + 6 objects below it.
    assert len(changes) == 2 * 13

    storage = EventLogPipelineResultsStorage(log)
    execution = storage.get_pipeline_execution("r1")
    assert execution is not None and execution.get_status() is S.DONE
    assert execution.get_input_data() == {}
    assert execution.get_runner() == "pipelines_events.runners.eager.Runner"
    assert execution.get_reporter() == "pipelines_events.cli.commands_runs.ConsoleReporter"
    assert len(storage.get_task_results(run_id="r1")) == 6
    storage.close()


def test_run_exits_1_when_the_run_fails_and_shows_where(
    capsys: pytest.CaptureFixture[str], log: Path
) -> None:
    status, out, err = run_cli(
        capsys, "run", LETTERS, "--input", '{"fail_on": "b"}', "--run-id", "r1", "--log", str(log)
    )

    assert status == 1
    assert out.splitlines()[0].startswith(f"run r1 · {LETTERS} · RUNTIME_ERROR")
    assert "2 · RUNTIME_ERROR" in out and "RuntimeError: b 2 refused" in out
    assert "closing · CANCELLED" in out and "cancelled: task 'numbered' failed" in out
    changes = [" ".join(line.split()) for line in err.splitlines()]
    assert "RUNTIME_ERROR task result b / numbered / 2: RuntimeError: b 2 refused" in changes


def test_run_input_that_does_not_validate_ends_in_validation_error_exit_1(
    capsys: pytest.CaptureFixture[str], log: Path
) -> None:
    status, out, _ = run_cli(
        capsys, "run", LETTERS, "--input", '{"colour": "red"}', "--run-id", "r1", "--log", str(log)
    )

    assert status == 1
    assert "VALIDATION_ERROR" in out and "input data of task 'numbered'" in out


def test_run_without_input_runs_a_task_whose_input_type_has_all_defaults(
    capsys: pytest.CaptureFixture[str], log: Path
) -> None:
    status, out, _ = run_cli(capsys, "run", LETTERS, "--run-id", "r1", "--log", str(log), "-q")

    assert status == 0
    assert "VALIDATION_ERROR" not in out and "DONE" in out


def test_run_quiet_prints_only_the_tree(capsys: pytest.CaptureFixture[str], log: Path) -> None:
    status, out, err = run_cli(capsys, "run", SINGLE, "--log", str(log), "--quiet")

    assert status == 0 and err == ""
    assert "only · DONE" in out


def test_run_without_run_id_gets_a_new_uuid(capsys: pytest.CaptureFixture[str], log: Path) -> None:
    assert record(capsys, log, SINGLE) == 0
    assert record(capsys, log, SINGLE) == 0

    status, out, _ = run_cli(capsys, "runs", "--log", str(log), "--format", "json")
    run_ids = [run["run_id"] for run in json.loads(out)]
    assert status == 0 and len(set(run_ids)) == 2
    assert all(len(run_id) == 36 and run_id.count("-") == 4 for run_id in run_ids)


def test_run_json_is_the_tree_of_the_stored_run(
    capsys: pytest.CaptureFixture[str], log: Path
) -> None:
    status, out, _ = run_cli(
        capsys, "run", LETTERS, "--input", "{}", "--run-id", "r1", "--log", str(log), "-q",
        "--format", "json",
    )  # fmt: skip

    assert status == 0
    tree = json.loads(out)
    storage = EventLogPipelineResultsStorage(log)
    execution = storage.get_pipeline_execution("r1")
    assert execution is not None
    assert_tree_matches(tree, execution, None)
    storage.close()


def test_run_shows_progress_when_stdout_is_a_terminal(
    capsys: pytest.CaptureFixture[str], log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands_runs, "_progress_shown", lambda: True)

    status, out, err = run_cli(capsys, "run", LETTERS, "--input", "{}", "--log", str(log))

    assert status == 0
    assert "numbered · DONE" in out
    assert "task result      a / numbered / 1" in err

    status, out, err = run_cli(capsys, "run", SINGLE, "--log", str(log), "--quiet")
    assert status == 0 and "only · DONE" in out and "task result" not in err


def test_run_without_log_uses_the_configured_storage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    configured = tmp_path / "configured.jsonl"
    with settings.override_settings(**{STORAGE_SETTING: (EVENTLOG, {"path": str(configured)})}):
        status, out, _ = run_cli(capsys, "run", SINGLE, "--run-id", "c1", "-q")
        assert status == 0
        status, out, _ = run_cli(capsys, "runs", "--format", "json")
        assert [run["run_id"] for run in json.loads(out)] == ["c1"]
    assert configured.exists()


def test_run_with_a_storage_that_is_not_an_event_log(capsys: pytest.CaptureFixture[str]) -> None:
    with settings.override_settings(**{STORAGE_SETTING: MEMORY}):
        status, out, err = run_cli(capsys, "run", SINGLE, "--run-id", "m1")
        assert status == 0 and "only · DONE" in out
        # The reporter says what it is told: the pipeline and task ids.
        changes = [" ".join(line.split()) for line in err.splitlines()]
        assert changes[2:6] == [
            "RUNNING single / tests.support.cli_pipelines.Closing",
            "RUNNING single / tests.support.cli_pipelines.Closing",
            "DONE single / tests.support.cli_pipelines.Closing",
            "DONE single / tests.support.cli_pipelines.Closing",
        ]

        status, out, _ = run_cli(capsys, "runs", "--format", "jsonl")
        assert status == 0 and json.loads(out)["task_results"]["done"] == 1
        status, out, _ = run_cli(capsys, "show", "m1")
        assert status == 0 and out.startswith("run m1 · single · DONE")


# -- refusals: a message, exit status 2, nothing written ----------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["run", "tests.no_such_module.Pipe"],
            "pipeline 'tests.no_such_module.Pipe': cannot import it",
        ),
        (
            ["run", "tests.support.cli_pipelines.Missing"],
            "pipeline 'tests.support.cli_pipelines.Missing': cannot import it: "
            "module 'tests.support.cli_pipelines' has no attribute 'Missing'",
        ),
        (
            ["run", "tests.support.cli_pipelines.NotAPipeline"],
            "pipeline 'tests.support.cli_pipelines.NotAPipeline': is not a subclass of "
            "pipelines_events.pipeline.Pipeline (it is the class NotAPipeline)",
        ),
        (
            ["run", "tests.support.cli_pipelines.not_a_class"],
            "pipeline 'tests.support.cli_pipelines.not_a_class': is not a subclass of "
            "pipelines_events.pipeline.Pipeline (it is function)",
        ),
        (
            ["run", "pipelines_events.pipeline.Pipeline"],
            "the base class has no tasks; give a subclass of it",
        ),
        (["run", "Letters"], "pipeline 'Letters': not a dotted path; give module.ClassName"),
        (
            ["run", LETTERS, "--input", "{days: 3}"],
            "--input: '{days: 3}' is not valid JSON: Expecting property name",
        ),
        (
            ["run", LETTERS, "--input", "[1, 2]"],
            "--input: give a JSON object such as '{\"days\": 3}', not a JSON list ('[1, 2]')",
        ),
        (["run", LETTERS, "--input", ""], "--input: '' is not valid JSON"),
        (["run", LETTERS, "--run-id", " "], "--run-id: give a non-empty id"),
        (
            ["run", "tests.support.cli_pipelines.BrokenIterator"],
            "pipeline 'tests.support.cli_pipelines.BrokenIterator': building the run failed: "
            "OSError: the source is offline",
        ),
        (
            ["run", LETTERS, "--run-id", "ok", "--input", "{}"],
            "run 'ok' already has an execution in",
        ),
        (["show", "nope"], "no run has the id 'nope' in"),
        (["show", "o"], "no run has the id 'o' in"),
        (
            ["show", "ok", "--as-of", "2000-01-01T00:00:00Z"],
            "no run has the id 'ok' in",
        ),
        (["show", "ok", "--at-seq", "-1"], "--at-seq: '-1' is not a seq"),
    ],
)
def test_refusals_name_the_problem_exit_2_and_write_nothing(
    capsys: pytest.CaptureFixture[str], three_runs: Path, argv: list[str], message: str
) -> None:
    before = three_runs.read_bytes()
    snapshot = sorted(path.name for path in three_runs.parent.iterdir())

    status, out, err = run_cli(capsys, *argv, "--log", str(three_runs))

    assert status == 2
    assert out == ""
    assert err.startswith("pipelines-events: error: ")
    assert message in err
    assert three_runs.read_bytes() == before
    assert sorted(path.name for path in three_runs.parent.iterdir()) == snapshot


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", LETTERS, "--input", "{}"], "the log path is a directory, not a file"),
        (["runs"], "the log path is a directory, not a file"),
        (["show", "r1"], "the log path is a directory, not a file"),
        (["demo"], "the log path is a directory, not a file"),
        # Arguments are checked before the log is opened.
        (
            ["run", "tests.support.cli_pipelines.NotAPipeline"],
            "cli_pipelines.NotAPipeline': is not a",
        ),
        (["run", LETTERS, "--input", "nope"], "--input: 'nope' is not valid JSON"),
    ],
)
def test_a_log_path_that_is_a_directory_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    status, out, err = run_cli(capsys, *argv, "--log", str(tmp_path))

    assert status == 2 and out == ""
    assert err.startswith("pipelines-events: error: ")
    assert message in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["runs"], ["show", "r1"]])
def test_reading_a_log_that_does_not_exist_is_refused_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], log: Path, argv: list[str]
) -> None:
    status, _, err = run_cli(capsys, *argv, "--log", str(log))

    assert status == 2
    assert f"{log}: no such log file" in err
    assert not log.exists()


def test_refused_run_on_a_new_log_creates_nothing(
    capsys: pytest.CaptureFixture[str], log: Path
) -> None:
    for argv in (
        ["run", "tests.support.cli_pipelines.NotAPipeline"],
        ["run", LETTERS, "--input", "{"],
        ["run", "tests.no_such_module.Pipe"],
    ):
        assert run_cli(capsys, *argv, "--log", str(log))[0] == 2
    assert not log.exists()


# -- runs -------------------------------------------------------------------------------------


def test_runs_json_counts_task_results_by_status(
    capsys: pytest.CaptureFixture[str], three_runs: Path
) -> None:
    status, out, _ = run_cli(capsys, "runs", "--log", str(three_runs), "--format", "json")

    assert status == 0
    runs = json.loads(out)
    assert [(run["run_id"], run["pipeline_id"], run["status"]) for run in runs] == [
        ("one", "single", "DONE"),  # newest first
        ("bad", LETTERS, "RUNTIME_ERROR"),
        ("ok", LETTERS, "DONE"),
    ]
    assert [run["task_results"] for run in runs] == [
        {"done": 1, "failed": 0, "cancelled": 0, "total": 1},
        {"done": 4, "failed": 1, "cancelled": 1, "total": 6},
        {"done": 6, "failed": 0, "cancelled": 0, "total": 6},
    ]
    assert runs[1]["message"] == "RuntimeError: b 2 refused"
    storage = EventLogPipelineResultsStorage(three_runs)
    newest_first = reversed(storage.get_pipeline_executions())
    for run, execution in zip(runs, newest_first, strict=True):
        assert run["id"] == execution.get_id()
        assert parse_time(run["started"]) == execution.get_started()
        assert parse_time(run["completed"]) == execution.get_completed()
        started, completed = execution.get_started(), execution.get_completed()
        assert started is not None and completed is not None
        assert run["duration"] == pytest.approx((completed - started).total_seconds())
        assert run["started"].endswith("Z")  # ISO 8601 in UTC
    storage.close()


def test_runs_jsonl_is_one_run_a_line_and_pipeline_filters(
    capsys: pytest.CaptureFixture[str], three_runs: Path
) -> None:
    _, whole, _ = run_cli(capsys, "runs", "--log", str(three_runs), "--format", "json")
    status, out, _ = run_cli(capsys, "runs", "--log", str(three_runs), "--format", "jsonl")
    assert status == 0
    assert [json.loads(line) for line in out.splitlines()] == json.loads(whole)

    status, out, _ = run_cli(
        capsys, "runs", "--log", str(three_runs), "--format", "jsonl", "--pipeline", "single"
    )
    assert status == 0
    assert [json.loads(line)["run_id"] for line in out.splitlines()] == ["one"]


def test_runs_piped_are_tab_separated_lines(
    capsys: pytest.CaptureFixture[str], three_runs: Path
) -> None:
    status, out, _ = run_cli(capsys, "runs", "--log", str(three_runs))

    assert status == 0
    header, *rows = out.splitlines()
    assert header.split("\t") == [
        *("run_id", "pipeline_id", "status", "started", "completed", "duration"),
        *("done", "failed", "cancelled", "total", "stale", "message"),
    ]
    cells = [row.split("\t") for row in rows]
    assert all(len(c) == 12 for c in cells)
    assert [(c[0], c[1], c[2], c[6:10]) for c in cells] == [
        ("one", "single", "DONE", ["1", "0", "0", "1"]),
        ("bad", LETTERS, "RUNTIME_ERROR", ["4", "1", "1", "6"]),
        ("ok", LETTERS, "DONE", ["6", "0", "0", "6"]),
    ]


def test_runs_of_an_empty_log_or_pipeline(
    capsys: pytest.CaptureFixture[str], three_runs: Path, tmp_path: Path
) -> None:
    status, out, _ = run_cli(capsys, "runs", "--log", str(three_runs), "--pipeline", "nope")
    assert status == 0 and out == f"no run in {three_runs} of pipeline 'nope'\n"
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    assert run_cli(capsys, "runs", "--log", str(empty))[1] == f"no run in {empty}\n"
    assert run_cli(capsys, "runs", "--log", str(empty), "--format", "json")[1] == "[]\n"
    assert run_cli(capsys, "runs", "--log", str(empty), "--format", "jsonl")[1] == ""


# -- show -------------------------------------------------------------------------------------


def assert_tree_matches(
    node: dict[str, Any], obj: PipelineStorageObject, parent_id: str | None
) -> None:
    """``node`` of ``show --format json`` says what the storage holds for ``obj``."""
    assert node["kind"] == obj.kind
    assert node["id"] == obj.get_id()
    assert node["parent_id"] == parent_id
    assert node["run_id"] == obj.get_run_id()
    assert node["status"] == obj.get_status().name
    assert parse_time(node["started"]) == obj.get_started()
    assert parse_time(node["completed"]) == obj.get_completed()
    assert node["message"] == obj.get_message()
    assert node["pipeline_id"] == obj.get_pipeline_id()
    started, completed = obj.get_started(), obj.get_completed()
    if started is None or completed is None:
        assert node["duration"] is None
    else:
        assert node["duration"] == pytest.approx((completed - started).total_seconds())
    getters = {
        "input_data": "get_input_data",
        "pipeline_object": "get_serializable_pipeline_object",
        "pipeline_task": "get_pipeline_task",
        "task_id": "get_task_id",
        "task_object": "get_serializable_task_object",
    }
    kinds = {
        "input_data": {"pipeline_execution"},
        "pipeline_object": {"pipeline_result", "task_execution", "task_result"},
        "pipeline_task": {"task_execution", "task_result"},
        "task_id": {"task_execution", "task_result"},
        "task_object": {"task_result"},
    }
    for name, getter in getters.items():
        expected = getattr(obj, getter)() if obj.kind in kinds[name] else None
        assert node[name] == expected, name
    children = obj.get_children()
    assert len(node["children"]) == len(children)
    for child_node, child in zip(node["children"], children, strict=True):
        assert_tree_matches(child_node, child, obj.get_id())


def test_show_json_matches_the_storage(
    capsys: pytest.CaptureFixture[str], three_runs: Path
) -> None:
    status, out, _ = run_cli(capsys, "show", "bad", "--log", str(three_runs), "--format", "json")

    assert status == 0
    tree = json.loads(out)
    storage = EventLogPipelineResultsStorage(three_runs)
    execution = storage.get_pipeline_execution("bad")
    assert execution is not None
    assert_tree_matches(tree, execution, None)
    storage.close()
    assert [r["pipeline_object"] for r in tree["children"]] == ["a", "b"]
    b_numbered = tree["children"][1]["children"][0]
    assert b_numbered["pipeline_task"] == "numbered"
    assert b_numbered["task_id"] == "tests.support.cli_pipelines.Numbered"
    assert [(r["task_object"], r["status"], r["message"]) for r in b_numbered["children"]] == [
        (1, "DONE", ""),
        (2, "RUNTIME_ERROR", "RuntimeError: b 2 refused"),
    ]


def test_show_jsonl_is_every_object_parents_first(
    capsys: pytest.CaptureFixture[str], three_runs: Path
) -> None:
    _, whole, _ = run_cli(capsys, "show", "ok", "--log", str(three_runs), "--format", "json")
    status, out, _ = run_cli(capsys, "show", "ok", "--log", str(three_runs), "--format", "jsonl")

    assert status == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["kind"] for line in lines[:3]] == [
        "pipeline_execution",
        "pipeline_result",
        "task_execution",
    ]
    assert len(lines) == 1 + 2 + 4 + 6
    seen: set[str | None] = {None}
    for line in lines:
        assert "children" not in line
        assert line["parent_id"] in seen
        seen.add(line["id"])

    def flatten(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield {key: value for key, value in node.items() if key != "children"}
        for child in node["children"]:
            yield from flatten(child)

    assert list(flatten(json.loads(whole))) == lines


def test_show_table_is_a_tree_of_every_object(
    capsys: pytest.CaptureFixture[str], three_runs: Path
) -> None:
    status, out, _ = run_cli(capsys, "show", "bad", "--log", str(three_runs))

    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"run bad · {LETTERS} · RUNTIME_ERROR · started ")
    assert lines[0].endswith(" · RuntimeError: b 2 refused")
    shapes = [line.split(" · ")[0] for line in lines[1:]]
    assert shapes == [
        "├── a",
        "│   ├── numbered",
        "│   │   ├── 1",
        "│   │   └── 2",
        "│   └── closing",
        "│       └── task result",
        "└── b",
        "    ├── numbered",
        "    │   ├── 1",
        "    │   └── 2",
        "    └── closing",
        "        └── task result",
    ]
    assert lines[11] == "    └── closing · CANCELLED · cancelled: task 'numbered' failed"
    assert " · RUNTIME_ERROR · " in lines[10] and lines[10].endswith("RuntimeError: b 2 refused")


def test_show_takes_a_unique_start_of_a_run_id(
    capsys: pytest.CaptureFixture[str], log: Path
) -> None:
    for run_id in ("alpha-1", "alpha-2", "beta-1"):
        assert record(capsys, log, SINGLE, "--run-id", run_id) == 0

    status, out, _ = run_cli(capsys, "show", "beta", "--log", str(log))
    assert status == 0 and out.startswith("run beta-1 · single · DONE")

    status, out, err = run_cli(capsys, "show", "alpha", "--log", str(log))
    assert status == 2 and out == ""
    assert "2 runs have an id starting with 'alpha' in" in err
    assert "(alpha-1, alpha-2); give more of it" in err


def test_show_at_a_point_in_time(capsys: pytest.CaptureFixture[str], three_runs: Path) -> None:
    # seq 1 is in the batch that creates every object of run `ok`: all are PENDING.
    status, out, _ = run_cli(capsys, "show", "ok", "--log", str(three_runs), "--at-seq", "1")

    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("run ok as of seq 13 (the batch holding seq 1 ends there)")
    assert lines[1] == f"└── run ok · {LETTERS} · PENDING"
    assert all(line.endswith("· PENDING") for line in lines[1:])
    assert len(lines) == 1 + 13

    status, out, _ = run_cli(
        capsys, "show", "ok", "--log", str(three_runs), "--at-seq", "1", "--format", "json"
    )
    assert status == 0 and json.loads(out)["status"] == "PENDING"

    status, out, _ = run_cli(
        capsys, "show", "ok", "--log", str(three_runs), "--as-of", "2999-01-01T00:00:00Z"
    )
    assert status == 0 and out.startswith("run ok as of seq")
    assert out.splitlines()[1].startswith(f"└── run ok · {LETTERS} · DONE · started ")


# -- demo -------------------------------------------------------------------------------------


def test_demo_records_the_demo_run_and_shows_it(
    capsys: pytest.CaptureFixture[str], log: Path
) -> None:
    status, out, err = run_cli(capsys, "demo", "--log", str(log))

    assert status == 0  # the demo is meant to show a failure
    lines = out.splitlines()
    run_id = lines[0].split()[1]
    assert lines[0].startswith(f"run {run_id} · pipelines_events.demo.DemoPipeline · RUNTIME_ERROR")
    assert "├── lima · RUNTIME_ERROR" in out
    assert "rainfall · RUNTIME_ERROR" in out
    assert "summarise · CANCELLED · cancelled: task 'clean' failed" in out
    assert lines[-5:] == [
        f"recorded in {log}; try next:",
        f"  pipelines-events history {run_id[:8]} --log {log}",
        f"  pipelines-events show {run_id[:8]} --traceback --log {log}",
        f"  pipelines-events runs --log {log}",
        f"  pipelines-events verify --log {log}",
    ]
    changes = [" ".join(line.split()) for line in err.splitlines()]
    assert (
        "RUNTIME_ERROR task result lima / clean / rainfall: ValueError: lima rainfall "
        "reading 1: 'n/a' is not a number" in changes
    )

    status, out, _ = run_cli(capsys, "runs", "--log", str(log), "--format", "json")
    [run] = json.loads(out)
    assert (run["run_id"], run["status"]) == (run_id, "RUNTIME_ERROR")
    assert run["task_results"] == {"done": 10, "failed": 1, "cancelled": 1, "total": 12}
    assert run_cli(capsys, "verify", "--log", str(log))[0] == 0


def test_demo_quiet(capsys: pytest.CaptureFixture[str], log: Path) -> None:
    status, out, err = run_cli(capsys, "demo", "--log", str(log), "-q")
    assert status == 0 and err == "" and "lima · RUNTIME_ERROR" in out


def test_python_m_pipelines_events_demo_in_a_fresh_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PIPELINES_SETTINGS_MODULE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("COLUMNS", None)

    done = subprocess.run(
        [sys.executable, "-m", "pipelines_events", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert " · pipelines_events.demo.DemoPipeline · RUNTIME_ERROR · " in lines[0]
    assert [
        line.split(" · ")[0] for line in lines[1:-5] if not line.startswith(("│ ", "    "))
    ] == [
        "├── oslo",
        "├── lima",
        "└── cairo",
    ]
    assert lines[-5] == "recorded in pipelines-events.jsonl; try next:"
    assert lines[-1] == "  pipelines-events verify"
    assert (tmp_path / "pipelines-events.jsonl").is_file()
    assert "DONE              execution" not in done.stderr  # it failed
    assert done.stderr.splitlines()[0].split() == [
        "RUNNING",
        "execution",
        "pipelines_events.demo.DemoPipeline",
    ]
