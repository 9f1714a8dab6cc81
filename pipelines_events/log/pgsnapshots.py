"""The PostgreSQL log's snapshot store: one row per snapshot name in the log's schema."""

from __future__ import annotations

from typing import TYPE_CHECKING

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the PostgreSQL log needs psycopg 3: pip install 'pipelines-events[postgres]'"
    ) from exc

from pipelines_events.errors import (
    LogError,
    LogWriteError,
    SnapshotError,
)
from pipelines_events.log.base import (
    SnapshotStore,
)
from pipelines_events.log.pgsql import (
    _SNAPSHOT_NAME,
    SNAPSHOT_SLACK_BYTES,
    _describe,
)

if TYPE_CHECKING:
    from pipelines_events.log.pgbase import _PostgresBase


class PostgresSnapshotStore(SnapshotStore):
    """The storage's snapshot as a row of the log's ``snapshots`` table."""

    def __init__(self, log: _PostgresBase) -> None:
        self._log = log
        self._where = f"{log.location} (table {log.schema}.snapshots)"

    @property
    def location(self) -> str:
        return self._where

    def load(self) -> bytes | None:
        log = self._log
        try:
            rows = log._query(log._sql.load_snapshot, (_SNAPSHOT_NAME,))
            _, _, size = log._head()
        except LogError as exc:
            raise SnapshotError(f"{self._where}: cannot read the snapshot: {exc}") from None
        if not rows:
            return None
        data = bytes(rows[0][0])
        bound = 2 * size + SNAPSHOT_SLACK_BYTES
        if len(data) > bound:
            raise SnapshotError(
                f"{self._where}: the snapshot holds {len(data)} bytes, more than the "
                f"{bound} bytes a snapshot of this log can need"
            )
        return data

    def save(self, data: bytes) -> None:
        log = self._log
        if log.readonly:
            raise LogError(f"{self._where}: the log was opened read-only")
        with log._db_lock:
            conn = log._connection()
            try:
                conn.execute(log._sql.save_snapshot, (_SNAPSHOT_NAME, bytes(data)))
            except psycopg.Error as exc:
                log._rollback(conn)
                raise LogWriteError(
                    f"{self._where}: cannot save the snapshot: {_describe(exc, log._password)}"
                ) from None
