"""The check of a log's snapshot in :func:`pipelines_events.audit.verify`: the state it
restores against the state the log's events give, and the first difference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

from pipelines_events.audit._core import LogPath
from pipelines_events.errors import (
    LogError,
    ProjectionError,
    SnapshotError,
)
from pipelines_events.events import (
    START,
    AnyEvent,
    LogPosition,
)
from pipelines_events.log.open import open_log
from pipelines_events.results.snapshots import decode_snapshot
from pipelines_events.status import PipelineTaskStatus
from projections.digest import DigestProjection
from projections.results import ResultRecord, ResultsProjection

Progress = Callable[[int, int], None]
"""Called with ``(bytes checked, bytes in the log)`` as verification goes."""

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
            for name in ("results", "digest"):
                if name not in snapshot.parts:
                    raise KeyError(name)
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
        # Restored only when the replay's bytes differ: a true snapshot is byte for byte
        # what the replay writes, and restoring one costs as much as the replay.
        self._restored: tuple[ResultsProjection, DigestProjection] | None = None
        self._replayed = (ResultsProjection(), DigestProjection())
        self._apply = (self._replayed[0].apply, self._replayed[1].apply)
        self.pending = True
        if snapshot.position == START:
            self.batch_ends(START)

    def _restore(self) -> tuple[ResultsProjection, DigestProjection] | None:
        """The state the snapshot restores, or None when a storage could not restore it
        (the snapshot is then ignored, as storages ignore it)."""
        if self._restored is None:
            try:
                self._restored = (
                    ResultsProjection.restore(self._parts["results"]),
                    DigestProjection.restore(self._parts["digest"]),
                )
            except (SnapshotError, OSError, ValueError, TypeError) as exc:
                self.pending = False
                self._ignored(f"{self.location}: {exc}")
        return self._restored

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
        if self._restore() is not None:
            self.state, self.reason = SNAPSHOT_UNCHECKED, reason

    def batch_ends(self, position: LogPosition) -> None:
        """The replay reached ``position``, the end of a batch: compare there."""
        if position.seq < self._position.seq:
            return
        self.pending = False
        if position.seq > self._position.seq:
            if self._restore() is None:
                return
            self._differs(
                f"its position (seq {self._position.seq}) is inside the batch that ends at "
                f"seq {position.seq}; storages write snapshots only between batches"
            )
            return
        try:
            found = _difference(self._replayed, self._restore, self._parts)
        except (OverflowError, TypeError, ValueError, msgspec.EncodeError) as exc:
            self._unchecked(f"the states cannot be compared: {type(exc).__name__}: {exc}")
            return
        if found is None:
            self.state = SNAPSHOT_MATCHES
        elif self._restored is not None:
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
    restore: Callable[[], tuple[ResultsProjection, DigestProjection] | None],
    parts: dict[str, bytes],
) -> str | None:
    """What differs between the state a replay gives and the state a snapshot restores
    (the snapshot's own bytes first: a true snapshot is byte for byte the replay's). When
    ``restore`` finds the snapshot cannot be restored, the answer is ``"ignored"``."""
    for index, name in enumerate(("results", "digest")):
        replay_bytes = replayed[index].snapshot()
        if replay_bytes == parts[name]:
            continue
        restored = restore()
        if restored is None:
            return "ignored"
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
