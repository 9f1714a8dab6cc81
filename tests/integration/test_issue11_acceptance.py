"""Acceptance of #11 as a user of django-pipelines would try it: a partial custom storage
named by the setting, used from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pipelines_events.cli import main
from pipelines_events.conf import settings
from pipelines_events.pipeline import Pipeline
from pipelines_events.results import helpers
from pipelines_events.results.base import PipelineExecution, PipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus as S
from pipelines_events.task import Task


class DashboardExecution(PipelineExecution):
    """The fields a dashboard shows, as plain attributes (the seed's step 2)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.pipeline_id = "dashboard.Pipeline"
        self.status = S.DONE
        self.started = None
        self.completed = None


class DashboardStorage(PipelineResultsStorage):
    """A read-only storage that only lists executions."""

    def get_pipeline_executions(self, pipeline_id: str | None = None) -> list[PipelineExecution]:
        return [DashboardExecution("run-1")]


@pytest.fixture(autouse=True)
def dashboard() -> Iterator[None]:
    helpers.reset_storage_object()
    with settings.override_settings(
        PIPELINES_PIPELINES_RESULTS_STORAGE=f"{__name__}.DashboardStorage"
    ):
        yield
        helpers.reset_storage_object()


@pytest.mark.parametrize(
    ("argv", "method"),
    [
        (["show", "run-1"], "get_pipeline_execution"),
        (["cleanup", "--all"], "cleanup"),
    ],
)
def test_the_command_line_names_what_a_partial_storage_lacks(
    capsys: pytest.CaptureFixture[str], argv: list[str], method: str
) -> None:
    capsys.readouterr()

    status = main(argv)

    out, err = capsys.readouterr()
    assert out == ""
    assert status == 2
    assert err == (
        f"pipelines-events: error: DashboardStorage does not implement {method}(): "
        "a custom storage implements the methods it is used for\n"
    )
    assert "Traceback" not in err


# -- the original's class methods -------------------------------------------------------------


class Step(Task):
    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        return None


class Named(Pipeline):
    pipeline_id = "app.Named"
    step = Step()


def test_pipeline_get_id_is_a_class_method_as_the_original() -> None:
    assert Named.get_id() == "app.Named"
    assert Named().get_id() == "app.Named"
    assert Step.get_id() == Step.task_id
