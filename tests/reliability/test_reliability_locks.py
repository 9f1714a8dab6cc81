"""The log's lock: held only while appending, and released by the kernel when its holder
dies, so a writer killed inside the locked section never blocks the others."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import threading
import time
import warnings
from pathlib import Path

import pytest

import pipelines_events.log.jsonl as jsonl
from pipelines_events.log import TornWriteRepaired
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from tests.reliability.common import all_events, build, snapshot

TIMEOUT = 20.0


def lock_is_free(path: Path) -> bool:
    """Whether an exclusive lock on ``path`` can be taken at once (through a new open
    file description, so it conflicts with every other holder, this process included)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def wait_until_free(path: Path, timeout: float = TIMEOUT) -> float:
    """Seconds until the lock is free; fails the test after ``timeout``."""
    started = time.monotonic()
    while not lock_is_free(path):
        if time.monotonic() - started > timeout:
            pytest.fail(f"the lock on {path} is still held after {timeout} s")
        time.sleep(0.005)
    return time.monotonic() - started


def _hold_lock_and_die(path: str, ready: int) -> None:
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(ready, b"locked\n")
    os.kill(os.getpid(), signal.SIGKILL)


def _hold_lock(path: str, ready: int) -> None:
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(ready, b"locked\n")
    time.sleep(TIMEOUT * 3)


def _die_mid_append(path: str, ready: int) -> None:
    """Append through the storage, but die with SIGKILL halfway through the write, inside
    the log's locked section."""
    storage = EventLogPipelineResultsStorage(path)
    (result,) = storage.get_task_results(run_id="run-1")
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if fd == storage.log._fd:
            real_write(fd, bytes(data)[: len(data) // 2])
            os.write = real_write
            real_write(ready, b"locked\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return real_write(fd, data)

    jsonl.os.write = write  # type: ignore[assignment]  # in this child only
    result.report_status_change(None, PipelineTaskStatus.RUNNING, "never stored")


def _run_child(target: object, path: Path) -> multiprocessing.process.BaseProcess:
    """Start ``target(path, ready_fd)`` in a forked child; return once it holds the lock."""
    ctx = multiprocessing.get_context("fork")
    read_fd, write_fd = os.pipe()
    child = ctx.Process(target=target, args=(str(path), write_fd))
    child.start()
    os.close(write_fd)
    try:
        os.set_blocking(read_fd, False)
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                if os.read(read_fd, 64):
                    break
            except BlockingIOError:
                pass
            if time.monotonic() > deadline:
                child.kill()
                child.join(TIMEOUT)
                pytest.fail("the child never took the lock")
            time.sleep(0.002)
    finally:
        os.close(read_fd)
    return child


@pytest.fixture
def storage(log_path: Path) -> EventLogPipelineResultsStorage:
    storage = EventLogPipelineResultsStorage(log_path)
    build(storage, "run-1")
    return storage


def test_a_writer_killed_holding_the_lock_does_not_block_others(
    storage: EventLogPipelineResultsStorage, log_path: Path
) -> None:
    child = _run_child(_hold_lock_and_die, log_path)
    child.join(TIMEOUT)
    assert child.exitcode == -signal.SIGKILL
    wait_until_free(log_path)
    (result,) = storage.get_task_results(run_id="run-1")
    assert result.report_status_change(None, PipelineTaskStatus.RUNNING)
    all_events(log_path)
    storage.close()


def test_a_writer_killed_mid_write_inside_the_lock_leaves_a_repairable_tail(
    storage: EventLogPipelineResultsStorage, log_path: Path
) -> None:
    before = log_path.read_bytes()
    expected = snapshot(storage)
    child = _run_child(_die_mid_append, log_path)
    child.join(TIMEOUT)
    assert child.exitcode == -signal.SIGKILL
    torn = log_path.read_bytes()
    assert torn.startswith(before) and len(torn) > len(before)
    wait_until_free(log_path)
    assert snapshot(storage) == expected  # a reader never sees the half batch
    (result,) = storage.get_task_results(run_id="run-1")
    with pytest.warns(TornWriteRepaired, match=rf"after byte {len(before)}"):
        assert result.report_status_change(None, PipelineTaskStatus.RUNNING, "stored")
    assert result.get_message() == "stored"
    events = all_events(log_path)
    assert "never stored" not in log_path.read_text()
    assert events[-1].seq == len(events)
    storage.close()


def test_a_live_holder_blocks_an_append_until_it_dies(
    storage: EventLogPipelineResultsStorage, log_path: Path
) -> None:
    child = _run_child(_hold_lock, log_path)
    (result,) = storage.get_task_results(run_id="run-1")
    done = threading.Event()
    errors: list[BaseException] = []

    def append() -> None:
        try:
            result.set_payload("after the holder")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=append, daemon=True)
    thread.start()
    try:
        assert not done.wait(0.3), "the append did not wait for the lock"
    finally:
        child.kill()
        child.join(TIMEOUT)
    assert done.wait(TIMEOUT), "the append stayed blocked after the holder died"
    thread.join(TIMEOUT)
    assert errors == []
    assert result.get_payload() == "after the holder"
    storage.close()


def test_the_lock_is_held_only_while_appending(
    storage: EventLogPipelineResultsStorage, log_path: Path
) -> None:
    """An open storage, between and after its appends and queries, and a read-only reader
    hold no lock."""
    assert lock_is_free(log_path)
    (result,) = storage.get_task_results(run_id="run-1")
    result.report_status_change(None, PipelineTaskStatus.RUNNING)
    assert lock_is_free(log_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        other = EventLogPipelineResultsStorage(log_path)
    assert lock_is_free(log_path)
    assert snapshot(other) == snapshot(storage)
    assert lock_is_free(log_path)
    reader = jsonl.JsonlEventLog(log_path, readonly=True)
    list(reader.read_new())
    assert lock_is_free(log_path)
    reader.close()
    other.close()
    storage.close()
    assert lock_is_free(log_path)


def test_after_a_failed_append_the_lock_is_released(
    storage: EventLogPipelineResultsStorage, log_path: Path
) -> None:
    (result,) = storage.get_task_results(run_id="run-1")
    with pytest.raises(ValueError, match="over the log's limit"):
        result.set_payload("x" * (2 << 20))
    assert lock_is_free(log_path)
    storage.close()
