"""The PostgreSQL log on a real server (started by the tests, see postgres_server.py)."""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pipelines_events.errors import (
    EventTooLargeError,
    LogCorruptError,
    LogError,
    LogOpenError,
    LogWriteError,
    SnapshotError,
)
from pipelines_events.events import (
    GENESIS_HASH,
    PIPELINE_EXECUTION,
    START,
    AnyEvent,
    FieldSet,
    LogPosition,
)
from pipelines_events.log import JsonlEventLog
from pipelines_events.log.base import EventLog
from pipelines_events.log.open import LogTarget, open_log
from pipelines_events.log.postgres import (
    DB_SCHEMA_VERSION,
    PostgresEventLog,
    redact,
    split_schema,
)
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing import EventLogConformance
from tests.integration.postgres_server import PgTarget, PostgresServer
from tests.integration.postgres_workers import batch_of, follow, write


def _rows(pg: PgTarget, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg.url, autocommit=True) as conn:
        return conn.execute(query.replace("S.", f'"{pg.schema}".')).fetchall()


def _all(log: PostgresEventLog) -> list[list[AnyEvent]]:
    return [batch.events for batch in log.read(START)]


def _set(field: str, value: object, run_id: str = "run-1") -> FieldSet:
    return FieldSet(run_id=run_id, kind=PIPELINE_EXECUTION, id="ex-1", field=field, value=value)


# -- append, read, the chain -------------------------------------------------------------


def test_append_and_read_back_with_a_valid_chain(
    pg: PgTarget, sample_batches: list[list[AnyEvent]]
) -> None:
    log = pg.open()
    assert log.head() == START
    written = [log.append(batch) for batch in sample_batches]
    assert [e.seq for batch in written for e in batch] == list(range(1, 9))
    assert [b for b in _all(log)] == written
    last = written[-1][-1]
    assert log.head() == LogPosition(0, 8, last.hash) == log.position
    assert log.cursor_at(3) == LogPosition(0, 3, written[1][-1].hash)
    assert log.cursor_at(0) == START
    # read with a limit: whole batches, the first one always
    assert [len(b.events) for b in log.read(START, limit=3)] == [1, 2]
    assert [len(b.events) for b in log.read(log.cursor_at(3), limit=1)] == [1]
    assert [len(b.events) for b in log.read(log.cursor_at(4), limit=1)] == [3]
    # a second handle reads everything, statefully
    other = pg.open(readonly=True)
    assert list(other.read_batches()) == written
    assert list(other.read_new()) == []
    assert not other.has_new()
    other.seek(log.cursor_at(4))
    assert [e.seq for e in other.read_new()] == [5, 6, 7, 8]
    assert [e.seq for g in pg.open().read_groups() for e in g] == list(range(1, 9))
    # the rows hold the line and its hash; the head row the last hash
    rows = _rows(pg, "SELECT seq, run_id, kind, object_id, more, hash FROM S.events ORDER BY seq")
    assert rows[0] == (1, "run-1", PIPELINE_EXECUTION, "ex-1", 0, written[0][0].hash)
    assert [r[4] for r in rows] == [0, 1, 0, 0, 2, 1, 0, 0]
    assert _rows(pg, "SELECT seq, hash FROM S.head") == [(8, last.hash)]
    assert _rows(pg, "SELECT version FROM S.schema_version") == [(DB_SCHEMA_VERSION,)]


def test_the_chain_is_identical_to_the_file_logs(
    pg: PgTarget, sample_batches: list[list[AnyEvent]], log_path: Path
) -> None:
    stamped = [
        [msgspec_replace(d, ts=f"2026-11-05T12:00:0{i}.000001+00:00") for d in batch]
        for i, batch in enumerate(sample_batches)
    ]
    with JsonlEventLog(log_path) as file_log:
        file_events = [e for batch in stamped for e in file_log.append(batch)]
    log = pg.open()
    pg_events = [e for batch in stamped for e in log.append(batch)]
    assert pg_events == file_events
    lines = log_path.read_bytes().splitlines()
    rows = _rows(pg, "SELECT line, hash FROM S.events ORDER BY seq")
    assert [bytes(r[0]) for r in rows] == lines
    assert [r[1] for r in rows] == [e.hash for e in file_events]
    assert log.stored_bytes() == log_path.stat().st_size


def msgspec_replace(event: AnyEvent, **changes: Any) -> AnyEvent:
    import msgspec

    return msgspec.structs.replace(event, **changes)


def test_catch_up_between_two_handles(pg: PgTarget) -> None:
    one, two = pg.open(), pg.open()
    first = one.append([_set("a", 1)])
    # two catches up on `first` before writing
    assert [e.seq for e in two.append([_set("b", 2)])] == [1, 2]
    assert two.append([]) == []
    assert first[0].seq == 1
    caught: list[list[AnyEvent]] = []
    written = one.append([_set("c", 3)], on_caught_up=lambda evs: caught.append(evs) or True)
    assert [e.seq for e in caught[0]] == [2]
    assert [e.seq for e in written] == [3]
    # on_caught_up returning False writes nothing, but the caught-up events were handed over
    seen: list[list[AnyEvent]] = []
    assert two.append([_set("d", 4)], on_caught_up=lambda evs: seen.append(evs) or False) == []
    assert [e.seq for e in seen[0]] == [3]
    assert two.head().seq == 3
    assert two.position.seq == 3
    assert [e.seq for e in two.append([_set("e", 5)])] == [4]


def test_an_append_returns_what_other_writers_appended_first(pg: PgTarget) -> None:
    one, two = pg.open(), pg.open()
    one.append([_set("a", 1)])
    one.append([_set("b", 2), _set("c", 3)])
    result = two.append([_set("d", 4)])
    assert [e.seq for e in result] == [1, 2, 3, 4]
    assert [e.more for e in result] == [0, 1, 0, 0]


# -- bad input and failed appends --------------------------------------------------------


def test_an_event_too_large_writes_nothing(pg: PgTarget) -> None:
    log = pg.open(max_event_bytes=1000)
    log.append([_set("a", 1)])
    with pytest.raises(EventTooLargeError) as info:
        log.append([_set("b", 2), _set("big", "x" * 2000)])
    message = str(info.value)
    assert "event 2 of the batch (pipeline_execution ex-1, field 'big')" in message
    assert "over the log's limit of 1000 bytes; nothing was written" in message
    assert log.location in message
    assert _rows(pg, "SELECT count(*) FROM S.events") == [(1,)]
    assert log.head().seq == 1 == log.position.seq
    assert [e.seq for e in log.append([_set("c", 3)])] == [2]


def test_a_failed_insert_writes_nothing(pg: PgTarget) -> None:
    log = pg.open()
    log.append([_set("a", 1)])
    # PostgreSQL text cannot hold NUL: the insert fails inside the transaction.
    with pytest.raises(LogWriteError) as info:
        log.append([_set("b", 2), _set("c", 3, run_id="bad\x00run")])
    assert "nothing of the batch was written" in str(info.value)
    assert _rows(pg, "SELECT count(*), max(seq) FROM S.events") == [(1, 1)]
    assert _rows(pg, "SELECT seq FROM S.head") == [(1,)]
    assert [e.seq for e in log.append([_set("d", 4)])] == [2]


def test_an_error_in_on_caught_up_writes_nothing(pg: PgTarget) -> None:
    log = pg.open()

    def refuse(events: list[AnyEvent]) -> bool:
        raise ValueError("no thanks")

    with pytest.raises(ValueError, match="no thanks"):
        log.append([_set("a", 1)], on_caught_up=refuse)
    assert _rows(pg, "SELECT count(*) FROM S.events") == [(0,)]
    assert log.append([_set("b", 1)])[0].seq == 1


def test_readonly_refuses_writes(pg: PgTarget) -> None:
    pg.open().append([_set("a", 1)])
    log = pg.open(readonly=True)
    with pytest.raises(LogError, match="the log was opened read-only"):
        log.append([_set("b", 2)])
    with pytest.raises(LogError, match="read-only"):
        log.snapshots.save(b"x")
    assert _rows(pg, "SELECT count(*) FROM S.events") == [(1,)]


def test_readonly_on_an_empty_schema_is_refused(pg: PgTarget) -> None:
    with pytest.raises(LogOpenError, match="no pipelines-events log in schema"):
        pg.open(readonly=True)
    assert _rows(pg, f"SELECT count(*) FROM pg_namespace WHERE nspname = '{pg.schema}'") == [(0,)]


def test_bad_cursors_are_refused(pg: PgTarget) -> None:
    log = pg.open()
    log.append([_set("a", 1)])
    with pytest.raises(LogError, match="has no event seq 5"):
        log.seek(LogPosition(0, 5, "f" * 64))
    with pytest.raises(LogError, match="not of this log"):
        log.seek(LogPosition(0, 1, "f" * 64))
    with pytest.raises(LogError, match="not of this log"):
        list(log.read(LogPosition(0, 1, "f" * 64)))
    with pytest.raises(LogError, match="has no event seq 9"):
        log.cursor_at(9)
    with pytest.raises(LogError, match="has no event seq 7"):
        log.read(LogPosition(0, 7, "f" * 64))  # refused at the call
    with pytest.raises(LogError, match="limit must be an int of at least 1"):
        log.read(START, limit=0)
    with pytest.raises(LogError, match="timeout must be a number of seconds"):
        log.wait(START, -1)
    assert log.position.seq == 1


def test_bad_options_are_refused() -> None:
    with pytest.raises(LogOpenError, match="durability must be one of 'fsync', 'none'"):
        # a mode the type does not allow: the bad input under test
        PostgresEventLog("postgresql://h/db", durability="sometimes")  # type: ignore[arg-type]
    with pytest.raises(LogOpenError, match="max_event_bytes must be an int"):
        PostgresEventLog("postgresql://h/db", max_event_bytes=10)
    with pytest.raises(LogOpenError, match="schema must be a name"):
        PostgresEventLog("postgresql://h/db", schema="")


def test_a_damaged_row_is_a_precise_error(pg: PgTarget) -> None:
    log = pg.open()
    log.append([_set("a", 1)])
    log.append([_set("b", 2)])
    _rows(
        pg,
        "UPDATE S.events SET line = convert_to(replace(convert_from(line, 'UTF8'), "
        "'\"value\":2', '\"value\":3'), 'UTF8') WHERE seq = 2 RETURNING seq",
    )
    with pytest.raises(LogCorruptError) as info:
        list(pg.open().read(START))
    assert info.value.line == 2
    assert "hash link broken" in str(info.value)


# -- schema versions, connections, passwords ---------------------------------------------


def test_a_newer_schema_version_is_refused(pg: PgTarget) -> None:
    pg.open().append([_set("a", 1)])
    _rows(pg, "INSERT INTO S.schema_version (version, written_by) VALUES (99, 'future') "
          "RETURNING version")  # fmt: skip
    for readonly in (False, True):
        with pytest.raises(LogOpenError) as info:
            pg.open(readonly=readonly)
        message = str(info.value)
        assert f"schema {pg.schema!r} was written with database schema version 99" in message
        assert f"knows versions up to {DB_SCHEMA_VERSION}: upgrade pipelines-events" in message


def test_an_unreachable_server_is_named_without_the_password() -> None:
    with pytest.raises(LogOpenError) as info:
        PostgresEventLog("postgresql://alice:s3cr3t-pw@127.0.0.1:1/results", connect_timeout=2)
    message = str(info.value)
    assert "cannot connect to the PostgreSQL server at host 127.0.0.1 port 1" in message
    assert message.startswith("postgresql://alice@127.0.0.1:1/results: ")
    assert "s3cr3t-pw" not in message
    with pytest.raises(LogOpenError) as info:
        PostgresEventLog("postgresql://bob@127.0.0.1:1/db?password=hunter22", connect_timeout=2)
    assert "hunter22" not in str(info.value)


def test_the_location_has_no_password(pg: PgTarget) -> None:
    url = pg.url.replace("postgres@", "postgres:pw-123@")
    log = PostgresEventLog(url, schema=pg.schema)
    try:
        assert "pw-123" not in log.location
        assert log.location == redact(url) == pg.url
    finally:
        log.close()
    assert redact("postgresql://u:p@h:5/d?sslmode=require&password=x") == (
        "postgresql://u@h:5/d?sslmode=require"
    )
    assert redact("host=h password='a b' dbname=d") == "host=h dbname=d"


def test_a_lost_connection_is_reconnected(pg: PgTarget) -> None:
    log = pg.open()
    log.append([_set("a", 1)])
    _rows(pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
          "WHERE pid <> pg_backend_pid() AND datname = current_database()")  # fmt: skip
    assert [e.seq for e in log.append([_set("b", 2)])] == [2]
    assert log.head().seq == 2


# -- wait, snapshots, the run index ------------------------------------------------------


def test_wait_is_woken_by_an_append(pg: PgTarget) -> None:
    log, writer = pg.open(), pg.open()
    cursor = log.head()
    assert log.wait(cursor, 0.2) is False
    timer = threading.Timer(0.3, lambda: writer.append([_set("a", 1)]))
    timer.start()
    started = time.monotonic()
    try:
        assert log.wait(cursor, 10) is True
    finally:
        timer.join()
    assert time.monotonic() - started < 5
    assert log.wait(START, 0) is True


def test_snapshots_are_a_table(pg: PgTarget) -> None:
    log = pg.open()
    assert log.snapshots.load() is None
    log.snapshots.save(b"first")
    log.snapshots.save(b"\x00second")
    assert pg.open().snapshots.load() == b"\x00second"
    assert "snapshots" in log.snapshots.location
    _rows(pg, "UPDATE S.snapshots SET data = decode(repeat('00', 2000000), 'hex') RETURNING 1")
    with pytest.raises(SnapshotError, match="more than the"):
        log.snapshots.load()


def test_the_run_index_after_appends_and_removal(
    pg: PgTarget, sample_batches: list[list[AnyEvent]]
) -> None:
    log = pg.open()
    assert log.supports_run_index is True
    for batch in sample_batches[:4]:
        log.append(batch)
    other = pg.open(readonly=True)
    (summary,) = other.run_summaries()
    assert summary.run_id == "run-1"
    assert summary.status == "DONE"
    assert summary.started == "2026-11-05T12:00:00+00:00"
    assert summary.completed == "2026-11-05T12:05:00+00:00"
    assert summary.counts["pipeline_execution"] == 1
    assert summary.counts["pipeline_result"] == 1
    assert (summary.first_seq, summary.last_seq, summary.removed) == (1, 7, False)
    log.append(sample_batches[4])
    (summary,) = other.run_summaries()
    assert summary.removed is True and summary.last_seq == 8
    assert [e.seq for e in other.run_events("run-1")] == list(range(1, 9))
    assert other.run_events("nope") == []
    assert other.run_of("pr-1") == "run-1"
    assert other.run_of("nope") is None


def test_durability_none(pg: PgTarget) -> None:
    log = pg.open(durability="none")
    assert log.durability == "none"
    log.append([_set("a", 1)])
    log.commit()
    assert pg.open().head().seq == 1


def test_closed_log_refuses(pg: PgTarget) -> None:
    log = pg.open()
    log.close()
    with pytest.raises(LogError, match="the log is closed"):
        log.append([_set("a", 1)])
    with pytest.raises(LogError, match="the log is closed"):
        log.head()


# -- several processes -------------------------------------------------------------------


def _check_log(log: PostgresEventLog, expected: dict[tuple[int, int], int]) -> Counter[Any]:
    """Every batch whole and once; returns the batches found per (writer, number)."""
    found: Counter[Any] = Counter()
    seq = 0
    for batch in log.read(START):  # verifies the chain and contiguity
        seq = batch.events[-1].seq
        tags = {tuple(e.value[:2]) if isinstance(e, FieldSet) else None for e in batch.events}
        assert len(tags) == 1
        tag = tags.pop()
        if tag is None:
            tag = (int(batch.events[0].run_id.split("-")[1]), 0)
        found[tag] += 1
        assert len(batch.events) == expected.get(tag, len(batch.events))
    assert seq == log.head().seq
    return found


@pytest.mark.slow
def test_concurrent_writer_processes_and_a_follower(pg: PgTarget) -> None:
    writers, batches = 4, 40
    pg.open()  # creates the tables
    total = sum(len(batch_of(w, n)) for w in range(writers) for n in range(batches))
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    seen = ctx.Queue()
    follower = ctx.Process(target=follow, args=(pg.url, pg.schema, total, seen))
    follower.start()
    procs = [
        ctx.Process(target=write, args=(pg.url, pg.schema, w, batches, results))
        for w in range(writers)
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=180) for _ in procs]
    followed = seen.get(timeout=180)
    for proc in [*procs, follower]:
        proc.join(30)
        assert proc.exitcode == 0
    for _, acknowledged, unknown, failures in outcomes:
        assert acknowledged == list(range(batches)) and unknown == [] and failures == 0
    expected = {(w, n): len(batch_of(w, n)) for w in range(writers) for n in range(batches)}
    found = _check_log(pg.open(), expected)
    assert found == Counter(dict.fromkeys(expected, 1))
    assert followed == list(range(1, total + 1))  # never skipped, never repeated


@pytest.mark.slow
def test_a_server_restart_during_appends(pg_own: tuple[PostgresServer, PgTarget]) -> None:
    server, pg = pg_own
    writers, batches = 4, 60
    pg.open()
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=write, args=(pg.url, pg.schema, w, batches, results))
        for w in range(writers)
    ]
    for proc in procs:
        proc.start()
    probe = pg.open()
    deadline = time.monotonic() + 60
    while probe.head().seq < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    before = probe.head().seq
    server.restart("immediate")  # a crash: no shutdown checkpoint
    time.sleep(0.3)
    server.restart("immediate")
    outcomes = [results.get(timeout=240) for _ in procs]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    expected = {(w, n): len(batch_of(w, n)) for w in range(writers) for n in range(batches)}
    found = _check_log(pg.open(), expected)  # whole batches, chain valid
    assert set(found.values()) == {1}
    total = sum(len(batch_of(w, n)) for w in range(writers) for n in range(batches))
    assert before < total  # the restarts came while the writers were appending
    assert sum(outcome[3] for outcome in outcomes) > 0  # and the writers were told
    for writer, acknowledged, unknown, _ in outcomes:
        assert sorted(acknowledged + unknown) == list(range(batches))
        # every acknowledged batch is there; a batch reported not written is not
        mine = {n for (w, n) in found if w == writer}
        assert set(acknowledged) <= mine
        assert mine - set(acknowledged) <= set(unknown)
    assert _rows(pg, "SELECT count(*) FROM S.events")[0][0] == pg.open().head().seq
    assert GENESIS_HASH not in {e.hash for b in pg.open().read(START) for e in b.events}


# -- a connection lost at the commit: the caller is told whether the batch is in ---------


class CuttingProxy:
    """A TCP proxy to the server that, once armed, cuts the connection carrying COMMIT:
    before the server gets it (``"request"``) or after it answered (``"response"``)."""

    MARK = b"COMMIT\x00"

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed: str | None = None
        self.cuts = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            for src, dst, side in ((client, server, "request"), (server, client, "response")):
                threading.Thread(target=self._pump, args=(src, dst, side), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, side: str) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    cut = self.armed == side and self.MARK in data
                    if cut:
                        self.armed = None
                        self.cuts += 1
                if cut:
                    for sock in (src, dst):
                        sock.shutdown(socket.SHUT_RDWR)
                    return
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("side", ["request", "response"])
def test_a_connection_lost_at_the_commit_is_checked(
    pg_own: tuple[PostgresServer, PgTarget], side: str
) -> None:
    server, pg = pg_own
    proxy = CuttingProxy(server.port)
    try:
        url = pg.url.replace(f":{server.port}/", f":{proxy.port}/")
        log = PostgresEventLog(url, schema=pg.schema)
        log.append([_set("a", 1)])
        proxy.armed = side
        if side == "request":
            # COMMIT never reached the server: the log says nothing was written
            with pytest.raises(LogWriteError) as info:
                log.append([_set("b", 2), _set("c", 3)])
            assert "while the batch was committing" in str(info.value)
            assert "the log was checked: nothing of the batch was written" in str(info.value)
            assert pg.open().head().seq == 1
            assert [e.seq for e in log.append([_set("d", 4)])] == [2]
        else:
            # the server committed but its answer was lost: the append reports it written
            written = log.append([_set("b", 2), _set("c", 3)])
            assert [e.seq for e in written] == [2, 3]
            assert pg.open().head() == log.position == LogPosition(0, 3, written[-1].hash)
        assert proxy.cuts == 1
        log.close()
    finally:
        proxy.close()


def test_the_benchmark_builds_a_valid_log(pg: PgTarget) -> None:
    from benchmarks.postgres import build

    build(pg.url, pg.schema, 250, per_run=50)
    log = pg.open()
    assert sum(len(batch.events) for batch in log.read(START)) == 250  # a valid chain
    summaries = log.run_summaries()
    assert [s.run_id for s in summaries] == [f"run-{n}" for n in range(5)]
    assert summaries[0].counts["pipeline_execution"] == 1
    assert [e.seq for e in log.append([_set("a", 1, run_id="run-4")])] == list(range(1, 252))
    assert log.run_summaries()[-1].last_seq == 251
    # the storage reads the built runs as finished runs
    storage = EventLogPipelineResultsStorage(pg.log_url, readonly=True)
    try:
        executions = storage.get_pipeline_executions()
        assert [e.get_run_id() for e in executions] == [f"run-{n}" for n in range(5)]
        run = storage.get_pipeline_execution("run-2")
        assert run is not None and run.get_status() is PipelineTaskStatus.DONE
        results = storage.get_task_results(run_id="run-2")
        assert [r.get_status() for r in results] == [PipelineTaskStatus.DONE] * 14
    finally:
        storage.close()


# -- the log conformance suite -----------------------------------------------------------


class TestPostgresLogConformance(EventLogConformance):
    """The PostgreSQL log passes the suite every engine passes (writers: processes)."""

    __test__ = True

    @pytest.fixture(autouse=True)
    def _schema(self, pg: PgTarget) -> None:
        self.pg = pg

    def make_log(self, **options: Any) -> EventLog:
        return open_log(self.pg.log_url, **options)

    def log_target(self, log: EventLog) -> LogTarget:
        return self.pg.log_url


def test_the_schema_can_be_named_in_the_url(pg: PgTarget) -> None:
    with open_log(pg.log_url) as log:
        assert isinstance(log, PostgresEventLog)
        assert log.schema == pg.schema
        log.append([_set("a", 1)])
    assert _rows(pg, "SELECT seq FROM S.events") == [(1,)]
    with PostgresEventLog(pg.log_url, schema=pg.schema) as same:
        assert same.head().seq == 1
    with pytest.raises(LogOpenError, match=r"names schema .* but the schema option is 'other'"):
        PostgresEventLog(pg.log_url, schema="other")
    with pytest.raises(LogOpenError, match="schema must be a name of 1 to 63 characters"):
        PostgresEventLog(pg.url + "?schema=")
    assert _rows(pg, "SELECT count(*) FROM pg_namespace WHERE nspname = 'other'") == [(0,)]
    assert split_schema("postgresql://h/db?sslmode=off&schema=a%20b") == (
        "postgresql://h/db?sslmode=off",
        "a b",
    )
