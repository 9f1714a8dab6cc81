"""RunQuery: what it checks and what it means (the engines' pages are tested by the log
conformance suite)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipelines_events.errors import InvalidValueError
from pipelines_events.log.runquery import RunQuery, RunSummary, started_micros


def _summary(run_id: str, first_seq: int, **fields: Any) -> RunSummary:
    values: dict[str, Any] = {
        "pipeline_id": "p",
        "status": "DONE",
        "started": None,
        "completed": None,
        "counts": {},
        "last_seq": first_seq,
    }
    values.update(fields)
    return RunSummary(run_id=run_id, first_seq=first_seq, **values)


@pytest.mark.parametrize(
    "bad",
    [
        {"limit": -1},
        {"limit": 1.5},
        {"limit": True},
        {"through_seq": "3"},
        {"through_seq": -2},
        {"since": "2026-01-01"},
        {"until": 5},
    ],
)
def test_bad_queries_are_refused_naming_the_field(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidValueError, match=next(iter(bad))):
        RunQuery(**bad)


def test_started_micros_reads_offsets_and_refuses_what_is_not_a_time() -> None:
    assert started_micros("1970-01-01T00:00:01+00:00") == 1_000_000
    assert started_micros("1970-01-01T02:00:01.000002+02:00") == 1_000_002
    assert started_micros("1970-01-01T00:00:01") == 1_000_000  # no offset: UTC
    for bad in (None, "", "soon", 5, "2026-13-01T00:00:00"):
        assert started_micros(bad) is None


def test_select_orders_newest_first_counts_all_and_cuts_at_the_limit() -> None:
    summaries = [
        _summary("old", 1, started="2026-01-01T00:00:00+00:00"),
        _summary("gone", 2, removed=True),
        _summary("new", 9, started="2026-01-02T00:00:00+00:00"),
        _summary("mid", 5, status="FAILED"),
    ]
    page = RunQuery(limit=2).select(summaries)
    assert [s.run_id for s in page.runs] == ["new", "mid"] and page.total == 3
    since = RunQuery(since=datetime(2026, 1, 1, tzinfo=UTC)).select(summaries)
    assert [s.run_id for s in since.runs] == ["new", "old"]  # "mid" has no start time
    assert RunQuery(status="FAILED", through_seq=4).select(summaries).total == 0
