"""A throwaway PostgreSQL server for the tests and the benchmarks.

:func:`start_server` runs Debian's ``initdb`` and ``pg_ctl`` in a temporary directory on a
free loopback port (as the ``postgres`` user when running as root, since ``initdb``
refuses root). The environment variable ``PIPELINES_EVENTS_TEST_POSTGRES_URL`` names an
existing server to use instead (tests that restart the server still start their own).
Missing binaries are an error that says what to install, never a skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ENV_URL = "PIPELINES_EVENTS_TEST_POSTGRES_URL"
INSTALL_HINT = (
    "the PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH nor in "
    "/usr/lib/postgresql/*/bin: install them with `apt-get install -y postgresql`, or set "
    f"{ENV_URL} to the URL of a server the tests may use"
)


class ServerMissing(RuntimeError):
    """The PostgreSQL binaries are not installed."""


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``; ServerMissing when there is none."""
    candidates = []
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(os.path.realpath(found)).parent)

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    candidates += [
        Path(path)
        for path in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    ]
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise ServerMissing(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A PostgreSQL server in a temporary directory, listening on 127.0.0.1 only."""

    def __init__(self, *, fsync: bool = True) -> None:
        self.bindir = find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="pipelines-events-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.fsync = fsync
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(
            command, check=check, capture_output=True, text=True, cwd=self.root, timeout=120
        )

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--no-sync", "--locale=C",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            f"-c fsync={'on' if self.fsync else 'off'} -c max_connections=100 "
            "-c shared_buffers=64MB"
        )
        try:
            self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o",
                options, "-w", "-t", "60", "start",
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pg_ctl start failed: {exc.stderr}\n{log}") from None

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start_server(*, fsync: bool = True) -> PostgresServer:
    """Initialise and start a throwaway server (ServerMissing without the binaries)."""
    server = PostgresServer(fsync=fsync)
    try:
        server.init()
        server.start()
    except BaseException:
        server.destroy()
        raise
    return server


@contextlib.contextmanager
def running_server(*, fsync: bool = True) -> Iterator[PostgresServer]:
    """A throwaway server for the duration of the block."""
    server = start_server(fsync=fsync)
    try:
        yield server
    finally:
        server.destroy()


def unique_schema() -> str:
    """A schema name no other test uses."""
    return "t_" + uuid.uuid4().hex[:16]


def drop_schema(url: str, schema: str) -> None:
    """Remove a test's schema and everything in it."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- pytest fixtures (imported by tests/integration/conftest.py) ---------------------------

import pytest  # noqa: E402


class ExternalServer:
    """A server named by :data:`ENV_URL`: used as it is, never restarted."""

    def __init__(self, url: str) -> None:
        self.url = url


@contextlib.contextmanager
def _throwaway_server() -> Iterator[PostgresServer]:
    """A server started here and destroyed at the end; a failure saying what to install
    when the binaries are missing."""
    try:
        server = start_server()
    except ServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | ExternalServer]:
    """The server the PostgreSQL tests use: :data:`ENV_URL`, or a throwaway one."""
    url = os.environ.get(ENV_URL)
    if url:
        yield ExternalServer(url)
        return
    with _throwaway_server() as server:
        yield server


@pytest.fixture(scope="session")
def own_postgres_server(
    postgres_server: PostgresServer | ExternalServer,
) -> Iterator[PostgresServer]:
    """A throwaway server the tests may stop and restart (started even with :data:`ENV_URL`)."""
    if isinstance(postgres_server, PostgresServer):
        yield postgres_server
        return
    with _throwaway_server() as server:
        yield server


class PgTarget:
    """Where one test's log lives: a server URL and a schema of its own."""

    def __init__(self, url: str, schema: str) -> None:
        self.url = url
        self.schema = schema
        self._logs: list[Any] = []

    @property
    def log_url(self) -> str:
        """The URL of this test's log (``--log``, ``open_log``): the schema in its query."""
        return f"{self.url}{'&' if '?' in self.url else '?'}schema={self.schema}"

    def open(self, **options: Any) -> Any:
        """A log in this test's schema (closed at the end of the test)."""
        from pipelines_events.log.postgres import PostgresEventLog

        options.setdefault("schema", self.schema)
        log = PostgresEventLog(self.url, **options)
        self._logs.append(log)
        return log

    def close(self) -> None:
        for log in self._logs:
            log.close()


@pytest.fixture
def pg(postgres_server: PostgresServer | ExternalServer) -> Iterator[PgTarget]:
    """A schema of its own on the test server, dropped after the test."""
    target = PgTarget(postgres_server.url, unique_schema())
    try:
        yield target
    finally:
        target.close()
        drop_schema(target.url, target.schema)


@pytest.fixture
def pg_own(own_postgres_server: PostgresServer) -> Iterator[tuple[PostgresServer, PgTarget]]:
    """A schema on a server the test may restart, and the server."""
    target = PgTarget(own_postgres_server.url, unique_schema())
    try:
        yield own_postgres_server, target
    finally:
        target.close()
        drop_schema(target.url, target.schema)
