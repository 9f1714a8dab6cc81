"""Audit a results log: history, state at a point in time, export, replay, verify, follow.

Every function takes the path of a JSON-lines log and opens it read-only (only
:func:`export` and an import with ``into`` write, and only to the file they are given).
They return structured records (:mod:`msgspec` Structs); the ``pipelines-events``
commands ``history``, ``export``, ``replay``, ``verify``, ``head`` and ``follow`` render them.
"""

from pipelines_events.audit._core import (
    CREATED,
    REMOVED,
    SET,
    AuditChange,
    ChangeFold,
    ImportConflictError,
    ImportRefusedError,
    LogPath,
    OutputExistsError,
    ReadOnlyStorageError,
    iter_batches,
)
from pipelines_events.audit.follow import POLL_INTERVAL, Follower
from pipelines_events.audit.history import MIN_PREFIX, history, select
from pipelines_events.audit.transfer import (
    EXTENDED,
    IMPORTED,
    PART_SUFFIX,
    PRESENT,
    ExportSummary,
    ImportOutcome,
    Replay,
    ReplayStep,
    export,
    import_log,
    remove_abandoned_exports,
    replay,
)
from pipelines_events.audit.verify import (
    SNAPSHOT_DIFFERS,
    SNAPSHOT_IGNORED,
    SNAPSHOT_MATCHES,
    SNAPSHOT_NONE,
    SNAPSHOT_UNCHECKED,
    Head,
    VerifyReport,
    head,
    parse_head,
    verify,
)
from pipelines_events.audit.view import ObjectState, StorageView, run_state, view_at


def follow(
    log: LogPath,
    run_id: str | None = None,
    *,
    from_seq: int | None = None,
    until_done: bool = False,
    timeout: float | None = None,
) -> Follower:
    """A :class:`Follower` of ``log``: iterate it for the status changes as they come."""
    return Follower(log, run_id, from_seq=from_seq, until_done=until_done, timeout=timeout)


__all__ = [
    "CREATED",
    "EXTENDED",
    "IMPORTED",
    "MIN_PREFIX",
    "PART_SUFFIX",
    "POLL_INTERVAL",
    "PRESENT",
    "REMOVED",
    "SET",
    "SNAPSHOT_DIFFERS",
    "SNAPSHOT_IGNORED",
    "SNAPSHOT_MATCHES",
    "SNAPSHOT_NONE",
    "SNAPSHOT_UNCHECKED",
    "AuditChange",
    "ChangeFold",
    "ExportSummary",
    "Follower",
    "Head",
    "ImportConflictError",
    "ImportOutcome",
    "ImportRefusedError",
    "LogPath",
    "ObjectState",
    "OutputExistsError",
    "ReadOnlyStorageError",
    "Replay",
    "ReplayStep",
    "StorageView",
    "VerifyReport",
    "export",
    "follow",
    "head",
    "history",
    "import_log",
    "iter_batches",
    "parse_head",
    "remove_abandoned_exports",
    "replay",
    "run_state",
    "select",
    "verify",
    "view_at",
]
