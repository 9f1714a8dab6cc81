"""Time the audit functions on a log, against the log's own verified read in the same run.

    python -m benchmarks.make_log /tmp/big.jsonl --events 1000000
    python -m benchmarks.audit_times /tmp/big.jsonl run-001538

Prints the best of ``--repeat`` runs of each, in seconds and as a ratio to the baseline:
reading every event through :meth:`JsonlEventLog.read_new` (JSON, schema, seq, batches
and hash chain checked), which every audit function does once.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from pipelines_events import audit
from pipelines_events.log import JsonlEventLog


def _baseline(path: Path) -> None:
    with JsonlEventLog(path, readonly=True) as log:
        for _ in log.read_new():
            pass


def _best(work: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="a log written by benchmarks.make_log")
    parser.add_argument("run_id", help="a run of the log, for history and export")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path: Path = args.path
    head = audit.head(path)
    export_to = path.with_name(path.name + ".export")
    cases: list[tuple[str, Callable[[], object]]] = [
        ("read_new (baseline)", lambda: _baseline(path)),
        ("verify", lambda: audit.verify(path)),
        ("history RUN_ID", lambda: audit.history(path, args.run_id)),
        ("view_at(seq=head/2)", lambda: audit.view_at(path, seq=head.seq // 2)),
        ("export RUN_ID", lambda: audit.export(path, args.run_id, export_to, force=True)),
        ("head", lambda: audit.head(path)),
    ]
    print(f"{path}: {head.seq} events, {path.stat().st_size / 1e6:.1f} MB")
    baseline = 0.0
    for name, work in cases:
        seconds = _best(work, args.repeat)
        baseline = baseline or seconds
        print(f"{name:<22} {seconds:8.3f} s  {seconds / baseline:6.2f}x baseline")
    export_to.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
