"""Group commit of the file log: one fdatasync covers the commits of every writer waiting.

Syncs are observed by wrapping ``os.fdatasync`` as ``pipelines_events.log.jsonl`` calls
it (the real call still runs), for the log's own descriptor only. The side file
``<log>.sync`` is hostile input: whatever it holds, or whatever it is, costs at most an
extra sync and is never written unless this process owns it alone.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pipelines_events.log.jsonl as jsonl
from pipelines_events.events import FieldSet
from pipelines_events.log import JsonlEventLog, read_events

REAL_FDATASYNC = os.fdatasync


def _event(value: object) -> FieldSet:
    return FieldSet(run_id="r", kind="task_result", id="a", field="k", value=value)


def _side(path: Path) -> Path:
    return path.with_name(path.name + ".sync")


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The descriptors of every fdatasync the log module runs (the real call still runs)."""
    calls: list[int] = []

    def counting(fd: int) -> None:
        calls.append(fd)
        REAL_FDATASYNC(fd)

    monkeypatch.setattr(jsonl.os, "fdatasync", counting)
    yield calls
    monkeypatch.undo()
    assert os.fdatasync is REAL_FDATASYNC


def _forged_record(log_path: Path, covered: int) -> bytes:
    """A well-formed record claiming the first ``covered`` bytes of the log are on disk."""
    st = log_path.stat()
    tail = log_path.read_bytes()[covered - 64 : covered]
    body = struct.pack("<8sQQQ64s", b"PEsync02", st.st_dev, st.st_ino, covered, tail)
    return body + struct.pack("<I", zlib.crc32(body))


# -- sharing ---------------------------------------------------------------------------


def test_a_commit_covered_by_another_writers_sync_runs_none(
    log_path: Path, syncs: list[int]
) -> None:
    first, second = JsonlEventLog(log_path), JsonlEventLog(log_path)
    first.append([_event(1)])
    second.append([_event(2)])  # after the first event: its sync covers both
    second.commit()
    first.commit()
    assert syncs == [second._fd]
    first.append([_event(3)])
    first.commit()  # a new event: a new sync
    assert syncs == [second._fd, first._fd]
    assert _side(log_path).stat().st_mode & 0o777 == 0o600
    first.close()
    second.close()
    assert [e.value for e in read_events(log_path)] == [1, 2, 3]  # type: ignore[attr-defined]


def _writer(log: JsonlEventLog, commits: int, out: str, go: Any) -> None:
    """Append and commit ``commits`` times; record every sync and every commit."""
    synced: list[tuple[int, int, int]] = []  # size when the sync began, start, end (ns)

    def recording(fd: int) -> None:
        size = os.fstat(fd).st_size
        start = time.monotonic_ns()
        REAL_FDATASYNC(fd)
        time.sleep(0.002)  # a slow disk: commits of other writers queue meanwhile
        if fd == log._fd:
            synced.append((size, start, time.monotonic_ns()))

    jsonl.os.fdatasync = recording
    done: list[tuple[int, int]] = []  # the end of the batch, when commit returned (ns)
    go.wait()
    for value in range(commits):
        log.append([_event(f"{os.getpid()}-{value}")])
        end = log.position.offset  # the batch just appended ends here
        log.commit()
        done.append((end, time.monotonic_ns()))
    log.close()
    Path(out).write_text(json.dumps({"syncs": synced, "commits": done}))


def test_commits_of_several_processes_share_syncs_and_each_is_durable(
    log_path: Path, tmp_path: Path
) -> None:
    log = JsonlEventLog(log_path)
    log.append([_event("parent")])
    log.commit()  # the parent's shared sync state is inherited, and replaced, by the children
    context = multiprocessing.get_context("fork")
    go = context.Event()
    writers, commits = 4, 40
    outs = [tmp_path / f"writer-{index}.json" for index in range(writers)]
    processes = [context.Process(target=_writer, args=(log, commits, str(out), go)) for out in outs]
    for process in processes:
        process.start()
    go.set()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0] * writers
    log.close()
    results = [json.loads(out.read_text()) for out in outs]
    all_syncs = [sync for result in results for sync in result["syncs"]]
    all_commits = [commit for result in results for commit in result["commits"]]
    assert len(all_commits) == writers * commits
    for end, returned in all_commits:
        # Some fdatasync began when the file already held the batch, and ended before the
        # commit returned.
        assert any(size >= end and finished <= returned for size, _, finished in all_syncs), (
            end,
            returned,
        )
    assert len(all_syncs) <= len(all_commits) * 3 // 4  # shared, not one per commit
    assert len(list(read_events(log_path))) == 1 + writers * commits


# -- hostile or stale side files -----------------------------------------------------------


def _two_commits(log_path: Path, syncs: list[int], forge: Callable[[], None]) -> None:
    """Append twice with a fresh log object and commit each, after ``forge`` wrote a record
    that claims the batch synced: each commit must still sync."""
    log = JsonlEventLog(log_path)
    before = len(syncs)
    for value in ("x", "y"):
        log.append([_event(value)])
        forge()
        log.commit()
    assert len(syncs) - before == 2
    log.close()


def _unsynced(log_path: Path) -> None:
    """Two events appended without a sync (another writer's durability ``none``)."""
    with JsonlEventLog(log_path, durability="none") as log:
        log.append([_event(1)])
        log.append([_event(2)])


def _forger(log_path: Path, target: Path) -> Callable[[], None]:
    """Write, as an attacker would, a well-formed record covering the whole log."""

    def forge() -> None:
        if target.is_file():
            with target.open("r+b") as out:
                out.write(_forged_record(log_path, log_path.stat().st_size))

    return forge


def test_control_a_trusted_record_is_believed(log_path: Path, syncs: list[int]) -> None:
    """The forged record is one the log would believe from its own user's file: so the
    tests below refuse it for the file's sake, not for the record's."""
    _unsynced(log_path)
    side = _side(log_path)
    side.write_bytes(b"")
    side.chmod(0o600)
    log = JsonlEventLog(log_path)
    log.append([_event("x")])
    _forger(log_path, side)()
    log.commit()
    assert syncs == []
    log.close()


def _group_writable(side: Path) -> None:
    side.write_bytes(b"")
    side.chmod(0o666)


def _other_owner(side: Path) -> None:
    side.write_bytes(b"")
    side.chmod(0o600)
    os.chown(side, 65534, 65534)


def _hard_link(side: Path) -> None:
    victim = side.with_name("victim")
    victim.write_bytes(b"")
    victim.chmod(0o600)
    os.link(victim, side)


def _symlink(side: Path) -> None:
    victim = side.with_name("victim")
    victim.write_bytes(b"")
    victim.chmod(0o600)
    side.symlink_to(victim)


def _fifo(side: Path) -> None:
    os.mkfifo(side, 0o600)


def _directory(side: Path) -> None:
    side.mkdir()


HOSTILE: list[Callable[[Path], None]] = [
    _group_writable,
    _hard_link,
    _symlink,
    _fifo,
    _directory,
]
if os.geteuid() == 0:  # only root can give a file to another user
    HOSTILE.append(_other_owner)


@pytest.mark.parametrize("make", HOSTILE, ids=lambda make: make.__name__.strip("_"))
def test_an_untrusted_side_file_never_skips_a_sync_and_is_never_written(
    log_path: Path, syncs: list[int], make: Callable[[Path], None]
) -> None:
    _unsynced(log_path)
    side = _side(log_path)
    make(side)
    target = side.resolve() if side.is_symlink() else side
    forge = _forger(log_path, target)
    written: list[bytes] = []

    def forge_and_keep() -> None:
        forge()
        if target.is_file():
            written.append(target.read_bytes())

    _two_commits(log_path, syncs, forge_and_keep)

    if target.is_file():
        assert target.read_bytes() == written[-1] != b""  # the log never wrote to it
    assert len(list(read_events(log_path))) == 4


def _garbage(log_path: Path) -> bytes:
    return b"\xff" * 124


def _bad_crc(log_path: Path) -> bytes:
    record = _forged_record(log_path, log_path.stat().st_size)
    return record[:-1] + bytes([record[-1] ^ 1])


def _short(log_path: Path) -> bytes:
    return _forged_record(log_path, log_path.stat().st_size)[:50]


def _beyond_the_end(log_path: Path) -> bytes:
    st = log_path.stat()
    tail = log_path.read_bytes()[-64:]
    body = struct.pack("<8sQQQ64s", b"PEsync02", st.st_dev, st.st_ino, 10**9, tail)
    return body + struct.pack("<I", zlib.crc32(body))


def _wrong_bytes(log_path: Path) -> bytes:
    st = log_path.stat()
    size = st.st_size
    body = struct.pack("<8sQQQ64s", b"PEsync02", st.st_dev, st.st_ino, size, b"0" * 64)
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize(
    "record", [_garbage, _bad_crc, _short, _beyond_the_end, _wrong_bytes], ids=lambda f: f.__name__
)
def test_a_bad_record_in_an_owned_side_file_costs_a_sync(
    log_path: Path, syncs: list[int], record: Callable[[Path], bytes]
) -> None:
    _unsynced(log_path)
    side = _side(log_path)
    side.write_bytes(b"")
    side.chmod(0o600)

    def forge() -> None:
        side.write_bytes(record(log_path))

    _two_commits(log_path, syncs, forge)


def test_a_record_of_a_replaced_log_costs_a_sync(
    log_path: Path, tmp_path: Path, syncs: list[int]
) -> None:
    _unsynced(log_path)
    side = _side(log_path)
    side.write_bytes(b"")
    side.chmod(0o600)
    copy = tmp_path / "copy.jsonl"

    def forge() -> None:
        # A record for the log file as it is now, then the log replaced by a copy: the
        # same bytes, another inode, nothing of it synced.
        side.write_bytes(_forged_record(log_path, log_path.stat().st_size))
        copy.write_bytes(log_path.read_bytes())
        copy.chmod(0o600)
        copy.replace(log_path)

    log = JsonlEventLog(log_path)
    log.append([_event("x")])
    forge()
    reopened = JsonlEventLog(log_path)  # the replaced file, whose bytes were never synced
    reopened.append([_event("y")])
    _forged = _forged_record(log_path, log_path.stat().st_size)
    side.write_bytes(_forged[:8] + struct.pack("<QQ", 0, 0) + _forged[24:])
    before = len(syncs)
    reopened.commit()
    assert len(syncs) == before + 1
    reopened.close()
    log.close()


def test_a_log_cut_and_grown_again_is_synced_again(log_path: Path, syncs: list[int]) -> None:
    log = JsonlEventLog(log_path)
    log.append([_event(1)])
    log.commit()
    cut = log_path.stat().st_size
    log.append([_event("a long value that will be cut away")])
    log.commit()  # the record covers the long event
    recorded = log_path.stat().st_size
    log.close()
    os.truncate(log_path, cut)  # as a repair of a torn tail, or a restored backup, does
    assert len(syncs) == 2

    log = JsonlEventLog(log_path)
    log.append([_event("short")])  # ends before the recorded offset, with other bytes
    assert log_path.stat().st_size < recorded
    log.commit()
    assert len(syncs) == 3
    log.close()
