"""The web page over a log given by URL (the in-memory engine here; PostgreSQL likewise):
the URL reaches the engine as a URL, not as a path."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from pipelines_events.log.memory import drop_memory_store
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.testing import ExamplePipeline, ExampleReporter, ExampleRunner, ExampleTask

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the test client's notice about its HTTP library
    from starlette.testclient import TestClient

from pipelines_events.web.app import create_app

URL = "memory://web-engines"


@pytest.fixture
def storage() -> Iterator[EventLogPipelineResultsStorage]:
    storage = EventLogPipelineResultsStorage(URL)
    storage.build_pipeline_execution(
        ExamplePipeline("web.P", [ExampleTask("t")]),
        "run-1",
        ExampleRunner(),
        ExampleReporter(),
        None,
    )
    yield storage
    storage.close()
    drop_memory_store("web-engines")


def test_the_page_of_a_log_given_by_url(storage: EventLogPipelineResultsStorage) -> None:
    client = TestClient(create_app(URL, loopback_only=False))
    with client:
        runs = client.get("/api/runs")
        assert runs.status_code == 200, runs.text
        assert "run-1" in runs.text
        verified = client.get("/api/verify")
        assert verified.status_code == 200, verified.text
        assert verified.json()["ok"] is True and verified.json()["head_seq"] == 4
        execution = storage.get_pipeline_execution("run-1")
        assert execution is not None
        execution.set_message("later")
        assert client.get("/api/verify").json()["head_seq"] == 5  # not a stale report
        history = client.get("/api/history", params={"id": "run-1"})
        assert history.status_code == 200, history.text
        assert "later" in history.text
