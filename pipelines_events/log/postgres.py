"""The PostgreSQL engine: the log as rows of a table, for logs shared by several hosts.

One row per event (``seq``, run id, kind, object id, the encoded line and its hash), a
one-row head (``seq``, hash), a run summary table kept in the append's transaction, and
a snapshot table. An append locks the head row, catches up, chains, inserts and commits
in one transaction, so seq order is commit order without gaps. Commits notify
listeners (``LISTEN``/``NOTIFY``). See ``docs/howto/postgres.rst``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
import urllib.parse
import weakref
from collections.abc import Iterator, Sequence
from typing import Any, Final

import msgspec

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the PostgreSQL log needs psycopg 3: pip install 'pipelines-events[postgres]'"
    ) from exc

from pipelines_events.errors import (
    LogCorruptError,
    LogError,
    LogOpenError,
    LogWriteError,
    SnapshotError,
)
from pipelines_events.events import (
    GENESIS_HASH,
    SCHEMA_VERSION,
    SCHEMA_VERSIONS,
    START,
    AnyEvent,
)
from pipelines_events.log.base import (
    DEFAULT_MAX_EVENT_BYTES,
    DURABILITY_MODES,
    Batch,
    CaughtUp,
    Cursor,
    Durability,
    EventLog,
    RunSummary,
    SnapshotStore,
    Written,
    checked_cursor,
)
from pipelines_events.log.chain import (
    HASH_HEAD,
    HASH_SUFFIX_LEN,
    check_drafts,
    decode_event,
    event_hash,
    seal_batch,
)
from projections.runs import RunsProjection, RunState

DB_SCHEMA_VERSION: Final = 1
"""Version of the tables this engine writes; a database of a newer version is refused."""

DEFAULT_SCHEMA: Final = "pipelines_events"
SNAPSHOT_SLACK_BYTES: Final = 1 << 20
"""Bytes a snapshot may hold beyond twice the log's bytes (as for snapshot files)."""

IDLE_IN_TRANSACTION_TIMEOUT: Final = 30
"""Seconds after which the server ends a session of this engine idle inside a transaction
(a client lost mid-append), releasing the head row for the other writers."""

_PAGE: Final = 5000
"""Rows fetched per query when reading."""
_SNAPSHOT_NAME: Final = "storage"

Connection = psycopg.Connection[tuple[Any, ...]]


def redact(url: str) -> str:
    """``url`` without its password (in the authority or a ``password`` parameter)."""
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#]*)(.*)$", url, re.DOTALL)
    if match is None:
        # A keyword/value string ("host=... password=..."): drop the password pair.
        return re.sub(r"password\s*=\s*('(\\.|[^'])*'|\S+)\s*", "", url).strip()
    scheme, authority, rest = match.groups()
    if "@" in authority:
        userinfo, hosts = authority.rsplit("@", 1)
        authority = userinfo.split(":", 1)[0] + "@" + hosts
    rest = re.sub(r"([?&])password=[^&#]*&?", r"\1", rest).rstrip("?&")
    return scheme + authority + rest


def split_schema(url: str) -> tuple[str, str | None]:
    """``url`` without its ``schema`` query parameter, and that parameter's value (None
    when the URL has none). libpq does not know the parameter: it is the engine's."""
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^?#]*)\?([^#]*)(.*)$", url, re.DOTALL)
    if match is None:
        return url, None
    base, query, fragment = match.groups()
    schema = None
    kept = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "schema":
            schema = urllib.parse.unquote(value)
        elif pair:
            kept.append(pair)
    return base + ("?" + "&".join(kept) if kept else "") + fragment, schema


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Sql:
    """The engine's statements for one schema."""

    def __init__(self, schema: str) -> None:
        s = _quote(schema)
        self.schema_version = f"{s}.schema_version"
        self.regclass = f"{s}.{_quote('schema_version')}"
        self.create = [
            f"CREATE TABLE {s}.schema_version (version integer NOT NULL, "
            "written_by text NOT NULL, created timestamptz NOT NULL DEFAULT now())",
            f"CREATE TABLE {s}.events (seq bigint PRIMARY KEY, run_id text NOT NULL, "
            "kind text NOT NULL, object_id text NOT NULL, more integer NOT NULL, "
            "hash text NOT NULL, line bytea NOT NULL)",
            f"CREATE INDEX events_run_seq ON {s}.events (run_id, seq)",
            f"CREATE INDEX events_object_id ON {s}.events (object_id)",
            f"CREATE TABLE {s}.head (one boolean PRIMARY KEY DEFAULT true CHECK (one), "
            "seq bigint NOT NULL, hash text NOT NULL, bytes bigint NOT NULL)",
            f"INSERT INTO {s}.head (seq, hash, bytes) VALUES (0, '{GENESIS_HASH}', 0)",
            f"CREATE TABLE {s}.runs (run_id text PRIMARY KEY, execution_id text NOT NULL, "
            "pipeline_id text NOT NULL, status text NOT NULL, started text, completed text, "
            "counts jsonb NOT NULL, first_seq bigint NOT NULL, last_seq bigint NOT NULL, "
            "removed boolean NOT NULL)",
            f"CREATE INDEX runs_first_seq ON {s}.runs (first_seq)",
            f"CREATE TABLE {s}.snapshots (name text PRIMARY KEY, data bytea NOT NULL, "
            "saved timestamptz NOT NULL DEFAULT now())",
        ]
        self.version = f"SELECT max(version) FROM {s}.schema_version"
        self.set_version = f"INSERT INTO {s}.schema_version (version, written_by) VALUES (%s, %s)"
        self.head = f"SELECT seq, hash, bytes FROM {s}.head"
        self.lock_head = f"SELECT seq, hash, bytes FROM {s}.head FOR UPDATE"
        self.read = (
            f"SELECT seq, more, hash, line FROM {s}.events WHERE seq > %s ORDER BY seq LIMIT %s"
        )
        self.hash_at = f"SELECT hash FROM {s}.events WHERE seq = %s"
        self.runs_of = (
            "SELECT run_id, execution_id, pipeline_id, status, started, completed, counts, "
            f"first_seq, last_seq, removed FROM {s}.runs WHERE run_id = ANY(%s)"
        )
        self.all_runs = (
            "SELECT run_id, execution_id, pipeline_id, status, started, completed, counts, "
            f"first_seq, last_seq, removed FROM {s}.runs ORDER BY first_seq"
        )
        self.run_events = f"SELECT seq, line FROM {s}.events WHERE run_id = %s ORDER BY seq"
        self.run_of = (
            f"SELECT run_id FROM {s}.events WHERE object_id = %s ORDER BY seq DESC LIMIT 1"
        )
        self.write = (
            f"WITH e AS (INSERT INTO {s}.events (seq, run_id, kind, object_id, more, hash, line) "
            "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], "
            "%s::integer[], %s::text[], %s::bytea[])), "
            f"h AS (UPDATE {s}.head SET seq = %s, hash = %s, bytes = bytes + %s), "
            f"r AS (INSERT INTO {s}.runs (run_id, execution_id, pipeline_id, status, started, "
            "completed, counts, first_seq, last_seq, removed) "
            "SELECT run_id, execution_id, pipeline_id, status, started, completed, "
            "counts::jsonb, first_seq, last_seq, removed FROM unnest(%s::text[], %s::text[], "
            "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], "
            "%s::bigint[], %s::boolean[]) AS t(run_id, execution_id, pipeline_id, status, "
            "started, completed, counts, first_seq, last_seq, removed) "
            "ON CONFLICT (run_id) DO UPDATE SET execution_id = EXCLUDED.execution_id, "
            "pipeline_id = EXCLUDED.pipeline_id, status = EXCLUDED.status, "
            "started = EXCLUDED.started, completed = EXCLUDED.completed, "
            "counts = EXCLUDED.counts, first_seq = EXCLUDED.first_seq, "
            "last_seq = EXCLUDED.last_seq, removed = EXCLUDED.removed) "
            "SELECT pg_notify(%s, %s)"
        )
        self.load_snapshot = f"SELECT data FROM {s}.snapshots WHERE name = %s"
        self.save_snapshot = (
            f"INSERT INTO {s}.snapshots (name, data) VALUES (%s, %s) ON CONFLICT (name) "
            "DO UPDATE SET data = EXCLUDED.data, saved = now()"
        )


def _channel(schema: str) -> str:
    """The NOTIFY channel of the log in ``schema`` (at most 63 bytes, as identifiers)."""
    name = f"{schema}.appended"
    if len(name.encode()) <= 63:
        return name
    return "pipelines_events." + hashlib.sha256(schema.encode()).hexdigest()[:32]


def _state(row: tuple[Any, ...]) -> RunState:
    state = RunState(row[0], row[7])
    state.execution_id = row[1]
    state.pipeline_id = row[2]
    state.status = row[3]
    state.started = row[4]
    state.completed = row[5]
    state.counts = dict(row[6])
    state.last_seq = row[8]
    state.removed = row[9]
    return state


def _describe(exc: BaseException, password: str | None) -> str:
    """A driver error as one line, never showing ``password``."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if password:
        text = text.replace(password, "***")
    return text


class PostgresEventLog(EventLog):
    """An event log in PostgreSQL tables (in the database schema ``schema``).

    ``url`` is a ``postgresql://`` URL (or a libpq keyword string); ``durability``
    ``"fsync"`` commits with ``synchronous_commit`` on, ``"none"`` turns it off for the
    session; ``readonly`` never writes (not even the tables); ``connect_timeout`` is in
    seconds; other keywords go to :func:`psycopg.connect`.
    """

    supports_run_index = True

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

    # -- cursors ---------------------------------------------------------------------------

    @property
    def position(self) -> Cursor:
        return self._position

    def _head(self) -> tuple[int, str, int]:
        rows = self._query(self._sql.head)
        if not rows:
            raise LogCorruptError(self._location, 0, "the head table is empty")
        seq, digest, size = rows[0]
        return int(seq), str(digest), int(size)

    def head(self) -> Cursor:
        seq, digest, _ = self._head()
        return Cursor(0, seq, digest)

    def _checked(self, cursor: Cursor) -> Cursor:
        checked_cursor(self._location, cursor)
        if cursor.seq == 0 and cursor.hash == GENESIS_HASH:
            return START
        rows = self._query(self._sql.hash_at, (cursor.seq,))
        if not rows:
            raise LogError(
                f"{self._location}: the log has no event seq {cursor.seq} "
                f"(its head is seq {self._head()[0]})"
            )
        if rows[0][0] != cursor.hash:
            raise LogError(
                f"{self._location}: the event seq {cursor.seq} has hash {rows[0][0][:12]}..., "
                f"not {cursor.hash[:12]}...: the cursor is not of this log"
            )
        return Cursor(0, cursor.seq, cursor.hash)

    def seek(self, cursor: Cursor) -> None:
        checked = self._checked(cursor)
        with self._lock:
            self._position = checked

    def seek_before(self, seq: int) -> None:
        """Go back to just before the event ``seq`` (at or before the position)."""
        with self._lock:
            if not 0 < seq <= self._position.seq:
                raise LogError(
                    f"{self._location}: cannot go back to seq {seq}: the position is after "
                    f"seq {self._position.seq}"
                )
            self._position = self.cursor_at(seq - 1)

    def cursor_at(self, seq: int) -> Cursor:
        if type(seq) is not int or seq < 0:
            raise LogError(f"{self._location}: a seq is an int of at least 0, not {seq!r}")
        if seq == 0:
            return START
        rows = self._query(self._sql.hash_at, (seq,))
        if not rows:
            raise LogError(
                f"{self._location}: the log has no event seq {seq} "
                f"(its head is seq {self._head()[0]})"
            )
        return Cursor(0, seq, rows[0][0])

    # -- reading ---------------------------------------------------------------------------

    def has_new(self) -> bool:
        return self._head()[0] != self._position.seq

    def _pages(self, after: Cursor, limit: int | None) -> Iterator[list[AnyEvent]]:
        """Verified events after ``after``, a page at a time (a page may end mid-batch)."""
        seq, prev = after.seq, after.hash
        first = True
        while True:
            size = _PAGE if limit is None else max(1, min(_PAGE, limit + 1))
            rows = self._query(self._sql.read, (seq, size))
            if not rows:
                if first and seq > 0:
                    self._checked(after)  # a cursor past the head, or of another log
                return
            try:
                events = _verify(rows, seq, prev, self._location)
            except LogCorruptError as exc:
                if first and exc.line == seq + 1:
                    self._checked(after)  # blame the cursor when it is the cursor's fault
                raise
            first = False
            seq, prev = events[-1].seq, events[-1].hash
            yield events
            if len(rows) < size:
                return

    def _batches(
        self, after: Cursor, limit: int | None = None, *, group: bool = False
    ) -> Iterator[tuple[list[AnyEvent], Cursor]]:
        pending: list[AnyEvent] = []
        yielded = 0
        for page in self._pages(after, limit):
            done: list[AnyEvent] = []
            done_cursor: Cursor | None = None
            for event in page:
                pending.append(event)
                if event.more:
                    continue
                if limit is not None and yielded and yielded + len(pending) > limit:
                    if done_cursor is not None:
                        yield done, done_cursor
                    return
                yielded += len(pending)
                cursor = Cursor(0, event.seq, event.hash)
                if group:
                    done.extend(pending)
                    done_cursor = cursor
                else:
                    yield pending, cursor
                pending = []
                if limit is not None and yielded >= limit:
                    if done_cursor is not None:
                        yield done, done_cursor
                    return
            if done_cursor is not None:
                yield done, done_cursor

    def read(self, after: Cursor, *, limit: int | None = None) -> Iterator[Batch]:
        self._check_usable()
        if limit is not None and (type(limit) is not int or limit < 1):
            raise LogError(f"{self._location}: limit must be an int of at least 1, not {limit!r}")
        after = self._checked(after)  # at the call, not at the first next()
        return (
            Batch(events=events, cursor=cursor) for events, cursor in self._batches(after, limit)
        )

    def stored_bytes(self) -> int | None:
        """Bytes of the events' lines with a newline each: the size of the same log as a file."""
        return self._head()[2]

    def read_batches(self) -> Iterator[list[AnyEvent]]:
        return self._read(group=False)

    def read_groups(self) -> Iterator[list[AnyEvent]]:
        return self._read(group=True)

    def _read(self, *, group: bool) -> Iterator[list[AnyEvent]]:
        """Hand over what follows the position once, whichever thread asks."""
        self._check_usable()
        lock = self._lock
        while True:
            with lock:
                start = self._position
            moved = False
            for events, cursor in self._batches(start, group=group):
                with lock:
                    if self._position is not start:
                        moved = True
                        break
                    self._position = cursor
                start = cursor
                yield events
            if not moved:
                return

    def wait(self, after: Cursor, timeout: float) -> bool:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
            raise LogError(
                f"{self._location}: timeout must be a number of seconds >= 0, not {timeout!r}"
            )
        after = self._checked(after)  # a cursor of this log, at the call
        deadline = time.monotonic() + max(0.0, timeout)
        listener = self._listening()
        while True:
            if self._head()[0] > after.seq:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if listener is None or not self._listen_lock.acquire(blocking=False):
                time.sleep(min(remaining, 0.05))
                continue
            try:
                for _ in listener.notifies(timeout=min(remaining, 1.0), stop_after=1):
                    break
            except psycopg.Error:
                self._drop_listener()
                listener = None
            finally:
                self._listen_lock.release()

    def _listening(self) -> Connection | None:
        """The connection that LISTENs to the log's channel, or None (then wait polls)."""
        self._check_usable()
        with self._listen_lock:
            listener = self._listener
            if listener is not None and not listener.closed and not listener.broken:
                return listener
            if listener is not None:
                self._drop_listener()
            try:
                listener = self._connect()
                listener.execute(f"LISTEN {_quote(self._channel)}")
            except (LogError, psycopg.Error):
                return None
            self._listener = listener
            return listener

    def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(psycopg.Error):
                listener.close()

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        drafts: Sequence[AnyEvent],
        *,
        on_caught_up: CaughtUp | None = None,
        on_written: Written | None = None,
    ) -> list[AnyEvent]:
        with self._lock:
            self._check_usable()
            if self._readonly:
                raise LogError(f"{self._location}: the log was opened read-only")
            if not drafts:
                return list(self.read_new())
            check_drafts(self._location, drafts)  # before the run ids are read from them
            start = self._position
            handed_over: list[bool] = []
            try:
                with self._db_lock:
                    result = self._append(drafts, on_caught_up, handed_over)
            except _HandedOver as over:
                raise over.error from None
            except BaseException:
                if not handed_over:
                    # What was caught up never reached the caller: it is read again.
                    self._position = start
                raise
            if result is None:
                return []
            caught, written = result
            if on_written is not None:
                on_written(written)
            if caught:
                caught.extend(written)
                return caught
            return written

    def _append(
        self, drafts: Sequence[AnyEvent], on_caught_up: CaughtUp | None, handed_over: list[bool]
    ) -> tuple[list[AnyEvent], list[AnyEvent]] | None:
        """The append's transaction; None when ``on_caught_up`` refused. Holding the locks;
        ``handed_over`` gets an item once the caught-up events reached ``on_caught_up``."""
        sql = self._sql
        caught: list[AnyEvent] = []
        run_ids = sorted({draft.run_id for draft in drafts})
        for attempt in (1, 2):
            try:
                conn = self._connection()
            except LogOpenError as exc:
                raise LogWriteError(f"{exc}; nothing of the batch was written") from None
            cur = conn.cursor(binary=True)
            runs_cur = conn.cursor()
            new_cur = conn.cursor(binary=True)
            after = self._position.seq
            try:
                # One round trip: lock the head, then (statements later, so seeing what
                # the previous holder of the lock committed) the summaries of the runs and
                # what other writers appended.
                with conn.pipeline():
                    cur.execute("BEGIN")
                    cur.execute(sql.lock_head)
                    runs_cur.execute(sql.runs_of, (run_ids,))
                    new_cur.execute(sql.read, (after, _PAGE))
                row = cur.fetchone()
                new_rows = new_cur.fetchall()
                break
            except psycopg.OperationalError as exc:
                # The idle connection was lost (a restart, an idle timeout): nothing was
                # done yet, so connect again once.
                self._drop(conn)
                if attempt == 2:
                    raise LogWriteError(
                        f"{self._location}: the append failed ({_describe(exc, self._password)})"
                        "; nothing of the batch was written"
                    ) from None
            except psycopg.Error as exc:
                self._rollback(conn)
                raise LogWriteError(
                    f"{self._location}: the append failed ({_describe(exc, self._password)}); "
                    "nothing of the batch was written"
                ) from None
        try:
            if row is None:
                raise LogCorruptError(self._location, 0, "the head table is empty")
            head_seq, head_hash, _ = row
            position = self._position
            if head_seq != position.seq or head_hash != position.hash:
                caught = self._catch_up(cur, position, head_seq, new_rows)
                self._position = position = Cursor(0, head_seq, head_hash)
            if on_caught_up is not None:
                handed_over.append(True)
                try:
                    keep = on_caught_up(caught)
                except BaseException as exc:
                    raise _HandedOver(exc) from exc
                if not keep:
                    self._rollback(conn)
                    return None
                caught = []
            events, params, size = self._seal(drafts, position)
            runs = RunsProjection()
            runs.restore(_state(state_row) for state_row in runs_cur.fetchall())
            changed = [runs.get(run_id) for run_id in sorted(runs.apply_all(events))]
            summaries = [state for state in changed if state is not None]
            last = events[-1]
            values = (
                *params,
                last.seq,
                last.hash,
                size,
                [s.run_id for s in summaries],
                [s.execution_id for s in summaries],
                [s.pipeline_id for s in summaries],
                [s.status for s in summaries],
                [s.started for s in summaries],
                [s.completed for s in summaries],
                [json.dumps(s.counts, sort_keys=True) for s in summaries],
                [s.first_seq for s in summaries],
                [s.last_seq for s in summaries],
                [s.removed for s in summaries],
                self._channel,
                str(last.seq),
            )
        except (LogError, _HandedOver):
            self._rollback(conn)
            raise
        except psycopg.Error as exc:
            self._rollback(conn)
            raise LogWriteError(
                f"{self._location}: the append failed ({_describe(exc, self._password)}); "
                "nothing of the batch was written"
            ) from None
        except BaseException:
            self._rollback(conn)
            raise
        try:
            # One round trip: the rows, the head, the summaries, the notification; COMMIT.
            with conn.pipeline():
                cur.execute(sql.write, values, binary=False)
                cur.execute("COMMIT")
        except psycopg.Error as exc:
            if not (conn.closed or conn.broken):
                # The server refused a statement: the transaction is aborted.
                self._rollback(conn)
                raise LogWriteError(
                    f"{self._location}: the append failed ({_describe(exc, self._password)}); "
                    "nothing of the batch was written"
                ) from None
            self._drop(conn)
            if not self._committed(events[0], events[-1], exc):
                raise LogWriteError(
                    f"{self._location}: the connection failed while the batch was committing "
                    f"({_describe(exc, self._password)}); the log was checked: nothing of the "
                    "batch was written"
                ) from None
        self._position = Cursor(0, events[-1].seq, events[-1].hash)
        return caught, events

    def _seal(
        self, drafts: Sequence[AnyEvent], position: Cursor
    ) -> tuple[list[AnyEvent], tuple[list[Any], ...], int]:
        """The batch's events chained after ``position``, their rows' columns, their bytes."""
        events, sealed = seal_batch(
            self._location,
            drafts,
            seq=position.seq,
            prev_hash=position.hash,
            max_event_bytes=self._max_event_bytes,
        )
        seqs = [event.seq for event in events]
        run_ids = [event.run_id for event in events]
        kinds = [event.kind for event in events]
        ids = [event.id for event in events]
        mores = [event.more for event in events]
        hashes = [event.hash for event in events]
        lines = [line[:-1] for line in sealed]
        size = sum(len(line) for line in sealed)
        return events, (seqs, run_ids, kinds, ids, mores, hashes, lines), size

    def _catch_up(
        self,
        cur: psycopg.Cursor[tuple[Any, ...]],
        after: Cursor,
        head: int,
        first: list[tuple[Any, ...]] | None = None,
    ) -> list[AnyEvent]:
        """The events after ``after`` up to ``head``, verified; inside the transaction.
        ``first`` holds the rows of the first page when they were read already."""
        if head < after.seq:
            raise LogError(
                f"{self._location}: the log's head is seq {head}, before this handle's "
                f"position (seq {after.seq}): the tables were replaced or restored while the "
                "log was open; open it again"
            )
        caught: list[AnyEvent] = []
        seq, prev = after.seq, after.hash
        while seq < head:
            if first is not None:
                rows, first = first, None
            else:
                cur.execute(self._sql.read, (seq, min(_PAGE, head - seq)))
                rows = cur.fetchall()
            if not rows:
                break
            try:
                events = _verify(rows, seq, prev, self._location)
            except LogCorruptError as exc:
                if exc.line == after.seq + 1:
                    raise LogError(
                        f"{self._location}: this handle's position (seq {after.seq}) is no "
                        "longer in the log: the tables were replaced while it was open; "
                        "open it again"
                    ) from None
                raise
            caught.extend(events)
            seq, prev = events[-1].seq, events[-1].hash
        if seq != head:
            raise LogCorruptError(
                self._location, seq + 1, f"the head is seq {head} but the events end at seq {seq}"
            )
        return caught

    def _rollback(self, conn: Connection) -> None:
        try:
            if conn.closed or conn.broken:
                self._drop(conn)
            else:
                conn.execute("ROLLBACK")
        except psycopg.Error:
            self._drop(conn)

    def _committed(self, first: AnyEvent, last: AnyEvent, error: BaseException) -> bool:
        """Whether the batch ``first``..``last`` is in the log, after its COMMIT failed.

        Waits for the head lock (held by the batch's transaction until it ends: at most
        :data:`IDLE_IN_TRANSACTION_TIMEOUT` once its client is gone), then looks for the
        batch's events; raises LogError when the server cannot be asked.
        """
        deadline = time.monotonic() + max(self._connect_timeout, 1.0)
        problem = _describe(error, self._password)
        while True:
            try:
                conn = self._connect()
            except LogOpenError as exc:
                problem = str(exc)
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
                continue
            try:
                with conn.transaction():
                    wait_ms = (IDLE_IN_TRANSACTION_TIMEOUT + 5) * 1000
                    conn.execute(f"SET LOCAL lock_timeout = {wait_ms}")
                    conn.execute(self._sql.head + " FOR UPDATE")
                    row = conn.execute(self._sql.hash_at, (first.seq,)).fetchone()
                    end = conn.execute(self._sql.hash_at, (last.seq,)).fetchone()
                self._conn = conn
                return row is not None and row[0] == first.hash and end is not None
            except psycopg.Error as exc:
                problem = _describe(exc, self._password)
                with contextlib.suppress(psycopg.Error):
                    conn.close()
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
        raise LogError(
            f"{self._location}: the connection failed while the batch of seq {first.seq} to "
            f"{last.seq} was committing, and the server could not be asked whether it was "
            f"written ({problem}); it is in the log if seq {first.seq} has hash "
            f"{first.hash}"
        )

    def commit(self) -> None:
        """Every append commits its transaction; with ``fsync`` it is durable already."""
        self._check_usable()

    def close(self) -> None:
        with self._lock, self._db_lock:
            if self._closed:
                return
            self._closed = True
            if self._conn is not None:
                self._drop(self._conn)
            with self._listen_lock:
                self._drop_listener()
            _OPEN_LOGS.discard(self)

    def __enter__(self) -> PostgresEventLog:
        return self

    def _check_usable(self) -> None:
        if self._closed:
            raise LogError(f"{self._location}: the log is closed")

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


class _HandedOver(Exception):
    """Carries an error raised by ``on_caught_up`` (the catch-up was handed over)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class PostgresSnapshotStore(SnapshotStore):
    """The storage's snapshot as a row of the log's ``snapshots`` table."""

    def __init__(self, log: PostgresEventLog) -> None:
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


def _decode(line: bytes, seq: int, name: str) -> AnyEvent:
    try:
        return decode_event(line)
    except msgspec.ValidationError as exc:
        raise LogCorruptError(name, seq, f"not a valid event: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise LogCorruptError(name, seq, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise LogCorruptError(name, seq, "a value nests too deeply to decode") from None


def _verify(rows: list[tuple[Any, ...]], seq: int, prev: str, name: str) -> list[AnyEvent]:
    """Decode and verify rows ``(seq, more, hash, line)`` that follow ``seq``/``prev``."""
    events: list[AnyEvent] = []
    cut = -HASH_SUFFIX_LEN
    head_end = cut + len(HASH_HEAD)
    version = -1  # the schema version of the last row (-1: none yet)
    for row_seq, more, digest_column, raw in rows:
        seq += 1
        line = bytes(raw)
        if row_seq != seq:
            raise LogCorruptError(
                name, seq, f"expected seq {seq}, found seq {row_seq} (an event is missing)"
            )
        event = _decode(line, seq, name)
        if line[cut:head_end] != HASH_HEAD or not line.endswith(b'"}'):
            raise LogCorruptError(name, seq, 'the line does not end with its "hash" member')
        if event.v not in SCHEMA_VERSIONS or event.v < version:
            if event.v > SCHEMA_VERSION:
                raise LogCorruptError(
                    name,
                    seq,
                    f"written with schema version {event.v}; this pipelines-events reads "
                    f"versions up to {SCHEMA_VERSION}: upgrade pipelines-events to read this log",
                )
            if event.v in SCHEMA_VERSIONS:
                raise LogCorruptError(
                    name,
                    seq,
                    f"a schema version {event.v} event after version {version} events: a log "
                    "only ever steps up from version 1 to 2",
                )
            raise LogCorruptError(
                name, seq, f"schema version {event.v} is not a version ever written"
            )
        version = event.v
        digest = event_hash(event, line, prev)
        if event.seq != seq:
            raise LogCorruptError(
                name, seq, f"the line says seq {event.seq}, but its row is seq {seq}"
            )
        if event.hash != digest:
            raise LogCorruptError(
                name,
                seq,
                f"hash link broken: the line does not chain to the previous event's hash "
                f"{prev[:12]}... (the line, or one before it, was edited)",
            )
        if digest_column != digest or more != event.more:
            raise LogCorruptError(
                name, seq, "the row's hash or more column does not match its line"
            )
        if events and events[-1].more and events[-1].more != event.more + 1:
            raise LogCorruptError(
                name,
                seq,
                f"the batch expected {events[-1].more - 1} more events here, found "
                f"{event.more} (a batch was cut or spliced)",
            )
        prev = digest
        events.append(event)
    return events


_OPEN_LOGS: weakref.WeakSet[PostgresEventLog] = weakref.WeakSet()
_INHERITED: list[object] = []
"""Connections a forked child inherited: kept referenced so that they are never closed
in the child (closing would end the parent's session on the shared socket)."""


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
