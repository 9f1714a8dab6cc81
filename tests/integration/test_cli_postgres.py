"""Every command with ``--log postgresql://...`` on the test server, and a run copied from
a file log into the database and back with identical chains."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import psycopg
import pytest

from pipelines_events.events import START
from pipelines_events.log.open import open_log
from tests.integration.postgres_server import PgTarget
from tests.support.cli_support import fresh_storage, run_cli, run_cli_process  # noqa: F401  (a fixture)

LETTERS = "tests.support.cli_pipelines.Letters"
SINGLE = "tests.support.cli_pipelines.Single"
ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("fresh_storage")


@pytest.fixture
def url(pg: PgTarget, capsys: pytest.CaptureFixture[str]) -> str:
    """A database log holding ``ok`` (DONE) and ``bad`` (RUNTIME_ERROR), written by ``run``."""
    log = pg.log_url
    assert run_cli(capsys, "run", LETTERS, "--run-id", "ok", "--input", "{}", "--log", log)[0] == 0
    status, out, _ = run_cli(
        capsys, "run", LETTERS, "--run-id", "bad", "--input", '{"fail_on": "b"}', "--log", log
    )
    assert status == 1 and "RUNTIME_ERROR" in out
    return log


def _events(target: str | Path) -> list[tuple[int, str]]:
    with open_log(target, readonly=True) as log:
        return [(e.seq, e.hash) for b in log.read(START) for e in b.events]


def test_runs_show_and_history(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "runs", "--log", url, "--format", "json")
    assert status == 0
    assert [(r["run_id"], r["status"]) for r in json.loads(out)] == [
        ("bad", "RUNTIME_ERROR"),
        ("ok", "DONE"),
    ]
    status, out, err = run_cli(capsys, "runs", "--log", url, "--limit", "1", "--format", "json")
    assert [r["run_id"] for r in json.loads(out)] == ["bad"]
    assert "showing the newest 1 of 2 runs" in err
    status, out, _ = run_cli(capsys, "show", "ok", "--log", url)
    assert status == 0 and out.startswith("run ok · tests.support.cli_pipelines.Letters · DONE")
    status, out, _ = run_cli(capsys, "show", "bad", "--log", url, "--format", "json")
    assert json.loads(out)["status"] == "RUNTIME_ERROR"
    status, out, _ = run_cli(capsys, "history", "ok", "--log", url, "--format", "jsonl")
    changes = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and changes[0]["seq"] == 1 and {c["run_id"] for c in changes} == {"ok"}
    # a run id prefix resolves on the database too
    assert run_cli(capsys, "history", "bad", "--log", url)[0] == 0
    status, _, err = run_cli(capsys, "show", "nope", "--log", url)
    assert status != 0 and "nope" in err


def test_head_and_verify_with_expect(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "head", "--log", url)
    head = out.strip()
    events = _events(url)
    assert status == 0 and head == f"{events[-1][0]}:{events[-1][1]}"
    status, out, _ = run_cli(capsys, "verify", "--log", url, "--expect", head)
    lines = out.splitlines()
    assert status == 0
    assert lines[0].startswith(f"OK: {url}: {len(events)} events in ")
    assert "bytes" in lines[0] and " 0 bytes" not in lines[0]
    assert f"extends the expected head {head}" in out
    assert "unfinished" not in out
    assert "storages read runs from the engine's run index" in out
    # an expected head the log does not extend fails, naming the seq
    wrong = f"3:{'0' * 64}"
    status, out, _ = run_cli(capsys, "verify", "--log", url, "--expect", wrong)
    assert status == 1 and "no longer extends the recorded head" in out


def test_verify_finds_an_edited_row(
    url: str, pg: PgTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(
            f'UPDATE "{pg.schema}".events SET line = convert_to(replace(convert_from(line, '
            "'UTF8'), 'PENDING', 'RUNNING'), 'UTF8') WHERE seq = 2"
        )
    status, out, _ = run_cli(capsys, "verify", "--log", url)
    assert status == 1 and "FAILED" in out and "line 2" in out


def test_follow_prints_what_another_process_appends(
    pg: PgTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    log = pg.log_url
    open_log(log).close()  # the tables exist before the follower starts

    def write() -> None:
        time.sleep(0.5)
        run_cli_process("run", SINGLE, "--run-id", "f1", "--quiet", "--log", log, check=True)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        status, out, _ = run_cli(
            capsys, "follow", "f1", "--until-done", "--timeout", "30", "--log", log
        )
    finally:
        writer.join()
    assert status == 0
    assert "run f1" in out and "RUNNING → DONE" in out.splitlines()[-1]


def test_cleanup(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "cleanup", "--all", "--dry-run", "--log", url)
    assert status == 0 and "would remove 2 runs" in out
    assert len(_events(url)) > 0
    before = len(_events(url))
    status, out, _ = run_cli(capsys, "cleanup", "--all", "--log", url, "--format", "json")
    assert status == 0
    status, out, _ = run_cli(capsys, "runs", "--log", url, "--format", "json")
    assert json.loads(out) == []
    assert len(_events(url)) > before  # removal is appended, never a deletion
    assert run_cli(capsys, "verify", "--log", url)[0] == 0


def test_a_run_copied_from_a_file_to_the_database_and_back_keeps_its_chain(
    tmp_path: Path, pg: PgTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source.jsonl"
    assert run_cli(capsys, "run", LETTERS, "--run-id", "ok", "--log", str(source))[0] == 0
    assert run_cli(capsys, "run", SINGLE, "--run-id", "other", "--log", str(source))[0] == 0
    exported = tmp_path / "ok.jsonl"
    assert run_cli(capsys, "export", "ok", "-o", str(exported), "--log", str(source))[0] == 0
    # into the database (its tables do not exist yet), then out again
    status, out, _ = run_cli(capsys, "replay", str(exported), "--into", pg.log_url)
    assert status == 0 and "run ok: imported" in out
    assert _events(pg.log_url) == _events(exported)
    back = tmp_path / "back.jsonl"
    assert run_cli(capsys, "export", "ok", "-o", str(back), "--log", pg.log_url)[0] == 0
    assert back.read_bytes() == exported.read_bytes()
    # and back into a file log: the same lines again
    copy = tmp_path / "copy.jsonl"
    assert run_cli(capsys, "replay", pg.log_url, "--into", str(copy))[0] == 0
    assert copy.read_bytes() == exported.read_bytes()
    # importing again adds nothing; a log into itself is refused, writing nothing
    head = _events(pg.log_url)
    status, out, _ = run_cli(capsys, "replay", str(exported), "--into", pg.log_url)
    assert status == 0 and _events(pg.log_url) == head
    status, _, err = run_cli(capsys, "replay", pg.log_url, "--into", pg.log_url)
    assert status != 0 and "cannot be imported into itself" in err
    assert _events(pg.log_url) == head


def test_a_missing_database_log_is_refused_by_reading_commands(
    pg: PgTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["runs"], ["show", "x"], ["history", "x"], ["head"], ["verify"]):
        status, _, err = run_cli(capsys, *argv, "--log", pg.log_url)
        assert status != 0, argv
        assert f"no pipelines-events log in schema '{pg.schema}'" in err, argv
    with psycopg.connect(pg.url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (pg.schema,)
        ).fetchone()
    assert found == (0,)  # reading created nothing


@pytest.mark.parametrize(
    "filters",
    [
        [],
        ["--limit", "2"],
        ["--status", "DONE"],
        ["--status", "runtime_error"],
        ["--pipeline", "single"],
        ["--since", "2000-01-01T00:00:00+00:00", "--limit", "1"],
        ["--until", "2000-01-01T00:00:00+00:00"],
    ],
)
def test_runs_lists_from_the_run_index_as_the_file_log_lists(
    tmp_path: Path, pg: PgTarget, capsys: pytest.CaptureFixture[str], filters: list[str]
) -> None:
    source = tmp_path / "source.jsonl"
    for argv in (
        [LETTERS, "--run-id", "ok"],
        [LETTERS, "--run-id", "bad", "--input", '{"fail_on": "b"}'],
        [SINGLE, "--run-id", "one"],
    ):
        run_cli(capsys, "run", *argv, "--quiet", "--log", str(source))
    assert run_cli(capsys, "replay", str(source), "--into", pg.log_url)[0] == 0
    on_file = run_cli(capsys, "runs", *filters, "--format", "json", "--log", str(source))
    in_db = run_cli(capsys, "runs", *filters, "--format", "json", "--log", pg.log_url)
    assert in_db[0] == on_file[0] == 0
    assert json.loads(in_db[1]) == json.loads(on_file[1])
    assert in_db[2].replace(pg.log_url, "LOG") == on_file[2].replace(str(source), "LOG")


def test_show_at_a_seq_on_the_database(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from pipelines_events import audit

    view = audit.view_at(url, seq=3)
    try:
        assert view.run_index() is None  # a view lists what it folded, not the index
        assert [e.get_run_id() for e in view.get_pipeline_executions()] == ["ok"]
    finally:
        view.close()
    status, out, _ = run_cli(capsys, "show", "ok", "--at-seq", "3", "--log", url)
    assert status == 0 and out.startswith("run ok as of seq 13") and "PENDING" in out
    status, _, err = run_cli(capsys, "show", "bad", "--at-seq", "3", "--log", url)
    assert status != 0 and "bad" in err


def test_verify_finds_a_run_index_that_does_not_match_the_events(
    url: str, pg: PgTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, "verify", "--log", url)[0] == 0
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"UPDATE \"{pg.schema}\".runs SET status = 'DONE' WHERE run_id = 'bad'")
    status, out, _ = run_cli(capsys, "verify", "--log", url)
    assert status == 1
    assert out.splitlines()[0] == (
        f"FAILED: {url}: the run index does not match the events: run 'bad': status is "
        "'DONE' in the index, 'RUNTIME_ERROR' from the events"
    )
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"DELETE FROM \"{pg.schema}\".runs WHERE run_id = 'bad'")
    status, out, _ = run_cli(capsys, "verify", "--log", url, "--format", "json")
    reason = json.loads(out)["run_index_reason"]
    assert status == 1 and reason.endswith("run 'bad': in the events, not in the index")
