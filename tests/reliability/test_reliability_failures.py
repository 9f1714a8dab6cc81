"""Failing writes: short writes, ENOSPC, EIO and fsync errors surface as LogWriteError.

The log is left without a partial line (or the next writer repairs it), and the storage
keeps working, with a continuous ``seq``, once the fault is gone. Faults are injected by
replacing functions of the ``os`` module that ``pipelines_events.log.jsonl`` calls, only
for the log's own descriptor, and always restored.
"""

from __future__ import annotations

import contextlib
import errno
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pipelines_events.log.jsonl as jsonl
from pipelines_events.errors import EventTooLargeError, LogWriteError
from pipelines_events.log import TornWriteRepaired
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from tests.reliability.common import all_events, build, snapshot

REAL_WRITE = os.write
REAL_FTRUNCATE = os.ftruncate
REAL_FDATASYNC = os.fdatasync
REAL_FSYNC = os.fsync


@contextlib.contextmanager
def patched(name: str, fake: Callable[..., Any]) -> Iterator[None]:
    """Replace ``os.<name>`` (the module ``jsonl`` uses) for the block, then restore it."""
    real = getattr(jsonl.os, name)
    setattr(jsonl.os, name, fake)
    try:
        yield
    finally:
        setattr(jsonl.os, name, real)
    assert getattr(os, name) is real


def failing_write(
    log_fd: int, *, written: int | float, error: int | None
) -> Callable[[int, bytes], int]:
    """An ``os.write`` that, on ``log_fd``, writes ``written`` bytes (a count, or a share
    of the data when a float) and then raises ``error`` (an errno) or returns the count."""

    def fake(fd: int, data: bytes) -> int:
        if fd != log_fd:
            return REAL_WRITE(fd, data)
        count = int(len(data) * written) if isinstance(written, float) else int(written)
        done = REAL_WRITE(fd, bytes(data)[:count]) if count else 0
        if error is not None:
            raise OSError(error, os.strerror(error))
        return done

    return fake


def failing(error: int, log_fd: int, real: Callable[..., Any]) -> Callable[..., Any]:
    """A one-descriptor function that raises ``error`` on ``log_fd`` and passes the rest."""

    def fake(fd: int, *args: Any) -> Any:
        if fd == log_fd:
            raise OSError(error, os.strerror(error))
        return real(fd, *args)

    return fake


@pytest.fixture
def storage(log_path: Path) -> Iterator[EventLogPipelineResultsStorage]:
    storage = EventLogPipelineResultsStorage(log_path)
    build(storage, "run-1")
    yield storage
    storage.close()


def task_result(storage: EventLogPipelineResultsStorage) -> Any:
    (result,) = storage.get_task_results(run_id="run-1")
    return result


def assert_recovers(storage: EventLogPipelineResultsStorage, path: Path, before: bytes) -> None:
    """The log holds exactly what it held before the fault; the storage works on."""
    assert path.read_bytes() == before
    result = task_result(storage)
    count = len(all_events(path))
    result.set_payload("after the fault")
    assert result.get_payload() == "after the fault"
    pending = result.get_status() is PipelineTaskStatus.PENDING
    nxt = PipelineTaskStatus.RUNNING if pending else PipelineTaskStatus.DONE
    assert result.report_status_change(None, nxt)
    events = all_events(path)  # seq contiguous, hash chain verified
    assert events[count].seq == count + 1
    assert events[count].value == "after the fault"
    reopened = EventLogPipelineResultsStorage(path)
    try:
        assert snapshot(reopened) == snapshot(storage)
    finally:
        reopened.close()


WRITE_FAULTS = [
    pytest.param(0.5, None, r"short write \(\d+ of \d+ bytes\); the partial batch", id="short"),
    pytest.param(0, None, r"short write \(0 of \d+ bytes\)", id="zero-bytes"),
    pytest.param(0, errno.ENOSPC, r"append failed \(ENOSPC: No space left", id="ENOSPC"),
    pytest.param(0.7, errno.ENOSPC, r"\(ENOSPC: .*\); nothing of the batch", id="ENOSPC-part"),
    pytest.param(0, errno.EIO, r"append failed \(EIO: Input/output error\)", id="EIO"),
    pytest.param(0.3, errno.EIO, r"\(EIO: .*\); nothing of the batch was written", id="EIO-part"),
    pytest.param(0, errno.EDQUOT, r"append failed \(EDQUOT: Disk quota exceeded", id="EDQUOT"),
    pytest.param(0, errno.EFBIG, r"append failed \(EFBIG: File too large\)", id="EFBIG"),
]


@pytest.mark.parametrize(("written", "error", "pattern"), WRITE_FAULTS)
def test_a_failing_set_leaves_no_trace(
    storage: EventLogPipelineResultsStorage,
    log_path: Path,
    written: float,
    error: int | None,
    pattern: str,
) -> None:
    result = task_result(storage)
    result.set_payload("before")
    before = log_path.read_bytes()
    with (
        patched("write", failing_write(storage.log._fd, written=written, error=error)),
        pytest.raises(LogWriteError, match=pattern) as info,
    ):
        result.set_payload("lost")
    assert str(info.value).startswith(f"{log_path}: ")
    assert result.get_payload() == "before"
    assert_recovers(storage, log_path, before)


@pytest.mark.parametrize(("written", "error", "pattern"), WRITE_FAULTS)
def test_a_failing_status_change_is_stored_whole_or_not_at_all(
    storage: EventLogPipelineResultsStorage,
    log_path: Path,
    written: float,
    error: int | None,
    pattern: str,
) -> None:
    result = task_result(storage)
    before = log_path.read_bytes()
    with (
        patched("write", failing_write(storage.log._fd, written=written, error=error)),
        pytest.raises(LogWriteError, match=pattern),
    ):
        result.report_status_change(None, PipelineTaskStatus.RUNNING, "a message")
    assert result.get_status() is PipelineTaskStatus.PENDING
    assert result.get_started() is None
    assert result.get_message() == ""
    execution = storage.get_pipeline_execution("run-1")
    assert execution is not None
    assert execution.get_status() is PipelineTaskStatus.PENDING
    assert_recovers(storage, log_path, before)
    assert execution.get_status() is PipelineTaskStatus.RUNNING


@pytest.mark.parametrize("error", [errno.EIO, errno.ENOSPC])
def test_a_partial_line_the_undo_could_not_remove_is_repaired(
    storage: EventLogPipelineResultsStorage, log_path: Path, error: int
) -> None:
    """The write fails mid-batch and so does the truncate that undoes it: the next
    append (or the next open) removes the partial batch."""
    result = task_result(storage)
    before = log_path.read_bytes()
    log_fd = storage.log._fd
    with (
        patched("write", failing_write(log_fd, written=0.6, error=error)),
        patched("ftruncate", failing(errno.EIO, log_fd, REAL_FTRUNCATE)),
        pytest.raises(LogWriteError, match=r"nothing of the batch was written"),
    ):
        result.report_status_change(None, PipelineTaskStatus.RUNNING, "x" * 300)
    torn = log_path.read_bytes()
    assert torn.startswith(before) and len(torn) > len(before)
    assert result.get_status() is PipelineTaskStatus.PENDING  # readers never see it
    # A new storage opened now repairs it at once ...
    copy = log_path.with_name("copy.jsonl")
    copy.write_bytes(torn)
    os.chmod(copy, 0o600)
    with pytest.warns(TornWriteRepaired, match=rf"removed {len(torn) - len(before)} bytes"):
        EventLogPipelineResultsStorage(copy).close()
    assert copy.read_bytes() == before
    # ... and the storage that failed repairs it on its next append.
    with pytest.warns(TornWriteRepaired, match=rf"after byte {len(before)}"):
        result.set_payload("next")
    assert_recovers(storage, log_path, log_path.read_bytes())


def test_a_failed_fsync_is_a_clear_error_and_is_retried(
    storage: EventLogPipelineResultsStorage, log_path: Path
) -> None:
    result = task_result(storage)
    log_fd = storage.log._fd
    with (
        patched("fdatasync", failing(errno.EIO, log_fd, REAL_FDATASYNC)),
        pytest.raises(
            LogWriteError,
            match=r"fsync failed \(Input/output error\); the last events may not be on disk",
        ),
    ):
        result.report_status_change(None, PipelineTaskStatus.RUNNING)
    # The write itself succeeded: the batch is whole in the file and in the projection.
    assert result.get_status() is PipelineTaskStatus.RUNNING
    calls: list[int] = []

    def counting(fd: int) -> None:
        calls.append(fd)
        REAL_FDATASYNC(fd)

    with patched("fdatasync", counting):
        result.save()  # the unsynced events are synced now
        result.save()  # and only once
    assert calls == [log_fd]
    assert_recovers(storage, log_path, log_path.read_bytes())


def test_fsync_failure_on_every_commit_then_recovery(
    storage: EventLogPipelineResultsStorage, log_path: Path
) -> None:
    result = task_result(storage)
    log_fd = storage.log._fd
    with patched("fdatasync", failing(errno.ENOSPC, log_fd, REAL_FDATASYNC)):
        for index in range(5):
            result.set_payload(index)
            with pytest.raises(LogWriteError, match="fsync failed"):
                storage.commit()
    storage.commit()
    assert result.get_payload() == 4
    assert [e.seq for e in all_events(log_path)] == list(range(1, len(all_events(log_path)) + 1))
    assert_recovers(storage, log_path, log_path.read_bytes())


def test_a_failing_build_leaves_no_run(log_path: Path) -> None:
    storage = EventLogPipelineResultsStorage(log_path)
    try:
        build(storage, "run-0")
        before = log_path.read_bytes()
        with (
            patched("write", failing_write(storage.log._fd, written=0.5, error=errno.ENOSPC)),
            pytest.raises(LogWriteError, match="ENOSPC"),
        ):
            build(storage, "run-1")
        assert storage.get_pipeline_execution("run-1") is None
        assert log_path.read_bytes() == before
        build(storage, "run-1")  # the same run id is free: nothing of it was stored
        assert storage.get_pipeline_execution("run-1") is not None
    finally:
        storage.close()
    all_events(log_path)


@pytest.mark.parametrize("fault", ["too-large", "ENOSPC", "EIO-after-part"])
def test_a_failed_append_does_not_lose_what_others_appended(log_path: Path, fault: str) -> None:
    """An append that fails after catching up on another writer's events must not skip
    them: the storage that failed still sees the other writer's run."""
    mine = EventLogPipelineResultsStorage(log_path, durability="none")
    other = EventLogPipelineResultsStorage(log_path, durability="none")
    try:
        execution = build(mine, "mine")
        build(other, "other")  # appended behind mine's back
        theirs = other.get_pipeline_execution("other")
        assert theirs is not None
        theirs.set_note("from the other writer")
        if fault == "too-large":
            with pytest.raises(EventTooLargeError, match="nothing was written"):
                execution.set_payload("x" * (1 << 20))
        else:
            error, written = (errno.ENOSPC, 0) if fault == "ENOSPC" else (errno.EIO, 0.5)
            with (
                patched("write", failing_write(mine.log._fd, written=written, error=error)),
                pytest.raises(LogWriteError),
            ):
                execution.set_payload("lost")
        seen = mine.get_pipeline_execution("other")
        assert seen is not None, "the other writer's run was skipped"
        assert seen.get_note() == "from the other writer"
        execution.set_payload("kept")
        assert snapshot(mine) == snapshot(other)
    finally:
        mine.close()
        other.close()
    events = all_events(log_path)
    assert [e.value for e in events if getattr(e, "field", None) == "payload"] == ["kept"]


def test_an_interrupted_append_keeps_the_log_usable(
    storage: EventLogPipelineResultsStorage, log_path: Path
) -> None:
    """KeyboardInterrupt in the middle of an append (here: inside os.write, before any
    byte is written) leaves nothing behind and the lock released."""
    result = task_result(storage)
    before = log_path.read_bytes()

    def interrupted(fd: int, data: bytes) -> int:
        if fd == storage.log._fd:
            raise KeyboardInterrupt
        return REAL_WRITE(fd, data)

    with patched("write", interrupted), pytest.raises(KeyboardInterrupt):
        result.set_payload("interrupted")
    assert log_path.read_bytes() == before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_recovers(storage, log_path, before)


def test_a_failed_fsync_of_a_new_logs_directory_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "new" / "log.jsonl"

    def fake(fd: int) -> None:
        if os.path.samefile(f"/proc/self/fd/{fd}", path.parent):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        REAL_FSYNC(fd)

    with (
        patched("fsync", fake),
        pytest.raises(
            LogWriteError, match=r"fsync of the log's directory .* failed \(Input/output"
        ),
    ):
        EventLogPipelineResultsStorage(path)
    storage = EventLogPipelineResultsStorage(path)  # the fault is gone: the log opens
    try:
        build(storage, "run-1")
    finally:
        storage.close()
    assert [e.seq for e in all_events(path)] == list(range(1, 5))


@pytest.mark.parametrize("failing_call", ["ftruncate", "fsync"])
def test_a_repair_that_fails_is_a_clear_error_and_changes_nothing(
    log_path: Path, failing_call: str
) -> None:
    storage = EventLogPipelineResultsStorage(log_path)
    build(storage, "run-1")
    storage.close()
    whole = log_path.read_bytes()
    torn = whole + b'{"type":"set","v":1,"seq":5,"ts":"2026'
    log_path.write_bytes(torn)
    real = REAL_FTRUNCATE if failing_call == "ftruncate" else REAL_FSYNC

    def fake(fd: int, *args: Any) -> Any:
        if os.path.samefile(f"/proc/self/fd/{fd}", log_path):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(fd, *args)

    with (
        warnings.catch_warnings(),
        patched(failing_call, fake),
        pytest.raises(
            LogWriteError, match=r"cannot remove the unfinished batch after byte \d+ \(Input/output"
        ),
    ):
        warnings.simplefilter("ignore", TornWriteRepaired)
        EventLogPipelineResultsStorage(log_path)
    if failing_call == "ftruncate":
        assert log_path.read_bytes() == torn
        with pytest.warns(TornWriteRepaired):
            storage = EventLogPipelineResultsStorage(log_path)
    else:  # cut, but not known to be on disk: the error said so; the cut stands
        assert log_path.read_bytes() == whole
        storage = EventLogPipelineResultsStorage(log_path)
    try:
        assert log_path.read_bytes() == whole
        assert_recovers(storage, log_path, whole)
    finally:
        storage.close()
