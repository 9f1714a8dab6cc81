"""A long verifying read of the file log on two cores: a helper process checks the hash
links (:mod:`pipelines_events.log.chainworker`) while this process decodes and checks the
rest of each line and the caller folds.

The bytes the helper checks are the very bytes this process decoded (they are sent to it
through a pipe, not read again), and nothing is handed over before the helper has passed
every line of its chunk. A chunk with anything else than plain schema version 2 lines (a
version 1 or erased line, damage, a torn tail) ends the helped read: the read goes on from
the last complete batch with the one-core scan, which checks line by line and says what is
wrong. Used for reads of at least :func:`helper_min_bytes`, on a machine with two cores
or more.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import msgspec

from pipelines_events.errors import InvalidValueError
from pipelines_events.events import AnyEvent, Erased, LogPosition
from pipelines_events.log.chain import HASH_HEAD, HASH_SUFFIX_LEN, decode_event
from pipelines_events.log.jsonlfile import _pread
from pipelines_events.log.segments import LogBytes

HELPER_ENV: Final = "PIPELINES_EVENTS_SCAN_HELPER"
"""The environment variable that sets when a read uses the helper process: ``off``, or
the fewest bytes a read must have left (default :data:`DEFAULT_HELPER_MIN_BYTES`)."""

DEFAULT_HELPER_MIN_BYTES: Final = 8 << 20
"""Below this many bytes to read, starting a helper process costs more than it saves."""

_WORKER: Final = Path(__file__).with_name("chainworker.py")
_GREETING: Final = b"chainworker 1\n"
"""The first line the helper writes (chainworker.GREETING)."""
_FRAME: Final = 512 << 10
"""Bytes read per chunk sent to the helper: half the pipe, so a write does not wait."""
_PIPE: Final = 1 << 20
_PATIENCE: Final = 30.0
"""Seconds to wait for the helper to greet, answer or read before it is taken for gone."""
_AHEAD: Final = 2
"""Chunks sent to the helper before the one being decoded (it checks them meanwhile)."""
_GROUP: Final = 256
"""Events per list handed over (at a batch's end): a few, still warm in the cache."""


def helper_min_bytes() -> int | None:
    """The fewest bytes a read must have left to use the helper; None when it never does
    (``PIPELINES_EVENTS_SCAN_HELPER=off``, one core, or no Python to start).

    Raises :class:`InvalidValueError` naming the variable when it is neither."""
    text = os.environ.get(HELPER_ENV, "").strip().lower()
    if text == "off":
        return None
    if text and not text.isdigit():
        raise InvalidValueError(
            f"{HELPER_ENV}={text!r}: give off, or the fewest bytes a read must have left "
            "to check its hash links in a helper process"
        )
    if not _can_help():
        return None
    return int(text) if text else DEFAULT_HELPER_MIN_BYTES


_PYTHON_NAME: Final = re.compile(r"(python|pypy)[0-9.]*(\.exe)?$", re.IGNORECASE)
"""What the interpreter's file is called: an embedding program (uWSGI, say) is never
started in its place."""


@functools.cache
def _can_help() -> bool:
    """Whether this process may use a second core and can start the helper."""
    return (
        bool(_PYTHON_NAME.match(os.path.basename(sys.executable or "")))
        and _WORKER.is_file()
        and len(os.sched_getaffinity(0)) > 1
    )


class _Helper:
    """The helper process. Chunks are written to its pipe from this thread: the pipe holds
    two of them, so a write waits only when the helper is behind. A helper that does not
    greet, answer or read within :data:`_PATIENCE` seconds is taken for gone."""

    def __init__(self, prev: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(_WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        self._in, self._out = stdin.fileno(), stdout.fileno()
        os.set_blocking(self._in, False)
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._in, fcntl.F_SETPIPE_SZ, _PIPE)
        self._answers = b""
        self._alive = self._line() == _GREETING  # else: not the helper, or it did not start
        self._write(prev.encode("ascii") + b"\n")

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while self._alive and view:
            try:
                view = view[os.write(self._in, view) :]
            except BlockingIOError:
                if not select.select([], [self._in], [], _PATIENCE)[1]:
                    self._alive = False  # it stopped reading
            except OSError:
                self._alive = False  # the helper is gone: its verdicts say so

    def _line(self) -> bytes:
        """The helper's next line (empty when it is gone or silent too long)."""
        while b"\n" not in self._answers:
            if not select.select([self._out], [], [], _PATIENCE)[0]:
                return b""
            try:
                data = os.read(self._out, 4096)
            except OSError:
                return b""
            if not data:
                return b""
            self._answers += data
        line, _, self._answers = self._answers.partition(b"\n")
        return line + b"\n"

    def send(self, region: bytes) -> None:
        """Have the helper check ``region`` (complete lines)."""
        self._write(len(region).to_bytes(4, "big"))
        self._write(region)

    def verdict(self) -> bool:
        """Whether every line of the oldest chunk not yet answered links (False also when
        the helper is gone)."""
        return self._alive and self._line() == b"ok\n"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._process.kill()
        self._process.wait()
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


_DECODE_ERRORS: Final = (
    msgspec.DecodeError,
    msgspec.ValidationError,
    UnicodeDecodeError,
    RecursionError,
)


# Long on purpose: like the one-core scan, the hot loop keeps its state in locals.
def helped_scan(
    fd: int | LogBytes, position: LogPosition, end: int, *, group: bool
) -> Iterator[tuple[list[AnyEvent], LogPosition] | LogPosition]:
    """Yield what :func:`~pipelines_events.log.jsonlscan.scan` yields from ``position`` up
    to byte ``end`` (with ``group``, lists of a few hundred events), its links checked by
    the helper; when a chunk is not plain version 2 lines or the helper cannot start,
    yield the :class:`LogPosition` of the last complete batch instead, and stop: the
    caller scans on from there with the one-core scan."""
    try:
        helper = _Helper(position.hash)
    except OSError:
        yield position
        return
    offset, seq = position.offset, position.seq
    mark = position  # after the last batch yielded
    pending: list[AnyEvent] = []  # complete batches not yet handed over, then a partial one
    done, done_offset = 0, offset  # how many of pending are complete batches, their end
    carry = b""
    read_at = offset
    cut = -HASH_SUFFIX_LEN
    head_end = cut + len(HASH_HEAD)
    decode = decode_event
    sent: collections.deque[list[bytes]] = collections.deque()

    def send_next() -> None:
        nonlocal read_at, carry
        while read_at < end:
            chunk = _pread(fd, min(_FRAME, end - read_at), read_at)
            if not chunk:
                return
            read_at += len(chunk)
            data = carry + chunk if carry else chunk
            cut_at = data.rfind(b"\n") + 1
            carry = data[cut_at:]
            if cut_at:
                region = data[:cut_at]
                helper.send(region)
                lines = region.split(b"\n")
                lines.pop()
                sent.append(lines)
                return

    try:
        for _ in range(_AHEAD):
            send_next()
        while sent:
            lines = sent.popleft()
            checked = helper.verdict()
            send_next()
            if not checked:
                yield mark
                return
            for line in lines:
                seq += 1
                try:
                    event = decode(line)
                except _DECODE_ERRORS:
                    yield mark
                    return
                if (
                    event.seq != seq
                    or event.v != 2
                    or type(event) is Erased
                    or line[cut:head_end] != HASH_HEAD
                    or (pending and pending[-1].more and pending[-1].more != event.more + 1)
                ):
                    yield mark
                    return
                offset += len(line) + 1
                pending.append(event)
                if event.more == 0:
                    done, done_offset = len(pending), offset
                    if not group or done >= _GROUP:
                        mark = LogPosition(offset, seq, event.hash)
                        yield pending, mark
                        pending, done = [], 0
        if done:
            last = pending[done - 1]
            yield pending[:done], LogPosition(done_offset, last.seq, last.hash)
    finally:
        helper.close()
