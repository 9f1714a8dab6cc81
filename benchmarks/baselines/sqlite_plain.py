"""Baseline: plain :mod:`sqlite3`, one table per kind, one ``UPDATE`` and commit per change.

Durable mode is ``PRAGMA synchronous=FULL`` (an fsync per commit), unsynced mode
``synchronous=OFF``; the journal is ``WAL`` unless ``journal_mode`` says otherwise.
The connection is in autocommit mode, so each ``UPDATE`` is its own transaction;
:meth:`SqlitePlainBaseline.build` inserts a whole run in one transaction.
"""

from __future__ import annotations

import json
import pathlib
import sqlite3
from datetime import datetime
from typing import Any, Final

from benchmarks.baselines import (
    DATETIME_FIELDS,
    JSON_FIELDS,
    KIND_FIELDS,
    KINDS,
    BuiltRun,
    StatusChange,
    drive_pipeline,
    fields_of,
    plan_run,
)

JOURNAL_MODES: Final = frozenset({"WAL", "DELETE", "TRUNCATE", "PERSIST"})
_PARENT: Final = {
    kind: fields[0] for kind, fields in KIND_FIELDS.items() if fields[0].endswith("_id")
}


def _to_sql(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field in JSON_FIELDS:
        return json.dumps(value)
    if field in DATETIME_FIELDS and isinstance(value, datetime):
        return value.isoformat()
    return value


def _from_sql(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field in JSON_FIELDS:
        return json.loads(value)
    if field in DATETIME_FIELDS:
        return datetime.fromisoformat(value)
    return value


class SqlitePlainBaseline:
    """The four kinds as four SQLite tables written with plain :mod:`sqlite3`."""

    name = "sqlite-plain"

    def __init__(
        self, directory: pathlib.Path, durable: bool, *, journal_mode: str = "WAL"
    ) -> None:
        if journal_mode.upper() not in JOURNAL_MODES:
            raise ValueError(f"journal_mode {journal_mode!r} is not one of {sorted(JOURNAL_MODES)}")
        self.durable = durable
        self.journal_mode = journal_mode.upper()
        self.path = pathlib.Path(directory) / "sqlite-plain.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(self.path, isolation_level=None)
        self.connection.execute(f"PRAGMA journal_mode={self.journal_mode}")
        self.connection.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        self._insert: dict[str, str] = {}
        self._status: dict[str, dict[tuple[str, ...], str]] = {kind: {} for kind in KINDS}
        self._create_tables()

    def _create_tables(self) -> None:
        statements = []
        for kind in KINDS:
            columns = ", ".join(
                f"{name} TEXT PRIMARY KEY" if name == "id" else f"{name} TEXT"
                for name in fields_of(kind)
            )
            statements.append(f"CREATE TABLE IF NOT EXISTS {kind} ({columns})")
            statements.append(f"CREATE INDEX IF NOT EXISTS {kind}_run_id ON {kind} (run_id)")
            if kind in _PARENT:
                parent = _PARENT[kind]
                statements.append(
                    f"CREATE INDEX IF NOT EXISTS {kind}_{parent} ON {kind} ({parent})"
                )
            names = fields_of(kind)
            self._insert[kind] = (
                f"INSERT INTO {kind} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            )
        self.connection.execute("BEGIN")
        for statement in statements:
            self.connection.execute(statement)
        self.connection.execute("COMMIT")

    def build(
        self, run_id: str, n_pipeline_results: int, tasks: list[str], n_task_results: int
    ) -> BuiltRun:
        """Insert every object of one run in one transaction."""
        plan = plan_run(run_id, n_pipeline_results, tasks, n_task_results)
        connection = self.connection
        connection.execute("BEGIN")
        try:
            for kind in KINDS:
                names = fields_of(kind)
                connection.executemany(
                    self._insert[kind],
                    ([_to_sql(name, row[name]) for name in names] for row in plan.rows[kind]),
                )
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return plan.built()

    def status_change(self, kind: str, object_id: str, status: str) -> None:
        """One ``UPDATE`` of status, message and started or completed; autocommitted."""
        written = StatusChange.make(kind, status).fields()
        names = tuple(written)
        statement = self._status[kind].get(names)
        if statement is None:
            assignments = ", ".join(f"{name} = ?" for name in names)
            statement = self._status[kind][names] = f"UPDATE {kind} SET {assignments} WHERE id = ?"
        cursor = self.connection.execute(
            statement, [*(_to_sql(name, written[name]) for name in names), object_id]
        )
        if cursor.rowcount != 1:
            raise KeyError(f"no {kind} with id {object_id!r}")

    def set_field(self, kind: str, object_id: str, field: str, value: object) -> None:
        """One ``UPDATE`` of one column; autocommitted."""
        if field == "id" or field not in fields_of(kind):
            raise ValueError(f"{kind} has no settable field {field!r}")
        cursor = self.connection.execute(
            f"UPDATE {kind} SET {field} = ? WHERE id = ?", (_to_sql(field, value), object_id)
        )
        if cursor.rowcount != 1:
            raise KeyError(f"no {kind} with id {object_id!r}")

    def run_pipeline(self, run_id: str, n_task_results: int) -> None:
        """See :func:`benchmarks.baselines.drive_pipeline`."""
        drive_pipeline(self, run_id, n_task_results)

    def get(self, kind: str, object_id: str) -> dict[str, Any]:
        """One object's stored columns, decoded (for checks, not timed)."""
        if kind not in KIND_FIELDS:
            raise ValueError(f"unknown kind {kind!r}")
        names = fields_of(kind)
        row = self.connection.execute(
            f"SELECT {', '.join(names)} FROM {kind} WHERE id = ?", (object_id,)
        ).fetchone()
        if row is None:
            raise KeyError(f"no {kind} with id {object_id!r}")
        return {name: _from_sql(name, value) for name, value in zip(names, row, strict=True)}

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()
