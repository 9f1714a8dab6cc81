"""Fixtures of the integration tests: the PostgreSQL server (a throwaway one, or
$PIPELINES_EVENTS_TEST_POSTGRES_URL) and a schema of its own per test."""

from tests.integration.postgres_server import (
    own_postgres_server,  # noqa: F401
    pg,  # noqa: F401
    pg_own,  # noqa: F401
    postgres_server,  # noqa: F401
)
