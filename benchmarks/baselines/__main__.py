"""Measure the baselines once and print the figures: ``python -m benchmarks.baselines``.

Per baseline and mode: microseconds per status change and per ``set_field`` (each one
committed), and the seconds of ``run_pipeline(run_id, N)``; durable runs of
``run_pipeline`` are skipped when the per-change cost predicts more than ``--budget``
seconds. Then the raw ceiling: the append breakdown and the replay of a generated file.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

from benchmarks.baselines import BASELINES, PENDING, RUNNING, TASK_RESULT, load_baseline, raw


def _per_change(name: str, directory: pathlib.Path, durable: bool, n: int) -> tuple[float, float]:
    """Microseconds per status change and per ``set_field`` over ``n`` of each."""
    baseline = load_baseline(name)(directory, durable)
    try:
        built = baseline.build("per-change", 1, ["a", "b"], (n + 1) // 2)
        ids = built.task_result_ids[:n]
        start = time.perf_counter()
        for object_id in ids:
            baseline.status_change(TASK_RESULT, object_id, RUNNING)
        change = (time.perf_counter() - start) / len(ids) * 1e6
        start = time.perf_counter()
        for object_id in ids:
            baseline.set_field(TASK_RESULT, object_id, "message", PENDING)
        field = (time.perf_counter() - start) / len(ids) * 1e6
    finally:
        baseline.close()
    return change, field


def _run_pipeline(name: str, directory: pathlib.Path, durable: bool, n: int) -> float:
    baseline = load_baseline(name)(directory, durable)
    try:
        start = time.perf_counter()
        baseline.run_pipeline("pipeline", n)
        return time.perf_counter() - start
    finally:
        baseline.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baselines", description=__doc__)
    parser.add_argument("--baseline", action="append", choices=sorted(BASELINES))
    parser.add_argument("--changes", type=int, default=2000, help="unsynced changes timed")
    parser.add_argument("--durable-changes", type=int, default=300, help="durable changes timed")
    parser.add_argument("--task-results", type=int, default=10_000, help="N of run_pipeline")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds a run may take")
    parser.add_argument("--replay-events", type=int, default=1_000_000)
    parser.add_argument("--dir", type=pathlib.Path, help="work directory (default: a temp dir)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = pathlib.Path(tmp)
        print(
            f"{'baseline':<22} {'mode':<9} {'µs/change':>10} {'µs/set':>9} {'run_pipeline s':>15}"
        )
        for name in args.baseline or list(BASELINES):
            for durable in (False, True):
                mode = "durable" if durable else "unsynced"
                n = args.durable_changes if durable else args.changes
                change, field = _per_change(name, work / f"{name}-{mode}-changes", durable, n)
                n_changes = 2 * (args.task_results // 2) + 4
                predicted = n_changes * change / 1e6
                if predicted <= args.budget:
                    run = _run_pipeline(
                        name, work / f"{name}-{mode}-run", durable, args.task_results
                    )
                    pipeline = f"{run:.2f}"
                else:
                    pipeline = f"skip (~{predicted:.0f})"
                print(f"{name:<22} {mode:<9} {change:>10.1f} {field:>9.1f} {pipeline:>15}")
                sys.stdout.flush()

        print("\nraw append, µs per event:")
        costs = raw.append_breakdown(work, 200_000)
        print("  " + "  ".join(f"{key} {value:.2f}" for key, value in costs.items()))
        locked = raw.append_seconds_per_event(work / "locked.jsonl", 200_000, lock=True) * 1e6
        durable_cost = raw.append_seconds_per_event(work / "durable.jsonl", 1000, durable=True)
        print(f"  total+flock {locked:.2f}  total+fsync {durable_cost * 1e6:.1f}")

        path = work / "replay.jsonl"
        start = time.perf_counter()
        size = raw.write_event_file(path, args.replay_events)
        written = time.perf_counter() - start
        print(
            f"\nreplay of {args.replay_events:,} events ({size / 2**20:.0f} MiB, "
            f"written in {written:.2f} s), seconds:"
        )
        for into in ("dict", "struct"):
            for batch in (False, True):
                seconds = raw.replay_seconds(path, into=into, batch=batch)
                how = "decode_lines per chunk" if batch else "decode per line"
                print(f"  into={into:<6} {how:<22} {seconds:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
