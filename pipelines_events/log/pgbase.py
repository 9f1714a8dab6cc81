"""The PostgreSQL log's state: a handle's settings and connections, the schema's tables
prepared, and the plain accessors; the parts of
:class:`~pipelines_events.log.postgres.PostgresEventLog` build on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the PostgreSQL log needs psycopg 3: pip install 'pipelines-events[postgres]'"
    ) from exc

from pipelines_events.errors import (
    LogError,
    LogOpenError,
)
from pipelines_events.events import (
    START,
)
from pipelines_events.log.base import (
    DEFAULT_MAX_EVENT_BYTES,
    DURABILITY_MODES,
    Cursor,
    Durability,
    EventLog,
    SnapshotStore,
)
from pipelines_events.log.pgsnapshots import PostgresSnapshotStore
from pipelines_events.log.pgsql import (
    DB_SCHEMA_VERSION,
    DEFAULT_SCHEMA,
    IDLE_IN_TRANSACTION_TIMEOUT,
    Connection,
    _channel,
    _describe,
    _quote,
    _Sql,
    redact,
    split_schema,
)


class _HandedOver(Exception):
    """Carries an error raised by ``on_caught_up`` (the catch-up was handed over)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _PostgresBase(EventLog):
    """What a PostgreSQL log handle holds, and its connections."""

    supports_run_index = True

    # Long on purpose: each keyword's check with its own message, then the handle's state
    # and the first connection, in the order the checks must happen.
    def __init__(
        self,
        url: str,
        *,
        durability: Durability = "fsync",
        readonly: bool = False,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        schema: str | None = None,
        connect_timeout: float = 10,
        **connection_options: Any,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise LogOpenError(f"the PostgreSQL log needs a URL as a non-empty str, not {url!r}")
        self._location = redact(url)
        url, in_url = split_schema(url)
        if in_url is not None:
            if schema is not None and schema != in_url:
                raise LogOpenError(
                    f"{self._location}: the URL names schema {in_url!r} but the schema "
                    f"option is {schema!r}: give one"
                )
            schema = in_url
        elif schema is None:
            schema = DEFAULT_SCHEMA
        if durability not in DURABILITY_MODES:
            raise LogOpenError(
                f"{self._location}: durability must be one of "
                f"{', '.join(map(repr, DURABILITY_MODES))}, not {durability!r}"
            )
        if type(max_event_bytes) is not int or max_event_bytes < 256:
            raise LogOpenError(
                f"{self._location}: max_event_bytes must be an int of at least 256, "
                f"not {max_event_bytes!r}"
            )
        if not isinstance(schema, str) or not schema or "\0" in schema or len(schema) > 63:
            raise LogOpenError(
                f"{self._location}: schema must be a name of 1 to 63 characters, not {schema!r}"
            )
        if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, int | float):
            raise LogOpenError(
                f"{self._location}: connect_timeout must be a number of seconds, "
                f"not {connect_timeout!r}"
            )
        try:
            info = psycopg.conninfo.conninfo_to_dict(url, **connection_options)
        except psycopg.Error as exc:
            raise LogOpenError(
                f"{self._location}: not a PostgreSQL URL: {_describe(exc, None)}"
            ) from None
        self._password = str(info["password"]) if info.get("password") else None
        self._host = str(info.get("host") or info.get("hostaddr") or "localhost")
        self._port = str(info.get("port") or "5432")
        self._url = url
        self._options = connection_options
        self._connect_timeout = float(connect_timeout)
        self._durability: Durability = durability
        self._readonly = readonly
        self._max_event_bytes = max_event_bytes
        self._schema = schema
        self._sql = _Sql(schema)
        self._channel = _channel(schema)
        self._lock = threading.RLock()
        self._db_lock = threading.RLock()
        self._listen_lock = threading.Lock()
        self._conn: Connection | None = None
        self._listener: Connection | None = None
        self._closed = False
        self._position: Cursor = START
        self._snapshots = PostgresSnapshotStore(self)
        conn = self._connection()
        try:
            self._prepare(conn)
        except BaseException:
            self._drop(conn)
            raise
        _OPEN_LOGS.add(self)

    # -- connections ---------------------------------------------------------------------

    def _connect(self) -> Connection:
        """A new connection set up for this log; LogOpenError naming host and port."""
        timeout = max(1, round(self._connect_timeout))
        try:
            conn = psycopg.connect(
                self._url, autocommit=True, connect_timeout=timeout, **self._options
            )
        except psycopg.Error as exc:
            raise LogOpenError(
                f"{self._location}: cannot connect to the PostgreSQL server at host "
                f"{self._host} port {self._port}: {_describe(exc, self._password)}"
            ) from None
        try:
            commit = "off" if self._durability == "none" else "on"
            conn.execute(
                f"SET synchronous_commit = {commit}; SET idle_in_transaction_session_timeout"
                f" = {IDLE_IN_TRANSACTION_TIMEOUT * 1000}"
            )
            if self._readonly:
                conn.execute("SET default_transaction_read_only = on")
        except psycopg.Error as exc:
            self._drop(conn)
            raise LogOpenError(
                f"{self._location}: cannot set up the connection: {_describe(exc, self._password)}"
            ) from None
        return conn

    def _connection(self) -> Connection:
        """The log's connection, connected again when it was lost; call holding _db_lock."""
        if self._closed:
            raise LogError(f"{self._location}: the log is closed")
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                self._drop(conn)
            conn = self._conn = self._connect()
        return conn

    def _drop(self, conn: Connection) -> None:
        if conn is self._conn:
            self._conn = None
        with contextlib.suppress(psycopg.Error):
            conn.close()

    def _query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a reading statement, once more on a new connection when the first is lost."""
        with self._db_lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    with conn.cursor(binary=True) as cur:
                        cur.execute(statement, params)
                        return cur.fetchall()
                except psycopg.OperationalError as exc:
                    self._drop(conn)
                    if attempt == 2:
                        raise LogError(
                            f"{self._location}: lost the connection to the server "
                            f"({_describe(exc, self._password)})"
                        ) from None
                except psycopg.Error as exc:
                    raise LogError(f"{self._location}: {_describe(exc, self._password)}") from None
        raise AssertionError("unreachable")  # pragma: no cover - attempt 2 returns or raises

    def _prepare(self, conn: Connection) -> None:
        """Create the tables (a new log) or check their version (an existing one)."""
        sql = self._sql
        try:
            with conn.transaction():
                exists = conn.execute("SELECT to_regclass(%s)", (sql.regclass,)).fetchone()
                if exists is None or exists[0] is None:
                    if self._readonly:
                        raise LogOpenError(
                            f"{self._location}: no pipelines-events log in schema "
                            f"{self._schema!r} (nothing was ever written there)"
                        )
                    key = int.from_bytes(hashlib.sha256(self._schema.encode()).digest()[:8])
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (key - (1 << 63),))
                    exists = conn.execute("SELECT to_regclass(%s)", (sql.regclass,)).fetchone()
                    if exists is None or exists[0] is None:
                        self._create(conn)
                row = conn.execute(sql.version).fetchone()
        except LogOpenError:
            raise
        except psycopg.Error as exc:
            raise LogOpenError(
                f"{self._location}: cannot open the log in schema {self._schema!r}: "
                f"{_describe(exc, self._password)}"
            ) from None
        version = None if row is None else row[0]
        if version is None:
            raise LogOpenError(
                f"{self._location}: the table {sql.schema_version} is empty: this schema "
                "was not written by pipelines-events, or its creation was interrupted"
            )
        if version > DB_SCHEMA_VERSION:
            raise LogOpenError(
                f"{self._location}: the log in schema {self._schema!r} was written with "
                f"database schema version {version}; this pipelines-events knows versions "
                f"up to {DB_SCHEMA_VERSION}: upgrade pipelines-events to use this log"
            )

    def _create(self, conn: Connection) -> None:
        schema = self._schema
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if found is None:
            conn.execute(f"CREATE SCHEMA {_quote(schema)}")
        for statement in self._sql.create:
            conn.execute(statement)
        conn.execute(self._sql.set_version, (DB_SCHEMA_VERSION, "pipelines-events"))

    # -- identity --------------------------------------------------------------------------

    @property
    def location(self) -> str:
        return self._location

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def durability(self) -> Durability:
        return self._durability

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @property
    def snapshots(self) -> SnapshotStore:
        return self._snapshots

    @property
    def schema(self) -> str:
        """The database schema that holds the log's tables."""
        return self._schema

    @property
    def channel(self) -> str:
        """The ``LISTEN`` channel every append notifies (the payload is the new head seq)."""
        return self._channel

    @property
    def max_event_bytes(self) -> int:
        """The largest encoded event the log accepts."""
        return self._max_event_bytes

    if TYPE_CHECKING:  # defined by the parts of PostgresEventLog built on this class

        def _head(self) -> tuple[int, str, int]: ...
        def _rollback(self, conn: Connection) -> None: ...
        def _drop_listener(self) -> None: ...
        def _check_usable(self) -> None: ...


_OPEN_LOGS: weakref.WeakSet[_PostgresBase] = weakref.WeakSet()
_INHERITED: list[object] = []
"""Connections a forked child inherited: kept referenced so that they are never closed
in the child (closing would end the parent's session on the shared socket)."""
