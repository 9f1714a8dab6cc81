"""Opening a file log: creating or checking its file (type, owner, permissions), reopening
after a fork, and repairing the torn tail a crashed writer left.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import warnings

from pipelines_events.errors import (
    LogCorruptError,
    LogOpenError,
    LogWriteError,
)
from pipelines_events.log.jsonlbase import (
    LogPermissionsWarning,
    TornWriteRepaired,
    _JsonlBase,
)
from pipelines_events.log.jsonlfile import (
    _complete_prefix,
    _lines_before,
    _looks_torn,
    _pread,
    _remove_directories,
    _size,
)


class _Opening(_JsonlBase):
    """How a file log handle opens its file and repairs a torn tail."""

    # -- opening ---------------------------------------------------------------------

    def _open(self) -> None:
        path = self._path
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LogOpenError(
                    f"{path}: the log path is a symbolic link loop: resolving it never ends "
                    "(a link points, directly or through others, back to itself)"
                ) from None
        try:
            is_dir = path.is_dir()
        except OSError as exc:  # a name too long, say
            raise LogOpenError(f"{path}: the log path cannot be used: {exc.strerror}") from None
        if is_dir:
            raise LogOpenError(f"{path}: the log path is a directory, not a file")
        self._pid = os.getpid()
        if self._readonly:
            try:
                # O_NONBLOCK: opening a named pipe must not wait for a writer.
                self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            except FileNotFoundError:
                raise LogOpenError(f"{path}: no such log file") from None
            except OSError as exc:
                raise LogOpenError(f"{path}: cannot open the log: {exc.strerror}") from None
            self._check_regular()
            self._attach_segments()
            return
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        created = False
        try:
            self._fd = os.open(path, flags)
        except (FileNotFoundError, NotADirectoryError):
            self._create(flags)
            created = True
        except OSError as exc:
            raise LogOpenError(f"{path}: cannot open the log for writing: {exc.strerror}") from None
        st = self._check_regular()
        if created:
            if self._durability == "fsync":
                self._sync_directory()
        elif not self._mode_checked:
            self._check_mode(st.st_mode)
        self._mode_checked = True
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            # A writer may have rolled the file while this open waited for its lock: go on
            # in the new one (it may lock and use a newer file still).
            self._switch_locked(self._fd)
            self._repair_tail()
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _create(self, flags: int) -> None:
        """Create the missing log (and its directories); never through a symbolic link."""
        path = self._path
        if path.is_symlink():
            self._refuse_dangling_link()
        missing = []  # the directories this open creates, innermost first
        for parent in path.parents:
            if parent.exists():
                break
            missing.append(parent)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _remove_directories(missing)
            raise LogOpenError(
                f"{path}: cannot create the log's directory {path.parent}: {exc.strerror}"
            ) from None
        try:
            # O_EXCL: a symbolic link put there meanwhile is not followed.
            self._fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, self._mode)
            return
        except FileExistsError:
            pass  # another process created the log meanwhile, or a link appeared
        except OSError as exc:
            _remove_directories(missing)
            raise LogOpenError(f"{path}: cannot open the log for writing: {exc.strerror}") from None
        try:
            self._fd = os.open(path, flags)
        except FileNotFoundError:
            self._refuse_dangling_link()
        except OSError as exc:
            raise LogOpenError(f"{path}: cannot open the log for writing: {exc.strerror}") from None

    def _refuse_dangling_link(self) -> None:
        try:
            target = repr(os.readlink(self._path))
        except OSError:
            target = "a missing file"
        raise LogOpenError(
            f"{self._path}: the log path is a symbolic link to {target}, which does not "
            "exist; refusing to create the log through it (create the target, or give "
            "the real path)"
        )

    def _check_mode(self, st_mode: int) -> None:
        extra = stat.S_IMODE(st_mode) & 0o077 & ~self._mode
        if not extra:
            return
        mode = stat.S_IMODE(st_mode)
        access = [
            f"{what} by {' and '.join(who)}"
            for what, bits in (("readable", (0o040, 0o004)), ("writable", (0o020, 0o002)))
            if (who := [w for w, bit in zip(("group", "others"), bits, strict=True) if mode & bit])
        ]
        warnings.warn(
            f"{self._path}: the log's permissions {mode:#o} are too open: it is "
            f"{', '.join(access) or 'executable by group or others'}; using it anyway "
            f"(chmod {self._mode:o} it, or pass mode={mode:#o} to accept them)",
            LogPermissionsWarning,
            stacklevel=4,
        )

    def _check_regular(self) -> os.stat_result:
        st = os.fstat(self._fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(self._fd)
            self._fd = -1
            raise LogOpenError(f"{self._path}: the log path is not a regular file")
        return st

    def _sync_directory(self) -> None:
        try:
            dir_fd = os.open(self._path.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError as exc:
            raise LogWriteError(
                f"{self._path}: fsync of the log's directory {self._path.parent} failed "
                f"({exc.strerror}); the new log may not be on disk"
            ) from exc
        finally:
            os.close(dir_fd)

    def _reopen_after_fork(self) -> None:
        """A forked child shares the parent's descriptor and so its lock: open its own."""
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1
        self._open()

    # -- torn writes -----------------------------------------------------------------

    def _repair_tail(self) -> None:
        """Cut an unfinished last batch (a crash mid-write); called holding the lock."""
        if os.fstat(self._fd).st_size == 0:
            return
        src = self._src()
        size = _size(src)
        keep = _complete_prefix(src, size, str(self._path), self._base())
        if keep != size:
            self._truncate_torn(keep, size)

    def _truncate_torn(self, keep: int, size: int) -> None:
        src = self._src()
        tail = _pread(src, min(size - keep, 64), keep)
        if not _looks_torn(tail):
            at_position = keep == self._position.offset
            line = (self._position.seq if at_position else _lines_before(src, keep)) + 1
            raise LogCorruptError(
                str(self._path),
                line,
                f"the file ends (line {line} on, {size - keep} bytes: {tail[:40]!r}) with bytes "
                "that are not the start of an event, so they are not a torn write; "
                "refusing to cut them: is this file a pipelines-events log?",
            )
        try:
            os.ftruncate(self._fd, keep - self._base() + self._skip)
            if self._durability == "fsync":
                os.fsync(self._fd)
        except OSError as exc:
            raise LogWriteError(
                f"{self._path}: cannot remove the unfinished batch after byte {keep} "
                f"({exc.strerror}); nothing was written"
            ) from exc
        warnings.warn(
            f"{self._path}: removed {size - keep} bytes after byte {keep}: an unfinished "
            "batch left by a writer that stopped mid-write (it was never acknowledged)",
            TornWriteRepaired,
            stacklevel=4,
        )
