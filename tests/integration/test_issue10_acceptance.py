"""Acceptance of issue 10 across its parts: a log written by another tool with a value
nested too deeply for the decoder is a clear error naming the line in every command,
never a traceback, and nothing is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from msgspec.structs import replace

from pipelines_events.errors import LogCorruptError
from pipelines_events.events import GENESIS_HASH
from pipelines_events.log.chain import decode_event, encode_event, seal
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage

DEEP = 5000


@pytest.fixture(scope="module")
def deep_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    """A demo log whose first ``message`` value is rewritten ``DEEP`` lists deep and
    chained again, as another tool could write it."""
    directory = tmp_path_factory.mktemp("deep")
    log = directory / "deep.jsonl"
    subprocess.run(
        [sys.executable, "-m", "pipelines_events", "demo", "--log", str(log), "-q"],
        check=True,
        capture_output=True,
    )
    events = [decode_event(line) for line in log.read_bytes().splitlines()]
    target = next(e for e in events if getattr(e, "field", "") == "message")
    out, prev = [], GENESIS_HASH
    for event in events:
        body = encode_event(replace(event, hash=""))
        if event.seq == target.seq:
            body = encode_event(replace(event, value="DEEP", hash="")).replace(
                b'"DEEP"', b"[" * DEEP + b"]" * DEEP
            )
        line, prev = seal(body, prev)
        out.append(line)
    log.write_bytes(b"".join(out))
    os.chmod(log, 0o600)
    return log, events[0].run_id, target.seq


COMMANDS = [
    ["runs"],
    ["show", "{run}"],
    ["history", "{run}"],
    ["export", "{run}", "-o", "{dir}/out.jsonl"],
    ["verify"],
    ["replay", "{log}"],
    ["follow"],
    ["demo", "-q"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_value_too_deep_to_decode_is_a_clear_error_in_every_command(
    deep_log: tuple[Path, str, int], command: list[str]
) -> None:
    log, run, seq = deep_log
    before = sorted(os.listdir(log.parent))
    data = log.read_bytes()
    args = [a.format(run=run, dir=log.parent, log=log) for a in command]
    if command[0] != "replay":
        args += ["--log", str(log)]
    result = subprocess.run(
        [sys.executable, "-m", "pipelines_events", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "RecursionError" not in output
    assert result.returncode != 0
    assert f"{log.name}: line {seq}: a value nests lists and dicts too deeply to decode" in output
    assert log.read_bytes() == data
    assert sorted(os.listdir(log.parent)) == before


def test_a_value_too_deep_to_decode_is_a_log_corrupt_error_through_the_api(
    deep_log: tuple[Path, str, int],
) -> None:
    log, _, seq = deep_log
    data = log.read_bytes()
    with pytest.raises(LogCorruptError, match=f"line {seq}: a value nests lists and dicts too"):
        EventLogPipelineResultsStorage(path=str(log), log_options={"run_index": False})
    assert log.read_bytes() == data
