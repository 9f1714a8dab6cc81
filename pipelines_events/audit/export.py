"""A run's events exported as a new log that verifies on its own, written to a part
file and published whole."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

import msgspec

from pipelines_events.audit._core import (
    LogPath,
    OutputExistsError,
    iter_batches,
)
from pipelines_events.errors import (
    EventTooLargeError,
    InvalidValueError,
    LogOpenError,
    LogWriteError,
    ObjectNotFoundError,
)
from pipelines_events.events import GENESIS_HASH, SCHEMA_VERSION, Erased
from pipelines_events.log.base import DEFAULT_MAX_EVENT_BYTES
from pipelines_events.log.chain import HASH_SUFFIX_LEN, encode_event, seal
from pipelines_events.log.open import open_log

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


__all__ = ["PART_SUFFIX", "ExportSummary", "export", "remove_abandoned_exports"]
