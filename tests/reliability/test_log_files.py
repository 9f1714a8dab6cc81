"""Hostile files at the log path, and files changed under open logs and readers."""

from __future__ import annotations

import os
import re
import shutil
import warnings
from contextlib import closing
from pathlib import Path

import pytest

from pipelines_events.errors import LogCorruptError, LogError, LogOpenError
from pipelines_events.events import TASK_RESULT, AnyEvent, FieldSet
from pipelines_events.log import (
    JsonlEventLog,
    LogPermissionsWarning,
    TornWriteRepaired,
    read_events,
)
from pipelines_events.log.jsonl import _CHUNK
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage


def fs(object_id: str, value: object) -> FieldSet:
    return FieldSet(run_id="run-1", kind=TASK_RESULT, id=object_id, field="f", value=value)


def listing(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


# -- a reader racing a writer's repair ------------------------------------------------------


def build_straddling_torn_tail(path: Path, tmp_path: Path) -> bytes:
    """A log whose unfinished last batch (a crashed writer's) straddles the first chunk
    boundary: its first line ends before it, its second line crosses it. Returns the
    torn bytes."""
    big = "x" * 1500
    with JsonlEventLog(path, durability="none") as log:
        # The size of the lines of the batch that will be torn.
        probe = tmp_path / "probe.jsonl"
        with JsonlEventLog(probe, durability="none") as other:
            other.append([fs("t", big), fs("t", big), fs("t", big)])
        line = len(probe.read_bytes()) // 3
        while log.size() < _CHUNK - line - line // 2:
            log.append([fs("a", "y" * 100)])
    size = path.stat().st_size
    copy = tmp_path / "copy.jsonl"
    shutil.copyfile(path, copy)
    os.chmod(copy, 0o600)
    with JsonlEventLog(copy, durability="none") as other:
        list(other.read_new())
        other.append([fs("t", big), fs("t", big), fs("t", big)])
    lines = copy.read_bytes()[size:].split(b"\n")
    torn = lines[0] + b"\n" + lines[1] + b"\n" + lines[2][:20]
    assert size + len(lines[0]) + 1 < _CHUNK < size + len(lines[0]) + len(lines[1]) + 2
    with path.open("ab") as f:
        f.write(torn)
    return torn


def test_a_reader_never_reports_damage_when_a_writer_repairs_between_its_chunk_reads(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.jsonl"
    build_straddling_torn_tail(path, tmp_path)
    with JsonlEventLog(path, readonly=True) as reader:
        batches = reader.read_batches()
        got: list[AnyEvent] = list(next(batches))  # the first chunk has been read
        # A writer cuts the torn tail and appends over it, past the chunk boundary.
        with pytest.warns(TornWriteRepaired), JsonlEventLog(path, durability="none") as writer:
            list(writer.read_new())
            for k in range(10):
                writer.append([fs("new", "z" * 1000 + str(k)), fs("new", k)])
        for batch in batches:
            got.extend(batch)
        got.extend(reader.read_new())
    assert got == list(read_events(path))
    assert [event.seq for event in got] == list(range(1, len(got) + 1))
    assert [event.value for event in got if event.id == "new"][-1] == 9


def test_a_group_reader_never_reports_damage_when_a_writer_repairs_between_chunk_reads(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.jsonl"
    build_straddling_torn_tail(path, tmp_path)
    storage_log = JsonlEventLog(path, readonly=True)
    with storage_log as reader:
        groups = reader.read_groups()
        first = next(groups)  # every whole batch of the first chunk
        with pytest.warns(TornWriteRepaired), JsonlEventLog(path, durability="none") as writer:
            list(writer.read_new())
            for k in range(10):
                writer.append([fs("new", "z" * 1000 + str(k)), fs("new", k)])
        got = [*first, *(event for group in groups for event in group), *reader.read_new()]
    assert got == list(read_events(path))


def test_damage_after_the_first_chunk_is_still_reported_where_it_is(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    with JsonlEventLog(path, durability="none") as log:
        while log.size() < _CHUNK + 5000:
            log.append([fs("a", "y" * 100)])
        count = log.position.seq
    data = bytearray(path.read_bytes())
    lines = data.split(b"\n")
    target = count - 3  # a line after the first chunk
    assert sum(len(line) + 1 for line in lines[: target - 1]) > _CHUNK
    lines[target - 1] = lines[target - 1].replace(b"yyyy", b"yyyz", 1)
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(LogCorruptError, match=rf"line {target}: hash link broken"):
        list(read_events(path))


# -- a log that shrank under an open storage --------------------------------------------------


def test_a_log_restored_in_place_under_an_open_storage_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    storage = EventLogPipelineResultsStorage(path, durability="none")
    first = storage.build_pipeline_execution(_Pipeline(), "run-1", "r", "rep", None)
    backup = path.read_bytes()
    storage.build_pipeline_execution(_Pipeline(), "run-2", "r", "rep", None)
    size = path.stat().st_size
    path.write_bytes(backup)  # same file, shorter: a backup restored over it
    message = (
        rf"^{re.escape(str(path))}: the log is {len(backup)} bytes, shorter than the {size} "
        r"bytes already read from it: it was truncated or replaced in place"
    )
    with pytest.raises(LogError, match=message):
        storage.get_pipeline_executions()
    with pytest.raises(LogError, match=message):
        first.set_note("after the restore")
    with pytest.raises(LogError, match=message):
        first.get_status()
    assert path.read_bytes() == backup
    storage.close()
    # Opened again, the storage reads the restored log.
    with closing(EventLogPipelineResultsStorage(path, durability="none")) as reopened:
        assert [e.get_run_id() for e in reopened.get_pipeline_executions()] == ["run-1"]


def test_a_log_object_on_a_shrunk_file_refuses_to_read_and_append(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    with JsonlEventLog(path, durability="none") as log:
        log.append([fs("a", 1)])
        log.append([fs("a", 2)])
        os.truncate(path, 0)
        with pytest.raises(LogError, match=r"shorter than the \d+ bytes already read"):
            list(log.read_new())
        with pytest.raises(LogError, match=r"shorter than the \d+ bytes already read"):
            log.append([fs("a", 3)])
    assert path.read_bytes() == b""


class _Pipeline:
    """The smallest pipeline the storage can build a run of."""

    def get_id(self) -> str:
        return "tiny"

    def get_iterator(self) -> None:
        return None

    def get_build_tasks(self) -> list[object]:
        return []

    def get_serializable_pipeline_object(self, obj: object) -> object:
        return obj


# -- symbolic links ---------------------------------------------------------------------------


@pytest.mark.parametrize("readonly", [False, True])
def test_a_symbolic_link_loop_at_the_log_path_is_named(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "log.jsonl"
    path.symlink_to(path)
    before = listing(tmp_path)
    with pytest.raises(LogOpenError, match=rf"^{re.escape(str(path))}: .*symbolic link loop"):
        JsonlEventLog(path, readonly=readonly)
    other = tmp_path / "a.jsonl"
    other.symlink_to(tmp_path / "b.jsonl")
    (tmp_path / "b.jsonl").symlink_to(other)
    with pytest.raises(LogOpenError, match="the log path is a symbolic link loop"):
        EventLogPipelineResultsStorage(other)
    with pytest.raises(LogOpenError, match="the log path is a symbolic link loop"):
        EventLogPipelineResultsStorage(tmp_path / "a.jsonl" / "inner.jsonl")
    assert listing(tmp_path) == sorted([*before, "a.jsonl", "b.jsonl"])


def test_a_dangling_symbolic_link_at_the_log_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path.symlink_to(elsewhere / "target.jsonl")
    with pytest.raises(
        LogOpenError,
        match=rf"^{re.escape(str(path))}: the log path is a symbolic link to "
        rf"'{re.escape(str(elsewhere))}/target.jsonl', which does not exist; refusing to create",
    ):
        EventLogPipelineResultsStorage(path)
    assert list(elsewhere.iterdir()) == []
    # Into a directory that does not exist either: nothing is created there.
    path.unlink()
    path.symlink_to(tmp_path / "missing" / "target.jsonl")
    with pytest.raises(LogOpenError, match="which does not exist; refusing to create"):
        JsonlEventLog(path)
    assert not (tmp_path / "missing").exists()


def test_a_symbolic_link_to_an_existing_log_is_followed(tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    with JsonlEventLog(real) as log:
        log.append([fs("a", 1)])
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    with JsonlEventLog(link) as log:
        assert len(list(log.read_new())) == 1
        log.append([fs("a", 2)])
    assert [e.value for e in read_events(real)] == [1, 2]


# -- permissions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "access"),
    [
        (0o644, "readable by group and others"),
        (0o640, "readable by group"),
        (0o604, "readable by others"),
        (0o620, "writable by group"),
        (0o666, "readable by group and others, writable by group and others"),
    ],
)
def test_an_open_log_is_used_with_a_warning_naming_its_mode(
    tmp_path: Path, mode: int, access: str
) -> None:
    path = tmp_path / "log.jsonl"
    with closing(EventLogPipelineResultsStorage(path)) as storage:
        storage.build_pipeline_execution(_Pipeline(), "run-1", "r", "rep", None)
    path.chmod(mode)
    content = path.read_bytes()
    with pytest.warns(LogPermissionsWarning) as caught:
        storage = EventLogPipelineResultsStorage(path)
    assert len(caught) == 1
    assert str(caught[0].message) == (
        f"{path}: the log's permissions {mode:#o} are too open: it is {access}; using it "
        f"anyway (chmod 600 it, or pass mode={mode:#o} to accept them)"
    )
    storage.close()
    assert path.read_bytes() == content
    assert path.stat().st_mode & 0o777 == mode  # nothing was changed


def test_no_permission_warning_for_a_private_log_a_new_log_a_reader_or_a_chosen_mode(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        JsonlEventLog(path).close()  # created 0o600
        JsonlEventLog(path).close()
        path.chmod(0o640)
        JsonlEventLog(path, mode=0o640).close()  # the mode the user chose
        JsonlEventLog(path, readonly=True).close()
        JsonlEventLog(path, mode=0o644).close()
    with pytest.warns(LogPermissionsWarning, match="0o640 are too open: it is readable by group"):
        JsonlEventLog(path).close()
