"""The projections on their own: pure folds of events built by hand, and their snapshots.

Also a property test: random status changes applied to both storages agree with a model.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines_events.errors import ProjectionError, SnapshotError
from pipelines_events.events import (
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    SCHEMA_VERSION,
    TASK_EXECUTION,
    TASK_RESULT,
    AnyEvent,
    FieldSet,
    ObjectCreated,
    RunRemoved,
    encode_attrs,
    encode_value,
    parse_time,
)
from pipelines_events.results.base import PipelineResultsStorage, PipelineStorageObject
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.memory import MemoryPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.testing import (
    ExamplePipeline,
    ExampleReporter,
    ExampleRunner,
    ExampleTask,
    describe_storage,
)
from projections import (
    Change,
    DigestProjection,
    HistoryProjection,
    PipelineDigestItem,
    ResultsProjection,
)

PENDING = PipelineTaskStatus.PENDING
RUNNING = PipelineTaskStatus.RUNNING
DONE = PipelineTaskStatus.DONE
CANCELLED = PipelineTaskStatus.CANCELLED
RUNTIME_ERROR = PipelineTaskStatus.RUNTIME_ERROR
T0 = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- events by hand -------------------------------------------------------------------------


def created(
    kind: str, object_id: str, run_id: str, parent_id: str | None = None, **attrs: Any
) -> ObjectCreated:
    stored, types = encode_attrs({"status": PENDING, **attrs})
    return ObjectCreated(
        run_id=run_id, kind=kind, id=object_id, parent_id=parent_id, attrs=stored, types=types
    )


def set_(kind: str, object_id: str, run_id: str, name: str, value: Any) -> FieldSet:
    stored, vtype = encode_value(name, value)
    return FieldSet(run_id=run_id, kind=kind, id=object_id, field=name, value=stored, vtype=vtype)


def removed(run_id: str, execution_id: str) -> RunRemoved:
    return RunRemoved(run_id=run_id, kind=PIPELINE_EXECUTION, id=execution_id)


class Log:
    """Gives drafts their seq, ts and ``more`` the way the log does, batch by batch."""

    def __init__(self) -> None:
        self.events: list[AnyEvent] = []

    def batch(self, *drafts: AnyEvent) -> list[AnyEvent]:
        out: list[AnyEvent] = []
        for index, draft in enumerate(drafts):
            seq = len(self.events) + 1
            event = msgspec.structs.replace(
                draft,
                v=SCHEMA_VERSION,
                seq=seq,
                ts=f"2026-11-05T12:{seq // 60:02d}:{seq % 60:02d}+00:00",
                more=len(drafts) - 1 - index,
            )
            self.events.append(event)
            out.append(event)
        return out


def build_runs(log: Log) -> None:
    """run-1 (pipeline p1): ex-1 > pr-1 > te-1 > tr-1, tr-2; pr-1 > te-2 > tr-3.
    run-2 (pipeline p2): ex-2 > pr-2.  run-3 (pipeline p1): ex-3 > pr-3, pr-4."""
    log.batch(
        created(PIPELINE_EXECUTION, "ex-1", "run-1", pipeline_id="p1", input_data={"n": [1]}),
        created(PIPELINE_RESULT, "pr-1", "run-1", "ex-1", pipeline_id="p1"),
        created(TASK_EXECUTION, "te-1", "run-1", "pr-1", task_id="t1", config={"c": 1}),
        created(TASK_RESULT, "tr-1", "run-1", "te-1", serializable_task_object=1),
        created(TASK_RESULT, "tr-2", "run-1", "te-1", serializable_task_object=2),
        created(TASK_EXECUTION, "te-2", "run-1", "pr-1", task_id="t2"),
        created(TASK_RESULT, "tr-3", "run-1", "te-2"),
    )
    log.batch(
        created(PIPELINE_EXECUTION, "ex-2", "run-2", pipeline_id="p2"),
        created(PIPELINE_RESULT, "pr-2", "run-2", "ex-2", pipeline_id="p2"),
    )
    log.batch(
        created(PIPELINE_EXECUTION, "ex-3", "run-3", pipeline_id="p1"),
        created(PIPELINE_RESULT, "pr-3", "run-3", "ex-3", pipeline_id="p1"),
        created(PIPELINE_RESULT, "pr-4", "run-3", "ex-3", pipeline_id="p1"),
    )


def status_change(
    kind: str,
    object_id: str,
    run_id: str,
    status: PipelineTaskStatus,
    when: datetime,
    message: str | None = None,
) -> list[AnyEvent]:
    """The drafts of one status change, as report_status_change writes them."""
    time_field = "started" if status is RUNNING else "completed"
    drafts: list[AnyEvent] = [
        set_(kind, object_id, run_id, "status", status),
        set_(kind, object_id, run_id, time_field, when),
    ]
    if message is not None:
        drafts.append(set_(kind, object_id, run_id, "message", message))
    return drafts


@pytest.fixture
def log() -> Log:
    log = Log()
    build_runs(log)
    return log


def fold_results(events: list[AnyEvent]) -> ResultsProjection:
    projection = ResultsProjection()
    projection.apply_all(events)
    return projection


def ids(records: Any) -> list[str]:
    return [record.id for record in records]


# -- results --------------------------------------------------------------------------------


def test_results_objects_and_attributes(log: Log) -> None:
    projection = fold_results(log.events)
    assert len(projection) == 12
    record = projection.get("te-1")
    assert record is not None
    assert (record.kind, record.run_id, record.parent_id) == (TASK_EXECUTION, "run-1", "pr-1")
    assert record.attrs == {"status": PENDING, "task_id": "t1", "config": {"c": 1}}
    assert record.attrs["status"] is PENDING
    assert record.children == ["tr-1", "tr-2"]
    assert record.open_children == 2
    assert "tr-3" in projection and "nope" not in projection
    assert projection.get("nope") is None


def test_results_lookups_by_run_and_pipeline(log: Log) -> None:
    projection = fold_results(log.events)
    assert projection.run_ids() == ["run-1", "run-2", "run-3"]
    execution = projection.execution_of_run("run-2")
    assert execution is not None and execution.id == "ex-2"
    assert projection.execution_of_run("run-9") is None
    assert ids(projection.executions()) == ["ex-1", "ex-2", "ex-3"]
    assert ids(projection.executions(pipeline_id="p1")) == ["ex-1", "ex-3"]
    assert ids(projection.executions(pipeline_id="p9")) == []
    assert ids(projection.executions(run_id="run-3")) == ["ex-3"]
    assert ids(projection.executions(run_id="run-3", pipeline_id="p1")) == ["ex-3"]
    assert ids(projection.executions(run_id="run-3", pipeline_id="p2")) == []
    assert ids(projection.executions(run_id="run-9")) == []


def test_results_children_and_descendants(log: Log) -> None:
    projection = fold_results(log.events)
    assert ids(projection.children("ex-3")) == ["pr-3", "pr-4"]
    assert ids(projection.children("pr-1")) == ["te-1", "te-2"]
    assert ids(projection.children("tr-1")) == []
    assert ids(projection.children("nope")) == []
    executions = projection.executions()
    assert ids(projection.descendants(executions, 1)) == ["pr-1", "pr-2", "pr-3", "pr-4"]
    assert ids(projection.descendants(executions, 2)) == ["te-1", "te-2"]
    assert ids(projection.descendants(executions, 3)) == ["tr-1", "tr-2", "tr-3"]
    assert ids(projection.run_objects("run-1")) == [
        "ex-1",
        "pr-1",
        "te-1",
        "tr-1",
        "tr-2",
        "te-2",
        "tr-3",
    ]
    assert projection.run_objects("run-9") == []


def test_results_field_sets_and_open_children(log: Log) -> None:
    log.batch(*status_change(TASK_RESULT, "tr-1", "run-1", RUNNING, at(1), "go"))
    log.batch(set_(TASK_RESULT, "tr-1", "run-1", "note", [1, {"a": None}]))
    projection = fold_results(log.events)
    record = projection.get("tr-1")
    parent = projection.get("te-1")
    assert record is not None and parent is not None
    assert record.attrs["status"] is RUNNING
    assert record.attrs["started"] == at(1)
    assert record.attrs["message"] == "go"
    assert record.attrs["note"] == [1, {"a": None}]
    assert parent.open_children == 2
    projection.apply_all(log.batch(*status_change(TASK_RESULT, "tr-1", "run-1", DONE, at(2))))
    assert parent.open_children == 1
    projection.apply_all(log.batch(*status_change(TASK_RESULT, "tr-2", "run-1", CANCELLED, at(2))))
    assert parent.open_children == 0
    # A set that repeats a final status does not count the child twice.
    projection.apply(log.batch(set_(TASK_RESULT, "tr-2", "run-1", "status", DONE))[0])
    assert parent.open_children == 0


def test_results_run_removed(log: Log) -> None:
    projection = fold_results(log.events)
    projection.apply_all(log.batch(removed("run-1", "ex-1")))
    assert len(projection) == 5
    for object_id in ("ex-1", "pr-1", "te-1", "tr-1", "tr-2", "te-2", "tr-3"):
        assert projection.get(object_id) is None
    assert projection.execution_of_run("run-1") is None
    assert projection.run_ids() == ["run-2", "run-3"]
    assert ids(projection.executions(pipeline_id="p1")) == ["ex-3"]
    assert projection.is_removed_run("run-1")
    assert not projection.is_removed_run("run-2")
    # Late events of the removed run (another process wrote them before it saw the
    # removal) are ignored, not errors.
    projection.apply_all(log.batch(set_(TASK_RESULT, "tr-1", "run-1", "status", DONE)))
    projection.apply_all(log.batch(created(TASK_RESULT, "tr-9", "run-1", "te-1")))
    assert projection.get("tr-9") is None
    # The last execution of a pipeline leaves its pipeline index.
    projection.apply_all(log.batch(removed("run-2", "ex-2")))
    assert ids(projection.executions(pipeline_id="p2")) == []
    # The run id can be used again.
    projection.apply_all(log.batch(created(PIPELINE_EXECUTION, "ex-9", "run-1", pipeline_id="p3")))
    execution = projection.execution_of_run("run-1")
    assert execution is not None and execution.id == "ex-9"
    assert not projection.is_removed_run("run-1")


def test_results_set_on_an_object_never_created(log: Log) -> None:
    projection = fold_results(log.events)
    (event,) = log.batch(set_(TASK_RESULT, "ghost", "run-1", "status", DONE))
    assert event.seq == 13
    with pytest.raises(ProjectionError, match=r"seq 13: sets 'status' on task_result ghost"):
        projection.apply(event)
    (event,) = log.batch(set_(TASK_RESULT, "ghost", "run-never", "note", 1))
    with pytest.raises(ProjectionError, match=r"seq 14: .*never created"):
        projection.apply(event)


def test_results_refuse_impossible_creations(log: Log) -> None:
    projection = fold_results(log.events)
    (orphan,) = log.batch(created(TASK_RESULT, "tr-9", "run-1", "te-9"))
    with pytest.raises(ProjectionError, match=r"seq 13: task_result tr-9 names parent te-9"):
        projection.apply(orphan)
    (twice,) = log.batch(created(TASK_RESULT, "tr-1", "run-1", "te-1"))
    with pytest.raises(ProjectionError, match=r"seq 14: task_result tr-1 is created twice"):
        projection.apply(twice)
    (second,) = log.batch(created(PIPELINE_EXECUTION, "ex-9", "run-2", pipeline_id="p2"))
    with pytest.raises(ProjectionError, match=r"seq 15: run run-2 already has an execution"):
        projection.apply(second)


# -- digest ---------------------------------------------------------------------------------


def test_digest_event_by_event(log: Log) -> None:
    digest = DigestProjection()
    digest.apply_all(log.events)
    assert digest.digest() == {
        "p1": PipelineDigestItem(3, 0, 0, None, None),
        "p2": PipelineDigestItem(1, 0, 0, None, None),
    }
    # Task results and executions do not count.
    digest.apply_all(log.batch(*status_change(TASK_RESULT, "tr-1", "run-1", RUNNING, at(0))))
    digest.apply_all(log.batch(*status_change(PIPELINE_EXECUTION, "ex-1", "run-1", DONE, at(9))))
    assert digest.digest()["p1"] == PipelineDigestItem(3, 0, 0, None, None)

    digest.apply_all(log.batch(*status_change(PIPELINE_RESULT, "pr-1", "run-1", RUNNING, at(10))))
    assert digest.digest()["p1"] == PipelineDigestItem(3, 0, 0, at(10), None)
    digest.apply_all(log.batch(*status_change(PIPELINE_RESULT, "pr-1", "run-1", DONE, at(16))))
    assert digest.digest()["p1"] == PipelineDigestItem(3, 1, 0, at(10), 6.0)
    digest.apply_all(log.batch(*status_change(PIPELINE_RESULT, "pr-3", "run-3", RUNNING, at(20))))
    digest.apply_all(
        log.batch(*status_change(PIPELINE_RESULT, "pr-3", "run-3", RUNTIME_ERROR, at(30), "boom"))
    )
    assert digest.digest()["p1"] == PipelineDigestItem(3, 1, 1, at(20), 8.0)
    digest.apply_all(log.batch(*status_change(PIPELINE_RESULT, "pr-4", "run-3", CANCELLED, at(31))))
    # A cancelled pipeline result is a failure too, as in the original.
    assert digest.digest()["p1"] == PipelineDigestItem(3, 1, 2, at(20), 8.0)
    assert digest.digest()["p2"] == PipelineDigestItem(1, 0, 0, None, None)

    # Removing run-3 takes its results out, and last_ran falls back to run-1's start.
    digest.apply_all(log.batch(removed("run-3", "ex-3")))
    assert digest.digest()["p1"] == PipelineDigestItem(1, 1, 0, at(10), 6.0)
    digest.apply_all(log.batch(removed("run-2", "ex-2")))
    assert set(digest.digest()) == {"p1"}
    # Events for objects the digest does not know are ignored.
    digest.apply_all(log.batch(set_(PIPELINE_RESULT, "pr-3", "run-3", "status", DONE)))
    digest.apply_all(log.batch(removed("run-1", "ex-1")))
    assert digest.digest() == {}


def test_a_digest_item_has_the_original_defaults() -> None:
    assert PipelineDigestItem() == PipelineDigestItem(0, 0, 0, None, None)
    assert PipelineDigestItem(total_runs=2).total_success == 0


def test_digest_follows_a_start_that_moves_back(log: Log) -> None:
    digest = DigestProjection()
    digest.apply_all(log.events)
    digest.apply_all(log.batch(set_(PIPELINE_RESULT, "pr-3", "run-3", "started", at(50))))
    digest.apply_all(log.batch(set_(PIPELINE_RESULT, "pr-1", "run-1", "started", at(40))))
    assert digest.digest()["p1"].last_ran == at(50)
    digest.apply_all(log.batch(set_(PIPELINE_RESULT, "pr-3", "run-3", "started", at(5))))
    assert digest.digest()["p1"].last_ran == at(40)
    digest.apply_all(log.batch(set_(PIPELINE_RESULT, "pr-1", "run-1", "started", None)))
    assert digest.digest()["p1"].last_ran == at(5)


# -- history --------------------------------------------------------------------------------


def fold_history(events: list[AnyEvent]) -> HistoryProjection:
    projection = HistoryProjection()
    projection.apply_all(events)
    return projection


def test_history_records_creations(log: Log) -> None:
    history = fold_history(log.events)
    (change,) = history.object_changes("te-1")
    assert change == Change(
        seq=3,
        time=parse_time(log.events[2].ts),
        run_id="run-1",
        kind=TASK_EXECUTION,
        id="te-1",
        action="created",
        new={"status": PENDING, "task_id": "t1", "config": {"c": 1}},
        task_id="t1",
        pipeline_object=change.pipeline_object,
    )
    assert [c.id for c in history.changes()] == [e.id for e in log.events]
    assert [c.seq for c in history.run_changes("run-3")] == [10, 11, 12]


def test_history_old_and_new_values_with_the_message_of_the_batch(log: Log) -> None:
    log.batch(*status_change(TASK_RESULT, "tr-1", "run-1", RUNNING, at(1), "go"))
    log.batch(*status_change(TASK_RESULT, "tr-1", "run-1", DONE, at(3)))
    log.batch(set_(TASK_RESULT, "tr-1", "run-1", "message", "later"))
    history = fold_history(log.events)
    changes = [(c.field, c.old, c.new, c.message) for c in history.object_changes("tr-1")[1:]]
    assert changes == [
        ("status", PENDING, RUNNING, "go"),
        ("started", None, at(1), None),
        ("message", None, "go", None),
        ("status", RUNNING, DONE, None),
        ("completed", None, at(3), None),
        ("message", "go", "later", None),
    ]
    assert all(c.action == "set" for c in history.object_changes("tr-1")[1:])


def test_history_pairs_each_object_with_its_own_message(log: Log) -> None:
    log.batch(
        *status_change(TASK_RESULT, "tr-1", "run-1", RUNTIME_ERROR, at(1), "boom"),
        *status_change(TASK_RESULT, "tr-2", "run-1", CANCELLED, at(1), "cancelled"),
        *status_change(TASK_EXECUTION, "te-1", "run-1", RUNTIME_ERROR, at(1)),
    )
    history = fold_history(log.events)
    messages = {
        c.id: c.message for c in history.changes() if c.action == "set" and c.field == "status"
    }
    assert messages == {"tr-1": "boom", "tr-2": "cancelled", "te-1": None}


def test_history_keeps_a_removed_run(log: Log) -> None:
    log.batch(*status_change(PIPELINE_EXECUTION, "ex-2", "run-2", DONE, at(1)))
    log.batch(removed("run-2", "ex-2"))
    history = fold_history(log.events)
    changes = history.run_changes("run-2")
    assert [(c.id, c.action, c.field) for c in changes] == [
        ("ex-2", "created", None),
        ("pr-2", "created", None),
        ("ex-2", "set", "status"),
        ("ex-2", "set", "completed"),
        ("ex-2", "removed", None),
    ]
    assert history.object_changes("nope") == []
    assert history.run_changes("nope") == []


# -- snapshots ------------------------------------------------------------------------------


def busy_log() -> Log:
    """Every kind of event: creations, status changes with messages, custom values, removal."""
    log = Log()
    build_runs(log)
    log.batch(*status_change(TASK_RESULT, "tr-1", "run-1", RUNNING, at(1), "go ✓"))
    log.batch(*status_change(PIPELINE_RESULT, "pr-1", "run-1", RUNNING, at(1)))
    log.batch(*status_change(PIPELINE_RESULT, "pr-3", "run-3", RUNNING, at(2)))
    log.batch(*status_change(PIPELINE_RESULT, "pr-3", "run-3", DONE, at(7), ""))
    log.batch(set_(TASK_RESULT, "tr-2", "run-1", "payload", {"a": [1, 2.5], "b": {}}))
    log.batch(set_(TASK_RESULT, "tr-2", "run-1", "when", at(100)))
    log.batch(set_(TASK_RESULT, "tr-2", "run-1", "status", CANCELLED))
    log.batch(*status_change(PIPELINE_EXECUTION, "ex-2", "run-2", DONE, at(3)))
    log.batch(removed("run-2", "ex-2"))
    return log


def results_answers(projection: ResultsProjection) -> dict[str, Any]:
    records = [r for run in projection.run_ids() for r in projection.run_objects(run)]
    return {
        "len": len(projection),
        "runs": projection.run_ids(),
        "records": [
            (r.kind, r.id, r.run_id, r.parent_id, r.attrs, r.children, r.open_children)
            for r in records
        ],
        "p1": ids(projection.executions(pipeline_id="p1")),
        "p2": ids(projection.executions(pipeline_id="p2")),
        "removed": [projection.is_removed_run(r) for r in ("run-1", "run-2", "run-3")],
    }


def history_answers(projection: HistoryProjection) -> dict[str, Any]:
    return {
        "changes": projection.changes(),
        "objects": {i: projection.object_changes(i) for i in ("tr-1", "tr-2", "ex-2")},
        "runs": {r: projection.run_changes(r) for r in ("run-1", "run-2", "run-3")},
    }


Projection = ResultsProjection | DigestProjection | HistoryProjection
PROJECTIONS: list[tuple[type[Projection], Callable[[Any], Any]]] = [
    (ResultsProjection, results_answers),
    (DigestProjection, lambda p: p.digest()),
    (HistoryProjection, history_answers),
]


@pytest.mark.parametrize(("cls", "answers"), PROJECTIONS, ids=lambda v: getattr(v, "__name__", ""))
def test_snapshot_and_restore_give_the_same_answers(
    cls: type[Projection], answers: Callable[[Any], Any]
) -> None:
    events = busy_log().events
    whole = cls()
    whole.apply_all(events)
    restored = cls.restore(whole.snapshot())
    assert answers(restored) == answers(whole)
    # A snapshot taken half-way, restored and fed the rest, ends where the whole fold does.
    half = len(events) // 2
    while events[half - 1].more != 0:
        half += 1
    first = cls()
    first.apply_all(events[:half])
    resumed = cls.restore(first.snapshot())
    resumed.apply_all(events[half:])
    assert answers(resumed) == answers(whole)


@pytest.mark.parametrize(("cls", "answers"), PROJECTIONS, ids=lambda v: getattr(v, "__name__", ""))
def test_a_damaged_snapshot_is_refused(
    cls: type[Projection], answers: Callable[[Any], Any]
) -> None:
    projection = cls()
    projection.apply_all(busy_log().events)
    data = projection.snapshot()
    assert answers(cls.restore(data)) == answers(projection)
    for damaged in (data[: len(data) // 2], data[:-1], b"", b"\xc1 not msgpack"):
        with pytest.raises(SnapshotError, match="snapshot is damaged"):
            cls.restore(damaged)


# -- property: random status changes against a model ----------------------------------------

_RANK = {PENDING: 0, RUNNING: 1}
_FAILED = PipelineTaskStatus.error_statuses()
STATUSES = list(PipelineTaskStatus)


@dataclass
class Node:
    """The model of one result object: what the storage should hold for it."""

    parent: Node | None
    children: list[Node] = field(default_factory=list)
    status: PipelineTaskStatus = PENDING
    started: bool = False
    completed: bool = False
    message: str = ""

    def outcome(self) -> PipelineTaskStatus | None:
        statuses = [child.status for child in self.children]
        if not all(s.is_final for s in statuses):
            return None
        failed = [s for s in statuses if s in _FAILED]
        if failed:
            return failed[0]
        return CANCELLED if CANCELLED in statuses else DONE

    def report(self, status: PipelineTaskStatus, message: str, propagate: bool) -> bool:
        if _RANK.get(status, 2) <= _RANK.get(self.status, 2):
            return False
        self.status = status
        self.started = self.started or status is RUNNING
        self.completed = self.completed or status.is_final
        self.message = message
        if propagate and self.parent is not None:
            if status is RUNNING:
                self.parent.report(status, message, True)
            else:
                outcome = self.parent.outcome()
                if outcome is not None:
                    if outcome in _FAILED:  # the failure's message, not this child's
                        message = next(
                            c.message for c in self.parent.children if c.status is outcome
                        )
                    self.parent.report(outcome, message, True)
        return True


def model_of(storage_objects: list[PipelineStorageObject]) -> list[Node]:
    nodes: dict[str, Node] = {}
    for obj in storage_objects:
        parent = obj.get_parent()
        node = Node(None if parent is None else nodes[parent.get_id()])
        if node.parent is not None:
            node.parent.children.append(node)
        nodes[obj.get_id()] = node
    return list(nodes.values())


def tree(storage: PipelineResultsStorage) -> list[PipelineStorageObject]:
    found: list[PipelineStorageObject] = []
    for execution in storage.get_pipeline_executions():
        found.append(execution)
        for result in execution.get_pipeline_results():
            found.append(result)
            for task_execution in result.get_task_executions():
                found.append(task_execution)
                found.extend(task_execution.get_task_results())
    return found


# Weighted towards the changes runners make; propagation mostly on, as runners use it.
STEP_STATUSES = [PENDING, RUNNING, RUNNING, RUNNING, DONE, DONE, DONE, CANCELLED, CANCELLED]
STEP_STATUSES += sorted(_FAILED, key=lambda s: s.value)
STEPS = st.lists(
    st.tuples(
        st.integers(0, 1000),
        st.sampled_from(STEP_STATUSES),
        st.sampled_from(["", "a", "b"]),
        st.sampled_from([True, True, True, False]),
    ),
    max_size=15,
)


def check_against_model(
    storage: PipelineResultsStorage,
    results: int,
    tasks: list[int],
    steps: list[tuple[int, PipelineTaskStatus, str, bool]],
) -> None:
    """Build a run, apply ``steps`` to it and to the model, and compare them."""
    example = ExamplePipeline(
        "tests.Random",
        [ExampleTask(f"t{number}", objects=range(n)) for number, n in enumerate(tasks)],
        objects=list(range(results)),
    )
    storage.build_pipeline_execution(example, "run", ExampleRunner(), ExampleReporter(), None)
    objects = tree(storage)
    model = model_of(objects)
    for index, status, message, propagate in steps:
        target = index % len(objects)
        expected = model[target].report(status, message, propagate)
        got = objects[target].report_status_change(None, status, message, propagate)
        assert got is expected, (target, status, propagate)
    for obj, node in zip(tree(storage), model, strict=True):
        assert obj.get_status() is node.status, obj
        assert (obj.get_started() is not None) == node.started, obj
        assert (obj.get_completed() is not None) == node.completed, obj
        assert obj.get_message() == node.message, obj
    statuses = [
        node.status for obj, node in zip(objects, model, strict=True) if obj.kind == PIPELINE_RESULT
    ]
    item = storage.get_pipeline_digest()["tests.Random"]
    assert item.total_runs == results
    assert item.total_success == statuses.count(DONE)
    assert item.total_failure == sum(s in PipelineTaskStatus.failed_statuses() for s in statuses)


RUN_SHAPES = {
    "results": st.integers(1, 2),
    "tasks": st.lists(st.integers(1, 3), min_size=1, max_size=2),
    "steps": STEPS,
}


@settings(max_examples=250, deadline=None)
@given(**RUN_SHAPES)
def test_random_status_changes_follow_the_model_in_memory(
    results: int, tasks: list[int], steps: list[tuple[int, PipelineTaskStatus, str, bool]]
) -> None:
    check_against_model(MemoryPipelineResultsStorage(), results, tasks, steps)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**RUN_SHAPES)
def test_random_status_changes_follow_the_model_in_the_event_log(
    results: int, tasks: list[int], steps: list[tuple[int, PipelineTaskStatus, str, bool]]
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "log.jsonl"
        storage = EventLogPipelineResultsStorage(path, durability="none")
        try:
            check_against_model(storage, results, tasks, steps)
            reopened = EventLogPipelineResultsStorage(path)
            assert describe_storage(reopened) == describe_storage(storage)
            reopened.close()
        finally:
            storage.close()
