"""A run's log, exported as a self-contained log, replayed step by step, imported elsewhere."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Final

import msgspec

from pipelines_events.audit._core import (
    AuditChange,
    ChangeFold,
    ImportConflictError,
    LogPath,
    OutputExistsError,
    iter_batches,
)
from pipelines_events.audit.view import StorageView, view_at
from pipelines_events.errors import InvalidValueError, LogOpenError, ObjectNotFoundError
from pipelines_events.events import AnyEvent, ObjectCreated, encode_event
from pipelines_events.log.jsonl import JsonlEventLog

IMPORTED: Final = "imported"
EXTENDED: Final = "extended"
PRESENT: Final = "already present"
"""The actions of an :class:`ImportOutcome`."""


class ExportSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`export` wrote: ``events`` in ``batches``, ending at the head given."""

    path: str
    source: str
    run_id: str
    events: int
    batches: int
    head_seq: int
    head_hash: str


class ImportOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What importing one run did: ``imported`` it, ``extended`` a copy already there with
    the events it lacked, or found it ``already present``; ``events`` were appended."""

    run_id: str
    action: str
    events: int
    note: str = ""


class ReplayStep(msgspec.Struct, frozen=True, kw_only=True):
    """One state transition: a batch of the log (events ``first_seq``..``last_seq``)."""

    number: int
    first_seq: int
    last_seq: int
    time: datetime
    run_ids: list[str]
    changes: list[AuditChange]


# -- export ------------------------------------------------------------------------------


def export(log: LogPath, run_id: str, out: LogPath, *, force: bool = False) -> ExportSummary:
    """Write the events of run ``run_id`` to a new log at ``out`` that verifies on its own.

    Events keep their content and time and are sequenced again from 1 on a new hash
    chain; each batch stays whole, without the events of other runs it held. Refuses an
    existing ``out`` unless ``force``; the file appears whole or not at all.
    """
    if not isinstance(run_id, str) or not run_id:
        raise InvalidValueError(f"give a run id, not {run_id!r}")
    target = Path(os.fspath(out))
    _check_output(target, log, force)
    batches: list[list[AnyEvent]] = []
    for batch, _ in iter_batches(log):
        mine = [event for event in batch if event.run_id == run_id]
        if mine:
            batches.append(mine)
    if not batches:
        raise ObjectNotFoundError(f"{log}: no run has the id {run_id!r}; nothing was written")
    seq, digest = _write_whole(target, batches, force)
    return ExportSummary(
        path=str(target),
        source=os.fspath(log),
        run_id=run_id,
        events=seq,
        batches=len(batches),
        head_seq=seq,
        head_hash=digest,
    )


def _check_output(target: Path, log: LogPath, force: bool) -> None:
    if target.is_dir():
        raise LogOpenError(f"{target}: is a directory; give the file to write")
    if not target.exists():
        return
    if not force:
        raise OutputExistsError(
            f"{target}: the file exists and was left as it is; pass force=True "
            "(--force on the command line) to overwrite it"
        )
    with contextlib.suppress(OSError):
        if os.path.samefile(target, log):
            raise InvalidValueError(f"{target}: cannot export onto the log being read")


def _write_whole(target: Path, batches: list[list[AnyEvent]], force: bool) -> tuple[int, str]:
    """Write ``batches`` as a new log at ``target``, through a temporary file beside it."""
    directory = target.parent
    if not directory.is_dir():
        raise LogOpenError(
            f"{target}: the directory {directory} does not exist; nothing was written"
        )
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise LogOpenError(f"{target}: cannot write there: {exc.strerror}") from None
    os.close(fd)
    try:
        with JsonlEventLog(temporary) as writer:
            for batch in batches:
                writer.append(batch)
            writer.commit()
            position = writer.position
        _publish(temporary, target, force)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_directory(directory)
    return position.seq, position.hash


def _publish(temporary: str, target: Path, force: bool) -> None:
    if force:
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise OutputExistsError(
            f"{target}: the file appeared while the export was written and was left as "
            "it is; pass force=True (--force on the command line) to overwrite it"
        ) from None
    except OSError:
        # No hard links here: a rename, after a last look.
        if target.exists():
            raise OutputExistsError(f"{target}: the file exists and was left as it is") from None
        os.replace(temporary, target)
        return
    os.unlink(temporary)


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- import and replay -------------------------------------------------------------------


def _content(event: AnyEvent) -> bytes:
    """A digest of what an event says, without where it sits (seq, batch, hash)."""
    body = encode_event(msgspec.structs.replace(event, v=0, seq=0, more=0, hash=""))
    return hashlib.blake2b(body, digest_size=16).digest()


class _RunEvents:
    __slots__ = ("boundaries", "content", "objects", "seqs")

    def __init__(self) -> None:
        self.content: list[bytes] = []
        self.seqs: list[int] = []
        self.boundaries: set[int] = {0}
        self.objects: list[str] = []


def _runs_of(source: LogPath) -> dict[str, _RunEvents]:
    runs: dict[str, _RunEvents] = {}
    for batch, _ in iter_batches(source):
        touched: set[str] = set()
        for event in batch:
            run = runs.get(event.run_id)
            if run is None:
                run = runs[event.run_id] = _RunEvents()
            run.content.append(_content(event))
            run.seqs.append(event.seq)
            if type(event) is ObjectCreated:
                run.objects.append(event.id)
            touched.add(event.run_id)
        for run_id in touched:
            runs[run_id].boundaries.add(len(runs[run_id].content))
    return runs


def _plan_import(source: LogPath, into: LogPath) -> tuple[dict[str, int], list[ImportOutcome]]:
    """Per run to write, how many of its events the target already has; and the outcomes.

    Raises :class:`ImportConflictError` before anything is written.
    """
    wanted = _runs_of(source)
    held: dict[str, _RunEvents] = {run_id: _RunEvents() for run_id in wanted}
    owners: dict[str, str] = {}
    if Path(os.fspath(into)).exists():
        for batch, _ in iter_batches(into):
            for event in batch:
                if type(event) is ObjectCreated:
                    owners[event.id] = event.run_id
                run = held.get(event.run_id)
                if run is not None:
                    run.content.append(_content(event))
                    run.seqs.append(event.seq)
    skip: dict[str, int] = {}
    outcomes: list[ImportOutcome] = []
    for run_id, src in wanted.items():
        tgt = held[run_id]
        have, total = len(tgt.content), len(src.content)
        common = _common_prefix(src.content, tgt.content)
        if have == 0:
            clash = next((oid for oid in src.objects if oid in owners), None)
            if clash is not None:
                raise ImportConflictError(
                    f"{into}: cannot import run {run_id!r}: its object {clash} already exists "
                    f"there in run {owners[clash]!r}; nothing was imported"
                )
            skip[run_id] = 0
            outcomes.append(ImportOutcome(run_id=run_id, action=IMPORTED, events=total))
        elif common == total == have:
            outcomes.append(ImportOutcome(run_id=run_id, action=PRESENT, events=0))
        elif common == total:
            outcomes.append(
                ImportOutcome(
                    run_id=run_id,
                    action=PRESENT,
                    events=0,
                    note=f"{into} also holds {have - total} later events of this run",
                )
            )
        elif common == have and have in src.boundaries:
            skip[run_id] = have
            outcomes.append(
                ImportOutcome(
                    run_id=run_id,
                    action=EXTENDED,
                    events=total - have,
                    note=f"{into} held its first {have} events",
                )
            )
        else:
            where = (
                f"its event {common + 1} differs (seq {src.seqs[common]} in {source}, "
                f"seq {tgt.seqs[common]} in {into})"
                if common < min(total, have)
                else f"{into} holds {have} of its events, {source} {total}, "
                "cut in the middle of a batch"
            )
            raise ImportConflictError(
                f"{into}: run {run_id!r} already exists there with different events: {where}; "
                "nothing was imported"
            )
    return skip, outcomes


def _common_prefix(left: list[bytes], right: list[bytes]) -> int:
    count = 0
    for a, b in zip(left, right, strict=False):
        if a != b:
            break
        count += 1
    return count


def _check_speed(speed: float | None) -> float:
    if speed is None:
        return 0.0
    if (
        isinstance(speed, bool)
        or not isinstance(speed, int | float)
        or not math.isfinite(speed)
        or speed < 0
    ):
        raise InvalidValueError(
            f"speed: give a number of at least 0 (0: no waiting; 1: the original timing; "
            f"10: ten times faster), not {speed!r}"
        )
    return float(speed)


class Replay:
    """Steps through the log ``source``, one batch (state transition) at a time.

    With ``into``, the runs of ``source`` are imported into that log as the steps go
    (sequenced again onto its chain, times kept): a run already there with the same
    events adds nothing, one there with only its first batches gets the rest, and one
    there with different events is refused before anything is written
    (:class:`ImportConflictError`). ``speed`` > 0 waits between steps for the original
    time between them divided by ``speed``.
    """

    def __init__(
        self,
        source: LogPath,
        *,
        into: LogPath | None = None,
        speed: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.into = into
        self.speed = _check_speed(speed)
        self._sleep = sleep
        self._clock = clock
        self._skip: dict[str, int] = {}
        self.outcomes: list[ImportOutcome] = []
        """One outcome per run of the source when ``into`` is given."""
        if into is not None:
            self._skip, self.outcomes = _plan_import(source, into)
        else:
            JsonlEventLog(source, readonly=True).close()  # fail now on a missing file

    def steps(self) -> Iterator[ReplayStep]:
        """Each step in log order, written to ``into`` (when given) before it is yielded."""
        fold = ChangeFold()
        remaining = dict(self._skip)
        writer = JsonlEventLog(self.into) if self.into is not None and remaining else None
        first: datetime | None = None
        started = 0.0
        try:
            for number, (batch, _) in enumerate(iter_batches(self.source), 1):
                changes = fold.batch(batch)
                moment = fold.time_of(batch[0])
                if self.speed > 0:
                    if first is None:
                        first, started = moment, self._clock()
                    else:
                        due = started + (moment - first).total_seconds() / self.speed
                        wait = due - self._clock()
                        if wait > 0:
                            self._sleep(wait)
                if writer is not None:
                    drafts = _to_write(batch, remaining)
                    if drafts:
                        writer.append(drafts)
                yield ReplayStep(
                    number=number,
                    first_seq=batch[0].seq,
                    last_seq=batch[-1].seq,
                    time=moment,
                    run_ids=list(dict.fromkeys(event.run_id for event in batch)),
                    changes=changes,
                )
        finally:
            if writer is not None:
                writer.close()  # commits: durable as the target log promises

    def final_view(self) -> StorageView:
        """The state at the end of the source log."""
        return view_at(self.source)


def _to_write(batch: list[AnyEvent], remaining: dict[str, int]) -> list[AnyEvent]:
    drafts: list[AnyEvent] = []
    for event in batch:
        skip = remaining.get(event.run_id)
        if skip is None:
            continue
        if skip:
            remaining[event.run_id] = skip - 1
            continue
        drafts.append(event)
    return drafts


def replay(
    source: LogPath,
    *,
    into: LogPath | None = None,
    speed: float | None = None,
    on_step: Callable[[ReplayStep], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[ReplayStep], StorageView, list[ImportOutcome]]:
    """Play ``source`` through :class:`Replay`; returns the steps, the final state and,
    with ``into``, what was imported per run. ``on_step`` hears of each step as it comes."""
    player = Replay(source, into=into, speed=speed, sleep=sleep)
    steps: list[ReplayStep] = []
    for step in player.steps():
        steps.append(step)
        if on_step is not None:
            on_step(step)
    return steps, player.final_view(), player.outcomes


def import_log(source: LogPath, into: LogPath) -> list[ImportOutcome]:
    """Import every run of ``source`` into ``into`` at once; see :class:`Replay`."""
    player = Replay(source, into=into)
    for _ in player.steps():
        pass
    return player.outcomes
