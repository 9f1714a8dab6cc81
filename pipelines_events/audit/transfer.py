"""A run's log, exported as a self-contained log, replayed step by step, imported elsewhere."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import math
import os
import stat
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
from pipelines_events.audit._source import read_source
from pipelines_events.audit.view import StorageView, view_at
from pipelines_events.errors import (
    EventTooLargeError,
    InvalidValueError,
    LogOpenError,
    LogWriteError,
    ObjectNotFoundError,
)
from pipelines_events.events import (
    GENESIS_HASH,
    SCHEMA_VERSION,
    START,
    AnyEvent,
    Erased,
    ObjectCreated,
)
from pipelines_events.log.base import DEFAULT_MAX_EVENT_BYTES, EventLog
from pipelines_events.log.chain import HASH_SUFFIX_LEN, encode_event, seal
from pipelines_events.log.open import is_url, open_log

IMPORTED: Final = "imported"
EXTENDED: Final = "extended"
PRESENT: Final = "already present"
"""The actions of an :class:`ImportOutcome`."""

PART_SUFFIX: Final = ".part"
"""The end of the name of a file being exported: ``.<name>.export-<random>.part``."""


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
    existing ``out`` unless ``force``; the file appears whole or not at all. It is
    written as ``.<name>.export-<random>.part`` beside ``out``, locked while it is
    written: an export killed midway leaves that file, and the next export to ``out``
    removes it.
    """
    if not isinstance(run_id, str) or not run_id:
        raise InvalidValueError(f"give a run id, not {run_id!r}")
    target = Path(os.fspath(out))
    _check_output(target, log, force)
    directory = target.parent
    if not directory.is_dir():
        raise LogOpenError(
            f"{target}: the directory {directory} does not exist; nothing was written"
        )
    open_log(log, readonly=True).close()  # a missing log: no temporary file at all
    remove_abandoned_exports(target)
    fd, temporary = _create_part(target)
    try:
        events, batches, digest = _write_run(fd, str(temporary), log, run_id)
        if not batches:
            raise ObjectNotFoundError(f"{log}: no run has the id {run_id!r}; nothing was written")
        try:
            os.fsync(fd)
        except OSError as exc:
            raise LogWriteError(f"{target}: fsync failed ({exc.strerror})") from exc
        _publish(str(temporary), target, force)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    finally:
        os.close(fd)  # releases the lock
    _sync_directory(directory)
    return ExportSummary(
        path=str(target),
        source=os.fspath(log),
        run_id=run_id,
        events=events,
        batches=batches,
        head_seq=events,
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


def _part_prefix(target: Path) -> str:
    return f".{target.name}.export-"


def _create_part(target: Path) -> tuple[int, Path]:
    """A new temporary file beside ``target``, open and locked (``flock``) by this process."""
    while True:
        try:
            fd, name = tempfile.mkstemp(
                dir=target.parent, prefix=_part_prefix(target), suffix=PART_SUFFIX
            )
        except OSError as exc:
            raise LogOpenError(f"{target}: cannot write there: {exc.strerror}") from None
        path = Path(name)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            # Another export took it for abandoned between its creation and this lock.
            os.close(fd)
            continue
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except OSError:
            same = False
        if same:
            return fd, path
        os.close(fd)  # removed by another export before the lock: make another


def remove_abandoned_exports(target: LogPath) -> list[Path]:
    """Remove the temporary files that exports to ``target`` killed midway left beside it.

    A file being written is locked by its export and left alone. Returns what was removed.
    """
    target = Path(os.fspath(target))
    prefix = _part_prefix(target)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(PART_SUFFIX)):
            continue
        path = Path(entry.path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # an export is writing it
            with contextlib.suppress(OSError):
                if os.lstat(path).st_ino == info.st_ino:
                    os.unlink(path)
                    removed.append(path)
        finally:
            os.close(fd)
    return removed


def _write_run(fd: int, name: str, log: LogPath, run_id: str) -> tuple[int, int, str]:
    """Write run ``run_id``'s batches of ``log`` to ``fd`` on a new chain.

    Returns the events and batches written and the last hash.
    """
    seq, batches, prev = 0, 0, GENESIS_HASH
    limit = DEFAULT_MAX_EVENT_BYTES - HASH_SUFFIX_LEN
    replace = msgspec.structs.replace
    pending: list[bytes] = []
    size = 0
    for batch, _ in iter_batches(log):
        # Erased events have no content to carry over (and their digest its old seq).
        mine = [event for event in batch if event.run_id == run_id and type(event) is not Erased]
        if not mine:
            continue
        batches += 1
        count = len(mine)
        for index, event in enumerate(mine):
            seq += 1
            body = encode_event(
                replace(event, v=SCHEMA_VERSION, seq=seq, more=count - 1 - index, hash="")
            )
            if len(body) > limit:
                raise EventTooLargeError(
                    f"{name}: event {seq} ({event.kind} {event.id}) encodes to "
                    f"{len(body) + HASH_SUFFIX_LEN} bytes, over the limit of "
                    f"{DEFAULT_MAX_EVENT_BYTES} bytes; nothing was written"
                )
            line, prev = seal(body, prev)
            pending.append(line)
            size += len(line)
        if size >= 1 << 20:
            _write_all(fd, name, b"".join(pending))
            pending, size = [], 0
    if pending:
        _write_all(fd, name, b"".join(pending))
    return seq, batches, prev


def _write_all(fd: int, name: str, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            done = os.write(fd, view)
        except OSError as exc:
            code = errno.errorcode.get(exc.errno or 0, "?")
            raise LogWriteError(
                f"{name}: the write failed ({code}: {exc.strerror}); nothing was written"
            ) from exc
        view = view[done:]


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


class _Run:
    """One run of the source: its events' content, their lines, and its batch ends."""

    __slots__ = ("boundaries", "content", "lines")

    def __init__(self) -> None:
        self.content: list[bytes] = []
        self.lines: list[int] = []
        self.boundaries: set[int] = {0}


class _Source:
    """The checked batches of the source, and per batch where each run's events start."""

    def __init__(self, name: str, batches: list[list[AnyEvent]]) -> None:
        self.name = name
        self.batches = batches
        self.runs: dict[str, _Run] = {}
        self.starts: list[dict[str, tuple[int, int]]] = []  # run -> (first, end) index
        self.created: dict[str, tuple[str, str]] = {}  # object id -> (run id, kind)
        for batch in batches:
            spans: dict[str, tuple[int, int]] = {}
            for event in batch:
                run = self.runs.get(event.run_id)
                if run is None:
                    run = self.runs[event.run_id] = _Run()
                if event.run_id not in spans:
                    spans[event.run_id] = (len(run.content), 0)
                run.content.append(_content(event))
                run.lines.append(event.seq)
                if type(event) is ObjectCreated:
                    self.created[event.id] = (event.run_id, event.kind)
            for run_id, (first, _) in spans.items():
                end = len(self.runs[run_id].content)
                spans[run_id] = (first, end)
                self.runs[run_id].boundaries.add(end)
            self.starts.append(spans)


class _Target:
    """What the target log holds of the source's runs, folded from its events."""

    def __init__(self, name: str, source: _Source) -> None:
        self.name = name
        self.source = source
        self.have = dict.fromkeys(source.runs, 0)
        self.differs: dict[str, tuple[int, int]] = {}  # run -> (index, target seq)
        self.clash: dict[str, tuple[str, str, str]] = {}  # run -> (id, its run, its kind)
        self.position = START
        self.written = 0  # events this import appended

    def _outcome(self) -> str:
        if not self.written:
            return "nothing was imported"
        return (
            f"the import stopped there; the {self.written} events it appended before, "
            "in whole batches, stay"
        )

    def fold(self, events: list[AnyEvent]) -> None:
        runs, created = self.source.runs, self.source.created
        for event in events:
            run = runs.get(event.run_id)
            if run is not None:
                index = self.have[event.run_id]
                self.have[event.run_id] = index + 1
                if (
                    index < len(run.content)
                    and event.run_id not in self.differs
                    and _content(event) != run.content[index]
                ):
                    self.differs[event.run_id] = (index, event.seq)
            if type(event) is ObjectCreated:
                want = created.get(event.id)
                if want is not None and want != (event.run_id, event.kind):
                    self.clash.setdefault(want[0], (event.id, event.run_id, event.kind))

    def check(self, run_id: str) -> None:
        """Raise :class:`ImportConflictError` unless run ``run_id`` can go into the target."""
        run = self.source.runs[run_id]
        clash = self.clash.get(run_id)
        if clash is not None:
            object_id, owner, kind = clash
            other = f"in run {owner!r}" if owner != run_id else f"as a {kind}"
            raise ImportConflictError(
                f"{self.name}: cannot import run {run_id!r}: its object {object_id} already "
                f"exists there {other}; {self._outcome()}"
            )
        have, total = self.have[run_id], len(run.content)
        differs = self.differs.get(run_id)
        if differs is not None:
            index, seq = differs
            where = (
                f"its event {index + 1} differs (seq {run.lines[index]} in {self.source.name}, "
                f"seq {seq} in {self.name})"
            )
        elif have < total and have not in run.boundaries:
            where = (
                f"{self.name} holds {have} of its events, {self.source.name} {total}, "
                "cut in the middle of a batch"
            )
        else:
            return
        raise ImportConflictError(
            f"{self.name}: run {run_id!r} already exists there with different events: "
            f"{where}; {self._outcome()}"
        )

    def check_all(self) -> None:
        for run_id in self.source.runs:
            self.check(run_id)

    def drafts(self, number: int) -> list[AnyEvent]:
        """The events of batch ``number`` (from 0) the target lacks; raises on a conflict."""
        write: set[str] = set()
        for run_id, (first, end) in self.source.starts[number].items():
            self.check(run_id)
            have = self.have[run_id]
            if have >= end:
                continue
            if have != first:
                raise ImportConflictError(
                    f"{self.name}: run {run_id!r}: the log holds {have} of its events, but the "
                    f"batch at line {self.source.runs[run_id].lines[first]} of "
                    f"{self.source.name} follows event {first}; {self._outcome()}"
                )
            write.add(run_id)
        if not write:
            return []
        return [event for event in self.source.batches[number] if event.run_id in write]


def _read_target(name: str, source: _Source) -> _Target:
    target = _Target(name, source)
    if not is_url(name) and not Path(name).exists():
        return target
    # A database log that does not exist yet is created empty here (the import writes it
    # next: nothing in an empty log can refuse the import); a file is created on append.
    with open_log(name, readonly=not is_url(name)) as log:
        for batch in log.read_batches():
            target.fold(batch)
        target.position = log.position
    return target


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


def _check_not_same(source: LogPath, into: LogPath) -> None:
    if is_url(source) and source == into:
        raise InvalidValueError(
            f"{into}: is the log being imported; a log cannot be imported into itself; "
            "nothing was imported"
        )
    with contextlib.suppress(OSError):
        if os.path.samefile(source, into):
            raise InvalidValueError(
                f"{into}: is the log being imported ({source}); a log cannot be imported "
                "into itself; nothing was imported"
            )


class Replay:
    """Steps through the log ``source``, one batch (state transition) at a time.

    With ``into``, the runs of ``source`` are imported into that log as the steps go
    (sequenced again onto its chain, times kept). The whole source is read and checked
    first (:class:`~pipelines_events.audit.ImportRefusedError` names the line of an
    event no storage could fold); a run already there with the same events adds
    nothing, one there with only its first batches gets the rest, and one there with
    different events is refused (:class:`ImportConflictError`), all before anything is
    written. Each batch is written under the target's lock after checking that the
    target still lacks it, so imports running at once write each event once.
    ``speed`` > 0 waits between steps for the original time between them divided by
    ``speed``.
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
        self._source: _Source | None = None
        self._target: _Target | None = None
        self.outcomes: list[ImportOutcome] = []
        """One outcome per run of the source when ``into`` is given (what the import will
        do, then, once :meth:`steps` is done, what it did)."""
        if into is None:
            open_log(source, readonly=True).close()  # fail now on a missing file
            return
        _check_not_same(source, into)
        checked = _Source(os.fspath(source), read_source(source))
        target = _read_target(os.fspath(into), checked)
        target.check_all()
        self._source, self._target = checked, target
        self._first = dict(target.have)
        self._written = dict.fromkeys(checked.runs, 0)
        self.outcomes = self._outcomes(planned=True)

    def _outcomes(self, *, planned: bool) -> list[ImportOutcome]:
        assert self._source is not None and self._target is not None
        into = os.fspath(self.into) if self.into is not None else ""
        outcomes = []
        for run_id, run in self._source.runs.items():
            first, total = self._first[run_id], len(run.content)
            written = max(0, total - first) if planned else self._written[run_id]
            have = self._target.have[run_id]
            if written == 0:
                note = f"{into} also holds {have - total} later events of this run"
                outcomes.append(
                    ImportOutcome(
                        run_id=run_id, action=PRESENT, events=0, note=note if have > total else ""
                    )
                )
            elif first == 0:
                outcomes.append(ImportOutcome(run_id=run_id, action=IMPORTED, events=written))
            else:
                outcomes.append(
                    ImportOutcome(
                        run_id=run_id,
                        action=EXTENDED,
                        events=written,
                        note=f"{into} held its first {first} events",
                    )
                )
        return outcomes

    def steps(self) -> Iterator[ReplayStep]:
        """Each step in log order, written to ``into`` (when given) before it is yielded."""
        if self._source is None:
            yield from self._play((batch for batch, _ in iter_batches(self.source)), None)
            return
        needed = any(outcome.action != PRESENT for outcome in self.outcomes)
        writer = self._open_writer() if needed else None
        try:
            yield from self._play(iter(self._source.batches), writer)
        finally:
            if writer is not None:
                try:
                    writer.close()  # commits: durable as the target log promises
                finally:
                    self.outcomes = self._outcomes(planned=False)

    def _open_writer(self) -> EventLog:
        assert self.into is not None and self._target is not None
        writer = open_log(self.into)
        try:
            writer.seek(self._target.position)
        except BaseException:
            writer.close()
            raise
        return writer

    def _play(
        self, batches: Iterator[list[AnyEvent]], writer: EventLog | None
    ) -> Iterator[ReplayStep]:
        fold = ChangeFold()
        first: datetime | None = None
        started = 0.0
        for number, batch in enumerate(batches):
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
                self._write(writer, number)
            yield ReplayStep(
                number=number + 1,
                first_seq=batch[0].seq,
                last_seq=batch[-1].seq,
                time=moment,
                run_ids=list(dict.fromkeys(event.run_id for event in batch)),
                changes=changes,
            )

    def _write(self, writer: EventLog, number: int) -> None:
        """Append what the target lacks of batch ``number``, deciding under its lock."""
        target = self._target
        assert target is not None
        while True:
            drafts = target.drafts(number)
            if not drafts:
                return

            def still_lacking(caught: list[AnyEvent], drafts: list[AnyEvent] = drafts) -> bool:
                # Under the lock: fold what others appended, check again, write or retry.
                target.fold(caught)
                target.check_all()
                again = target.drafts(number)
                return len(again) == len(drafts) and all(
                    a is b for a, b in zip(again, drafts, strict=True)
                )

            written = writer.append(drafts, on_caught_up=still_lacking)
            if written:
                target.fold(written)
                target.written += len(written)
                for event in written:
                    self._written[event.run_id] += 1
                return

    def final_view(self) -> StorageView:
        """The state at the end of the source log."""
        return view_at(self.source)


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


__all__ = [
    "EXTENDED",
    "IMPORTED",
    "PART_SUFFIX",
    "PRESENT",
    "ExportSummary",
    "ImportOutcome",
    "Replay",
    "ReplayStep",
    "export",
    "import_log",
    "remove_abandoned_exports",
    "replay",
]
