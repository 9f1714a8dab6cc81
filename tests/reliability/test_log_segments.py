"""Sealed segments of the file log: one chain across files, read by every command, compressed
or not; a roll survives a crash at every step; hostile segment files are refused by name."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines_events import audit
from pipelines_events.cli.app import main
from pipelines_events.errors import LogCorruptError, LogError, LogOpenError
from pipelines_events.events import START, FieldSet
from pipelines_events.log import segments
from pipelines_events.log.jsonl import JsonlEventLog, TornWriteRepaired, read_events
from pipelines_events.log.open import open_log
from pipelines_events.results import helpers
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus as S
from pipelines_events.testing import ExamplePipeline, ExampleTask

ID = "3fc2789d-dd8e-4a50-b471-c8118a3fb962"


@pytest.fixture(autouse=True)
def fresh_storage() -> Iterator[None]:
    helpers.reset_storage_object()
    yield
    helpers.reset_storage_object()


def fs(value: int) -> FieldSet:
    return FieldSet(run_id="r", kind="task_result", id=ID, field="x", value=value)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    status = main(list(argv))
    out, _ = capsys.readouterr()
    return status, out


def drive(storage: EventLogPipelineResultsStorage, run_id: str) -> None:
    pipeline = ExamplePipeline("tests.Segmented", [ExampleTask("first"), ExampleTask("second")])
    execution = storage.build_pipeline_execution(pipeline, run_id, object(), None, None)
    for task_execution in execution.get_pipeline_results()[0].get_task_executions():
        for task_result in task_execution.get_task_results():
            task_result.report_status_change(None, S.RUNNING)
            task_result.report_status_change(None, S.DONE)


def flat_copy(path: Path, into: Path) -> None:
    """The log as one file: its sealed segments' lines, then the log file's."""
    sealed = segments.Sealed.load(path)
    assert sealed is not None
    data = b"".join(
        sealed.pread(info.bytes, start)
        for info, start in zip(sealed.segments, sealed.starts, strict=True)
    )
    sealed.close()
    into.write_bytes(data + path.read_bytes())
    into.chmod(0o600)


@pytest.fixture(params=[None, "gzip", "lzma"])
def segmented(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A log of three runs rolled every 25 events (compressed as the parameter says)."""
    path = tmp_path / "seg" / "results.jsonl"
    options: dict[str, Any] = {"segment_events": 25, "segment_compression": request.param}
    storage = EventLogPipelineResultsStorage(path, log_options=options)
    for run_id in ("one", "two", "three"):
        drive(storage, run_id)
    storage.close()
    return path


def test_every_command_reads_across_segments_as_from_one_file(
    segmented: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = segments.segments_dir(segmented)
    names = sorted(p.name for p in directory.iterdir())
    assert len(names) >= 3 and "manifest.json" in names
    flat = tmp_path / "flat.jsonl"
    flat_copy(segmented, flat)
    events = list(read_events(segmented))
    assert events == list(read_events(flat))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    with JsonlEventLog(segmented, readonly=True) as log, JsonlEventLog(flat, readonly=True) as one:
        assert log.head() == one.head()  # offsets run over the segments' uncompressed bytes
        assert log.head().offset == flat.stat().st_size
        assert log.cursor_at(30) == one.cursor_at(30)
    commands = [
        ["runs", "--format", "json"],
        ["show", "two", "--format", "json"],
        ["history", "one", "--format", "jsonl"],
        ["head"],
        ["cleanup", "--all", "--dry-run", "--format", "json"],
        ["replay", "{log}", "--format", "jsonl"],
        ["follow", "--from-seq", "1", "--timeout", "0.1", "--format", "jsonl"],
    ]
    for argv in commands:
        outputs = []
        for log in (segmented, flat):
            args = [a.format(log=log) for a in argv]
            if "replay" not in argv:
                args += ["--log", str(log)]
            status, out = run_cli(capsys, *args)
            assert status in (0, 124), (argv, out)
            outputs.append(out.replace(str(log), "LOG"))
        assert outputs[0] == outputs[1], argv
    status, out = run_cli(capsys, "verify", "--log", str(segmented), "--format", "json")
    assert status == 0 and json.loads(out)["ok"] is True
    exported = tmp_path / "two.jsonl"
    assert main(["export", "two", "-o", str(exported), "--log", str(segmented)]) == 0
    assert audit.verify(exported).ok


def test_a_storage_over_segments_reads_and_keeps_writing(segmented: Path) -> None:
    storage = EventLogPipelineResultsStorage(
        segmented, log_options={"segment_events": 25, "segment_compression": "gzip"}
    )
    assert [e.get_run_id() for e in storage.get_pipeline_executions()] == ["one", "two", "three"]
    drive(storage, "four")
    storage.close()
    report = audit.verify(segmented)
    assert report.ok and report.runs == 4
    reader = EventLogPipelineResultsStorage(segmented, readonly=True)
    assert reader.get_pipeline_execution("four") is not None
    reader.close()


def test_readers_and_writers_in_other_handles_follow_a_roll(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    writer = JsonlEventLog(path, segment_events=3)
    other = JsonlEventLog(path)  # never rolls itself, writes between the rolls
    reader = JsonlEventLog(path, readonly=True)
    seen = []
    for value in range(20):
        (writer if value % 3 else other).append([fs(value)])
        seen.extend(event.seq for event in reader.read_new())
        assert reader.has_new() is False
    assert seen == list(range(1, 21))
    assert reader.wait(reader.position, 0) is False
    writer.append([fs(99)])
    assert reader.wait(reader.position, 1) is True
    for log in (writer, other, reader):
        log.close()
    assert audit.verify(path).ok
    sealed = segments.Sealed.load(path)
    assert sealed is not None and sealed.last_seq >= 18
    sealed.close()


def _opening_writer(path: str, writer: int, appends: int, go: Any) -> None:
    go.wait(30)
    for number in range(appends):
        # Each append opens the log anew: an open waits for the lock of the file another
        # writer is rolling, and must go on in the new file, losing nothing written there.
        with JsonlEventLog(path, segment_events=3, durability="none") as log:
            log.append([fs(writer * 1000 + number)])


def test_writer_processes_opening_and_rolling_one_log_lose_no_event(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    context = multiprocessing.get_context("fork")
    go = context.Event()
    writers, appends = 4, 40
    processes = [
        context.Process(target=_opening_writer, args=(str(path), writer, appends, go))
        for writer in range(writers)
    ]
    for process in processes:
        process.start()
    go.set()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0] * writers
    values = sorted(e.value for e in read_events(path) if isinstance(e, FieldSet))
    assert values == sorted(w * 1000 + n for w in range(writers) for n in range(appends))
    report = audit.verify(path)
    assert report.ok, report.reason
    assert report.events == writers * appends


STEPS = [
    "segment-written",
    "segment-renamed",
    "manifest-written",
    "manifest-renamed",
    "log-written",
    "log-renamed",
]


def _crashing_writer(path: str, step: str, acks: Any) -> None:
    def crash(reached: str) -> None:
        if reached == step:
            os._exit(17)  # a crash: no cleanup, no flush, the lock released by the kernel

    segments._reached = crash
    log = JsonlEventLog(path, segment_events=4, durability="fsync")
    for value in range(1, 50):
        log.append([fs(value), fs(-value)])
        log.commit()
        acks.send(value)
    os._exit(0)


@pytest.mark.parametrize("step", STEPS)
def test_a_roll_survives_a_crash_at_every_step(tmp_path: Path, step: str) -> None:
    path = tmp_path / "x.jsonl"
    with JsonlEventLog(path, segment_events=4) as log:
        log.append([fs(0)])
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_crashing_writer, args=(str(path), step, send))
    child.start()
    child.join(60)
    assert child.exitcode == 17
    acked = []
    while receive.poll():
        acked.append(receive.recv())
    # A reader sees one whole chain; a writer finishes or forgets the roll.
    values = [e.value for e in read_events(path) if isinstance(e, FieldSet)]
    assert values[0] == 0 and all(v in values for a in acked for v in (a, -a))
    assert len(values) == len(set(values))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornWriteRepaired)
        writer = JsonlEventLog(path, segment_events=4)
    assert [e.value for e in writer.read_new() if isinstance(e, FieldSet)] == values
    for value in range(100, 110):
        writer.append([fs(value)])
    writer.close()
    report = audit.verify(path)
    assert report.ok, report.reason
    after = [e.value for e in read_events(path) if isinstance(e, FieldSet)]
    assert after == values + list(range(100, 110))
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".next")]
    assert leftovers == [] or step == "log-written"


# -- hostile segments ---------------------------------------------------------------------


@pytest.fixture
def rolled(tmp_path: Path) -> Path:
    path = tmp_path / "x.jsonl"
    with JsonlEventLog(path, segment_events=4) as log:
        for value in range(14):
            log.append([fs(value)])
    return path


def first_segment(path: Path) -> Path:
    sealed = segments.Sealed.load(path)
    assert sealed is not None
    sealed.close()
    return sealed.path(0)


def assert_refused(path: Path, named: Path, reason: str) -> None:
    with pytest.raises(LogError) as info:
        list(read_events(path))
    assert str(named) in str(info.value) and reason in str(info.value), info.value
    report = audit.verify(path)
    assert not report.ok and str(named) in (report.reason or "") + str(report.path)


def test_a_segment_replaced_by_a_symlink_is_refused(rolled: Path, tmp_path: Path) -> None:
    segment = first_segment(rolled)
    copy = tmp_path / "elsewhere.jsonl"
    shutil.copyfile(segment, copy)
    segment.unlink()
    segment.symlink_to(copy)
    with pytest.raises(LogCorruptError) as info:
        list(read_events(rolled))
    assert info.value.path == str(segment)
    assert "symbolic link; refusing to follow it" in info.value.reason


def test_a_segment_of_another_chain_is_refused(rolled: Path, tmp_path: Path) -> None:
    other = tmp_path / "other" / "x.jsonl"
    with JsonlEventLog(other, segment_events=4) as log:
        for value in range(14):  # the same lengths, another run: another chain
            log.append([FieldSet(run_id="q", kind="task_result", id=ID, field="x", value=value)])
    shutil.copyfile(first_segment(other), first_segment(rolled))
    with pytest.raises(LogCorruptError) as info:
        list(read_events(rolled))
    assert info.value.path == str(first_segment(rolled))
    assert "hash is not the one the manifest records" in info.value.reason
    report = audit.verify(rolled)
    assert not report.ok


def test_a_segment_with_a_forged_line_is_refused_naming_it(rolled: Path) -> None:
    segment = first_segment(rolled)
    data = segment.read_bytes().replace(b'"value":1,', b'"value":7,')
    segment.write_bytes(data)
    with pytest.raises(LogCorruptError) as info:
        list(read_events(rolled))
    assert info.value.path == str(segment) and info.value.line == 2
    assert "hash link broken" in info.value.reason
    report = audit.verify(rolled)
    assert not report.ok and report.line == 2
    assert str(segment) in (report.reason or "")  # verify names the segment file too


def test_a_truncated_segment_is_refused(rolled: Path) -> None:
    segment = first_segment(rolled)
    segment.write_bytes(segment.read_bytes()[:-10])
    with pytest.raises(LogCorruptError) as info:
        list(read_events(rolled))
    assert info.value.path == str(segment)
    assert "the manifest says" in info.value.reason


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not-gzip"])
def test_a_bad_compressed_segment_is_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "x.jsonl"
    with JsonlEventLog(path, segment_events=4, segment_compression="gzip") as log:
        for value in range(10):
            log.append([fs(value)])
    segment = first_segment(path)
    raw = segment.read_bytes()
    bad = {
        "truncated": raw[: len(raw) // 2],
        "garbage": raw[:10] + bytes(len(raw) - 10),
        "not-gzip": b"x" * len(raw),
    }[damage]
    if damage != "truncated":
        segment.write_bytes(bad)
    else:
        # Truncated and the manifest forged to match: the gzip stream itself is cut.
        segment.write_bytes(bad)
        manifest = segments_manifest(path)
        manifest["segments"][0]["stored"] = len(bad)
        (segments.segments_dir(path) / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LogCorruptError) as info:
        list(read_events(path))
    assert info.value.path == str(segment)
    expected = {"truncated": "does not decompress", "garbage": "does not decompress",
                "not-gzip": "it is not gzip data"}[damage]  # fmt: skip
    assert expected in info.value.reason
    assert not audit.verify(path).ok


def segments_manifest(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((segments.segments_dir(path) / "manifest.json").read_text())
    return data


def test_a_damaged_or_linked_manifest_is_refused(rolled: Path, tmp_path: Path) -> None:
    manifest = segments.segments_dir(rolled) / "manifest.json"
    good = manifest.read_bytes()
    manifest.write_bytes(b"{not json")
    with pytest.raises(LogCorruptError) as info:
        JsonlEventLog(rolled, readonly=True)
    assert info.value.path == str(manifest) and "not a manifest of segments" in info.value.reason
    (tmp_path / "m.json").write_bytes(good)
    manifest.unlink()
    manifest.symlink_to(tmp_path / "m.json")
    with pytest.raises(LogCorruptError, match="the manifest is a symbolic link"):
        JsonlEventLog(rolled)
    manifest.unlink()
    entries = json.loads(good)
    entries["segments"][1]["first_seq"] += 1
    manifest.write_text(json.dumps(entries))
    with pytest.raises(LogCorruptError, match=r"should be named|does not follow seq"):
        JsonlEventLog(rolled, readonly=True)


def test_a_log_file_that_does_not_follow_its_segments_is_refused(rolled: Path) -> None:
    sealed = segments.Sealed.load(rolled)
    assert sealed is not None
    sealed.close()
    rolled.write_bytes(sealed.path(0).read_bytes())  # an old file restored over the log
    with pytest.raises(LogError, match="are not one log"):
        JsonlEventLog(rolled, readonly=True)
    # verify reports the damage as a failed check (exit 1), not as a log it cannot read.
    report = audit.verify(rolled)
    assert not report.ok and "are not one log" in (report.reason or "")
    assert (report.head_seq, report.events) == (0, 0)


def test_a_manifest_whose_first_segment_does_not_begin_the_chain_is_refused(
    rolled: Path,
) -> None:
    manifest = segments_manifest(rolled)
    manifest["segments"][0]["prev_hash"] = "1" * 64
    (segments.segments_dir(rolled) / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LogCorruptError, match="does not begin the chain"):
        list(read_events(rolled))
    report = audit.verify(rolled)
    assert not report.ok and "does not begin the chain" in (report.reason or "")


def test_verify_reports_a_damaged_manifest_as_a_failed_check(
    rolled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = segments.segments_dir(rolled) / "manifest.json"
    manifest.write_bytes(b"{not json")
    report = audit.verify(rolled)
    assert not report.ok and report.line == 1
    assert str(manifest) in (report.reason or "") and "not a manifest of segments" in (
        report.reason or ""
    )
    status, out = run_cli(capsys, "verify", "--log", str(rolled))
    assert status == 1 and out.startswith("FAILED:"), out
    # A log that is not there at all is still "cannot be read" (exit 2).
    status, _ = run_cli(capsys, "verify", "--log", str(rolled.with_name("absent.jsonl")))
    assert status == 2


# -- bad options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"segment_bytes": 0}, "segment_bytes must be a whole number of at least 1"),
        ({"segment_bytes": -5}, "segment_bytes must be a whole number of at least 1"),
        ({"segment_bytes": "1MB"}, "segment_bytes must be a whole number of at least 1"),
        ({"segment_bytes": True}, "segment_bytes must be a whole number of at least 1"),
        ({"segment_events": 0}, "segment_events must be a whole number of at least 1"),
        ({"segment_events": 2.5}, "segment_events must be a whole number of at least 1"),
        (
            {"segment_events": 5, "segment_compression": "zip"},
            "segment_compression must be one of 'gzip', 'lzma' or None, not 'zip'",
        ),
        ({"segment_compression": "gzip"}, "segment_compression needs segment_bytes"),
    ],
)
def test_bad_segment_options_are_refused_and_write_nothing(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    path = tmp_path / "logs" / "x.jsonl"
    with pytest.raises(LogOpenError) as info:
        open_log(path, **options)
    assert message in str(info.value) and "nothing was written" in str(info.value)
    with pytest.raises(LogOpenError, match=re.escape(message)):
        EventLogPipelineResultsStorage(path, log_options=options)
    assert list(tmp_path.iterdir()) == []


def test_segment_bytes_rolls_by_size_and_the_offsets_stay_logical(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    with JsonlEventLog(path, segment_bytes=1000, segment_compression="lzma") as log:
        for value in range(30):
            log.append([fs(value)])
        head = log.head()
    sealed = segments.Sealed.load(path)
    assert sealed is not None
    assert all(info.bytes >= 1000 for info in sealed.segments)
    assert all(info.stored < info.bytes for info in sealed.segments)
    assert head.offset == sealed.base + path.stat().st_size
    sealed.close()
    with JsonlEventLog(path, readonly=True) as log:
        log.seek(head)
        assert list(log.read_new()) == []
        assert [b.events[0].seq for b in log.read(START)] == list(range(1, 31))
    raw = gzip.compress(b"")  # the stdlib compressions only: nothing else is needed
    assert raw
