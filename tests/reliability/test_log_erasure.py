"""Erasure: ``cleanup --erase`` erases the removed runs' content from the sealed segments; the
chain still verifies end to end, and ``verify`` says how many events are erased."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from pipelines_events import audit
from pipelines_events.cli.app import main
from pipelines_events.errors import InvalidValueError, LogCorruptError, LogError
from pipelines_events.events import Erased, FieldSet, ObjectCreated, RunRemoved
from pipelines_events.log import segments
from pipelines_events.log.chain import erased_line
from pipelines_events.log.jsonl import JsonlEventLog, read_events
from pipelines_events.log.memory import drop_memory_store
from pipelines_events.results import helpers
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus as S
from pipelines_events.testing import ExamplePipeline, ExampleTask

SECRET = "s3cr3t-personal-data"
OPTIONS: dict[str, Any] = {"segment_events": 20}
V1 = Path(__file__).parents[1] / "support" / "fixtures" / "v1-log.jsonl"


@pytest.fixture(autouse=True)
def fresh_storage() -> Iterator[None]:
    helpers.reset_storage_object()
    yield
    helpers.reset_storage_object()


def drive(storage: EventLogPipelineResultsStorage, run_id: str, secret: str = "") -> None:
    pipeline = ExamplePipeline("tests.Erased", [ExampleTask("first"), ExampleTask("second")])
    data = {"who": secret or run_id}
    execution = storage.build_pipeline_execution(pipeline, run_id, None, None, data)
    for task_execution in execution.get_pipeline_results()[0].get_task_executions():
        for task_result in task_execution.get_task_results():
            task_result.report_status_change(None, S.RUNNING)
            task_result.report_status_change(None, S.DONE)


def all_bytes(path: Path) -> bytes:
    """Every byte on disk of the log, its segments (decompressed) and its snapshot."""
    data = b""
    for file in sorted(path.parent.rglob("*")):
        if file.is_file():
            raw = file.read_bytes()
            if file.suffix == ".gz":
                import gzip

                raw = gzip.decompress(raw)
            data += raw
    return data


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """Runs ``old`` (holding SECRET) and ``kept`` sealed in segments, ``late`` after."""
    path = tmp_path / "results.jsonl"
    storage = EventLogPipelineResultsStorage(path, log_options=OPTIONS)
    drive(storage, "old", SECRET)
    drive(storage, "kept")
    execution = storage.get_pipeline_execution("kept")
    assert execution is not None
    storage.close()
    return path


def remove_old(path: Path) -> None:
    storage = EventLogPipelineResultsStorage(path, log_options=OPTIONS)
    execution = storage.get_pipeline_execution("old")
    assert execution is not None
    # Remove only "old": complete it earlier than "kept" by removing before kept's end.
    kept = storage.get_pipeline_execution("kept")
    assert kept is not None
    storage.cleanup(before=kept.get_completed())
    storage.close()


def test_cleanup_erase_erases_the_removed_runs_content_and_the_log_verifies(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert SECRET.encode() in all_bytes(log)
    before = {e.seq: e.hash for e in read_events(log)}
    kept = EventLogPipelineResultsStorage(log, readonly=True)
    kept_state = kept.get_pipeline_execution("kept")
    assert kept_state is not None
    kept_status = [r.get_status() for r in kept.get_pipeline_results()]
    kept.close()
    capsys.readouterr()
    status = main(["cleanup", "--log", str(log), "--all", "--erase", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [row["run_id"] for row in out["runs"]] == ["old", "kept"]
    erasure = out["erasure"]
    assert erasure["erased_events"] > 0 and erasure["bytes_reclaimed"] > 0
    assert SECRET.encode() not in all_bytes(log)
    after = list(read_events(log))
    assert {e.seq: e.hash for e in after if e.seq in before} == before  # same chain
    erased = [e for e in after if type(e) is Erased]
    assert len(erased) == erasure["erased_events"]
    report = audit.verify(log)
    assert report.ok, report.reason
    assert report.erased == len(erased)
    assert report.snapshot_state in ("matches", "none")
    capsys.readouterr()
    assert main(["verify", "--log", str(log)]) == 0
    assert f"{len(erased)} events erased" in capsys.readouterr().out
    assert kept_status  # the runs were readable before; they are removed now
    assert main(["history", "old", "--log", str(log), "--format", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["action"] for line in lines] == ["removed"]


def test_only_removed_runs_are_erased_and_kept_runs_read_as_before(log: Path) -> None:
    storage = EventLogPipelineResultsStorage(log, log_options=OPTIONS)
    drive(storage, "late")  # rolls: "old" and "kept" are sealed
    old = storage.get_pipeline_execution("old")
    assert old is not None
    storage.close()
    remove_old(log)
    reader = EventLogPipelineResultsStorage(log, readonly=True)
    before = {
        run: [r.get_status() for r in reader.get_pipeline_results() if r.get_run_id() == run]
        for run in ("kept", "late")
    }
    reader.close()
    storage = EventLogPipelineResultsStorage(log, log_options=OPTIONS)
    done = storage.erase_removed()
    storage.close()
    assert done.erased > 0 and done.reclaimed > 0 and done.version_1 == 0
    events = list(read_events(log))
    assert {e.run_id for e in events if type(e) is Erased} == {"old"}
    assert all(type(e) is not Erased for e in events if e.run_id != "old")
    reader = EventLogPipelineResultsStorage(log, readonly=True)
    assert [e.get_run_id() for e in reader.get_pipeline_executions()] == ["kept", "late"]
    after = {
        run: [r.get_status() for r in reader.get_pipeline_results() if r.get_run_id() == run]
        for run in ("kept", "late")
    }
    reader.close()
    assert after == before
    assert audit.verify(log).ok
    # Erasing again finds nothing more to erase.
    storage = EventLogPipelineResultsStorage(log)
    assert storage.erase_removed().erased == 0
    storage.close()


def test_events_in_the_log_file_and_version_1_events_are_kept_and_counted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v1.jsonl"
    shutil.copyfile(V1, path)
    path.chmod(0o600)
    storage = EventLogPipelineResultsStorage(path, log_options={"segment_events": 50})
    drive(storage, "new")  # version 2 events; the 45 version 1 ones roll into a segment
    storage.close()
    storage = EventLogPipelineResultsStorage(path)
    storage.cleanup()  # removes old-two and new (old-one was removed in version 1)
    done = storage.erase_removed()
    storage.close()
    assert done.version_1 > 0  # old-one's and old-two's version 1 events: not erasable
    assert done.erased + done.unsealed > 0
    report = audit.verify(path)
    assert report.ok, report.reason
    assert report.erased == done.erased


def test_a_forged_segment_is_not_laundered_by_an_erasure(log: Path) -> None:
    remove_old(log)
    sealed = segments.Sealed.load(log)
    assert sealed is not None
    segment = sealed.path(0)
    sealed.close()
    forged = segment.read_bytes().replace(SECRET.encode(), b"s3cr3t-personal-DATA")
    assert forged != segment.read_bytes()
    segment.write_bytes(forged)
    before = {p.name: p.read_bytes() for p in segment.parent.iterdir()}
    with pytest.raises(LogCorruptError) as info:  # a full fold does not even open
        EventLogPipelineResultsStorage(log, snapshots=False, log_options={"run_index": False})
    assert not audit.verify(log).ok  # over the run index, verify finds it
    with JsonlEventLog(log) as writer, pytest.raises(LogCorruptError) as info:
        writer.erase_sealed({"old": 10**6})  # erasing checks each line it rewrites
    assert "the segment does not verify; nothing was erased" in str(info.value)
    assert str(segment) in str(info.value)
    assert {p.name: p.read_bytes() for p in segment.parent.iterdir()} == before


def test_a_failed_erasure_names_the_runs_cleanup_removed(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sealed = segments.Sealed.load(log)
    assert sealed is not None
    segment = sealed.path(0)
    sealed.close()
    segment.write_bytes(segment.read_bytes().replace(SECRET.encode(), b"s3cr3t-personal-DATA"))
    capsys.readouterr()
    assert main(["cleanup", "--log", str(log), "--all", "--erase"]) == 2
    out, err = capsys.readouterr()
    assert "removed 2 runs" in out and "old" in out and "kept" in out
    assert "the runs listed were removed, but nothing was erased" in err
    assert str(segment) in err


def test_an_erased_event_of_a_run_never_removed_fails_verify(log: Path) -> None:
    sealed = segments.Sealed.load(log)
    assert sealed is not None
    segment = sealed.path(0)
    sealed.close()
    lines = segment.read_bytes().splitlines()
    lines[3] = erased_line(lines[3])  # by hand, of a run still in the storage
    segment.write_bytes(b"".join(line + b"\n" for line in lines))
    report = audit.verify(log)
    assert not report.ok and report.line == 4
    assert "an erased event of run 'old', which no later event removes" in (report.reason or "")


def test_bad_erasure_requests_are_refused_and_write_nothing(
    log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = all_bytes(log)
    capsys.readouterr()
    assert main(["cleanup", "--log", str(log), "--all", "--erase", "--dry-run"]) == 2
    assert "--erase and --dry-run: a dry run erases nothing" in capsys.readouterr().err
    storage = EventLogPipelineResultsStorage(log)
    with pytest.raises(InvalidValueError, match="erase must be True or False, not 'yes'"):
        storage.cleanup(erase="yes")  # type: ignore[arg-type]  # the bad value under test
    storage.close()
    assert all_bytes(log) == before
    memory = EventLogPipelineResultsStorage("memory://erasure")
    try:
        drive(memory, "gone")
        with pytest.raises(LogError, match="this engine cannot erase events"):
            memory.cleanup(erase=True)
        assert [e.get_run_id() for e in memory.get_pipeline_executions()] == ["gone"]
    finally:
        memory.close()
        drop_memory_store("erasure")


def test_a_reader_opened_before_an_erasure_reads_the_rewritten_segments(log: Path) -> None:
    remove_old(log)
    reader = JsonlEventLog(log, readonly=True)  # its manifest names the old files
    storage = EventLogPipelineResultsStorage(log)
    assert storage.erase_removed().erased > 0
    storage.close()
    events = list(reader.read_new())
    reader.close()
    assert events == list(read_events(log))
    assert any(type(e) is Erased for e in events)


ERASE_STEPS = [
    "erased-segment-written",
    "erased-segment-renamed",
    "erased-manifest-written",
    "erased-manifest-renamed",
]


def _crashing_eraser(path: str, step: str) -> None:
    def crash(reached: str) -> None:
        if reached == step:
            os._exit(17)

    segments._reached = crash
    storage = EventLogPipelineResultsStorage(path, snapshots=False)
    storage.erase_removed()
    os._exit(0)


@pytest.mark.parametrize("step", ERASE_STEPS)
def test_an_erasure_survives_a_crash_at_every_step(log: Path, step: str) -> None:
    remove_old(log)
    context = multiprocessing.get_context("fork")
    child = context.Process(target=_crashing_eraser, args=(str(log), step))
    child.start()
    child.join(60)
    assert child.exitcode == 17
    report = audit.verify(log)
    assert report.ok, report.reason
    storage = EventLogPipelineResultsStorage(log)
    storage.erase_removed()  # finishes the work and removes what the crash left behind
    storage.close()
    assert audit.verify(log).ok
    assert SECRET.encode() not in all_bytes(log)
    values = [e for e in read_events(log) if isinstance(e, ObjectCreated | FieldSet)]
    assert {e.run_id for e in values} == {"kept"}


def test_export_and_replay_leave_erased_events_out(log: Path, tmp_path: Path) -> None:
    remove_old(log)
    storage = EventLogPipelineResultsStorage(log)
    assert storage.erase_removed().erased > 0
    storage.close()
    exported = tmp_path / "old.jsonl"
    assert main(["export", "old", "-o", str(exported), "--log", str(log)]) == 0
    events = list(read_events(exported))
    assert [type(e).__name__ for e in events] == ["RunRemoved"]
    assert audit.verify(exported).ok
    into = tmp_path / "into.jsonl"
    assert main(["replay", str(log), "--into", str(into), "--format", "jsonl"]) == 0
    assert not into.exists() or SECRET.encode() not in into.read_bytes()


def _seqs_by_run(path: Path) -> dict[str, list[int]]:
    seqs: dict[str, list[int]] = {}
    for event in read_events(path):
        seqs.setdefault(event.run_id, []).append(event.seq)
    return seqs


def test_a_removed_run_partly_in_the_log_file_is_erased_only_once_it_is_sealed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "straddle.jsonl"
    storage = EventLogPipelineResultsStorage(path, log_options=OPTIONS)
    straddling = None
    for number in range(1, 8):
        drive(storage, f"r{number}", SECRET)
        log = storage.log
        assert isinstance(log, JsonlEventLog) and log.sealed is not None
        seqs = _seqs_by_run(path)[f"r{number}"]
        if seqs[0] <= log.sealed.last_seq < seqs[-1]:
            straddling = f"r{number}"
            break
    assert straddling is not None, "no run began in a segment and ended in the log file"
    storage.cleanup(erase=True)
    storage.close()
    # Its creations are not erased while its later changes are in the log file: the log
    # still folds whole, and every later cleanup works.
    kept = [e for e in read_events(path) if e.run_id == straddling and type(e) is not Erased]
    assert any(type(e) is ObjectCreated for e in kept)
    full = EventLogPipelineResultsStorage(path, log_options={**OPTIONS, "run_index": False})
    assert full.get_pipeline_executions() == []
    assert full.cleanup(erase=True) == []
    full.close()
    assert audit.verify(path).ok
    # Once the rest of it is sealed, the next erasure takes it.
    storage = EventLogPipelineResultsStorage(path, log_options=OPTIONS)
    for number in range(10, 14):
        drive(storage, f"r{number}")
    done = storage.erase_removed()
    storage.close()
    assert done.erased > 0
    rest = [e for e in read_events(path) if e.run_id == straddling and type(e) is not RunRemoved]
    assert rest and all(type(e) is Erased for e in rest)
    assert SECRET.encode() not in all_bytes(path)
    with closing(EventLogPipelineResultsStorage(path, log_options={"run_index": False})) as full:
        assert {e.get_run_id() for e in full.get_pipeline_executions()} == {
            f"r{number}" for number in range(10, 14)
        }
    assert audit.verify(path).ok


def test_an_erasure_replaces_a_snapshot_another_storage_wrote(log: Path) -> None:
    full_options = {**OPTIONS, "run_index": False}
    # A storage that folds the whole log writes a snapshot holding every run's content.
    with closing(
        EventLogPipelineResultsStorage(log, snapshot_every=1, log_options=full_options)
    ) as full:
        assert full.get_pipeline_execution("old") is not None
        full.write_snapshot()
    snapshot = log.with_name(log.name + ".snapshot")
    assert SECRET.encode() in snapshot.read_bytes()
    remove_old(log)
    # The default storage keeps no snapshot of its own: its erasure replaces that one.
    with closing(EventLogPipelineResultsStorage(log, log_options=OPTIONS)) as storage:
        assert storage.erase_removed().erased > 0
    assert SECRET.encode() not in all_bytes(log)
    report = audit.verify(log)
    assert report.ok, report.reason
    assert report.snapshot_state == "matches"
    with closing(EventLogPipelineResultsStorage(log, log_options=full_options)) as full:
        assert [e.get_run_id() for e in full.get_pipeline_executions()] == ["kept"]


def test_erasing_segments_compressed_already_reports_how_much_they_grew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gz.jsonl"
    options = {"segment_events": 30, "segment_compression": "gzip"}
    storage = EventLogPipelineResultsStorage(path, log_options=options)
    for run_id in ("a", "b", "c"):
        drive(storage, run_id, SECRET)
    storage.close()
    directory = path.with_name(path.name + ".segments")
    before = sum(f.stat().st_size for f in directory.iterdir() if f.suffix == ".gz")
    capsys.readouterr()
    assert main(["cleanup", "--log", str(path), "--all", "--erase", "--format", "json"]) == 0
    erasure = json.loads(capsys.readouterr().out)["erasure"]
    after = sum(f.stat().st_size for f in directory.iterdir() if f.suffix == ".gz")
    assert erasure["erased_events"] > 0
    assert erasure["bytes_reclaimed"] == before - after
    assert SECRET.encode() not in all_bytes(path)
    # The text says which way the size went, never a negative "reclaimed".
    storage = EventLogPipelineResultsStorage(path, log_options=options)
    for run_id in ("d", "e", "f"):
        drive(storage, run_id, SECRET)
    storage.close()
    assert main(["cleanup", "--log", str(path), "--all", "--erase"]) == 0
    text = capsys.readouterr().out
    assert "reclaimed -" not in text
    assert "the segments grew by " in text or "reclaimed " in text
