"""The PostgreSQL log's names and statements: its constants, URL handling, the SQL of one
schema, and turning a row or an error into what the log reports.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from typing import Any, Final

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the PostgreSQL log needs psycopg 3: pip install 'pipelines-events[postgres]'"
    ) from exc

from pipelines_events.events import (
    GENESIS_HASH,
)
from projections.runs import RunState

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

    # Long on purpose: the engine's SQL statements, one assignment each, for one schema.
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
