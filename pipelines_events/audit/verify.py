"""Tamper evidence: check every line of a log and the snapshot beside it, and prove the log
still extends a recorded head."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, Final

import msgspec

from pipelines_events.audit._core import LogPath
from pipelines_events.errors import (
    InvalidValueError,
    LogCorruptError,
    LogError,
    ProjectionError,
    SnapshotError,
)
from pipelines_events.events import (
    GENESIS_HASH,
    START,
    AnyEvent,
    Erased,
    LogPosition,
    RunRemoved,
)
from pipelines_events.log.base import EventLog
from pipelines_events.log.open import open_log
from pipelines_events.results.snapshots import decode_snapshot
from pipelines_events.status import PipelineTaskStatus
from projections.digest import DigestProjection
from projections.results import ResultRecord, ResultsProjection
from projections.runs import RunsProjection

Progress = Callable[[int, int], None]
"""Called with ``(bytes checked, bytes in the log)`` as verification goes."""

PROGRESS_STEP: Final = 1 << 22
"""Bytes between two calls of the progress callback."""

_HEAD_TEXT: Final = re.compile(r"\s*(\d+):([0-9a-fA-F]{64})\s*")

SNAPSHOT_NONE: Final = "none"
"""No snapshot file beside the log: storages replay the whole log."""
SNAPSHOT_MATCHES: Final = "matches"
"""The snapshot holds the state a replay of the log up to its position gives."""
SNAPSHOT_DIFFERS: Final = "differs"
"""Storages would start from the snapshot, and it does not hold what the log says: a failure."""
SNAPSHOT_IGNORED: Final = "ignored"
"""The snapshot cannot be used (damaged, or not at an event of the log): storages ignore it
and replay the whole log, so it falsifies nothing (a note, not a failure)."""
SNAPSHOT_UNCHECKED: Final = "unchecked"
"""The snapshot could not be compared: the log is damaged before its position."""


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
    snapshot = _SnapshotCheck(log)
    with open_log(log, readonly=True) as reader:
        total = reader.stored_bytes() or 0
        run_index = reader.supports_run_index
        index = RunsProjection() if run_index else None
        head = reader.position
        checked = wanted_seq == 0
        next_report = PROGRESS_STEP
        try:
            for batch in reader.read(head):
                for event in batch.events:
                    if snapshot.pending:
                        snapshot.fold(event)
                    events += 1
                    runs.add(event.run_id)
                    if type(event) is Erased:
                        erased += 1
                        erased_runs[event.run_id] = event.seq
                    elif type(event) is RunRemoved:
                        removals[event.run_id] = event.seq
                    if index is not None:
                        index.apply(event)
                    if not checked and event.seq == wanted_seq:
                        checked = True
                        if event.hash != wanted_hash:
                            line, mismatch = event.seq, True
                            reason = (
                                f"the event at seq {event.seq} has the hash "
                                f"{event.hash[:16]}..., not the expected {wanted_hash[:16]}...: "
                                "the log no longer extends the recorded head (it was "
                                f"rewritten at line {event.seq} or before)"
                            )
                            break
                if mismatch:
                    break
                batches += 1
                head = batch.cursor
                if snapshot.pending:
                    snapshot.batch_ends(head)
                if progress is not None and head.offset >= next_report:
                    progress(head.offset, total)
                    next_report = head.offset + PROGRESS_STEP
        except LogCorruptError as exc:
            line, reason = exc.line, exc.reason
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
            index_reason = _run_index_problem(reader, index, head)
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
        runs=len(runs),
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


class _SnapshotCheck:
    """The snapshot beside a log, as a storage opening the log would use it, compared with
    the state a replay of the log gives at the snapshot's position."""

    def __init__(self, log: LogPath) -> None:
        self.location: str | None = None
        self.state = SNAPSHOT_NONE
        self.seq: int | None = None
        self.reason: str | None = None
        self.pending = False
        with open_log(log, readonly=True) as reader:
            store = reader.snapshots
            path = store.location
            try:
                # Read as a storage reads it (from the log's owner, within the size bound).
                data = store.load()
            except SnapshotError as exc:
                self.location = path
                self._ignored(str(exc))
                return
        if data is None:
            return
        self.location = path
        try:
            snapshot = decode_snapshot(data, path)
            self.seq = snapshot.position.seq
            results = ResultsProjection.restore(snapshot.parts["results"])
            digest = DigestProjection.restore(snapshot.parts["digest"])
        except KeyError as exc:
            self._ignored(f"{path}: the snapshot has no part {exc}")
            return
        except (SnapshotError, OSError, ValueError, TypeError) as exc:
            self._ignored(str(exc))
            return
        try:
            with open_log(log, readonly=True) as reader:
                reader.seek(snapshot.position)
        except LogError as exc:
            self._ignored(f"{path}: its position is not an event of the log: {exc}")
            return
        self._position = snapshot.position
        self._parts = snapshot.parts
        self._restored = (results, digest)
        self._replayed = (ResultsProjection(), DigestProjection())
        self._apply = (self._replayed[0].apply, self._replayed[1].apply)
        self.pending = True
        if snapshot.position == START:
            self.batch_ends(START)

    def _ignored(self, reason: str) -> None:
        self.state, self.reason = SNAPSHOT_IGNORED, reason

    def fold(self, event: AnyEvent) -> None:
        """Fold an event of the log before the snapshot's position."""
        apply_results, apply_digest = self._apply
        try:
            apply_results(event)
            apply_digest(event)
        except ProjectionError as exc:
            self._unchecked(f"the log's event at seq {event.seq} does not fold: {exc}")

    def _unchecked(self, reason: str) -> None:
        self.pending = False
        self.state, self.reason = SNAPSHOT_UNCHECKED, reason

    def batch_ends(self, position: LogPosition) -> None:
        """The replay reached ``position``, the end of a batch: compare there."""
        if position.seq < self._position.seq:
            return
        self.pending = False
        if position.seq > self._position.seq:
            self._differs(
                f"its position (seq {self._position.seq}) is inside the batch that ends at "
                f"seq {position.seq}; storages write snapshots only between batches"
            )
            return
        try:
            found = _difference(self._replayed, self._restored, self._parts)
        except (OverflowError, TypeError, ValueError, msgspec.EncodeError) as exc:
            self._unchecked(f"the states cannot be compared: {type(exc).__name__}: {exc}")
            return
        if found is None:
            self.state = SNAPSHOT_MATCHES
        else:
            self._differs(found)

    def _differs(self, detail: str) -> None:
        self.state = SNAPSHOT_DIFFERS
        self.reason = (
            f"{self.location}: the snapshot at seq {self._position.seq} does not hold what a "
            f"replay of the log up to there gives: {detail}. Storages opening the log would "
            "start from this false state: remove the snapshot (the next writer replays the "
            "log and writes a true one)"
        )

    def finish(self) -> None:
        """Verification ended; a snapshot the replay never reached was not checked."""
        if self.pending:
            self._unchecked(
                f"the log could not be replayed up to the snapshot's position (seq {self.seq})"
            )


def _difference(
    replayed: tuple[ResultsProjection, DigestProjection],
    restored: tuple[ResultsProjection, DigestProjection],
    parts: dict[str, bytes],
) -> str | None:
    """What differs between the state a replay gives and the state a snapshot restores
    (the snapshot's own bytes first: a true snapshot is byte for byte the replay's)."""
    for index, name in enumerate(("results", "digest")):
        replay_bytes = replayed[index].snapshot()
        if replay_bytes == parts[name]:
            continue
        log, snap = _decoded(replay_bytes), _decoded(restored[index].snapshot())
        if log == snap:
            continue  # the same state, written in another order
        if name == "digest":
            return "the pipeline digest (counts per pipeline id) differs"
        return _record_difference(replayed[0], restored[0]) or _removed_difference(log, snap)
    return None


def _decoded(data: bytes) -> Any:
    """A snapshot part as plain values (the parts are JSON or MessagePack)."""
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return msgspec.msgpack.decode(data)


def _objects(projection: ResultsProjection) -> dict[str, ResultRecord]:
    return {
        record.id: record
        for run_id in projection.run_ids()
        for record in projection.run_objects(run_id)
    }


_NONE: Final = object()


def _short(value: Any) -> str:
    if value is _NONE:
        return "nothing"
    if isinstance(value, PipelineTaskStatus):
        value = value.value
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _record_difference(log: ResultsProjection, snap: ResultsProjection) -> str | None:
    """The first result object that differs, named, or what else differs."""
    log_objects, snap_objects = _objects(log), _objects(snap)
    for object_id, record in log_objects.items():
        other = snap_objects.get(object_id)
        what = f"{record.kind} {object_id} of run {_short(record.run_id)}"
        if other is None:
            return f"{what} is missing from the snapshot"
        if (other.kind, other.run_id, other.parent_id) != (
            record.kind,
            record.run_id,
            record.parent_id,
        ):
            return (
                f"{what}: the snapshot holds it as {other.kind} of run {_short(other.run_id)} "
                f"under {other.parent_id}"
            )
        attrs, snap_attrs = record.attrs, other.attrs
        for name in [*attrs, *(name for name in snap_attrs if name not in attrs)]:
            mine, theirs = attrs.get(name, _NONE), snap_attrs.get(name, _NONE)
            if mine != theirs or type(mine) is not type(theirs):
                return (
                    f"{what}, field {name!r}: the snapshot holds {_short(theirs)}, "
                    f"the log {_short(mine)}"
                )
        if record.children != other.children:
            return f"{what}: its children differ"
    for object_id, record in snap_objects.items():
        if object_id not in log_objects:
            return f"the snapshot holds {record.kind} {object_id}, which the log never created"
    if list(log_objects) != list(snap_objects):
        return "the objects are the same but not in the log's order"
    return None


def _removed_difference(log: Any, snap: Any) -> str:
    """What else differs once every object is the same: the runs cleanup removed."""
    if isinstance(log, dict) and isinstance(snap, dict):
        mine, theirs = log.get("removed_runs"), snap.get("removed_runs")
        if mine != theirs:
            return (
                f"the runs removed by cleanup differ: the snapshot holds {_short(theirs)}, "
                f"the log {_short(mine)}"
            )
    return "the state differs in what cleanup removed"


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
