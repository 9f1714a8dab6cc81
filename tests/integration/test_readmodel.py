"""The storage's read models: a full fold over the file log, runs loaded on demand over an
engine with a run index (the in-memory and the PostgreSQL engines here)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines_events.log.memory import drop_memory_store
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.readmodel import FullReadModel, LazyReadModel
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing import ExamplePipeline, ExampleReporter, ExampleRunner, ExampleTask

_names = itertools.count()


def pipeline(pipeline_id: str = "tests.Lazy") -> ExamplePipeline:
    return ExamplePipeline(pipeline_id, [ExampleTask("only", objects=[1, 2])], objects=["x"])


def build(storage: EventLogPipelineResultsStorage, run_id: str, pipeline_id: str = "p") -> Any:
    return storage.build_pipeline_execution(
        pipeline(pipeline_id), run_id, ExampleRunner(), ExampleReporter(), None
    )


@pytest.fixture(params=["memory", "postgres"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A log with a run index: in memory, or in PostgreSQL (the test server)."""
    if request.param == "postgres":
        yield request.getfixturevalue("pg").log_url
        return
    name = f"lazy-{next(_names)}"
    yield f"memory://{name}"
    drop_memory_store(name)


def lazy(storage: EventLogPipelineResultsStorage) -> LazyReadModel:
    model = storage.read_model
    assert isinstance(model, LazyReadModel)
    return model


def test_the_file_log_reads_runs_through_its_index_or_folds_everything_without_it(
    tmp_path: Path,
) -> None:
    storage = EventLogPipelineResultsStorage(tmp_path / "log.jsonl", durability="none")
    try:
        assert isinstance(storage.read_model, LazyReadModel)
    finally:
        storage.close()
    storage = EventLogPipelineResultsStorage(
        tmp_path / "log.jsonl", durability="none", log_options={"run_index": False}
    )
    try:
        assert isinstance(storage.read_model, FullReadModel)
    finally:
        storage.close()


def test_opening_folds_nothing_and_a_run_loads_on_demand(url: str) -> None:
    writer = EventLogPipelineResultsStorage(url)
    for run in ("a", "b", "c"):
        build(writer, run)
    reader = EventLogPipelineResultsStorage(url)
    assert lazy(reader).loaded_runs == frozenset()
    assert reader.log.position == writer.log.position  # at the head, nothing read
    execution = reader.get_pipeline_execution("b")
    assert execution is not None and execution.get_run_id() == "b"
    assert lazy(reader).loaded_runs == {"b"}
    assert len(reader.get_task_results(run_id="b")) == 2
    assert lazy(reader).loaded_runs == {"b"}
    writer.close()
    reader.close()


def test_an_object_id_finds_its_run(url: str) -> None:
    writer = EventLogPipelineResultsStorage(url)
    build(writer, "a")
    result_id = build(writer, "b").get_pipeline_results()[0].get_id()
    reader = EventLogPipelineResultsStorage(url)
    found = reader.get_pipeline_result(result_id)
    assert found is not None and found.get_run_id() == "b"
    assert lazy(reader).loaded_runs == {"b"}
    assert reader.get_pipeline_result("no-such-id") is None
    assert reader.get_task_result(result_id) is None  # another kind
    task = writer.get_task_results(run_id="a")[0]
    seen = reader.get_task_result(task.get_id())
    assert seen is not None and seen.get_run_id() == "a"
    assert lazy(reader).loaded_runs == {"a", "b"}
    writer.close()
    reader.close()


def test_loaded_runs_stay_current_and_others_are_not_folded(url: str) -> None:
    writer = EventLogPipelineResultsStorage(url)
    build(writer, "a")
    build(writer, "b")
    reader = EventLogPipelineResultsStorage(url)
    seen = reader.get_pipeline_execution("a")
    assert seen is not None and seen.get_status() == PipelineTaskStatus.PENDING
    mine = writer.get_pipeline_execution("a")
    other = writer.get_pipeline_execution("b")
    assert mine is not None and other is not None
    mine.set_status(PipelineTaskStatus.RUNNING)
    other.set_status(PipelineTaskStatus.RUNNING)
    build(writer, "c")
    assert seen.get_status() == PipelineTaskStatus.RUNNING  # folded: run a is loaded
    assert lazy(reader).loaded_runs == {"a"}
    assert lazy(reader).projection.execution_of_run("b") is None  # never folded
    later = reader.get_pipeline_execution("b")
    assert later is not None and later.get_status() == PipelineTaskStatus.RUNNING
    writer.close()
    reader.close()


def test_listing_and_the_digest_load_every_run(url: str) -> None:
    writer = EventLogPipelineResultsStorage(url)
    build(writer, "a", "p1")
    build(writer, "b", "p2")
    build(writer, "c", "p1")
    reader = EventLogPipelineResultsStorage(url)
    assert [e.get_run_id() for e in reader.get_pipeline_executions("p1")] == ["a", "c"]
    assert lazy(reader).loaded_runs == {"a", "c"}
    assert reader.get_pipeline_digest() == writer.get_pipeline_digest()
    assert lazy(reader).loaded_runs == {"a", "b", "c"}
    build(writer, "d", "p2")
    assert [e.get_run_id() for e in reader.get_pipeline_executions()] == ["a", "b", "c", "d"]
    writer.close()
    reader.close()


def test_a_run_built_by_another_writer_is_refused_after_the_catch_up(url: str) -> None:
    first = EventLogPipelineResultsStorage(url)
    second = EventLogPipelineResultsStorage(url)
    build(first, "same")
    with pytest.raises(Exception, match="already has an execution"):
        build(second, "same")
    assert len(second.get_pipeline_executions()) == 1
    first.close()
    second.close()


def test_cleanup_over_the_lazy_model(url: str) -> None:
    writer = EventLogPipelineResultsStorage(url)
    execution = build(writer, "a")
    build(writer, "b")
    execution.set_status(PipelineTaskStatus.RUNNING)
    execution.set_status(PipelineTaskStatus.DONE)
    reader = EventLogPipelineResultsStorage(url)
    assert reader.cleanup() == ["a"]
    assert writer.get_pipeline_execution("a") is None
    assert reader.get_pipeline_execution("a") is None
    assert [e.get_run_id() for e in reader.get_pipeline_executions()] == ["b"]
    writer.close()
    reader.close()


def test_a_check_under_the_append_lock_can_load_a_run(url: str) -> None:
    writer = EventLogPipelineResultsStorage(url)
    build(writer, "a")
    reader = EventLogPipelineResultsStorage(url)
    mine = build(reader, "b")
    assert lazy(reader).loaded_runs == {"b"}
    with reader.atomic(require=lambda: reader.get_pipeline_execution("a") is not None) as batch:
        mine.set_message("checked against run a")
    assert batch.stored
    assert lazy(reader).loaded_runs == {"a", "b"}
    fresh = writer.get_pipeline_execution("b")
    assert fresh is not None and fresh.get_message() == "checked against run a"
    writer.close()
    reader.close()
