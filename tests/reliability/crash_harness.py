"""Crash harness: writer processes on one log are killed with SIGKILL at random moments.

Each round forks a few writer processes that work on the same log through the event-log
storage (durability ``fsync``). A writer acknowledges every change to the parent through
a pipe once the storage call that made it has returned (``save()``/``commit()`` done):
that is the promise the storage makes, the change must survive anything from then on.
The parent kills the writers at random moments (some while opening the log, some while
holding its lock in the middle of a write), then checks the log:

* a read-only reader sees only whole batches, and the file may end in a torn tail;
* a writer opening the log repairs the torn tail (``TornWriteRepaired``);
* every event reads back verified (hash chain, contiguous ``seq``, whole batches), and
  the storage replays it;
* every acknowledged change is in the log exactly once, and in the projections.

With ``slow=True`` a writer's appends are written in small pieces with short pauses (a
slow disk), so that kills often land in the middle of a batch, while the writer holds the
lock: the kernel releases the lock and the next writer must repair the tail.

Run the full count with ``python tests/reliability/crash_harness.py --kills 200`` (or
through ``benchmarks/crash_full.py``, or ``PIPELINES_EVENTS_CRASH_KILLS=200 python -m pytest
tests/reliability/test_reliability_crash.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import signal
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the ``tests`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pipelines_events.log.jsonl as jsonl
from pipelines_events.events import FieldSet, ObjectCreated
from pipelines_events.log import JsonlEventLog, TornWriteRepaired, read_events
from pipelines_events.results.eventlog import (
    DEFAULT_SNAPSHOT_EVERY,
    EventLogPipelineResultsStorage,
)
from pipelines_events.status import PipelineTaskStatus
from tests.reliability.common import TinyPipeline, TinyTask, build, snapshot
from tests.support.snapshot_support import SnapshotIgnored, snapshot_path

KILLS_ENV = "PIPELINES_EVENTS_CRASH_KILLS"
SEED_ENV = "PIPELINES_EVENTS_CRASH_SEED"
DEFAULT_KILLS = 40
FULL_KILLS = 200

SNAPSHOT_EVERY = (DEFAULT_SNAPSHOT_EVERY, 1, 40)
"""How often writers write snapshots of the projections (chosen at random per writer):
with the small values, kills also land while a snapshot is written."""

WAIT_TIMEOUT = 30.0
"""Longest wait for a killed writer to be reaped (it is killed, so this never binds)."""

_RANK = {"PENDING": 0, "RUNNING": 1}
_PIPELINE = TinyPipeline(
    "crash",
    objects=[0, 1],
    tasks=[TinyTask("first", [0, 1, 2]), TinyTask("second", None)],
)


# -- the writer process -----------------------------------------------------------------


class _Acks:
    """Tell the parent, one line per acknowledged change, with a single write each."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __call__(self, kind: str, *values: str) -> None:
        line = " ".join((kind, *values)).encode() + b"\n"
        assert len(line) < 512  # well under PIPE_BUF: one atomic write
        os.write(self.fd, line)


def _slow_writes(storage: EventLogPipelineResultsStorage, rng: random.Random) -> None:
    """Make appends to the log land in pieces, with pauses between them."""
    real_write = os.write

    def write(fd: int, data: Any) -> int:
        if fd != storage.log._fd or len(data) < 2:
            return real_write(fd, data)
        data = bytes(data)
        done = 0
        while done < len(data):
            piece = rng.randint(1, max(1, len(data) // 3))
            done += real_write(fd, data[done : done + piece])
            if done < len(data):
                time.sleep(rng.uniform(0.0001, 0.001))
        return done

    jsonl.os.write = write  # type: ignore[assignment]  # this process only; it is killed


def writer(path: str, tag: str, ack_fd: int, seed: int, slow: bool, snapshot_every: int) -> None:
    """Work on the log until killed, acknowledging every committed change; the storage
    writes a snapshot when it opens ``snapshot_every`` events past the last one."""
    ack = _Acks(ack_fd)
    rng = random.Random(seed)
    warnings.simplefilter("always", TornWriteRepaired)
    show = warnings.showwarning

    def count_repairs(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        if issubclass(category, TornWriteRepaired):
            ack("repaired", tag)
        else:
            show(message, category, *args, **kwargs)

    warnings.showwarning = count_repairs
    # durability="fsync": the default
    storage = EventLogPipelineResultsStorage(path, snapshot_every=snapshot_every)
    ack("opened", tag)
    if slow:
        _slow_writes(storage, rng)
    count = 0
    for run in range(10**6):
        run_id = f"{tag}-run{run}"
        build(storage, run_id, _PIPELINE)
        ack("built", run_id)
        for result in storage.get_task_results(run_id=run_id):
            for status in (PipelineTaskStatus.RUNNING, PipelineTaskStatus.DONE):
                count += 1
                choice = rng.random()
                if choice < 0.3:
                    value = f"{tag}-p{count}"
                    result.set_payload(value)
                    result.save()
                    ack("payload", value)
                elif choice < 0.4:
                    value = f"{tag}-n{count}"
                    with result.atomic():
                        result.set_data("x" * rng.randint(1000, 300_000))
                        result.set_note(value)
                    result.save()
                    ack("note", value)
                message = f"{tag}-m{count}"
                assert result.report_status_change(None, status, message)
                ack("status", result.get_id(), status.name, message)


# -- the parent ---------------------------------------------------------------------------


@dataclass
class CrashReport:
    """What the harness did and found."""

    kills: int = 0
    rounds: int = 0
    logs: int = 0
    torn_tails: int = 0
    """Kills after which the file ended in an unfinished batch."""
    repaired_on_open: int = 0
    repaired_by_writers: int = 0
    acknowledged: int = 0
    events_checked: int = 0
    """Events in the logs at the end (each was verified again after every later kill)."""
    event_reads: int = 0
    killed_before_open: int = 0
    snapshot_checks: int = 0
    """Checks of projections restored from a snapshot against a full replay."""
    snapshots_ignored: int = 0
    snapshot_litter: int = 0
    """Temporary snapshot files left behind by writers killed while writing one."""
    lost: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.kills} kills in {self.rounds} rounds on {self.logs} logs "
            f"({self.killed_before_open} before the writer had opened the log); "
            f"{self.torn_tails} left a torn tail, repaired {self.repaired_on_open} times on "
            f"open and {self.repaired_by_writers} times by surviving writers; "
            f"{self.acknowledged} acknowledged changes checked after every kill; "
            f"{self.events_checked} events in the logs ({self.event_reads} verified reads); "
            f"{self.snapshot_checks} snapshot restores equal to a full replay "
            f"({self.snapshots_ignored} snapshots ignored, {self.snapshot_litter} temporary "
            f"snapshot files left by killed writers); "
            f"lost: {len(self.lost)}; {self.seconds:.1f} s"
        )


@dataclass
class _Acked:
    runs: set[str] = field(default_factory=set)
    payloads: set[str] = field(default_factory=set)
    notes: set[str] = field(default_factory=set)
    messages: set[str] = field(default_factory=set)
    statuses: dict[str, str] = field(default_factory=dict)
    events: int = 0

    def count(self) -> int:
        return len(self.runs) + len(self.payloads) + len(self.notes) + len(self.messages)


def _read_acks(fd: int) -> list[list[str]]:
    data = bytearray()
    while chunk := os.read(fd, 65536):
        data += chunk
    os.close(fd)
    assert data.endswith(b"\n") or not data, "an acknowledgement was cut"
    return [line.split(" ") for line in data.decode().splitlines()]


def _record(acks: list[list[str]], acked: _Acked, report: CrashReport) -> bool:
    """Fold a writer's acknowledgements; returns whether it had opened the log."""
    opened = False
    for kind, *values in acks:
        if kind == "opened":
            opened = True
        elif kind == "repaired":
            report.repaired_by_writers += 1
        elif kind == "built":
            acked.runs.add(values[0])
        elif kind == "payload":
            acked.payloads.add(values[0])
        elif kind == "note":
            acked.notes.add(values[0])
        elif kind == "status":
            object_id, status, message = values
            acked.messages.add(message)
            if _RANK.get(status, 2) >= _RANK.get(acked.statuses.get(object_id, "PENDING"), 2):
                acked.statuses[object_id] = status
        else:
            raise AssertionError(f"unknown acknowledgement {kind!r}")
    return opened


def _check(path: Path, acked: _Acked, report: CrashReport) -> None:
    """Everything acknowledged is in the log once, the log verifies, the storage replays."""
    with JsonlEventLog(path, readonly=True) as reader:  # sees whole batches only
        before_repair = list(reader.read_new())
        end = reader.position.offset
    size = path.stat().st_size
    if size != end:
        report.torn_tails += 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        storage = EventLogPipelineResultsStorage(path)
    repairs = [w for w in caught if issubclass(w.category, TornWriteRepaired)]
    assert len(repairs) == (size != end), [str(w.message) for w in caught]
    report.repaired_on_open += len(repairs)
    report.snapshots_ignored += sum(issubclass(w.category, SnapshotIgnored) for w in caught)
    assert path.stat().st_size == end
    try:
        if snapshot_path(path).exists():
            # The projections restored from the snapshot equal a full replay of the log.
            report.snapshot_checks += 1
            replayed = EventLogPipelineResultsStorage(path, snapshots=False)
            try:
                if snapshot(replayed) != snapshot(storage):
                    report.lost.append(f"the snapshot of {path} does not match its log")
            finally:
                replayed.close()
        events = list(read_events(path))  # verifies the chain, seq and batches
        assert events == before_repair
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        report.event_reads += len(events)
        acked.events = len(events)
        runs = Counter(
            e.run_id for e in events if type(e) is ObjectCreated and e.kind == "pipeline_execution"
        )
        values: dict[str, Counter[Any]] = {
            name: Counter(
                e.value
                for e in events
                if type(e) is FieldSet and e.field == name and e.kind == "task_result"
            )
            for name in ("payload", "note", "message")
        }
        for what, seen, wanted in [
            ("run", runs, acked.runs),
            ("payload", values["payload"], acked.payloads),
            ("note", values["note"], acked.notes),
            ("message", values["message"], acked.messages),
        ]:
            for value in sorted(wanted):
                if seen[value] != 1:
                    report.lost.append(f"{what} {value} found {seen[value]} times in {path}")
        for object_id, status in acked.statuses.items():
            result = storage.get_task_result(object_id)
            if result is None:
                report.lost.append(f"task result {object_id} is missing from {path}")
            elif _RANK.get(result.get_status().name, 2) < _RANK.get(status, 2):
                report.lost.append(
                    f"task result {object_id} is {result.get_status().name}, acknowledged {status}"
                )
        for run_id in acked.runs:
            if storage.get_pipeline_execution(run_id) is None:
                report.lost.append(f"run {run_id} is missing from the projections")
    finally:
        storage.close()


def run_crash_rounds(
    directory: Path,
    *,
    kills: int = DEFAULT_KILLS,
    seed: int = 5,
    writers_per_round: int = 2,
    rounds_per_log: int = 10,
    max_delay: float = 0.25,
    slow_share: float = 0.5,
    progress: Any = None,
) -> CrashReport:
    """Kill writers ``kills`` times; returns the report (``lost`` must be empty)."""
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(seed)
    report = CrashReport()
    started = time.monotonic()
    path = directory / "crash-0.jsonl"
    acked = _Acked()
    while report.kills < kills:
        if report.rounds % rounds_per_log == 0:
            path = directory / f"crash-{report.logs}.jsonl"
            report.logs += 1
            acked = _Acked()
        writers = min(writers_per_round, kills - report.kills)
        children = []
        for index in range(writers):
            read_fd, write_fd = os.pipe()
            tag = f"r{report.rounds}w{index}"
            slow = rng.random() < slow_share
            every = rng.choice(SNAPSHOT_EVERY)
            process = ctx.Process(
                target=writer,
                args=(str(path), tag, write_fd, rng.randrange(2**32), slow, every),
            )
            process.start()
            os.close(write_fd)
            children.append((process, read_fd))
        deadlines = sorted(rng.uniform(0.0, max_delay) for _ in children)
        round_start = time.monotonic()
        for (process, _), deadline in zip(children, deadlines, strict=True):
            time.sleep(max(0.0, round_start + deadline - time.monotonic()))
            assert process.pid is not None
            with contextlib.suppress(ProcessLookupError):  # it may have died already
                os.kill(process.pid, signal.SIGKILL)
        for process, read_fd in children:
            process.join(WAIT_TIMEOUT)
            if process.is_alive():
                raise AssertionError(f"writer {process.pid} survived SIGKILL for {WAIT_TIMEOUT} s")
            if process.exitcode != -signal.SIGKILL:
                raise AssertionError(
                    f"writer {process.pid} ended by itself (exit code {process.exitcode}) "
                    "before it was killed: see its traceback above"
                )
            report.kills += 1
            if not _record(_read_acks(read_fd), acked, report):
                report.killed_before_open += 1
        report.rounds += 1
        _check(path, acked, report)
        if report.rounds % rounds_per_log == 0 or report.kills >= kills:
            report.snapshot_litter += len(list(directory.glob(f"{path.name}.snapshot.*")))
            report.acknowledged += acked.count()
            report.events_checked += acked.events
        if progress is not None:
            progress(report)
    report.seconds = time.monotonic() - started
    return report


def kills_from_env(default: int = DEFAULT_KILLS) -> int:
    """The kill count asked for by ``PIPELINES_EVENTS_CRASH_KILLS`` (else ``default``)."""
    value = os.environ.get(KILLS_ENV, "").strip()
    return int(value) if value else default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=kills_from_env(FULL_KILLS))
    parser.add_argument("--seed", type=int, default=int(os.environ.get(SEED_ENV, "5")))
    parser.add_argument("--writers", type=int, default=2, help="writers per round")
    parser.add_argument("--dir", type=Path, default=None, help="where the logs go")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="crash-harness-") as tmp:
        directory = args.dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        report = run_crash_rounds(
            directory, kills=args.kills, seed=args.seed, writers_per_round=args.writers
        )
    print(report.summary())
    for line in report.lost[:50]:
        print("LOST:", line)
    return 1 if report.lost else 0


if __name__ == "__main__":
    sys.exit(main())
