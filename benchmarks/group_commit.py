"""Does a user-space group commit help several writers of one file? (issue #14)

N processes each append a 285-byte line under an exclusive ``flock`` (as the file log
does) and then commit it, in one of these ways:

- ``alone``: ``fdatasync`` after every append (what the file log does);
- ``leader``: one writer at a time syncs for everyone and publishes the size it synced
  in a shared word; the others wait on a shared ``flock`` of a sync file and return when
  the word covers their line (the shape of the attempt reverted in f9850a9);
- ``leader50``, ``leader150``: the same, the leader waiting 50 or 150 µs before its
  ``fdatasync`` for more commits to join.

Rounds interleave the modes (disk latency drifts on shared machines); the table gives
the median and the minimum commits per second of 1 and of N writers. Run with
``python -m benchmarks.group_commit [--rounds 5] [--writers 8] [--commits 200]``.
"""

from __future__ import annotations

import argparse
import fcntl
import mmap
import multiprocessing
import os
import statistics
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

_LINE = b"x" * 284 + b"\n"
_WORD = struct.Struct("<Q")
MODES = ("alone", "leader", "leader50", "leader150")


def _commit_as_follower(fd: int, sync_fd: int, word: mmap.mmap, end: int, delay: float) -> None:
    while _WORD.unpack_from(word)[0] < end:
        try:
            fcntl.flock(sync_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # A sync is running: wait for it to end (all waiters wake together), look again.
            fcntl.flock(sync_fd, fcntl.LOCK_SH)
            fcntl.flock(sync_fd, fcntl.LOCK_UN)
            continue
        try:
            if _WORD.unpack_from(word)[0] >= end:
                return
            if delay:
                time.sleep(delay)
            size = os.lseek(fd, 0, os.SEEK_END)
            os.fdatasync(fd)
            _WORD.pack_into(word, 0, size)
        finally:
            fcntl.flock(sync_fd, fcntl.LOCK_UN)


def _writer(path: str, mode: str, commits: int, go: Any) -> None:
    fd = os.open(path, os.O_RDWR | os.O_APPEND)
    sync_fd = os.open(path + ".sync", os.O_RDWR)
    word = mmap.mmap(sync_fd, _WORD.size)
    delay = float(mode[len("leader") :] or 0) * 1e-6 if mode != "alone" else 0.0
    go.wait()
    for _ in range(commits):
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, _LINE)
        end = os.lseek(fd, 0, os.SEEK_END)
        fcntl.flock(fd, fcntl.LOCK_UN)
        if mode == "alone":
            os.fdatasync(fd)
        else:
            _commit_as_follower(fd, sync_fd, word, end, delay)
    word.close()
    os.close(sync_fd)
    os.close(fd)


def commits_per_second(work: Path, writers: int, mode: str, commits: int) -> float:
    """Commits per second of ``writers`` processes together on one new file."""
    path = work / f"group-{mode}-{writers}-{time.monotonic_ns()}"
    path.write_bytes(b"")
    Path(f"{path}.sync").write_bytes(b"\0" * _WORD.size)
    context = multiprocessing.get_context("fork")
    go = context.Event()
    processes = [
        context.Process(target=_writer, args=(str(path), mode, commits, go)) for _ in range(writers)
    ]
    for process in processes:
        process.start()
    time.sleep(0.2)
    start = time.perf_counter()
    go.set()
    for process in processes:
        process.join(300)
    elapsed = time.perf_counter() - start
    path.unlink()
    Path(f"{path}.sync").unlink()
    if any(process.exitcode != 0 for process in processes):
        raise RuntimeError("a writer process failed")
    return writers * commits / elapsed


def main(argv: list[str] | None = None) -> int:
    """Print, per mode, the commits per second of 1 and of N writers."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.group_commit")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--commits", type=int, default=200)
    args = parser.parse_args(argv)
    rates: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="group-commit-") as work:
        for _ in range(args.rounds):
            for mode in MODES:
                for count in (1, args.writers):
                    rate = commits_per_second(Path(work), count, mode, args.commits)
                    rates.setdefault((mode, count), []).append(rate)
    print(f"{'mode':10} {'1 writer (median/min)':>24} {f'{args.writers} writers (median/min)':>26}")
    for mode in MODES:
        one, many = rates[(mode, 1)], rates[(mode, args.writers)]
        print(
            f"{mode:10} {statistics.median(one):>13,.0f} / {min(one):>8,.0f} "
            f"{statistics.median(many):>15,.0f} / {min(many):>8,.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
