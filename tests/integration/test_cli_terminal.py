"""What reaches the terminal is printed literally: no rich markup is interpreted and control
characters are escaped, in every command and every format meant for a terminal."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines_events.results import helpers
from tests.support.cli_pipelines import HOSTILE
from tests.support.cli_support import run_cli

CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Every character a terminal may act on, but the newline that ends each line."""
SHOWN = "x[/bold][red]\\x1b]0;pwned\\x07\\x1b[2J\\r\\b\\x9b\\u202e\\x00"
"""How :data:`HOSTILE` reads on a terminal."""


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("COLUMNS", "1000")  # no cell of a table is folded or cut
    helpers.reset_storage_object()
    yield
    helpers.reset_storage_object()


STYLES = re.compile(r"\x1b\[[0-9;]*m")


def assert_literal(out: str, *shown: str) -> None:
    """``out`` holds no control character and shows each of ``shown`` (on a terminal,
    apart from the style escapes rich writes)."""
    if os.environ.get("TTY_COMPATIBLE") == "1":
        out = STYLES.sub("", out)
    found = CONTROLS.search(out.replace("\t", " "))  # tabs: the columns of piped output
    assert found is None, f"{found.group()!r} at {found.start()} in {out!r}" if found else ""
    for text in shown:
        assert text in out


def test_printable_escapes_controls_and_keeps_text() -> None:
    from pipelines_events.cli.common import printable

    assert printable(HOSTILE) == SHOWN
    assert printable(SHOWN) == SHOWN  # twice changes nothing more
    kept = "lima ✓ ünï 東京 👨‍👩‍👧 [bold] \\x1b"
    assert printable(kept) == kept
    assert printable("\t\n\x7f\u2066\u2028") == "\\t\\n\\x7f\\u2066\\u2028"
    assert printable(12) == "12"


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_every_command_prints_markup_and_control_characters_literally(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    terminal: bool,
) -> None:
    if terminal:  # rich takes stdout for a terminal: tables, not tab-separated lines
        monkeypatch.setenv("TTY_COMPATIBLE", "1")
        monkeypatch.setenv("NO_COLOR", "1")
        monkeypatch.setenv("COLUMNS", "200")
    title = "history of " if terminal else ""
    log = tmp_path / "log\x1b[7m.jsonl"
    shown_log = str(log).replace("\x1b", "\\x1b")
    status, out, err = run_cli(
        capsys, "run", "tests.support.cli_pipelines.Hostile", "--run-id", HOSTILE, "--log", str(log)
    )
    assert status == 1  # the second task result fails, with HOSTILE in its message
    assert_literal(out, f"run {SHOWN} · evil{SHOWN}", f"[bold]lima{SHOWN[:16]}", f"boom {SHOWN}")
    assert_literal(err, f"evil{SHOWN}", f"[i]two{SHOWN[:16]}", f"boom {SHOWN}")

    export = tmp_path / "export\x1b[1m.jsonl"
    shown_export = str(export).replace("\x1b", "\\x1b")
    into = tmp_path / "into.jsonl"
    where = ["--log", str(log)]
    commands: list[tuple[list[str], int, list[str]]] = [
        (["runs", *where], 0, [SHOWN, f"evil{SHOWN}"]),
        (["runs", *where, "--pipeline", "nope[/]"], 0, [f"no run in {shown_log}"]),
        (["show", HOSTILE, *where], 0, [f"run {SHOWN}", f"[i]one{SHOWN[:16]}", f"boom {SHOWN}"]),
        (["show", HOSTILE[:6], *where, "--at-seq", "1"], 0, [f"run {SHOWN} as of seq"]),
        (["history", HOSTILE, *where], 0, [f"{title}{SHOWN}", f"lima{SHOWN[:12]}", "boom"]),
        (["history", HOSTILE, *where, "--field", "nothing"], 0, [f"history of {SHOWN}"]),
        (["export", HOSTILE, "-o", str(export), *where], 0, [f"run {SHOWN}", shown_export]),
        (["replay", str(export), "--into", str(into)], 0, [f"run {SHOWN}", f"boom {SHOWN}"]),
        (["verify", *where], 0, [f"OK: {shown_log}"]),
        (["verify", "--log", str(export)], 0, [f"OK: {shown_export}"]),
        (["head", *where], 0, [":"]),
        (["follow", *where, "--from-seq", "1", "--timeout", "0"], 0, [f"run {SHOWN}", "boom"]),
        (["follow", HOSTILE, *where, "--until-done", "--timeout", "0"], 1, []),
    ]
    for argv, expected, shown in commands:
        status, out, err = run_cli(capsys, *argv)
        assert status == expected, (argv, err)
        assert_literal(out, *shown)
        assert_literal(err)
    assert f"run {SHOWN} finished: RUNTIME_ERROR" in err

    # Errors and warnings name what they are about literally too.
    status, out, err = run_cli(capsys, "show", f"nope{HOSTILE}", *where)
    assert status == 2 and out == ""
    assert_literal(err, "pipelines-events: error: no run has the id 'nopex[/bold][red]\\x1b]0;")
    status, out, err = run_cli(capsys, "history", f"{HOSTILE}-missing", *where)
    assert status == 2
    assert_literal(err, "no run and no object has the id 'x[/bold][red]\\x1b]0;")
    with log.open("ab") as torn:
        torn.write(b'{"type":"FieldSet"')
    status, out, err = run_cli(capsys, "demo", *where, "--quiet")
    assert status == 0
    assert_literal(out, shown_log)
    assert_literal(err, f"pipelines-events: warning: {shown_log}: removed 18 bytes")


def test_json_formats_keep_the_values_exactly_that_tables_escape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "x.jsonl"
    run_cli(
        capsys, "run", "tests.support.cli_pipelines.Hostile", "--run-id", HOSTILE, "--log", str(log)
    )
    status, out, _ = run_cli(capsys, "runs", "--log", str(log), "--format", "json")
    assert status == 0
    [run] = json.loads(out)
    assert run["run_id"] == HOSTILE and run["pipeline_id"] == f"evil{HOSTILE}"
    status, out, _ = run_cli(capsys, "show", HOSTILE, "--log", str(log), "--format", "jsonl")
    records = [json.loads(line) for line in out.splitlines()]
    assert {r["run_id"] for r in records} == {HOSTILE}
    assert f"boom {HOSTILE}" in {r["message"].removeprefix("RuntimeError: ") for r in records}
    status, out, _ = run_cli(capsys, "history", HOSTILE, "--log", str(log), "--format", "jsonl")
    assert {json.loads(line)["run_id"] for line in out.splitlines()} == {HOSTILE}
    status, out, _ = run_cli(capsys, "runs", "--log", str(log))
    assert status == 0
    assert_literal(out, SHOWN, f"evil{SHOWN}")
