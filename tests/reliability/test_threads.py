"""A storage and a log shared by threads: every event lands once, in a valid log."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from pipelines_events import audit
from pipelines_events.conf import override_settings
from pipelines_events.demo import DemoPipeline
from pipelines_events.errors import InvalidValueError
from pipelines_events.events import FieldSet, ObjectCreated
from pipelines_events.log import JsonlEventLog, jsonl, read_events
from pipelines_events.registry import registry
from pipelines_events.reporters import PipelineReporter
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.helpers import get_pipeline_execution, reset_storage_object
from pipelines_events.runners.eager import Runner
from pipelines_events.runners.process import Runner as ProcessRunner
from pipelines_events.status import PipelineTaskStatus

STORAGE = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"
THREADS = 4


class Quiet(PipelineReporter):
    def report(self, *args: Any) -> None:
        pass


def in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(index)`` in ``count`` threads started together; re-raise the first error."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hangs"
    if errors:
        raise errors[0]


def demo_events(tmp_path: Path) -> int:
    """How many events one run of the demo pipeline appends."""
    path = tmp_path / "one-run.jsonl"
    with closing(EventLogPipelineResultsStorage(path, durability="none")) as storage:
        run_demo(storage, "alone")
    return len(list(read_events(path)))


def run_demo(storage: EventLogPipelineResultsStorage, run_id: str) -> None:
    pipeline = DemoPipeline()
    registry.register_pipeline(DemoPipeline, pipeline_id=pipeline.get_id(), replace=True)
    execution = storage.build_pipeline_execution(pipeline, run_id, Runner(), Quiet(), None)
    with registry.using(pipeline):
        Runner().start(execution, Quiet())  # as Pipeline.start does: runner host and pid too


def check_log(path: Path, runs: list[str], per_run: int | None) -> None:
    """The log verifies, holds ``per_run`` events of every run (when given; else the
    objects of every run once) and every run is final."""
    report = audit.verify(path)
    assert report.ok, (report.line, report.reason)
    events = list(read_events(path))
    assert report.events == len(events)
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    if per_run is not None:
        assert len(events) == len(runs) * per_run
        assert Counter(event.run_id for event in events) == dict.fromkeys(runs, per_run)
    created = Counter(event.run_id for event in events if type(event) is ObjectCreated)
    assert set(created) == set(runs)
    assert len(set(created.values())) == 1
    with closing(EventLogPipelineResultsStorage(path, snapshots=False)) as storage:
        for run_id in runs:
            execution = storage.get_pipeline_execution(run_id)
            assert execution is not None
            assert execution.get_status() is PipelineTaskStatus.RUNTIME_ERROR
            statuses = {task.get_status() for task in storage.get_task_results(run_id=run_id)}
            assert all(status.is_final for status in statuses)


@pytest.fixture
def configured(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "shared.jsonl"
    with override_settings(
        PIPELINES_PIPELINES_RESULTS_STORAGE=(STORAGE, {"path": str(path), "durability": "none"})
    ):
        reset_storage_object()
        try:
            yield path
        finally:
            reset_storage_object()


def test_the_demo_pipeline_from_threads_on_the_configured_storage(
    configured: Path, tmp_path: Path
) -> None:
    per_run = demo_events(tmp_path)

    def work(index: int) -> None:
        for k in range(6):
            DemoPipeline().start(run_id=f"t{index}-{k}", reporter=Quiet())

    in_threads(THREADS, work)
    runs = [f"t{i}-{k}" for i in range(THREADS) for k in range(6)]
    for run_id in runs:
        execution = get_pipeline_execution(run_id)
        assert execution is not None
        assert execution.get_status() is PipelineTaskStatus.RUNTIME_ERROR
    reset_storage_object()
    check_log(configured, runs, per_run)


def test_two_storages_on_one_log_in_one_process_each_shared_by_threads(tmp_path: Path) -> None:
    per_run = demo_events(tmp_path)
    path = tmp_path / "two.jsonl"
    storages = [EventLogPipelineResultsStorage(path, durability="none") for _ in range(2)]

    def work(index: int) -> None:
        for k in range(5):
            run_demo(storages[index % 2], f"s{index}-{k}")

    try:
        in_threads(THREADS, work)
        runs = [f"s{i}-{k}" for i in range(THREADS) for k in range(5)]
        for storage in storages:
            # Each storage sees the runs of the other.
            assert {e.get_run_id() for e in storage.get_pipeline_executions()} == set(runs)
    finally:
        for storage in storages:
            storage.close()
    check_log(path, runs, per_run)


def test_a_log_object_shared_by_threads_appends_every_batch_once(log_path: Path) -> None:
    log = JsonlEventLog(log_path, durability="none")

    def work(index: int) -> None:
        for k in range(300):
            log.append(
                [
                    FieldSet(run_id="r", kind="task_result", id=f"{index}", field="k", value=k),
                    FieldSet(run_id="r", kind="task_result", id=f"{index}", field="j", value=k),
                ]
            )

    with log:
        in_threads(THREADS, work)
    events = list(read_events(log_path))
    assert len(events) == THREADS * 300 * 2
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    seen = Counter((event.id, event.field, event.value) for event in events)
    assert set(seen.values()) == {1}
    for first, second in zip(events[::2], events[1::2], strict=True):
        # The two events of each batch are side by side.
        assert (first.id, first.value, first.more) == (second.id, second.value, 1 + second.more)


def test_readers_in_threads_are_handed_each_batch_once(log_path: Path) -> None:
    with JsonlEventLog(log_path, durability="none") as writer:
        for k in range(2000):
            writer.append([FieldSet(run_id="r", kind="task_result", id="a", field="k", value=k)])
    got: list[list[int]] = [[] for _ in range(THREADS)]
    with JsonlEventLog(log_path, readonly=True) as reader:

        def work(index: int) -> None:
            for batch in reader.read_batches():
                got[index].extend(event.seq for event in batch)

        in_threads(THREADS, work)
    assert sorted(seq for seqs in got for seq in seqs) == list(range(1, 2001))
    for seqs in got:
        assert seqs == sorted(seqs)


def test_an_atomic_block_holds_only_its_own_threads_events(tmp_path: Path) -> None:
    path = tmp_path / "atomic.jsonl"
    storage = EventLogPipelineResultsStorage(path, durability="none")
    run_demo(storage, "run-1")
    first, second = storage.get_task_results(run_id="run-1")[:2]
    inside = threading.Event()
    other_done = threading.Event()

    def block() -> None:
        try:
            with first.atomic():
                first.set_note("from the block")
                inside.set()
                assert other_done.wait(10)
                raise RuntimeError("the block fails")
        except RuntimeError:
            pass

    def other() -> None:
        assert inside.wait(10)
        second.set_note("from another thread")
        other_done.set()

    before = len(list(read_events(path)))
    threads = [threading.Thread(target=block), threading.Thread(target=other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    # The other thread's event was written at once and is not lost with the block.
    notes = [e for e in list(read_events(path))[before:] if getattr(e, "field", "") == "note"]
    assert [(e.id, e.value) for e in notes] == [(second.get_id(), "from another thread")]
    assert second.get_note() == "from another thread"
    with pytest.raises(AttributeError, match="no stored field 'note'"):
        first.get_note()
    storage.close()


def test_a_status_change_in_one_thread_does_not_freeze_the_reads_of_others(
    tmp_path: Path,
) -> None:
    path = tmp_path / "frozen.jsonl"
    storage = EventLogPipelineResultsStorage(path, durability="none")
    run_demo(storage, "run-1")
    result = storage.get_task_results(run_id="run-1")[0]
    execution = storage.get_pipeline_execution("run-1")
    assert execution is not None
    reporting = threading.Event()
    release = threading.Event()

    class Waiting(PipelineReporter):
        def report(self, *args: Any) -> None:
            reporting.set()
            assert release.wait(10)

    fresh = storage.build_pipeline_execution(DemoPipeline(), "run-2", Runner(), Quiet(), None)
    thread = threading.Thread(
        target=lambda: fresh.report_status_change(Waiting(), "RUNNING", propagate=False)
    )
    thread.start()
    try:
        assert reporting.wait(10)
        # While that thread is inside its status change, another process changes an object.
        with closing(
            EventLogPipelineResultsStorage(path, durability="none", snapshots=False)
        ) as other:
            other_result = other.get_task_result(result.get_id())
            assert other_result is not None
            other_result.set_message("written elsewhere")
        assert result.get_message() == "written elsewhere"
    finally:
        release.set()
        thread.join(timeout=20)
    storage.close()


def test_forks_while_threads_write_leave_a_valid_log(tmp_path: Path) -> None:
    path = tmp_path / "fork.jsonl"
    storage = EventLogPipelineResultsStorage(path, durability="none")
    run_demo(storage, "run-1")
    result = storage.get_task_results(run_id="run-1")[0]
    stop = threading.Event()
    written = [0]

    def write() -> None:
        while not stop.is_set():
            result.set_counter(written[0])
            written[0] += 1

    writer = threading.Thread(target=write)
    writer.start()
    children = []
    try:
        for k in range(10):
            pid = os.fork()
            if pid == 0:  # the child: the storage works, whatever the writer thread did
                code = 1
                try:
                    signal.alarm(20)
                    # A field of its own: the other children write at the same time.
                    getattr(result, f"set_child_{k}")(k)
                    code = 0 if getattr(result, f"get_child_{k}")() == k else 2
                finally:
                    os._exit(code)
            children.append(pid)
    finally:
        stop.set()
        writer.join(timeout=20)
    for pid in children:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    storage.close()
    report = audit.verify(path)
    assert report.ok, (report.line, report.reason)
    events = list(read_events(path))
    children = {e.field: e.value for e in events if getattr(e, "field", "").startswith("child_")}
    assert children == {f"child_{k}": k for k in range(10)}
    counters = [e.value for e in events if getattr(e, "field", "") == "counter"]
    assert counters == list(range(written[0]))


def test_the_process_runner_from_threads_on_the_configured_storage(configured: Path) -> None:
    def work(index: int) -> None:
        for k in range(2):
            DemoPipeline().start(
                run_id=f"p{index}-{k}", runner=ProcessRunner(workers=2), reporter=Quiet()
            )

    in_threads(3, work)
    reset_storage_object()
    check_log(configured, [f"p{i}-{k}" for i in range(3) for k in range(2)], None)


def test_a_commit_never_skips_an_event_appended_while_another_threads_fsync_ran(
    log_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = JsonlEventLog(log_path)  # durability "fsync"
    log.append([FieldSet(run_id="r", kind="task_result", id="a", field="k", value=1)])
    in_sync = threading.Event()
    appended = threading.Event()
    synced_sizes: list[int] = []
    real = os.fdatasync

    def slow_fdatasync(fd: int) -> None:
        size = os.fstat(fd).st_size  # what this fsync covers: the file as it begins
        if not in_sync.is_set():
            in_sync.set()
            assert appended.wait(10)  # another thread appends meanwhile
        real(fd)
        synced_sizes.append(size)

    monkeypatch.setattr(jsonl.os, "fdatasync", slow_fdatasync)
    first = threading.Thread(target=log.commit)
    first.start()
    assert in_sync.wait(10)
    log.append([FieldSet(run_id="r", kind="task_result", id="a", field="k", value=2)])
    appended.set()
    first.join(timeout=20)
    log.commit()  # the second event was not covered by the first fsync: sync again
    monkeypatch.undo()
    assert synced_sizes[-1] == log_path.stat().st_size
    log.close()


def test_one_run_id_built_from_threads_on_two_storages_is_built_once(tmp_path: Path) -> None:
    path = tmp_path / "same-run.jsonl"
    storages = [EventLogPipelineResultsStorage(path, durability="none") for _ in range(2)]
    for k in range(15):
        built: list[str] = []
        refused: list[str] = []

        def work(
            index: int,
            run_id: str = f"race-{k}",
            built: list[str] = built,
            refused: list[str] = refused,
        ) -> None:
            storage = storages[index % 2]
            try:
                storage.build_pipeline_execution(DemoPipeline(), run_id, Runner(), Quiet(), None)
            except InvalidValueError as exc:
                assert f"run {run_id!r} already has an execution" in str(exc)
                refused.append(run_id)
            else:
                built.append(run_id)

        in_threads(THREADS, work)
        assert (len(built), len(refused)) == (1, THREADS - 1)
    for storage in storages:
        storage.close()
    with closing(EventLogPipelineResultsStorage(path, snapshots=False)) as reopened:
        runs = [execution.get_run_id() for execution in reopened.get_pipeline_executions()]
    assert sorted(runs) == sorted(f"race-{k}" for k in range(15))
    assert audit.verify(path).ok
