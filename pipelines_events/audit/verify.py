"""Tamper evidence: check every line of a log, and prove it still extends a recorded head."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Final

import msgspec

from pipelines_events.audit._core import LogPath
from pipelines_events.errors import InvalidValueError, LogCorruptError
from pipelines_events.events import GENESIS_HASH, decode_event
from pipelines_events.log.jsonl import JsonlEventLog

Progress = Callable[[int, int], None]
"""Called with ``(bytes checked, bytes in the log)`` as verification goes."""

PROGRESS_STEP: Final = 1 << 22
"""Bytes between two calls of the progress callback."""

_HEAD_TEXT: Final = re.compile(r"\s*(\d+):([0-9a-fA-F]{64})\s*")


class Head(msgspec.Struct, frozen=True):
    """A log's head: the seq and hash of its last complete event, and the byte after it."""

    seq: int
    hash: str
    offset: int = 0

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`verify` found.

    ``ok`` is False when a line is bad (``line`` and ``reason`` say which and why) or
    when the log does not extend the ``expected`` head. The counts and the head cover the
    events checked before the first bad line. ``unfinished_bytes`` are bytes after the
    last complete batch (a write in progress, or a writer that crashed mid-write; the
    next writer to open the log removes them).
    """

    path: str
    ok: bool
    events: int
    batches: int
    runs: int
    bytes: int
    head_seq: int
    head_hash: str
    unfinished_bytes: int = 0
    expected: str | None = None
    line: int | None = None
    reason: str | None = None
    head_mismatch: bool = False
    """Whether the failure is that the log no longer extends ``expected``."""

    @property
    def head(self) -> Head:
        """The last good event's seq and hash."""
        return Head(self.head_seq, self.head_hash, self.bytes)


def parse_head(text: str) -> Head:
    """The head written as ``SEQ:HASH`` (as :func:`head` prints it)."""
    match = _HEAD_TEXT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidValueError(
            f"{text!r} is not a head: give SEQ:HASH, the seq, a colon and the 64 hex digits "
            "of that event's hash, as `pipelines-events head` prints them"
        )
    seq, digest = int(match.group(1)), match.group(2).lower()
    if seq == 0 and digest != GENESIS_HASH:
        raise InvalidValueError(
            f"{text!r} is not a head: seq 0 (the empty log) has the hash {GENESIS_HASH}"
        )
    return Head(seq, digest)


def verify(
    log: LogPath,
    expect: Head | str | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check every line of ``log``: JSON, schema, seq, batches and the hash chain.

    With ``expect`` (a :class:`Head` or ``"SEQ:HASH"``) also check that the event at that
    seq still has that hash, so a log whose whole chain was rewritten fails too. Returns
    a :class:`VerifyReport`; a missing or unreadable file raises
    :class:`~pipelines_events.errors.LogOpenError`.
    """
    wanted = parse_head(expect) if isinstance(expect, str) else expect
    wanted_seq = 0 if wanted is None else wanted.seq
    wanted_hash = GENESIS_HASH if wanted is None else wanted.hash
    events = batches = 0
    runs: set[str] = set()
    line: int | None = None
    reason: str | None = None
    mismatch = False
    with JsonlEventLog(log, readonly=True) as reader:
        total = reader.size()
        head = reader.position
        checked = wanted_seq == 0
        next_report = PROGRESS_STEP
        try:
            for event in reader.read_new():
                events += 1
                runs.add(event.run_id)
                if not checked and event.seq == wanted_seq:
                    checked = True
                    if event.hash != wanted_hash:
                        line, mismatch = event.seq, True
                        reason = (
                            f"the event at seq {event.seq} has the hash {event.hash[:16]}..., "
                            f"not the expected {wanted_hash[:16]}...: the log no longer "
                            f"extends the recorded head (it was rewritten at line {event.seq} "
                            "or before)"
                        )
                        break
                if not event.more:
                    batches += 1
                    head = reader.position
                    if progress is not None and head.offset >= next_report:
                        progress(head.offset, total)
                        next_report = head.offset + PROGRESS_STEP
        except LogCorruptError as exc:
            line, reason = exc.line, exc.reason
        if line is None and not checked:
            line, mismatch = head.seq + 1, True
            reason = (
                f"the log ends at seq {head.seq}, before the expected head seq {wanted_seq}: "
                "events were removed from its end (or this is another log)"
            )
    if progress is not None:
        progress(head.offset if line is not None else total, total)
    return VerifyReport(
        path=os.fspath(log),
        ok=line is None,
        events=events if line is None else head.seq,
        batches=batches,
        runs=len(runs),
        bytes=head.offset,
        head_seq=head.seq,
        head_hash=head.hash,
        unfinished_bytes=max(0, total - head.offset) if line is None else 0,
        expected=None if wanted is None else str(wanted),
        line=line,
        reason=reason,
        head_mismatch=mismatch,
    )


def head(log: LogPath) -> Head:
    """The seq and hash of the last complete batch of ``log``, read from its end.

    Reads only the tail of the file: it proves nothing about the lines before (run
    :func:`verify` for that; its report holds the same head).
    """
    with JsonlEventLog(log, readonly=True) as reader:
        size = reader.size()
    if size == 0:
        return Head(0, GENESIS_HASH, 0)
    with open(log, "rb") as file:
        found = _last_batch_end(file.fileno(), size)
    if found is None:
        # Nothing readable at the end: let the full check say where the damage is.
        report = verify(log)
        if not report.ok:
            raise LogCorruptError(report.path, report.line or 0, report.reason or "")
        return report.head
    return found


def _last_batch_end(fd: int, size: int) -> Head | None:
    """The head after the last line with ``more == 0``, or None if the tail is unreadable."""
    window = 1 << 16
    while True:
        start = max(0, size - window)
        data = os.pread(fd, size - start, start)
        end = data.rfind(b"\n") + 1
        while end > 0:
            cut = data.rfind(b"\n", 0, end - 1) + 1
            if cut == 0 and start > 0:
                break  # the line may begin before the window
            try:
                event = decode_event(data[cut : end - 1])
            except (msgspec.DecodeError, msgspec.ValidationError):
                return None
            if event.more == 0:
                return Head(event.seq, event.hash, start + end)
            end = cut
        if start == 0:
            return Head(0, GENESIS_HASH, 0)
        window *= 4
