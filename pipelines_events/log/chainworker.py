"""The helper process that checks the hash links of a long read on a second core.

Run as ``python -I -S chainworker.py`` by :mod:`pipelines_events.log.jsonlhelped`; it
imports nothing of the package (it starts in milliseconds). It first writes
``chainworker 1`` and a newline (so the reader knows it started this program). Its input
on stdin: the
hash before the first line (64 hex digits, or nothing at the log's start) and a newline,
then frames, each a 4-byte big-endian length and that many bytes of complete lines (each
ending with a newline); a length of 0 ends the input. For each frame it writes one line to
stdout: ``ok`` when every line carries the schema version 2 hash of its head after the
hash the line before it carries, else ``stop N`` (the first line, counted from 0, that
does not: another schema version, an erased line, or damage, which the reader then checks
line by line itself).
"""

from __future__ import annotations

import hashlib
import sys
from typing import BinaryIO

_HEAD = b',"hash":"'
_SUFFIX = len(_HEAD) + 64 + 2
_HEX = frozenset(b"0123456789abcdef")
GREETING = b"chainworker 1\n"
"""The first line the helper writes."""


def _read(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise EOFError("the reader went away")
    return data


def check(lines: list[bytes], prev: bytes) -> tuple[int, bytes]:
    """The index of the first of ``lines`` that does not link to the one before it (-1:
    none) and the hash the last line carries."""
    sha256 = hashlib.sha256
    cut, head_end = -_SUFFIX, -_SUFFIX + len(_HEAD)
    for number, line in enumerate(lines):
        claimed = line[head_end:-2]
        if (
            len(line) <= _SUFFIX
            or line[cut:head_end] != _HEAD
            or line[-2:] != b'"}'
            or sha256(prev + sha256(line[:cut]).hexdigest().encode()).hexdigest().encode()
            != claimed
        ):
            return number, prev
        prev = claimed
    return -1, prev


def main() -> None:
    """Check frames from stdin until a frame of length 0 or the end of the input."""
    source, out = sys.stdin.buffer, sys.stdout.buffer
    out.write(GREETING)
    out.flush()
    prev = source.readline().rstrip(b"\n")
    if prev and (len(prev) != 64 or not set(prev) <= _HEX):
        raise SystemExit("chainworker: the first line must be a hash")
    stopped = False
    try:
        while size := int.from_bytes(_read(source, 4), "big"):
            lines = _read(source, size).split(b"\n")
            lines.pop()  # after the last newline
            if stopped:
                out.write(b"stop 0\n")
            else:
                first_bad, prev = check(lines, prev)
                stopped = first_bad >= 0
                out.write(b"ok\n" if not stopped else b"stop %d\n" % first_bad)
            out.flush()
    except (EOFError, BrokenPipeError):
        pass


if __name__ == "__main__":
    main()
