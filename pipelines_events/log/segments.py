"""Sealed segments of the file log: a roll and an erasure (the manifest's types are in
:mod:`~pipelines_events.log.manifest`, reading the segments in :mod:`~pipelines_events.log.sealed`).

A file log ``results.jsonl`` may roll: its lines so far move into a sealed segment file in
the directory ``results.jsonl.segments/`` and the log file starts empty, the chain going
on across files. ``manifest.json`` in that directory lists the sealed segments in order
(written to a temporary file, synced and renamed: it is the roll's commit point). Byte
offsets (cursors) run over the logical concatenation of the segments' uncompressed bytes
and then the log file. See ``docs/howto/segments.rst``.
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
import os
import re
from pathlib import Path
from typing import Final

import msgspec

from pipelines_events.errors import LogCorruptError, LogWriteError
from pipelines_events.events import FieldSet, ObjectCreated
from pipelines_events.log.base import Erasure
from pipelines_events.log.chain import decode_event, erased_line, line_hash
from pipelines_events.log.manifest import (
    COMPRESSIONS,
    MANIFEST,
    MANIFEST_FORMAT,
    SEGMENTS_SUFFIX,
    Manifest,
    RollPolicy,
    SegmentInfo,
    _manifest_encoder,
    roll_policy,
    segment_name,
    segments_dir,
)
from pipelines_events.log.sealed import (
    LogBytes,
    Sealed,
    _chunks,
    sealed_prefix,
)
from pipelines_events.log.sealed import (
    check_not_behind as check_not_behind,
)


def _reached(step: str) -> None:
    """Called after each step of a roll or an erasure (a seam for crash tests)."""


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _directory_mode(mode: int) -> int:
    """The segments directory's permission for logs of ``mode``: whoever may read the log
    may list and read its segments."""
    return 0o700 | (0o050 if mode & 0o040 else 0) | (0o005 if mode & 0o004 else 0)


def write_atomically(path: Path, data: bytes, mode: int, step: str) -> None:
    """Replace ``path`` with ``data``: a temporary file beside it, synced, renamed, the
    directory synced. ``_reached`` is called with ``step`` + ``-written`` and ``-renamed``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, mode
    )
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    _reached(step + "-written")
    os.rename(temporary, path)
    _sync_dir(path.parent)
    _reached(step + "-renamed")


def compress(data: bytes, compression: str | None) -> bytes:
    """``data`` as a segment file of ``compression`` stores it."""
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "lzma":
        return lzma.compress(data)
    return data


def manifest_bytes(segments: list[SegmentInfo]) -> bytes:
    """The manifest listing ``segments``."""
    return _manifest_encoder.encode(Manifest(MANIFEST_FORMAT, segments)) + b"\n"


def seal_segment(
    log_path: Path,
    sealed: Sealed | None,
    data: bytes,
    prev_hash: str,
    policy: RollPolicy,
    mode: int,
) -> None:
    """Write ``data`` (whole batches, the log file's lines) as the next sealed segment and
    commit it in the manifest: the first half of a roll (the caller replaces the log file).
    """
    directory = segments_dir(log_path)
    first = decode_event(data.split(b"\n", 1)[0])
    last = decode_event(data[:-1].rsplit(b"\n", 1)[-1])
    try:
        directory.mkdir(mode=_directory_mode(mode), exist_ok=True)
        if directory.is_symlink() or not directory.is_dir():
            raise LogWriteError(
                f"{directory}: the segments directory is not a directory (a link?); "
                "the log was not rolled"
            )
        stored = compress(data, policy.compression)
        name = segment_name(first.seq, last.seq, policy.compression)
        write_atomically(directory / name, stored, mode, "segment")
        info = SegmentInfo(
            name=name,
            first_seq=first.seq,
            last_seq=last.seq,
            prev_hash=prev_hash,
            last_hash=last.hash,
            bytes=len(data),
            stored=len(stored),
            compression=policy.compression,
        )
        segments = [*([] if sealed is None else sealed.segments), info]
        write_atomically(directory / MANIFEST, manifest_bytes(segments), mode, "manifest")
    except OSError as exc:
        raise LogWriteError(
            f"{directory}: cannot seal a segment ({exc.strerror}); the log was not rolled "
            "(its events are all in the log file)"
        ) from exc


def replace_log_file(log_path: Path, data: bytes, mode: int) -> None:
    """Replace the log file with one holding ``data`` (what follows the sealed segments):
    the second half of a roll, or the repair of a roll that stopped after its commit."""
    temporary = log_path.with_name(f".{log_path.name}.{os.getpid()}.next")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        fd = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, mode
        )
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        _reached("log-written")
        os.rename(temporary, log_path)
        _sync_dir(log_path.parent)
        _reached("log-renamed")
    except OSError as exc:
        raise LogWriteError(
            f"{log_path}: cannot start the log file after sealing a segment "
            f"({exc.strerror}); the next writer finishes the roll"
        ) from exc


def erase(
    log_path: Path,
    sealed: Sealed | None,
    removed: dict[str, int],
    unsealed: int,
    mode: int,
) -> Erasure:
    """Erase, in the sealed segments, the content of every ``created`` and ``set`` event of
    a run in ``removed`` older than the run's removal (its seq there), called holding the
    log's lock. Each rewritten segment is checked line by line first (nothing forged is
    laundered), written under a new name (gzip when it was not compressed: the padding is
    what is reclaimed), committed in the manifest, then the old file is removed."""
    if sealed is None:
        return Erasure(unsealed=unsealed)
    directory = segments_dir(log_path)
    _remove_strays(directory, sealed)
    infos = list(sealed.segments)
    counts = {"erased": 0, "segments": 0, "before": 0, "after": 0, "v1": 0, "short": 0}
    retired: list[Path] = []
    for index, info in enumerate(infos):
        lines, changed = _erased_lines(sealed, index, info, removed, counts)
        if not changed:
            continue
        compression = info.compression or "gzip"
        new_data = b"\n".join(lines) + b"\n"
        stored = compress(new_data, compression)
        name = segment_name(info.first_seq, info.last_seq, compression, info.generation + 1)
        write_atomically(directory / name, stored, mode, "erased-segment")
        infos[index] = msgspec.structs.replace(
            info,
            name=name,
            stored=len(stored),
            compression=compression,
            erased=info.erased + changed,
            generation=info.generation + 1,
        )
        retired.append(sealed.path(index))
        counts["erased"] += changed
        counts["segments"] += 1
        counts["before"] += info.stored
        counts["after"] += len(stored)
    if retired:
        write_atomically(directory / MANIFEST, manifest_bytes(infos), mode, "erased-manifest")
        for path in retired:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        _sync_dir(directory)
    return Erasure(
        erased=counts["erased"],
        segments=counts["segments"],
        bytes_before=counts["before"],
        bytes_after=counts["after"],
        unsealed=unsealed,
        version_1=counts["v1"],
        too_short=counts["short"],
    )


def _erased_lines(
    sealed: Sealed,
    index: int,
    info: SegmentInfo,
    removed: dict[str, int],
    counts: dict[str, int],
) -> tuple[list[bytes], int]:
    """The lines of the sealed segment ``index`` (``info``), each hash link checked, with the
    content of the events ``erase`` erases replaced, and how many it replaced; the
    events it leaves (version 1, too short) are counted in ``counts``."""
    data = b"".join(_chunks(sealed, index))
    lines = data[:-1].split(b"\n")
    prev = info.prev_hash
    changed = 0
    for number, line in enumerate(lines):
        event = decode_event(line)
        if line_hash(line, prev) != event.hash:
            raise LogCorruptError(
                str(sealed.path(index)),
                event.seq,
                "hash link broken: the segment does not verify; nothing was erased",
            )
        prev = event.hash
        if type(event) is not ObjectCreated and type(event) is not FieldSet:
            continue
        removal = removed.get(event.run_id)
        if removal is None or event.seq > removal:
            continue
        if event.v != 2:
            counts["v1"] += 1
            continue
        try:
            lines[number] = erased_line(line)
        except ValueError:
            counts["short"] += 1
            continue
        changed += 1
    return lines, changed


_SEGMENT_FILE: Final = re.compile(r"^(\.)?\d{12}-\d{12}(\.g\d+)?\.jsonl(\.gz|\.xz)?(\.\d+\.tmp)?$")


def _remove_strays(directory: Path, sealed: Sealed) -> None:
    """Remove segment files the manifest does not list (a roll or an erasure that stopped
    before or after its commit left them; an old one may hold erased content)."""
    listed = {info.name for info in sealed.segments}
    for entry in os.scandir(directory):
        if entry.name not in listed and _SEGMENT_FILE.match(entry.name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


__all__ = [
    "COMPRESSIONS",
    "MANIFEST",
    "SEGMENTS_SUFFIX",
    "Erasure",
    "LogBytes",
    "Manifest",
    "RollPolicy",
    "Sealed",
    "SegmentInfo",
    "compress",
    "erase",
    "manifest_bytes",
    "replace_log_file",
    "roll_policy",
    "seal_segment",
    "sealed_prefix",
    "segment_name",
    "segments_dir",
    "write_atomically",
]
