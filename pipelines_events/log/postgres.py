"""The PostgreSQL engine: the log as rows of a table, for logs shared by several hosts.

One row per event (``seq``, run id, kind, object id, the encoded line and its hash), a
one-row head (``seq``, hash), a run summary table kept in the append's transaction, and
a snapshot table. An append locks the head row, catches up, chains, inserts and commits
in one transaction, so seq order is commit order without gaps. Commits notify
listeners (``LISTEN``/``NOTIFY``). See ``docs/howto/postgres.rst``.
"""

from __future__ import annotations

import os
import threading

from pipelines_events.events import (
    AnyEvent,
)
from pipelines_events.log.base import (
    DEFAULT_MAX_EVENT_BYTES,
    RunSummary,
)
from pipelines_events.log.pgbase import (
    _INHERITED,
    _OPEN_LOGS,
)
from pipelines_events.log.pgreads import _Reads
from pipelines_events.log.pgsnapshots import PostgresSnapshotStore
from pipelines_events.log.pgsql import (
    DB_SCHEMA_VERSION,
    DEFAULT_SCHEMA,
    redact,
    split_schema,
)
from pipelines_events.log.pgverify import (
    _decode,
)
from pipelines_events.log.pgwrites import _Writes


class PostgresEventLog(_Reads, _Writes):
    """An event log in PostgreSQL tables (in the database schema ``schema``).

    ``url`` is a ``postgresql://`` URL (or a libpq keyword string); ``durability``
    ``"fsync"`` commits with ``synchronous_commit`` on, ``"none"`` turns it off for the
    session; ``readonly`` never writes (not even the tables); ``connect_timeout`` is in
    seconds; other keywords go to :func:`psycopg.connect`.
    """

    def __enter__(self) -> PostgresEventLog:
        return self

    # -- the run index ---------------------------------------------------------------------

    def run_summaries(self) -> list[RunSummary]:
        self._check_usable()
        return [
            RunSummary(
                run_id=row[0],
                pipeline_id=row[2],
                status=row[3],
                started=row[4],
                completed=row[5],
                counts=dict(row[6]),
                first_seq=row[7],
                last_seq=row[8],
                removed=row[9],
            )
            for row in self._query(self._sql.all_runs)
        ]

    def run_events(self, run_id: str) -> list[AnyEvent]:
        self._check_usable()
        events = []
        for seq, line in self._query(self._sql.run_events, (run_id,)):
            event = _decode(bytes(line), seq, self._location)
            events.append(event)
        return events

    def run_of(self, object_id: str) -> str | None:
        self._check_usable()
        rows = self._query(self._sql.run_of, (object_id,))
        return None if not rows else str(rows[0][0])


def _after_fork_in_child() -> None:
    for log in list(_OPEN_LOGS):
        _INHERITED.extend((log._conn, log._listener))
        log._conn = None
        log._listener = None
        log._lock = threading.RLock()
        log._db_lock = threading.RLock()
        log._listen_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = [
    "DB_SCHEMA_VERSION",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_SCHEMA",
    "PostgresEventLog",
    "PostgresSnapshotStore",
    "redact",
    "split_schema",
]
