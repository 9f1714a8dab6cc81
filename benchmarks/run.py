"""The benchmark suite: absolute figures and ratios against baselines measured in the same run.

    python -m benchmarks.run                 # reduced sizes (a few minutes)
    python -m benchmarks.run --full          # logs of 10^4..10^7 events, 10k durable runs
    python -m benchmarks.run --json out.json --chart docs/_static/benchmarks.png

Every ratio divides a figure of pipelines-events by a baseline measured in this same run,
at equal durability: "fsync" rows commit with one fsync per commit on both sides,
"unsynced" rows never fsync (sqlite ``synchronous=OFF``, log ``durability="none"``).
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

import msgspec

from benchmarks.baselines import BASELINES, load_baseline, raw
from benchmarks.make_log import make_log
from benchmarks.measure import (
    cli_seconds,
    interleaved,
    median,
    rss_after_open,
    sha256_seconds,
)
from benchmarks.pipelines import QuietReporter, benchmark_pipeline
from pipelines_events.conf import settings
from pipelines_events.events import AnyEvent, FieldSet, now_text
from pipelines_events.log import JsonlEventLog
from pipelines_events.log.fileindex import index_path
from pipelines_events.log.jsonl import Durability
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.helpers import reset_storage_object
from pipelines_events.runners.eager import Runner
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing import ExamplePipeline, ExampleTask
from projections import DigestProjection, ResultsProjection

STORAGE = "pipelines_events.results.eventlog.EventLogPipelineResultsStorage"


@dataclass
class Row:
    """One measured figure, and its ratio to a baseline of the same run when it has one."""

    scenario: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    target: str = ""
    durability: str = ""
    best: float | None = None
    """The best of interleaved rounds (the least time, the highest rate); ``value`` is
    then their median."""
    baseline_best: float | None = None

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value


@dataclass
class Report:
    """Everything one run measured."""

    rows: list[Row] = field(default_factory=list)
    series: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        ratio = "" if row.ratio is None else f"  ratio {row.ratio:.2f}"
        best = "" if row.best is None else f" (median; best {row.best:.4g})"
        print(
            f"  {row.scenario}: {row.value:.4g} {row.unit}{best}{ratio}",
            file=sys.stderr,
            flush=True,
        )
        return row


def _best(times: int, action: Callable[[], float]) -> float:
    """The median of ``times`` runs of ``action`` (which returns a duration)."""
    return statistics.median(action() for _ in range(times))


def _storage(path: Path, durability: Durability, **kwargs: Any) -> EventLogPipelineResultsStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return EventLogPipelineResultsStorage(path, durability=durability, **kwargs)


def _one_task_result(storage: EventLogPipelineResultsStorage, count: int = 1) -> list[Any]:
    """Build a new run of ``count`` task results and return them."""
    pipeline = ExamplePipeline("benchmarks.Set", [ExampleTask("t", objects=list(range(count)))])
    run_id = str(uuid.uuid4())
    storage.build_pipeline_execution(pipeline, run_id, object(), object(), {})
    return list(storage.get_task_results(run_id=run_id))


# -- scenarios ----------------------------------------------------------------------------


def _encode_and_write(path: Path, n: int, durable: bool) -> float:
    """Seconds per event of msgspec encode + one ``os.write`` (+ fsync when durable)."""
    encoder = msgspec.json.Encoder()
    event = FieldSet(
        v=1,
        seq=1,
        ts=now_text(),
        run_id=str(uuid.uuid4()),
        kind="task_result",
        id=str(uuid.uuid4()),
        field="progress",
        value=1,
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        start = time.perf_counter()
        for _ in range(n):
            os.write(fd, encoder.encode(event) + b"\n")
            if durable:
                os.fsync(fd)
        return (time.perf_counter() - start) / n
    finally:
        os.close(fd)


def bench_log(report: Report, work: Path, n: int, fold_events: int) -> None:
    """The log alone: append per event in each durability mode, and folding a big log,
    beside msgspec encode + ``os.write`` measured in the same run (issue #2's figures)."""
    print("log", file=sys.stderr)
    chunk = 2_000
    cheap = raw_write = float("inf")
    with JsonlEventLog(work / "append-none.jsonl", durability="none") as log:
        run_id, object_id = str(uuid.uuid4()), str(uuid.uuid4())
        for _ in range(max(1, n // chunk)):
            start = time.perf_counter()
            for value in range(chunk):
                log.append(
                    [
                        FieldSet(
                            run_id=run_id,
                            kind="task_result",
                            id=object_id,
                            field="progress",
                            value=value,
                        )
                    ]
                )
            cheap = min(cheap, (time.perf_counter() - start) / chunk)
            raw_write = min(raw_write, _encode_and_write(work / f"w-{uuid.uuid4()}", chunk, False))
    durable_n = max(50, n // 100)
    with JsonlEventLog(work / "append-fsync.jsonl") as log:
        start = time.perf_counter()
        for value in range(durable_n):
            log.append(
                [
                    FieldSet(
                        run_id=run_id,
                        kind="task_result",
                        id=object_id,
                        field="progress",
                        value=value,
                    )
                ]
            )
            log.commit()
        durable = (time.perf_counter() - start) / durable_n
    raw_durable = _encode_and_write(work / "w-durable", durable_n, True)
    report.add(Row("msgspec encode + os.write", raw_write * 1e6, "us/event"))
    report.add(
        Row(
            "append, durability none",
            cheap * 1e6,
            "us/event",
            "encode + write",
            raw_write * 1e6,
            durability="unsynced",
        )
    )
    report.add(Row("msgspec encode + os.write + fsync", raw_durable * 1e6, "us/event"))
    report.add(
        Row(
            "append + commit, durability fsync",
            durable * 1e6,
            "us/event",
            "encode + write + fsync",
            raw_durable * 1e6,
            durability="fsync",
        )
    )
    path = work / "fold.jsonl"
    make_log(path, fold_events)
    fold = _decode_and_fold(path)
    gc.collect()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        storage = EventLogPipelineResultsStorage(
            path, durability="none", snapshots=False, log_options=_NO_INDEX
        )
    opened = time.perf_counter() - start
    storage.close()
    report.add(Row(f"decode + fold {fold_events} events (no checks)", fold, "s"))
    report.add(
        Row(
            f"read, verify and fold {fold_events} events (open, no snapshot, no run index)",
            opened,
            "s",
            "decode + fold",
            fold,
            "<= 1.5x",
        )
    )
    path.unlink()


def bench_writes(report: Report, work: Path, n: int) -> None:
    """A ``set_`` and a committed status change against the raw ceiling and one fsync."""
    print("writes", file=sys.stderr)
    storage = _storage(work / "set.jsonl", "none")
    (task_result,) = _one_task_result(storage)
    chunk = 2_000

    def set_calls() -> float:
        start = time.perf_counter()
        for value in range(chunk):
            task_result.set_progress(value)
        return (time.perf_counter() - start) / chunk

    # Interleave small chunks of each side and keep each side's best chunk, so a burst of
    # load on the machine cannot land on one side only.
    raw_event = raw_locked = set_cost = float("inf")
    for _ in range(max(1, n // chunk)):
        raw_event = min(
            raw_event, raw.append_seconds_per_event(work / f"raw-{uuid.uuid4()}", chunk)
        )
        raw_locked = min(
            raw_locked,
            raw.append_seconds_per_event(work / f"raw-{uuid.uuid4()}", chunk, lock=True),
        )
        set_cost = min(set_cost, set_calls())
    report.add(
        Row(
            "raw ceiling: encode + hash + os.write",
            raw_event * 1e6,
            "us/event",
            durability="unsynced",
        )
    )
    report.add(
        Row(
            "raw ceiling with the flock pair",
            raw_locked * 1e6,
            "us/event",
            durability="unsynced",
        )
    )
    report.add(
        Row(
            "set_ through the public API (durability none)",
            set_cost * 1e6,
            "us/call",
            "raw ceiling",
            raw_event * 1e6,
            "<= 2x",
            "unsynced (a bare set_ never syncs)",
        )
    )
    storage.close()

    # Interleaved rounds: a round of bare write + fsync calls, then a round of committed
    # status changes, so that the disk's drift lands on both sides.
    durable_n = max(50, n // 400)
    storage = _storage(work / "status.jsonl", "fsync")

    def raw_synced() -> float:
        return raw.append_seconds_per_event(work / f"raw-{uuid.uuid4()}", durable_n, durable=True)

    def status_changes() -> float:
        results = _one_task_result(storage, durable_n)
        start = time.perf_counter()
        for task_result in results:
            task_result.report_status_change(
                None, PipelineTaskStatus.RUNNING, "working", propagate=False
            )
        return (time.perf_counter() - start) / durable_n

    times = interleaved(5, {"raw": raw_synced, "ours": status_changes})
    storage.close()
    report.add(
        Row(
            "committed status change (durability fsync)",
            median(times["ours"]) * 1e6,
            "us/change",
            "one write + fsync",
            median(times["raw"]) * 1e6,
            "<= 1.3x",
            "fsync",
            best=min(times["ours"]) * 1e6,
            baseline_best=min(times["raw"]) * 1e6,
        )
    )


def _run_ours(work: Path, durability: Durability, task_results: int) -> float:
    return run_pipeline_on(str(work / f"pipeline-{uuid.uuid4()}.jsonl"), durability, task_results)


def run_pipeline_on(path: str, durability: Durability, task_results: int) -> float:
    """Seconds to run the benchmark pipeline (eager runner, quiet reporter) on a storage
    over the log at ``path`` (a file or a URL), opening the storage included."""
    storage_setting = (STORAGE, {"path": path, "durability": durability})
    pipeline = benchmark_pipeline(task_results)
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=storage_setting):
        reset_storage_object()
        gc.collect()
        start = time.perf_counter()
        execution = pipeline().start(runner=Runner(), reporter=QuietReporter())
        elapsed = time.perf_counter() - start
        if execution.get_status() is not PipelineTaskStatus.DONE:
            raise RuntimeError(f"the benchmark run ended {execution.get_status().name}")
        reset_storage_object()
    return elapsed


def _run_baseline(name: str, work: Path, durable: bool, task_results: int) -> float:
    directory = work / f"{name}-{uuid.uuid4()}"
    directory.mkdir()
    baseline = load_baseline(name)(directory, durable)
    try:
        gc.collect()
        start = time.perf_counter()
        baseline.run_pipeline(str(uuid.uuid4()), task_results)
        return time.perf_counter() - start
    finally:
        baseline.close()


PIPELINE_TARGETS: dict[tuple[str, bool], str] = {
    ("sqlite-plain", False): "<= 0.5x",
    ("sqlite-plain", True): "<= 0.7x",
    ("django-orm-sqlite", True): "<= 0.2x",
}


def bench_pipeline(
    report: Report, work: Path, unsynced_n: int, durable_n: int, rounds: int = 3
) -> None:
    """Build and run a pipeline end to end, against each baseline at equal durability, in
    interleaved rounds (ours, then each baseline, round after round)."""
    modes: list[tuple[Durability, bool, int]] = [
        ("none", False, unsynced_n),
        ("fsync", True, durable_n),
    ]
    for durability, durable, n in modes:
        label = "unsynced" if not durable else "fsync (every status change synced)"
        print(f"pipeline of {n} task results, {label}, {rounds} rounds", file=sys.stderr)
        sides: dict[str, Callable[[], float]] = {"ours": partial(_run_ours, work, durability, n)}
        for name in BASELINES:
            sides[name] = partial(_run_baseline, name, work, durable, n)
        times = interleaved(rounds, sides)
        ours = times.pop("ours")
        report.add(
            Row(
                f"pipeline with {n} task results ({durability})",
                median(ours),
                "s",
                durability=label,
                best=min(ours),
            )
        )
        for name, theirs in times.items():
            report.add(
                Row(
                    f"pipeline with {n} task results vs {name} ({durability})",
                    median(ours),
                    "s",
                    name,
                    median(theirs),
                    PIPELINE_TARGETS.get((name, durable), ""),
                    label,
                    best=min(ours),
                    baseline_best=min(theirs),
                )
            )


def _decode_and_fold(path: Path) -> float:
    """Seconds to stream-decode ``path`` and fold it into the projections, with no checks."""
    decoder = msgspec.json.Decoder(AnyEvent)
    results, digest = ResultsProjection(), DigestProjection()
    decode, apply_results, apply_digest = decoder.decode, results.apply, digest.apply
    enabled = gc.isenabled()
    gc.disable()
    start = time.perf_counter()
    with path.open("rb") as source:
        carry = b""
        while chunk := source.read(1 << 20):
            lines = (carry + chunk).split(b"\n")
            carry = lines.pop()
            for line in lines:
                event = decode(line)
                apply_results(event)
                apply_digest(event)
    elapsed = time.perf_counter() - start
    if enabled:
        gc.enable()
    return elapsed


_NO_INDEX: Final = {"run_index": False}
"""The log options of a storage that folds the whole log (no run index)."""


def _open(path: Path, snapshots: bool, *, index: bool = False) -> float:
    """Seconds to open the storage (with ``index``: and list the runs from the index)."""
    gc.collect()
    start = time.perf_counter()
    storage = _storage(path, "none", snapshots=snapshots, log_options={"run_index": index})
    if index:
        storage.run_index()
    elapsed = time.perf_counter() - start
    storage.close()
    return elapsed


def bench_history(
    report: Report, path: Path, size: int, run_ids: list[str], *, full_fold: bool = True
) -> None:
    """What a user of a long history waits for, each in a fresh process: resident memory
    after opening the storage, ``show RUN``, ``runs --limit 20`` and ``verify`` (beside
    one pass of SHA-256 over the same bytes), in interleaved rounds. Without
    ``full_fold``, only the rows that read through the run index (no snapshot, no verify)."""
    rounds = 3
    sides: dict[str, Callable[[], float]] = {
        "index": lambda: float(rss_after_open(path, index=True)[0]),
        "bare": lambda: float(rss_after_open(None)[0]),
    }
    if full_fold:
        sides["open"] = lambda: float(rss_after_open(path)[0])
    rss = interleaved(rounds, sides)
    if full_fold:
        report.add(
            Row(
                f"RSS after opening {size} events (snapshot), fresh process",
                median(rss["open"]) / 1e6,
                "MB",
                "the same imports, no log",
                median(rss["bare"]) / 1e6,
                "< 200 MB, flat in history",
                best=min(rss["open"]) / 1e6,
                baseline_best=min(rss["bare"]) / 1e6,
            )
        )
    report.add(
        Row(
            f"RSS after opening {size} events (run index) and listing runs, fresh process",
            median(rss["index"]) / 1e6,
            "MB",
            "the same imports, no log",
            median(rss["bare"]) / 1e6,
            "< 200 MB, flat in history",
            best=min(rss["index"]) / 1e6,
            baseline_best=min(rss["bare"]) / 1e6,
        )
    )
    run_id = run_ids[len(run_ids) // 2]
    log = ["--log", str(path)]
    commands: dict[str, Callable[[], float]] = {
        "show": lambda: cli_seconds(["show", run_id, *log]),
        "runs": lambda: cli_seconds(["runs", "--limit", "20", *log]),
        "version": lambda: cli_seconds(["--version"]),
    }
    if full_fold:
        commands["verify"] = lambda: cli_seconds(["verify", *log])
        commands["sha256"] = lambda: sha256_seconds(path)
    times = interleaved(rounds, commands)
    for name, scenario, target in (
        ("show", f"show RUN on {size} events (CLI process)", "< 0.3 s"),
        ("runs", f"runs --limit 20 on {size} events (CLI process)", "< 0.3 s"),
    ):
        report.add(
            Row(
                scenario,
                median(times[name]),
                "s",
                "CLI start (--version)",
                median(times["version"]),
                target,
                best=min(times[name]),
                baseline_best=min(times["version"]),
            )
        )
    if not full_fold:
        return
    report.add(
        Row(
            f"verify {size} events (CLI process)",
            median(times["verify"]),
            "s",
            "SHA-256 of the file, one pass",
            median(times["sha256"]),
            "<= 3x",
            best=min(times["verify"]),
            baseline_best=min(times["sha256"]),
        )
    )


def bench_index(
    report: Report, path: Path, size: int, raw_fold: float | None, *, snapshot: bool = True
) -> None:
    """The run index of the log at ``path``: its one-time build (beside decode + fold of
    the same file), its size, and opening the storage through it and listing the runs,
    in interleaved rounds beside opening from the snapshot."""
    index = index_path(path)
    index.unlink(missing_ok=True)
    gc.collect()
    start = time.perf_counter()
    storage = _storage(path, "none")
    storage.run_index()
    build = time.perf_counter() - start
    storage.close()
    report.add(
        Row(
            f"build the run index of {size} events (one time)",
            build,
            "s",
            "" if raw_fold is None else "decode + fold",
            raw_fold,
        )
    )
    report.add(
        Row(
            f"run index file of {size} events",
            index.stat().st_size / 1e6,
            "MB",
            "the log file",
            path.stat().st_size / 1e6,
        )
    )
    sides: dict[str, Callable[[], float]] = {
        "index": lambda: _open(path, snapshots=False, index=True)
    }
    if snapshot:
        sides["snapshot"] = lambda: _open(path, snapshots=True)
    times = interleaved(5, sides)
    report.add(
        Row(
            f"open {size} events with the run index, and list the runs",
            median(times["index"]),
            "s",
            "open from a snapshot" if snapshot else "",
            median(times["snapshot"]) if snapshot else None,
            "< 0.2 s plus the tail",
            best=min(times["index"]),
            baseline_best=min(times["snapshot"]) if snapshot else None,
        )
    )


def bench_indexed_logs(report: Report, paths: list[Path]) -> None:
    """The run index rows and the history rows on logs made beforehand by
    ``benchmarks/make_log.py`` (their runs listed from the index)."""
    for path in paths:
        with JsonlEventLog(path, readonly=True, run_index=False) as log:
            size = log.head().seq
        bench_index(report, path, size, _decode_and_fold(path), snapshot=False)
        storage = _storage(path, "none", readonly=True)
        run_ids = [summary.run_id for summary in storage.run_index() or []]
        storage.close()
        bench_history(report, path, size, run_ids, full_fold=False)


def bench_sizes(report: Report, work: Path, sizes: list[int], appends: int) -> None:
    """Open time, append cost, get_ cost and memory against the log's size."""
    for size in sizes:
        print(f"log of {size} events", file=sys.stderr)
        path = work / f"log-{size}.jsonl"
        _, _, run_ids = make_log(path, size)
        # Interleaved rounds (one at 10^7 events: each side takes most of a minute).
        opens = interleaved(
            3 if size <= 10**6 else 1,
            {
                "fold": partial(_decode_and_fold, path),
                "open": partial(_open, path, snapshots=False),
                "decode": partial(raw.replay_seconds, path, into="struct", batch=True),
            },
        )
        raw_fold, cold, trivial = (median(opens[name]) for name in ("fold", "open", "decode"))
        report.add(
            Row(
                f"open {size} events, no snapshot, no run index (a full fold)",
                cold,
                "s",
                "decode + fold",
                raw_fold,
                "<= 1.5x",
                best=min(opens["open"]),
                baseline_best=min(opens["fold"]),
            )
        )
        report.add(
            Row(f"open {size} events, no snapshot vs decode only", cold, "s", "decode", trivial)
        )
        storage = _storage(path, "none", snapshot_every=1, log_options=_NO_INDEX)
        storage.close()  # it wrote the snapshot
        warm = _open(path, snapshots=True)
        report.add(Row(f"open {size} events from a snapshot", warm, "s", target="< 0.2 s"))
        bench_index(report, path, size, raw_fold)
        bench_history(report, path, size, run_ids)

        storage = _storage(path, "none")
        (task_result,) = _one_task_result(storage)
        start = time.perf_counter()
        for value in range(appends):
            task_result.set_progress(value)
        append_cost = (time.perf_counter() - start) / appends
        report.add(Row(f"set_ on a log of {size} events", append_cost * 1e6, "us/call"))

        reads = 10_000
        start = time.perf_counter()
        for _ in range(reads):
            task_result.get_status()
        idle_get = (time.perf_counter() - start) / reads
        report.add(
            Row(f"get_ with nothing new, {size} events", idle_get * 1e6, "us", target="< 20 us")
        )
        other = _storage(path, "none", snapshots=False, log_options=_NO_INDEX)
        (other_result,) = [
            r for r in other.get_task_results() if r.get_id() == task_result.get_id()
        ]
        for value in range(100):
            other_result.set_progress(value)
        start = time.perf_counter()
        task_result.get_status()
        after_k = time.perf_counter() - start
        report.add(Row(f"get_ after 100 new events, {size} events", after_k * 1e6, "us"))
        other.close()
        storage.close()

        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        storage = _storage(path, "none", snapshots=False, log_options=_NO_INDEX)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        objects = len(storage.results)
        storage.close()
        per_object = used / max(1, objects)
        report.add(Row(f"memory per object (all four kinds), {size} events", per_object, "bytes"))
        report.series[str(size)] = {
            "events": size,
            "open_s": cold,
            "open_snapshot_s": warm,
            "decode_fold_s": raw_fold,
            "set_us": append_cost * 1e6,
            "get_us": idle_get * 1e6,
            "bytes_per_object": per_object,
        }
        path.unlink()
        for leftover in work.glob(f"log-{size}.jsonl*"):
            leftover.unlink()


def bench_task_result_memory(report: Report, work: Path, task_results: int) -> None:
    """Bytes the projections hold per task result: one run of many task results, each
    RUNNING then DONE, reopened from its log."""
    print(f"memory of {task_results} task results", file=sys.stderr)
    path = work / "memory.jsonl"
    storage = _storage(path, "none", snapshots=False)
    for task_result in _one_task_result(storage, task_results):
        task_result.report_status_change(None, PipelineTaskStatus.RUNNING, propagate=False)
        task_result.report_status_change(None, PipelineTaskStatus.DONE, propagate=False)
    storage.close()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    storage = _storage(path, "none", snapshots=False, log_options=_NO_INDEX)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    storage.close()
    report.add(
        Row(
            f"memory per task result ({task_results} in one run)",
            used / task_results,
            "bytes",
            target="< 500",
        )
    )


def _writer(path: str, durability: Durability, calls: int, ready: Any, go: Any) -> None:
    storage = _storage(Path(path), durability, snapshots=False)
    (task_result,) = _one_task_result(storage)
    ready.set()
    go.wait()
    synced = durability == "fsync"
    for value in range(calls):
        task_result.set_progress(value)
        if synced:
            task_result.save()  # a committed, synced set_
    storage.close()


def _writers_rate(work: Path, count: int, durability: Durability, calls: int) -> float:
    """Calls per second of ``count`` writer processes together on one new log."""
    context = multiprocessing.get_context("fork")
    path = work / f"writers-{count}-{durability}-{uuid.uuid4()}.jsonl"
    ready = [context.Event() for _ in range(count)]
    go = context.Event()
    processes = [
        context.Process(target=_writer, args=(str(path), durability, calls, ready[i], go))
        for i in range(count)
    ]
    for process in processes:
        process.start()
    for event in ready:
        event.wait(60)
    start = time.perf_counter()
    go.set()
    for process in processes:
        process.join(300)
    elapsed = time.perf_counter() - start
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"writer processes failed (exit codes {failed})")
    for leftover in work.glob(f"{path.name}*"):
        leftover.unlink()
    return count * calls / elapsed


def bench_writers(
    report: Report, work: Path, calls: int, synced_calls: int, rounds: int = 3, writers: int = 8
) -> None:
    """Throughput of 8 writer processes on one log against one writer, for each
    durability, in interleaved rounds (1 writer, then 8, round after round)."""
    modes: list[tuple[Durability, int, str, str]] = [
        ("none", calls, "unsynced", ">= 1x"),
        ("fsync", synced_calls, "fsync (each set_ + save synced)", ">= 4x"),
    ]
    for durability, n, label, target in modes:
        print(f"{writers} writers vs 1, durability {durability}", file=sys.stderr)
        rates: dict[int, list[float]] = {1: [], writers: []}
        for _ in range(rounds):
            for count in (1, writers):
                rates[count].append(_writers_rate(work, count, durability, n))
        one, many = rates[1], rates[writers]
        report.add(
            Row(
                f"set_ calls/s, 1 writer, durability {durability}",
                statistics.median(one),
                "calls/s",
                durability=label,
                best=max(one),
            )
        )
        report.add(
            Row(
                f"set_ calls/s, {writers} writers on one log, durability {durability}",
                statistics.median(many),
                "calls/s",
                "1 writer",
                statistics.median(one),
                target,
                label,
                best=max(many),
                baseline_best=max(one),
            )
        )


# -- output -------------------------------------------------------------------------------


def print_table(report: Report) -> None:
    """Print the rows as a table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="pipelines-events benchmarks (ratios: this run's baselines)")
    for column in ("scenario", "durability", "value", "baseline", "ratio", "target"):
        table.add_column(column, justify="right" if column in ("value", "ratio") else "left")
    for row in report.rows:
        baseline = "" if row.baseline_value is None else f"{row.baseline} {row.baseline_value:.4g}"
        if row.baseline_best is not None:
            baseline += f" (best {row.baseline_best:.4g})"
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        value = f"{row.value:.4g} {row.unit}"
        if row.best is not None:
            value += f" (best {row.best:.4g})"
        table.add_row(row.scenario, row.durability, value, baseline, ratio, row.target)
    Console(width=160).print(table)


def draw_chart(report: Report, path: Path) -> None:
    """Open time, append cost and memory against log size, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(report.series.values(), key=lambda item: item["events"])
    if not sizes:
        return
    events = [item["events"] for item in sizes]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].loglog(events, [item["open_s"] for item in sizes], "o-", label="open, no snapshot")
    axes[0].loglog(events, [item["open_snapshot_s"] for item in sizes], "o-", label="from snapshot")
    axes[0].loglog(events, [item["decode_fold_s"] for item in sizes], "o--", label="decode + fold")
    axes[0].set_title("open time (s)")
    axes[0].legend(fontsize=8)
    axes[1].semilogx(events, [item["set_us"] for item in sizes], "o-", label="set_")
    axes[1].semilogx(events, [item["get_us"] for item in sizes], "o-", label="get_, nothing new")
    axes[1].set_title("cost per call (us)")
    axes[1].set_ylim(bottom=0)
    axes[1].legend(fontsize=8)
    axes[2].semilogx(events, [item["bytes_per_object"] for item in sizes], "o-")
    axes[2].axhline(500, color="grey", linestyle=":", label="target per task result")
    axes[2].set_title("memory per object, all four kinds (bytes)")
    axes[2].set_ylim(bottom=0)
    axes[2].legend(fontsize=8)
    for axis in axes:
        axis.set_xlabel("events in the log")
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    """Run the suite; print the table, and write JSON and the chart when asked."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--full", action="store_true", help="full sizes (10^7 events, 10k fsync)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON to this file")
    parser.add_argument("--chart", type=Path, help="draw the size chart (PNG) to this file")
    parser.add_argument(
        "--only",
        choices=("log", "writes", "pipeline", "sizes", "writers"),
        action="append",
        help="run only these scenarios (repeatable)",
    )
    parser.add_argument(
        "--indexed-log",
        type=Path,
        action="append",
        help="measure the run index and history rows on this log made by "
        "benchmarks/make_log.py (repeatable; alone, only these rows run)",
    )
    args = parser.parse_args(argv)
    everything = () if args.indexed_log else ("log", "writes", "pipeline", "sizes", "writers")
    chosen = set(args.only or everything)
    report = Report()
    work = Path(tempfile.mkdtemp(prefix="pipelines-events-bench-"))
    try:
        if "log" in chosen:
            bench_log(report, work, 20_000, 10**6 if args.full else 10**5)
        if "writes" in chosen:
            bench_writes(report, work, 20_000)
        if "pipeline" in chosen:
            bench_pipeline(
                report, work, 10_000, 10_000 if args.full else 1_000, rounds=5 if args.full else 3
            )
        if "sizes" in chosen:
            sizes = [10**4, 10**5, 10**6, 10**7] if args.full else [10**4, 10**5]
            bench_sizes(report, work, sizes, 2_000)
        if "sizes" in chosen:
            bench_task_result_memory(report, work, 100_000 if args.full else 20_000)
        if args.indexed_log:
            bench_indexed_logs(report, args.indexed_log)
        if "writers" in chosen:
            bench_writers(
                report,
                work,
                5_000 if args.full else 2_000,
                1_000 if args.full else 200,
                rounds=5 if args.full else 3,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(report)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": [asdict(row) | {"ratio": row.ratio} for row in report.rows],
                    "series": report.series,
                    "python": sys.version,
                    "cpus": os.cpu_count(),
                },
                indent=2,
            )
        )
    if args.chart:
        draw_chart(report, args.chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
