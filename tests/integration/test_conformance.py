"""Both storages of the package pass the conformance suite of ``pipelines_events.testing``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines_events.log import DURABILITY_MODES
from pipelines_events.log.jsonl import Durability
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.memory import MemoryPipelineResultsStorage
from pipelines_events.testing import StorageConformanceTests
from tests.integration.postgres_server import PgTarget


class TestEventLogStorage(StorageConformanceTests):
    """The event-log storage, in every durability mode."""

    refuses_identifying_fields = True

    @pytest.fixture(params=DURABILITY_MODES)
    def storage(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> Iterator[EventLogPipelineResultsStorage]:
        durability: Durability = request.param
        storage = EventLogPipelineResultsStorage(tmp_path / "log.jsonl", durability=durability)
        yield storage
        storage.close()


class TestMemoryStorage(StorageConformanceTests):
    """The in-memory example storage."""

    @pytest.fixture
    def storage(self) -> MemoryPipelineResultsStorage:
        return MemoryPipelineResultsStorage()


class TestStorageOverPostgresLog(StorageConformanceTests):
    """The event-log storage on a ``postgresql://`` URL (the lazy read model)."""

    refuses_identifying_fields = True

    @pytest.fixture
    def storage(self, pg: PgTarget) -> Iterator[EventLogPipelineResultsStorage]:
        storage = EventLogPipelineResultsStorage(pg.log_url)
        yield storage
        storage.close()
