"""What lies at a log's snapshot path: anything but a regular file of the log's owner, of a
bounded size, read without following a link, is ignored with ``SnapshotIgnored`` naming
why, and the storage opens from a full replay. Writing a snapshot never follows a link."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

from pipelines_events.events import LogPosition
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing import (
    ExamplePipeline,
    ExampleReporter,
    ExampleRunner,
    ExampleTask,
    describe_storage,
)
from tests.support.snapshot_support import (
    SLACK_BYTES,
    Snapshot,
    SnapshotIgnored,
    read_snapshot,
    size_bound,
    write_snapshot,
)

NOBODY = 65534


def open_storage(path: Path, **kwargs: Any) -> EventLogPipelineResultsStorage:
    kwargs.setdefault("durability", "none")
    kwargs.setdefault("log_options", {"run_index": False})  # the full fold and its snapshot
    return EventLogPipelineResultsStorage(path, **kwargs)


@pytest.fixture
def log(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A log with two runs and a valid snapshot beside it; the state a full replay gives."""
    path = tmp_path / "log.jsonl"
    storage = open_storage(path, snapshot_every=1)
    pipeline = ExamplePipeline(
        "tests.Files", [ExampleTask("only", config={"n": 2**64}, objects=[1, 2])]
    )
    for run_id in ("run-1", "run-2"):
        execution = storage.build_pipeline_execution(
            pipeline, run_id, ExampleRunner(), ExampleReporter(), {"big": 2**70}
        )
        (task_execution,) = execution.get_pipeline_results()[0].get_task_executions()
        for task_result in task_execution.get_task_results():
            task_result.report_status_change(None, PipelineTaskStatus.DONE, "ok")
    storage.close()
    assert read_snapshot(storage.snapshot_path).position.seq > 0
    replayed = open_storage(path, snapshots=False)
    state = describe_storage(replayed)
    replayed.close()
    return path, state


def snapshot_of(path: Path) -> Path:
    return path.with_name(path.name + ".snapshot")


def open_ignoring(path: Path, reason: str) -> EventLogPipelineResultsStorage:
    """Open the storage in a thread (so a blocking open fails the test instead of hanging
    it) and check it warned ``SnapshotIgnored`` with ``reason``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                outcome["storage"] = open_storage(path)
            except BaseException as exc:  # handed to the test below
                outcome["error"] = exc
        outcome["warnings"] = caught

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "opening the storage blocked on the snapshot path"
    if "error" in outcome:
        raise outcome["error"]
    messages = [str(w.message) for w in outcome["warnings"] if w.category is SnapshotIgnored]
    assert len(messages) == 1, messages
    assert reason in messages[0], messages[0]
    assert messages[0].endswith("; replaying the whole log")
    storage: EventLogPipelineResultsStorage = outcome["storage"]
    return storage


def check_replayed(storage: EventLogPipelineResultsStorage, state: dict[str, Any]) -> None:
    assert describe_storage(storage) == state
    assert storage.log.position == open_storage(storage.log.path, snapshots=False).log.position


def test_a_named_pipe_is_ignored_without_blocking(log: tuple[Path, dict[str, Any]]) -> None:
    path, state = log
    snapshot = snapshot_of(path)
    snapshot.unlink()
    os.mkfifo(snapshot)
    try:
        storage = open_ignoring(path, "the snapshot is a named pipe, not a regular file")
    finally:
        # Let a reader blocked on the pipe (the old behaviour) go.
        with contextlib.suppress(OSError):
            os.close(os.open(snapshot, os.O_WRONLY | os.O_NONBLOCK))
    check_replayed(storage, state)
    storage.close()
    assert snapshot.is_fifo()  # a storage at rest writes nothing


def test_a_link_to_dev_zero_is_ignored(log: tuple[Path, dict[str, Any]]) -> None:
    path, state = log
    snapshot = snapshot_of(path)
    snapshot.unlink()
    snapshot.symlink_to("/dev/zero")
    storage = open_ignoring(path, "the snapshot is a symbolic link")
    check_replayed(storage, state)
    storage.close()


def test_a_link_to_a_valid_snapshot_is_ignored(
    log: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, state = log
    snapshot = snapshot_of(path)
    elsewhere = tmp_path / "elsewhere.snapshot"
    shutil.move(snapshot, elsewhere)
    read_snapshot(elsewhere)  # valid
    snapshot.symlink_to(elsewhere)
    storage = open_ignoring(
        path, "the snapshot is a symbolic link; a snapshot is never read through a link"
    )
    check_replayed(storage, state)
    storage.close()


def test_a_dangling_link_is_ignored(log: tuple[Path, dict[str, Any]]) -> None:
    path, state = log
    snapshot = snapshot_of(path)
    snapshot.unlink()
    snapshot.symlink_to(path.parent / "no-such-file")
    storage = open_ignoring(path, "the snapshot is a symbolic link")
    check_replayed(storage, state)
    storage.close()


def test_a_directory_is_ignored(log: tuple[Path, dict[str, Any]]) -> None:
    path, state = log
    snapshot = snapshot_of(path)
    snapshot.unlink()
    snapshot.mkdir()
    storage = open_ignoring(path, "the snapshot is a directory, not a regular file")
    check_replayed(storage, state)
    with pytest.warns(SnapshotIgnored, match="cannot write the snapshot"):
        storage.write_snapshot()
    storage.close()
    assert snapshot.is_dir()


def test_a_snapshot_of_another_owner_is_ignored(log: tuple[Path, dict[str, Any]]) -> None:
    path, state = log
    snapshot = snapshot_of(path)
    read_snapshot(snapshot)  # valid
    os.chown(snapshot, NOBODY, -1)
    storage = open_ignoring(
        path,
        f"the snapshot is owned by uid {NOBODY}, not by the log's owner (uid {path.stat().st_uid})",
    )
    check_replayed(storage, state)
    storage.close()


def test_an_oversized_snapshot_is_ignored(log: tuple[Path, dict[str, Any]]) -> None:
    """A snapshot that is valid in every other way (checksum, position) but larger than
    twice the log plus 1 MiB is not read."""
    path, state = log
    snapshot = snapshot_of(path)
    valid = read_snapshot(snapshot)
    bound = size_bound(path.stat().st_size)
    assert bound == 2 * path.stat().st_size + SLACK_BYTES
    padded = Snapshot(position=valid.position, parts={**valid.parts, "pad": b"x" * bound})
    write_snapshot(snapshot, padded)
    read_snapshot(snapshot)  # valid without a bound
    storage = open_ignoring(path, f"bytes, over its bound of {bound} bytes")
    check_replayed(storage, state)
    storage.close()


def test_a_snapshot_within_its_bound_is_used(log: tuple[Path, dict[str, Any]]) -> None:
    path, state = log
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        storage = open_storage(path)
    assert describe_storage(storage) == state
    assert snapshot_of(path).stat().st_size <= size_bound(path.stat().st_size)
    storage.close()


def test_writing_a_snapshot_replaces_a_link_instead_of_following_it(
    log: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, state = log
    snapshot = snapshot_of(path)
    target = tmp_path / "precious.txt"
    target.write_text("not to be overwritten")
    snapshot.unlink()
    snapshot.symlink_to(target)
    storage = open_ignoring(path, "the snapshot is a symbolic link")
    storage.write_snapshot()
    storage.close()
    assert target.read_text() == "not to be overwritten"
    assert not snapshot.is_symlink() and snapshot.is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reopened = open_storage(path)
    assert describe_storage(reopened) == state
    reopened.close()


def test_a_snapshot_written_by_root_goes_to_the_log_owner(
    log: tuple[Path, dict[str, Any]],
) -> None:
    """Root writing the snapshot of another user's log gives the file to that user, so
    the log's owner (and root) can use it."""
    path, state = log
    os.chown(path, NOBODY, -1)  # the suite runs as root
    storage = open_ignoring(path, f"not by the log's owner (uid {NOBODY})")
    storage.write_snapshot()
    storage.close()
    assert snapshot_of(path).stat().st_uid == NOBODY
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reopened = open_storage(path)
    assert describe_storage(reopened) == state
    reopened.close()


def test_a_snapshot_at_a_position_the_log_does_not_have_is_still_ignored(
    log: tuple[Path, dict[str, Any]],
) -> None:
    path, state = log
    snapshot = snapshot_of(path)
    valid = read_snapshot(snapshot)
    elsewhere = LogPosition(valid.position.offset + 1, valid.position.seq, "f" * 64)
    write_snapshot(snapshot, Snapshot(position=elsewhere, parts=valid.parts))
    storage = open_ignoring(path, "snapshot ignored")
    check_replayed(storage, state)
    storage.close()
