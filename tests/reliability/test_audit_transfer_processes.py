"""Export and import with real processes: imports racing each other, an export killed."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipelines_events import audit
from pipelines_events.log import read_events
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from tests.support.audit_support import drive_run

pytestmark = pytest.mark.slow  # the quick subset (-m 'not slow') leaves these out

ROOT = Path(__file__).resolve().parents[2]

IMPORTER = """
import sys, time
from pathlib import Path
from pipelines_events import audit
source, into, go, ready = sys.argv[1:5]
Path(ready).touch()
deadline = time.monotonic() + 30
while not Path(go).exists():
    if time.monotonic() > deadline:
        raise SystemExit("the test never said go")
    time.sleep(0.001)
for outcome in audit.import_log(source, into):
    print(outcome.run_id, outcome.action, outcome.events)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    log = tmp_path / "original.jsonl"
    storage = EventLogPipelineResultsStorage(log, durability="none")
    drive_run(
        storage, "run-1", cities=tuple(f"city-{n}" for n in range(10)), fail=("city-5", "part-2")
    )
    storage.close()
    out = tmp_path / "run-1.jsonl"
    audit.export(log, "run-1", out)
    return out


def test_imports_of_one_export_racing_each_other_import_it_once(
    exported: Path, tmp_path: Path
) -> None:
    total = len(list(read_events(exported)))
    expected = audit.run_state(EventLogPipelineResultsStorage(exported, snapshots=False), "run-1")
    for attempt in range(6):
        into = tmp_path / f"into-{attempt}.jsonl"
        storage = EventLogPipelineResultsStorage(into, durability="none")
        drive_run(storage, "run-0", fail=None, cities=("oslo",))
        storage.close()
        go = tmp_path / f"go-{attempt}"
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", IMPORTER, str(exported), str(into), str(go), f"{go}.{n}"],
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(3)
        ]
        cli = [sys.executable, "-m", "pipelines_events", "replay", str(exported)]
        racers.append(
            subprocess.Popen(
                [*cli, "--into", str(into), "--format", "jsonl"],
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        deadline = time.monotonic() + 60
        while not all(Path(f"{go}.{n}").exists() for n in range(3)):
            assert time.monotonic() < deadline, "the importers did not start"
            time.sleep(0.005)
        time.sleep(0.1)  # the command line starts about as fast
        go.touch()
        outputs = [racer.communicate(timeout=120) for racer in racers]
        for racer, (_, err) in zip(racers, outputs, strict=True):
            assert racer.returncode == 0, err
        written = sum(int(out.split()[-1]) for out, _ in outputs[:3])
        assert written <= total
        events = [e for e in read_events(into) if e.run_id == "run-1"]
        assert len(events) == total, f"attempt {attempt}: {len(events)} events of {total}"
        report = audit.verify(into)
        assert report.ok and report.runs == 2
        storage = EventLogPipelineResultsStorage(into, snapshots=False)
        assert audit.run_state(storage, "run-1") == expected
        storage.close()


def _big_log(path: Path) -> None:
    """A log of one run with many large events: a slow export."""
    storage = EventLogPipelineResultsStorage(path, durability="none", snapshots=False)
    execution, _ = drive_run(storage, "big", fail=None, cities=("oslo",))
    result = execution.get_pipeline_results()[0].get_task_executions()[0].get_task_results()[0]
    payload = "x" * 4000
    for number in range(12_000):
        result.set_payload(f"{number} {payload}")
    storage.close()


def _parts(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(audit.PART_SUFFIX))


def test_an_export_killed_midway_leaves_a_file_the_next_export_removes(tmp_path: Path) -> None:
    log = tmp_path / "big.jsonl"
    _big_log(log)
    out = tmp_path / "out" / "big-run.jsonl"
    out.parent.mkdir()
    command = [sys.executable, "-m", "pipelines_events", "export", "big", "-o", str(out)]
    exporter = subprocess.Popen(
        [*command, "--log", str(log)], env=_env(), stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60

    def written() -> int:
        try:
            return max((out.parent / name).stat().st_size for name in _parts(out.parent))
        except (ValueError, FileNotFoundError):  # none yet, or gone: the export ended
            return 0

    while written() == 0 and exporter.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    exporter.send_signal(signal.SIGKILL)  # after its first MiB, long before its last
    exporter.wait()
    assert exporter.returncode == -signal.SIGKILL
    (left,) = _parts(out.parent)
    assert left.startswith(".big-run.jsonl.export-")
    assert not out.exists()

    summary = audit.export(log, "big", out)
    assert _parts(out.parent) == []
    assert sorted(p.name for p in out.parent.iterdir()) == ["big-run.jsonl"]
    assert audit.verify(out).ok and summary.events > 12_000


def test_an_export_under_way_keeps_its_file(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    storage = EventLogPipelineResultsStorage(log, durability="none")
    drive_run(storage, "run-1", fail=None, cities=("oslo",))
    storage.close()
    out = tmp_path / "run-1.jsonl"
    busy = tmp_path / ".run-1.jsonl.export-busy.part"
    abandoned = tmp_path / ".run-1.jsonl.export-dead.part"
    other = tmp_path / ".other.jsonl.export-dead.part"
    for path in (busy, abandoned, other):
        path.write_bytes(b"partial")
    fd = os.open(busy, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as the export writing it holds it
    try:
        audit.export(log, "run-1", out)
        assert busy.exists() and other.exists() and not abandoned.exists()
    finally:
        os.close(fd)
    audit.export(log, "run-1", out, force=True)
    assert not busy.exists() and other.exists()
    assert audit.verify(out).ok


def _import_at_once(
    source: Path,
    into: Path,
    barrier: threading.Barrier,
    outcomes: list[list[audit.ImportOutcome]],
    errors: list[BaseException],
) -> None:
    try:
        barrier.wait(10)
        outcomes.append(audit.import_log(source, into))
    except BaseException as exc:
        errors.append(exc)


def test_imports_of_one_export_racing_in_threads_import_it_once(
    exported: Path, tmp_path: Path
) -> None:
    total = len(list(read_events(exported)))
    for attempt in range(3):
        into = tmp_path / f"threads-{attempt}.jsonl"
        barrier = threading.Barrier(4)
        outcomes: list[list[audit.ImportOutcome]] = []
        errors: list[BaseException] = []
        threads = [
            threading.Thread(
                target=_import_at_once, args=(exported, into, barrier, outcomes, errors)
            )
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert sum(o.events for found in outcomes for o in found) == total
        assert len([e for e in read_events(into) if e.run_id == "run-1"]) == total
        assert audit.verify(into).ok
