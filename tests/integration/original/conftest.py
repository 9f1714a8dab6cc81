"""The original django-pipelines' tests, ported to this API: each runs on both shipped
storages, the event-log one over the file and the PostgreSQL engines (the original ran
them on its Django ORM storage).

Where ours is deliberately different, the test checks our behaviour and says so; the
page ``docs/howto/coming-from-django-pipelines.rst`` lists every such difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines_events.conf import settings
from pipelines_events.results import helpers

STORAGES = {
    "eventlog": "pipelines_events.results.eventlog.EventLogPipelineResultsStorage",
    "postgres": "pipelines_events.results.eventlog.EventLogPipelineResultsStorage",
    "memory": "pipelines_events.results.memory.MemoryPipelineResultsStorage",
}


@pytest.fixture(autouse=True, params=sorted(STORAGES))
def storage_name(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every ported test runs once per storage, configured by the setting."""
    name: str = request.param
    setting: Any = STORAGES[name]
    if name == "eventlog":
        setting = (setting, {"path": str(tmp_path / "runs.jsonl")})
    elif name == "postgres":
        setting = (setting, {"path": request.getfixturevalue("pg").log_url})
    helpers.reset_storage_object()
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=setting):
        yield name
        helpers.reset_storage_object()
