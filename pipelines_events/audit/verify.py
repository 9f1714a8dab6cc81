"""Tamper evidence: check every line of a log and the snapshot beside it, and prove the log
still extends a recorded head."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Final

import msgspec

from pipelines_events.audit._core import LogPath
from pipelines_events.audit.verify_snapshot import (
    SNAPSHOT_DIFFERS as SNAPSHOT_DIFFERS,
)
from pipelines_events.audit.verify_snapshot import (
    SNAPSHOT_IGNORED as SNAPSHOT_IGNORED,
)
from pipelines_events.audit.verify_snapshot import (
    SNAPSHOT_MATCHES as SNAPSHOT_MATCHES,
)
from pipelines_events.audit.verify_snapshot import (
    SNAPSHOT_NONE as SNAPSHOT_NONE,
)
from pipelines_events.audit.verify_snapshot import (
    SNAPSHOT_UNCHECKED as SNAPSHOT_UNCHECKED,
)
from pipelines_events.audit.verify_snapshot import _SnapshotCheck
from pipelines_events.errors import (
    InvalidValueError,
    LogCorruptError,
    LogError,
    LogOpenError,
)
from pipelines_events.events import (
    GENESIS_HASH,
    Erased,
    FieldSet,
    LogPosition,
    ObjectCreated,
    RunRemoved,
)
from pipelines_events.log.base import EventLog, object_crc
from pipelines_events.log.open import open_log
from projections.runs import RunsProjection

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
    snapshot: str | None = None
    """The snapshot file beside the log, when there is one."""
    snapshot_state: str = SNAPSHOT_NONE
    """``none``, ``matches``, ``differs`` (``ok`` is False), ``ignored`` or ``unchecked``."""
    snapshot_seq: int | None = None
    """The seq the snapshot says it reflects, when it could be read."""
    snapshot_reason: str | None = None
    """Why the snapshot differs, is ignored or was not checked."""
    run_index: bool = False
    """Whether the engine keeps a run index (storages read runs from it, not a snapshot)."""
    run_index_reason: str | None = None
    """Why the engine's run index does not match the events (``ok`` is False then)."""
    erased: int = 0
    """How many events are erased (``cleanup --erase``): their links verify from their
    digest, their content is gone."""

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


# Long on purpose: one pass over the log keeps a dozen counters and checks in step (the
# expected head, erased runs and their removals, the snapshot, the run index, progress);
# split into helpers they would all have to be passed around or held in a class.
def verify(
    log: LogPath,
    expect: Head | str | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check every line of ``log``: JSON, schema, seq, batches and the hash chain; bytes at
    its end that are not a torn write are damage. The snapshot beside the log, if any, must
    hold what a replay of the log up to its position gives.

    With ``expect`` (a :class:`Head` or ``"SEQ:HASH"``) also check that the event at that
    seq still has that hash, so a log whose whole chain was rewritten fails too. Returns
    a :class:`VerifyReport`; a missing or unreadable file raises
    :class:`~pipelines_events.errors.LogOpenError`.
    """
    wanted = parse_head(expect) if isinstance(expect, str) else expect
    wanted_seq = 0 if wanted is None else wanted.seq
    wanted_hash = GENESIS_HASH if wanted is None else wanted.hash
    events = batches = erased = 0
    runs: set[str] = set()
    erased_runs: dict[str, int] = {}  # run id: the seq of its last erased event
    removals: dict[str, int] = {}  # run id: the seq of its last removal
    line: int | None = None
    reason: str | None = None
    mismatch = False
    try:
        snapshot = _SnapshotCheck(log)
        opened = open_log(log, readonly=True)
    except LogOpenError:
        raise
    except LogError as exc:
        # The log's files are there but do not make one log (a damaged manifest of
        # segments, a segment missing at an end): damage, reported as a failed check.
        return _unopenable(log, exc)
    with opened as reader:
        total = reader.stored_bytes() or 0
        run_index = reader.supports_run_index
        # An index a read-only handle builds from these same events is not compared.
        index = RunsProjection() if run_index and reader.run_index_stored() else None
        placed_count: dict[str, int] = {}  # run id: its events, as the run index must place them
        placed_sum: dict[str, int] = {}  # run id: the sum of their seqs
        created: dict[str, tuple[int, int]] = {}  # run id: its creations, their ids' CRC sum
        head = reader.position
        checked = wanted_seq == 0
        next_report = PROGRESS_STEP
        try:
            for batch in reader.read(head):
                batch_events = batch.events
                if snapshot.pending:
                    for event in batch_events:
                        snapshot.fold(event)
                events += len(batch_events)
                if index is not None:
                    for event in batch_events:
                        index.apply(event)
                        run_id = event.run_id
                        placed_count[run_id] = placed_count.get(run_id, 0) + 1
                        placed_sum[run_id] = placed_sum.get(run_id, 0) + event.seq
                else:
                    runs.update([event.run_id for event in batch_events])
                for event in batch_events:
                    if type(event) is not FieldSet:  # few events: creations, removals
                        if type(event) is ObjectCreated:
                            if index is not None:
                                made, crcs = created.get(event.run_id, (0, 0))
                                created[event.run_id] = (made + 1, crcs + object_crc(event.id))
                        elif type(event) is Erased:
                            erased += 1
                            erased_runs[event.run_id] = event.seq
                        elif type(event) is RunRemoved:
                            removals[event.run_id] = event.seq
                if not checked and batch_events and batch_events[-1].seq >= wanted_seq:
                    checked = True
                    event = next(e for e in batch_events if e.seq == wanted_seq)  # seqs are whole
                    if event.hash != wanted_hash:
                        line, mismatch = event.seq, True
                        reason = (
                            f"the event at seq {event.seq} has the hash "
                            f"{event.hash[:16]}..., not the expected {wanted_hash[:16]}...: "
                            "the log no longer extends the recorded head (it was "
                            f"rewritten at line {event.seq} or before)"
                        )
                        break
                batches += 1
                head = batch.cursor
                if snapshot.pending:
                    snapshot.batch_ends(head)
                if progress is not None and head.offset >= next_report:
                    progress(head.offset, total)
                    next_report = head.offset + PROGRESS_STEP
        except LogCorruptError as exc:
            line, reason = exc.line, _named(exc, log)
        if line is None:
            reason = reader.damage_after(head)
            if reason is not None:
                line = head.seq + 1
        if line is None:
            for run_id, seq in erased_runs.items():
                if run_id and removals.get(run_id, 0) < seq:
                    line = seq
                    reason = (
                        f"seq {seq} is an erased event of run {run_id!r}, which no later "
                        "event removes: only removed runs are ever erased (was it erased "
                        "by hand?)"
                    )
                    break
        if line is None and not checked:
            line, mismatch = head.seq + 1, True
            reason = (
                f"the log ends at seq {head.seq}, before the expected head seq {wanted_seq}: "
                "events were removed from its end (or this is another log)"
            )
        index_reason = None
        if index is not None and line is None:
            index_reason = (
                _run_index_problem(reader, index, head)
                or _placement_problem(reader, placed_count, placed_sum, head)
                or _objects_problem(reader, created, head)
            )
        unfinished = 0
        if line is None:  # what followed the head when the check began
            unfinished = min(reader.unfinished_bytes(head), max(0, total - head.offset))
    # Engines whose cursors carry no byte offset (0) hold whole batches only: all of it.
    size = head.offset if head.offset or line is not None else max(0, total - unfinished)
    if progress is not None:
        progress(size if line is not None else total, total)
    snapshot.finish()
    differs = snapshot.state == SNAPSHOT_DIFFERS
    return VerifyReport(
        path=os.fspath(log),
        ok=line is None and not differs and index_reason is None,
        events=events if line is None else head.seq,
        batches=batches,
        runs=len(runs) if index is None else len(index.runs()),
        bytes=size,
        head_seq=head.seq,
        head_hash=head.hash,
        unfinished_bytes=unfinished,
        expected=None if wanted is None else str(wanted),
        line=line,
        reason=snapshot.reason if differs and line is None else reason,
        head_mismatch=mismatch,
        snapshot=snapshot.location,
        run_index=run_index,
        run_index_reason=index_reason,
        erased=erased,
        snapshot_state=snapshot.state,
        snapshot_seq=snapshot.seq,
        snapshot_reason=snapshot.reason,
    )


def _named(exc: LogCorruptError, log: LogPath) -> str:
    """The reason of ``exc``, naming its file when it is not the log's own (a segment)."""
    if exc.path and exc.path != os.fspath(log) and exc.path not in exc.reason:
        return f"{exc.reason} (in {exc.path})"
    return exc.reason


def _unopenable(log: LogPath, exc: LogError) -> VerifyReport:
    """The report on a log whose files cannot be opened as one log."""
    line = exc.line if isinstance(exc, LogCorruptError) else 1
    return VerifyReport(
        path=os.fspath(log),
        ok=False,
        events=0,
        batches=0,
        runs=0,
        bytes=0,
        head_seq=0,
        head_hash=GENESIS_HASH,
        line=max(1, line),
        reason=f"the log cannot be opened: {exc}",
    )


def _run_index_problem(reader: EventLog, index: RunsProjection, head: LogPosition) -> str | None:
    """How the engine's run index differs from the summaries ``index`` folded from the
    events up to ``head``, or None (also when writers moved the head meanwhile)."""
    kept = {summary.run_id: summary for summary in reader.run_summaries()}
    if reader.head().seq != head.seq:
        return None  # appended while verifying: the index is newer than what was read
    folded = {state.run_id: state for state in index.runs()}
    for run_id in sorted(set(kept) | set(folded)):
        summary, state = kept.get(run_id), folded.get(run_id)
        if summary is None or state is None:
            where = (
                "in the index but in no event"
                if state is None
                else "in the events, not in the index"
            )
            return f"the run index does not match the events: run {run_id!r}: {where}"
        for name in ("pipeline_id", "status", "started", "completed", "counts", "first_seq",
                     "last_seq", "removed"):  # fmt: skip
            have, want = getattr(summary, name), getattr(state, name)
            if name == "counts":
                have = {k: v for k, v in have.items() if v}
                want = {k: v for k, v in want.items() if v}
            if have != want:
                return (
                    f"the run index does not match the events: run {run_id!r}: {name} is "
                    f"{have!r} in the index, {want!r} from the events"
                )
    return None


def _placement_problem(
    reader: EventLog, counts: dict[str, int], sums: dict[str, int], head: LogPosition
) -> str | None:
    """How the places the engine's run index keeps for each run's events differ from the
    events read up to ``head`` (compared as each run's count of events and sum of seqs),
    or None (also when the engine keeps none, or writers moved the head meanwhile)."""
    placed = reader.run_index_placement()
    if placed is None or reader.head().seq != head.seq:
        return None
    for run_id in sorted(set(placed) | set(counts)):
        have = placed.get(run_id, (0, 0))
        want = (counts.get(run_id, 0), sums.get(run_id, 0))
        if have != want:
            return (
                f"the run index does not match the events: run {run_id!r}: it places "
                f"{have[0]} events (seqs summing to {have[1]}), the log holds {want[0]} "
                f"(summing to {want[1]})"
            )
    return None


def _objects_problem(
    reader: EventLog, created: dict[str, tuple[int, int]], head: LogPosition
) -> str | None:
    """How the run index's map of objects to runs differs from the creations read up to
    ``head``, or None (also when the engine keeps no map, or writers moved the head).

    The index keeps an object created twice (possible after its run was removed) once, so
    a run may map fewer objects than it created; more, or as many under other ids (their
    CRC-32 sum differs), is damage."""
    mapped = reader.run_index_objects()
    if mapped is None or reader.head().seq != head.seq:
        return None
    for run_id in sorted(mapped):
        (have, have_sum), (want, want_sum) = mapped[run_id], created.get(run_id, (0, 0))
        if have > want or (have == want and have_sum != want_sum):
            return (
                f"the run index does not match the events: run {run_id!r}: it maps {have} "
                f"objects to the run, the log creates {want}"
                + ("" if have != want else " under other ids")
            )
    return None


def head(log: LogPath) -> Head:
    """The seq and hash of the last complete batch of ``log``, read from its end.

    Reads only the tail of the file: it proves nothing about the lines before (run
    :func:`verify` for that; its report holds the same head).
    """
    try:
        with open_log(log, readonly=True) as reader:
            cursor = reader.head()
    except LogCorruptError:
        # Nothing readable at the end: let the full check say where the damage is.
        report = verify(log)
        if not report.ok:
            raise LogCorruptError(report.path, report.line or 0, report.reason or "") from None
        return report.head
    return Head(cursor.seq, cursor.hash, cursor.offset)
