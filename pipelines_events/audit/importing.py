"""Importing a log's runs into another: what the target holds of them, and what it lacks
or refuses."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Final

import msgspec

from pipelines_events.audit._core import (
    ImportConflictError,
    LogPath,
)
from pipelines_events.errors import (
    InvalidValueError,
)
from pipelines_events.events import START, AnyEvent, ObjectCreated
from pipelines_events.log.chain import encode_event
from pipelines_events.log.open import is_url, open_log

IMPORTED: Final = "imported"
EXTENDED: Final = "extended"
PRESENT: Final = "already present"
"""The actions of an :class:`ImportOutcome`."""


class ImportOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What importing one run did: ``imported`` it, ``extended`` a copy already there with
    the events it lacked, or found it ``already present``; ``events`` were appended."""

    run_id: str
    action: str
    events: int
    note: str = ""


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


class ImportSource:
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


class ImportTarget:
    """What the target log holds of the source's runs, folded from its events."""

    def __init__(self, name: str, source: ImportSource) -> None:
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


def read_target(name: str, source: ImportSource) -> ImportTarget:
    target = ImportTarget(name, source)
    if not is_url(name) and not Path(name).exists():
        return target
    # A database log that does not exist yet is created empty here (the import writes it
    # next: nothing in an empty log can refuse the import); a file is created on append.
    with open_log(name, readonly=not is_url(name)) as log:
        for batch in log.read_batches():
            target.fold(batch)
        target.position = log.position
    return target


def check_not_same(source: LogPath, into: LogPath) -> None:
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


__all__ = ["EXTENDED", "IMPORTED", "PRESENT", "ImportOutcome"]
