"""The file log's run index (``<log>.index``): the storage reads runs through it and gets
what a full fold gives, and the index is a cache rebuilt from the log whenever it is
missing, damaged, of another log, or left behind by a restored backup of the log."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from pipelines_events import audit
from pipelines_events.errors import InvalidValueError, LogOpenError
from pipelines_events.log import JsonlEventLog
from pipelines_events.log.fileindex import index_path
from pipelines_events.log.open import open_log
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.readmodel import FullReadModel, LazyReadModel
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing import (
    ExamplePipeline,
    ExampleReporter,
    ExampleRunner,
    ExampleTask,
    describe_storage,
)

Storage = EventLogPipelineResultsStorage
DONE = PipelineTaskStatus.DONE


def _build(storage: Storage, run_id: str, pipeline_id: str = "p", items: int = 2) -> None:
    pipeline = ExamplePipeline(
        pipeline_id,
        [ExampleTask("first"), ExampleTask("second", objects=range(items))],
        objects=["x"],
    )
    storage.build_pipeline_execution(pipeline, run_id, ExampleRunner(), ExampleReporter(), {})


def _finish(storage: Storage, run_id: str) -> None:
    execution = storage.get_pipeline_execution(run_id)
    assert execution is not None
    for task_result in storage.get_task_results(run_id=run_id):
        task_result.set_status(DONE)
    execution.set_status(DONE)


def _record(path: Path, *run_ids: str, index: bool = True) -> None:
    options = {"run_index": index}
    with closing(Storage(path, durability="none", log_options=options)) as storage:
        for run_id in run_ids:
            _build(storage, run_id)
            _finish(storage, run_id)
        storage.run_index()  # the index covers the whole log


def _full(path: Path) -> dict[str, Any]:
    """What the storage shows when it folds the whole log (no index)."""
    storage = Storage(path, readonly=True, log_options={"run_index": False})
    assert isinstance(storage.read_model, FullReadModel)
    with closing(storage):
        return _seen(storage)


def _seen(storage: Storage) -> dict[str, Any]:
    index = storage.run_index()
    return {
        "describe": describe_storage(storage),
        "runs": None if index is None else [s.run_id for s in index],
        "digest": storage.get_pipeline_digest(),
    }


def _indexed(path: Path, *, readonly: bool = False) -> tuple[dict[str, Any], int]:
    """What a storage reading through the index shows, and how often it rebuilt it."""
    with closing(Storage(path, readonly=readonly)) as storage:
        assert isinstance(storage.read_model, LazyReadModel)
        seen = _seen(storage)
        log = storage.log
        assert isinstance(log, JsonlEventLog) and log.run_index is not None
        return seen, log.run_index.rebuilds


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "x.jsonl"
    _record(path, "a", "b", "c")
    return path


def _expected(path: Path) -> dict[str, Any]:
    seen = _full(path)
    with closing(Storage(path, readonly=True)) as storage:
        seen["runs"] = [s.run_id for s in storage.run_index() or []]
    return seen


def test_the_storage_reads_runs_through_the_index_as_a_full_fold_does(log: Path) -> None:
    index = index_path(log)
    assert index.exists()  # the writer's first run built it
    with closing(Storage(log)) as storage:
        assert isinstance(storage.read_model, LazyReadModel)
        assert storage.read_model.loaded_runs == frozenset()  # nothing folded at open
        execution = storage.get_pipeline_execution("b")
        assert execution is not None and execution.get_status() is DONE
        assert storage.read_model.loaded_runs == {"b"}
        assert [s.run_id for s in storage.run_index() or []] == ["a", "b", "c"]
        assert storage.read_model.loaded_runs == {"b"}
    seen, rebuilds = _indexed(log)
    full = _full(log)
    assert seen["describe"] == full["describe"] and seen["digest"] == full["digest"]
    assert seen["runs"] == ["a", "b", "c"] and rebuilds == 0


def test_the_index_catches_up_on_what_writers_appended_without_a_rebuild(log: Path) -> None:
    reader = Storage(log, readonly=True)
    assert [s.run_id for s in reader.run_index() or []] == ["a", "b", "c"]
    _record(log, "d")
    with closing(Storage(log, log_options={"run_index": False})) as writer:  # the index is not told
        _build(writer, "e")
    assert [s.run_id for s in reader.run_index() or []] == ["a", "b", "c", "d", "e"]
    execution = reader.get_pipeline_execution("e")
    assert execution is not None and execution.get_status() is PipelineTaskStatus.PENDING
    reader.close()
    seen, rebuilds = _indexed(log)
    assert rebuilds == 0 and seen["describe"] == _full(log)["describe"]
    with sqlite3.connect(index_path(log)) as db:
        head = dict(db.execute("SELECT key, value FROM meta").fetchall())
    assert head["head_offset"] == log.stat().st_size


def _damage_truncated(index: Path, other: Path) -> None:
    data = index.read_bytes()
    index.write_bytes(data[: len(data) // 2])


def _damage_random(index: Path, other: Path) -> None:
    index.write_bytes(os.urandom(8192))


def _damage_header_only(index: Path, other: Path) -> None:
    data = bytearray(index.read_bytes())
    data[100:4096] = os.urandom(3996)
    index.write_bytes(bytes(data))


def _wrong_schema(index: Path, other: Path) -> None:
    index.unlink()
    with sqlite3.connect(index) as db:
        db.execute("CREATE TABLE runs (run_id TEXT)")
        db.execute("INSERT INTO runs VALUES ('ghost')")


def _older_schema(index: Path, other: Path) -> None:
    with sqlite3.connect(index) as db:
        db.execute("UPDATE meta SET value = 0 WHERE key = 'schema'")


def _extra_trigger(index: Path, other: Path) -> None:
    with sqlite3.connect(index) as db:
        db.execute("CREATE TRIGGER t AFTER INSERT ON runs BEGIN DELETE FROM runs; END")


def _foreign_sql_index(index: Path, other: Path) -> None:
    with sqlite3.connect(index) as db:
        db.execute("CREATE INDEX by_status ON runs (status)")


def _order_index_redefined(index: Path, other: Path) -> None:
    with sqlite3.connect(index) as db:
        db.execute("DROP INDEX runs_by_first_seq")
        db.execute("CREATE INDEX runs_by_first_seq ON runs (first_seq DESC, status)")


def _another_log(index: Path, other: Path) -> None:
    _record(other, "z1", "z2", "z3", "z4")
    shutil.copy(index_path(other), index)


def _rows_out_of_place(index: Path, other: Path) -> None:
    with sqlite3.connect(index) as db:
        db.execute("UPDATE extents SET byte = byte + 7")


def _seq_not_a_number(index: Path, other: Path) -> None:
    with sqlite3.connect(index) as db:
        db.execute("UPDATE runs SET last_seq = 'many'")


def _extent_lost(index: Path, other: Path) -> None:
    with sqlite3.connect(index) as db:  # SQLite reads a damaged row back without an error
        db.execute(
            "DELETE FROM extents WHERE run_id = 'b' AND first_seq = "
            "(SELECT MAX(first_seq) FROM extents WHERE run_id = 'b')"
        )


def _extents_of_another_run(index: Path, other: Path) -> None:
    with sqlite3.connect(index) as db:
        db.execute("UPDATE extents SET run_id = 'x' WHERE run_id = 'b'")


def _empty_file(index: Path, other: Path) -> None:
    index.write_bytes(b"")


DAMAGE = {
    "truncated": _damage_truncated,
    "random bytes": _damage_random,
    "pages overwritten": _damage_header_only,
    "wrong schema": _wrong_schema,
    "older schema": _older_schema,
    "extra trigger": _extra_trigger,
    "a foreign SQL index": _foreign_sql_index,
    "the order index redefined": _order_index_redefined,
    "from another log": _another_log,
    "extents out of place": _rows_out_of_place,
    "an extent lost": _extent_lost,
    "a run's extents named for another run": _extents_of_another_run,
    "empty file": _empty_file,
    "a seq that is not a number": _seq_not_a_number,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_index_is_rebuilt_and_answers_as_the_log(
    log: Path, tmp_path: Path, damage: str
) -> None:
    expected = _expected(log)
    DAMAGE[damage](index_path(log), tmp_path / "other.jsonl")
    # A reader must not write: it answers from the log in memory, the file stays.
    before = index_path(log).read_bytes()
    seen, _ = _indexed(log, readonly=True)
    assert seen == expected
    assert index_path(log).read_bytes() == before
    seen, rebuilds = _indexed(log)
    assert seen == expected
    assert rebuilds == 1
    # Rebuilt: the next handle trusts it again.
    seen, rebuilds = _indexed(log)
    assert (seen, rebuilds) == (expected, 0)


def test_a_deleted_index_is_rebuilt(log: Path) -> None:
    expected = _expected(log)
    index_path(log).unlink()
    seen, rebuilds = _indexed(log, readonly=True)
    assert seen == expected and rebuilds == 0 and not index_path(log).exists()
    seen, rebuilds = _indexed(log)
    assert seen == expected and rebuilds == 1 and index_path(log).exists()


def test_an_index_left_by_a_restored_older_backup_of_the_log_is_rebuilt(
    log: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.jsonl"
    shutil.copy(log, backup)
    _record(log, "d", "e")  # the index now covers d and e
    shutil.copy(backup, log)  # the older log is restored; the index stays
    expected = _expected(log)
    assert expected["runs"] == ["a", "b", "c"]
    seen, rebuilds = _indexed(log)
    assert seen == expected and rebuilds == 1


def test_an_index_of_a_backup_that_diverged_is_rebuilt(log: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backup.jsonl"
    shutil.copy(log, backup)
    _record(log, "d")  # the index covers d
    shutil.copy(backup, log)
    _record(log, "other", "more", "runs", index=False)  # longer, another history
    expected = _full(log)
    with closing(Storage(log)) as storage:
        seen = _seen(storage)
        assert isinstance(storage.log, JsonlEventLog) and storage.log.run_index is not None
        rebuilds = storage.log.run_index.rebuilds
    assert seen["runs"] == ["a", "b", "c", "other", "more", "runs"]
    assert seen["describe"] == expected["describe"] and rebuilds >= 1


def test_an_index_behind_the_log_indexes_only_the_tail(log: Path, tmp_path: Path) -> None:
    stale = tmp_path / "stale.index"
    shutil.copy(index_path(log), stale)
    _record(log, "d", "e")
    shutil.copy(stale, index_path(log))
    expected = _expected(log)
    seen, rebuilds = _indexed(log)
    assert seen == expected and rebuilds == 0


def test_a_symbolic_link_in_place_of_the_index_is_never_followed(log: Path, tmp_path: Path) -> None:
    expected = _expected(log)
    target = tmp_path / "elsewhere.db"
    shutil.copy(index_path(log), target)
    before = target.read_bytes()
    index_path(log).unlink()
    index_path(log).symlink_to(target)
    seen, _ = _indexed(log, readonly=True)
    assert seen == expected and index_path(log).is_symlink()
    seen, rebuilds = _indexed(log)
    assert seen == expected and rebuilds == 1
    assert not index_path(log).is_symlink()  # replaced, not written through
    assert target.read_bytes() == before


def test_an_index_of_another_owner_is_never_trusted(log: Path) -> None:
    expected = _expected(log)
    with sqlite3.connect(index_path(log)) as db:
        db.execute("UPDATE runs SET status = 'FORGED'")
    os.chown(index_path(log), 12345, 12345)
    seen, _ = _indexed(log, readonly=True)
    assert seen == expected
    seen, rebuilds = _indexed(log)
    assert seen == expected and rebuilds == 1
    assert index_path(log).stat().st_uid == os.geteuid()


def test_a_directory_in_place_of_the_index_does_not_stop_the_storage(log: Path) -> None:
    expected = _expected(log)
    index_path(log).unlink()
    index_path(log).mkdir()
    seen, _ = _indexed(log)
    assert seen == expected and index_path(log).is_dir()


def test_a_read_only_storage_writes_no_index(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    with closing(Storage(path, log_options={"run_index": False})) as writer:
        _build(writer, "a")
        _finish(writer, "a")
    before = sorted(tmp_path.iterdir())
    seen, _ = _indexed(path, readonly=True)
    assert seen["runs"] == ["a"] and sorted(tmp_path.iterdir()) == before


def test_run_index_must_be_a_bool_and_nothing_is_created(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    with pytest.raises(LogOpenError, match=r"^run_index must be True or False, not 'yes'$"):
        open_log(path, run_index="yes")
    assert list(tmp_path.iterdir()) == []
    with (
        JsonlEventLog(path, run_index=False) as log,
        pytest.raises(NotImplementedError, match="it keeps no run index"),
    ):
        log.run_summaries()
    assert list(tmp_path.iterdir()) == [path]


def _writer(path: str, name: str, runs: int) -> None:
    with closing(Storage(path, durability="none")) as storage:
        for number in range(runs):
            run_id = f"{name}-{number}"
            _build(storage, run_id, pipeline_id=name)
            _finish(storage, run_id)


def test_concurrent_writer_processes_and_a_reader_agree_with_the_log(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    _record(path, "first")
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_writer, args=(str(path), f"w{n}", 6)) for n in range(3)]
    for process in writers:
        process.start()
    reader = Storage(path, readonly=True)
    seen_counts = []
    try:
        while any(process.is_alive() for process in writers):
            runs = reader.run_index() or []
            seen_counts.append(len(runs))
            assert runs[0].run_id == "first"
            if runs:
                last = reader.get_pipeline_execution(runs[-1].run_id)
                assert last is not None
    finally:
        for process in writers:
            process.join(60)
    assert [process.exitcode for process in writers] == [0, 0, 0]
    assert seen_counts == sorted(seen_counts)  # runs only ever appear
    expected = _full(path)
    assert _seen(reader)["describe"] == expected["describe"]
    reader.close()
    seen, rebuilds = _indexed(path)
    assert seen["describe"] == expected["describe"] and rebuilds == 0
    assert len(seen["runs"]) == 19


def test_the_index_answers_in_a_forked_child(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    _record(path, "a")
    storage = Storage(path)
    assert [s.run_id for s in storage.run_index() or []] == ["a"]
    code = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys\n"
            "from pipelines_events.results.eventlog import EventLogPipelineResultsStorage as S\n"
            f"s = S({str(path)!r})\n"
            "s.run_index()\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    ok = [r.run_id for r in s.run_index()] == ['a']\n"
            "    os._exit(0 if ok else 3)\n"
            "_, status = os.waitpid(pid, 0)\n"
            "sys.exit(os.waitstatus_to_exitcode(status) or len(s.run_index()) - 1)\n",
        ],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    storage.close()
    assert code.returncode == 0, code.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines_events", *args],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_commands_answer_the_same_with_and_without_the_index(log: Path) -> None:
    commands = [
        ["runs", "--log", str(log), "--format", "json"],
        ["runs", "--log", str(log), "--format", "json", "--limit", "2"],
        ["show", "b", "--log", str(log), "--format", "json"],
        ["verify", "--log", str(log)],
    ]
    with_index = [_cli(*argv) for argv in commands]
    assert [done.returncode for done in with_index] == [0, 0, 0, 0], with_index[-1].stderr
    index_path(log).unlink()
    without = [_cli(*argv) for argv in commands]
    assert [done.stdout for done in without] == [done.stdout for done in with_index]
    assert not index_path(log).exists()  # reading commands write nothing
    runs = json.loads(with_index[1].stdout)
    assert [run["run_id"] for run in runs] == ["c", "b"]


def test_verify_fails_when_the_index_disagrees_with_the_events(log: Path) -> None:
    with sqlite3.connect(index_path(log)) as db:
        db.execute("UPDATE runs SET status = 'FORGED' WHERE run_id = 'b'")
    done = _cli("verify", "--log", str(log))
    assert done.returncode != 0
    assert "the run index does not match the events: run 'b': status is 'FORGED'" in (
        done.stdout + done.stderr
    )
    # A writer's rebuild is not triggered by wrong rows: verify is the check; deleting the
    # index (a cache) mends it.
    index_path(log).unlink()
    assert _cli("verify", "--log", str(log)).returncode == 0


@pytest.mark.parametrize("damage", ["an extent lost", "a run's extents named for another run"])
def test_verify_fails_when_the_index_places_a_runs_events_wrongly(log: Path, damage: str) -> None:
    DAMAGE[damage](index_path(log), log)
    done = _cli("verify", "--log", str(log))
    assert done.returncode != 0
    assert "the run index does not match the events: run " in done.stdout + done.stderr
    assert "the log holds" in done.stdout + done.stderr
    index_path(log).unlink()
    assert _cli("verify", "--log", str(log)).returncode == 0


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("UPDATE objects SET run_id = 'c' WHERE object_id = (SELECT MIN(object_id) FROM "
         "objects WHERE run_id = 'b')", "it maps"),
        ("UPDATE objects SET object_id = object_id || 'x' WHERE object_id = (SELECT "
         "MIN(object_id) FROM objects WHERE run_id = 'b')", "under other ids"),
    ],
    ids=["an object mapped to another run", "an object id changed"],
)  # fmt: skip
def test_verify_fails_when_the_index_maps_an_object_wrongly(
    log: Path, change: str, said: str
) -> None:
    with sqlite3.connect(index_path(log)) as db:
        db.execute(change)
    done = _cli("verify", "--log", str(log))
    assert done.returncode != 0
    assert "the run index does not match the events: run " in done.stdout + done.stderr
    assert said in done.stdout + done.stderr
    index_path(log).unlink()
    assert _cli("verify", "--log", str(log)).returncode == 0


def test_a_writer_over_an_index_that_lost_a_runs_extents_refuses_its_id_again(
    log: Path,
) -> None:
    with sqlite3.connect(index_path(log)) as db:
        db.execute("UPDATE extents SET run_id = 'x' WHERE run_id = 'b'")
    with closing(Storage(log, durability="none")) as storage:
        execution = storage.get_pipeline_execution("b")
        assert execution is not None and execution.get_status() is DONE
        with pytest.raises(InvalidValueError, match="already has an execution"):
            _build(storage, "b")
    # The log still folds whole (the refused run was never written), and verifies.
    assert _indexed(log)[0] == _expected(log)
    assert _cli("verify", "--log", str(log)).returncode == 0


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    leftovers = [p for p in tmp_path.rglob("*.tmp") if p.name.startswith("x.jsonl.index")]
    assert leftovers == []


def test_an_index_another_process_holds_locked_is_not_rebuilt(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines_events.log import fileindex

    monkeypatch.setattr(fileindex, "_BUSY_MS", 200)
    _record(log, "d", index=False)  # a tail to index
    expected = _full(log)
    holder = sqlite3.connect(index_path(log), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # as a long catch-up of another process would
    try:
        with closing(Storage(log)) as storage:
            seen = _seen(storage)
            assert isinstance(storage.log, JsonlEventLog) and storage.log.run_index is not None
            rebuilds = storage.log.run_index.rebuilds
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert seen["describe"] == expected["describe"] and rebuilds == 0
    assert seen["runs"] == ["a", "b", "c", "d"]


def test_only_an_index_kept_apart_from_the_events_is_compared_by_verify(log: Path) -> None:
    with open_log(log, readonly=True) as reader:
        assert reader.run_index_stored()  # the file beside the log: it could be forged
    index_path(log).unlink()
    with open_log(log, readonly=True) as reader:
        # Read-only and no file: the index would be folded from these same events.
        assert not reader.run_index_stored()
        assert [summary.run_id for summary in reader.run_summaries()] == ["a", "b", "c"]
    report = audit.verify(log)
    assert report.ok and report.run_index and report.run_index_reason is None
    assert not index_path(log).exists()  # verify writes nothing
    with open_log(log) as writer:
        assert writer.run_index_stored()  # a writer rebuilds the file
    assert index_path(log).exists()
    with open_log(log, readonly=True, run_index=False) as reader:
        assert not reader.run_index_stored()
