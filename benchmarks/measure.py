"""Measuring helpers: interleaved rounds, resident memory of a fresh process, CLI timings.

Disk latency on shared machines drifts by 10x within minutes, so every comparison runs
its sides in interleaved rounds (ours, then each baseline, round after round) and reports
the median and the best of each side.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

_CHUNK: Final = 1 << 20


def interleaved(rounds: int, sides: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run every side once per round, in turn, ``rounds`` times; each returns a figure."""
    figures: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, side in sides.items():
            figures[name].append(side())
    return figures


def median(values: Sequence[float]) -> float:
    """The median of the rounds."""
    return statistics.median(values)


def _child_env() -> dict[str, str]:
    """The environment for a child process that imports this checkout's packages."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))
    return env


_RSS_SCRIPT: Final = """
import sys, warnings
warnings.simplefilter("ignore")
if sys.argv[1]:
    from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
    storage = EventLogPipelineResultsStorage(
        sys.argv[1],
        durability="none",
        snapshots=sys.argv[2] == "1",
        log_options={"run_index": sys.argv[3] == "1"},
    )
    storage.run_index()  # with the index: list the runs too (nothing else is read at open)
else:
    import pipelines_events.results.eventlog  # the same imports, no log
with open("/proc/self/status") as status:
    fields = dict(line.split(":", 1) for line in status)
print(int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024)
"""


def rss_after_open(
    path: Path | None, *, snapshots: bool = True, index: bool = False
) -> tuple[int, int]:
    """Bytes resident (VmRSS) and at the peak (VmHWM) in a fresh Python process after it
    opened the storage on ``path`` (with ``index``: through the run index, and listed the
    runs; with ``None``: after the same imports only)."""
    where = "" if path is None else str(path)
    result = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, where, str(int(snapshots)), str(int(index))],
        capture_output=True,
        text=True,
        check=True,
        env=_child_env(),
    )
    rss, peak = result.stdout.split()
    return int(rss), int(peak)


def cli_seconds(args: Sequence[str]) -> float:
    """Wall seconds of ``pipelines-events ARGS`` in a fresh process (output discarded)."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pipelines_events", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        env=_child_env(),
    )
    return time.perf_counter() - start


def sha256_seconds(path: Path) -> float:
    """Seconds to read ``path`` and hash its bytes with SHA-256 in one pass."""
    digest = hashlib.sha256()
    start = time.perf_counter()
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return time.perf_counter() - start
