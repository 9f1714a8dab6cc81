"""A stateful property test: the event-log storage and the in-memory storage, driven
through the same random operations, answer every query the same.

The event-log storage is closed and opened again from its file at random points (with
and without snapshots), so its answers come from a replay of the log as often as from
its live projections. Time is a fake clock that moves one second per step, the same for
both storages, so ``started``, ``completed`` and the digest compare exactly.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import pipelines_events.results.storageobject as clocked  # where status changes read the time
from pipelines_events.errors import PipelinesEventsError
from pipelines_events.results.base import PipelineResultsStorage, PipelineStorageObject
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.memory import MemoryPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from tests.reliability.common import (
    EXTRA_FIELDS,
    Reporter,
    Runner,
    TinyPipeline,
    TinyTask,
    snapshot,
)

pytestmark = pytest.mark.slow  # the quick subset (-m 'not slow') leaves these out

T0 = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
KINDS = ("pipeline_execution", "pipeline_result", "task_execution", "task_result")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=5).filter(str.isprintable), children, max_size=3)
    ),
    max_leaves=8,
)
iterators = st.one_of(st.none(), st.lists(st.integers(0, 9), max_size=3))
statuses = st.sampled_from(list(PipelineTaskStatus))
messages = st.sampled_from(["", "", "ok", "boom: ValueError", "ünïcødé ✓"])


class Clock:
    """``utc_now`` for both storages: moves only when the test says so."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class SameAnswers(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="stateful-"))
        self.path = self.directory / "log.jsonl"
        self.clock = Clock()
        self.real_now = clocked.utc_now
        clocked.utc_now = self.clock
        self.log: EventLogPipelineResultsStorage = EventLogPipelineResultsStorage(
            self.path, durability="none"
        )
        self.memory = MemoryPipelineResultsStorage()
        self.ids: dict[str, str] = {}
        """Event-log id -> memory id of every object built."""
        self.kinds: dict[str, str] = {}
        self.memory_objects: dict[str, PipelineStorageObject] = {}
        self.live: list[str] = []
        """Event-log ids of the objects whose run was not removed."""
        self.runs = 0
        self.reopens = 0

    def teardown(self) -> None:
        clocked.utc_now = self.real_now
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- helpers ------------------------------------------------------------------------

    def log_object(self, object_id: str) -> PipelineStorageObject:
        kind = self.kinds[object_id]
        getter = {
            "pipeline_result": self.log.get_pipeline_result,
            "task_execution": self.log.get_task_execution,
            "task_result": self.log.get_task_result,
        }.get(kind)
        if getter is None:
            (found,) = [e for e in self.log.get_pipeline_executions() if e.get_id() == object_id]
            return found
        obj = getter(object_id)
        assert obj is not None, object_id
        return obj

    def pair(self, index: int) -> tuple[PipelineStorageObject, PipelineStorageObject]:
        object_id = self.live[index % len(self.live)]
        return self.log_object(object_id), self.memory_objects[self.ids[object_id]]

    def both(self, call: Any) -> Any:
        """Call ``call(storage_or_object)`` on both sides; same result or same error."""
        outcomes = []
        for side in (0, 1):
            try:
                outcomes.append(("ok", call(side)))
            except PipelinesEventsError as exc:
                outcomes.append(("error", type(exc).__name__))
        assert outcomes[0] == outcomes[1], outcomes
        return outcomes[0]

    def change(self, objects: Any, status: PipelineTaskStatus, message: str = "") -> None:
        """The same status change on both objects (``objects`` is a pair)."""
        self.both(lambda side: objects[side].report_status_change(None, status, message))

    def tick(self) -> None:
        self.clock.now += timedelta(seconds=1)

    def record(self, log_obj: PipelineStorageObject, memory_obj: PipelineStorageObject) -> None:
        """Map the ids of ``log_obj``'s tree to ``memory_obj``'s, in creation order."""
        self.ids[log_obj.get_id()] = memory_obj.get_id()
        self.kinds[log_obj.get_id()] = log_obj.kind
        self.memory_objects[memory_obj.get_id()] = memory_obj
        self.live.append(log_obj.get_id())
        log_children = log_obj.get_children()
        memory_children = memory_obj.get_children()
        assert len(log_children) == len(memory_children)
        for log_child, memory_child in zip(log_children, memory_children, strict=True):
            self.record(log_child, memory_child)

    def mapped(self, objects: Any) -> list[str]:
        return [self.ids[o.get_id()] for o in objects]

    # -- rules --------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        self.tick()

    @rule(
        pipeline_id=st.sampled_from(["p1", "p2"]),
        objects=iterators,
        tasks=st.lists(iterators, min_size=0, max_size=3),
        reuse=st.booleans(),
    )
    def build_run(self, pipeline_id: str, objects: Any, tasks: list[Any], reuse: bool) -> None:
        self.tick()
        if reuse and self.runs:
            run_id = f"run-{self.runs - 1}"  # taken: both refuse it
        else:
            run_id = f"run-{self.runs}"
            self.runs += 1
        pipeline = TinyPipeline(
            pipeline_id,
            objects=objects,
            tasks=[TinyTask(f"t{i}", items) for i, items in enumerate(tasks)],
        )
        storages: list[PipelineResultsStorage] = [self.log, self.memory]
        built: list[Any] = []

        def go(side: int) -> str:
            execution = storages[side].build_pipeline_execution(
                pipeline, run_id, Runner(), Reporter(), {"objects": objects}
            )
            built.append(execution)
            return execution.get_run_id()

        outcome = self.both(go)
        if outcome[0] == "ok":
            self.record(built[0], built[1])

    @precondition(lambda self: self.live)
    @rule(
        index=st.integers(0, 10**6),
        status=statuses,
        message=messages,
        propagate=st.booleans(),
    )
    def report_status_change(
        self, index: int, status: PipelineTaskStatus, message: str, propagate: bool
    ) -> None:
        self.tick()
        objects = self.pair(index)
        self.both(lambda side: objects[side].report_status_change(None, status, message, propagate))

    @precondition(lambda self: self.live)
    @rule(index=st.integers(0, 10**6), final=statuses, message=messages)
    def run_a_task_result(self, index: int, final: PipelineTaskStatus, message: str) -> None:
        """A task result goes RUNNING, then to ``final``, propagating: what runners do."""
        results = [i for i in self.live if self.kinds[i] == "task_result"]
        if not results:
            return
        object_id = results[index % len(results)]
        objects = self.log_object(object_id), self.memory_objects[self.ids[object_id]]
        for status in (PipelineTaskStatus.RUNNING, final):
            self.tick()
            self.change(objects, status, message)

    @precondition(lambda self: self.live)
    @rule(index=st.integers(0, 10**6), failing=st.lists(st.booleans(), max_size=6))
    def run_a_whole_run(self, index: int, failing: list[bool]) -> None:
        """Every task result of a run, in order, RUNNING then DONE (or RUNTIME_ERROR)."""
        run_id = self.log_run(self.live[index % len(self.live)])
        results = [
            i for i in self.live if self.kinds[i] == "task_result" and self.log_run(i) == run_id
        ]
        for number, object_id in enumerate(results):
            objects = self.log_object(object_id), self.memory_objects[self.ids[object_id]]
            fails = number < len(failing) and failing[number]
            final = PipelineTaskStatus.RUNTIME_ERROR if fails else PipelineTaskStatus.DONE
            for status in (PipelineTaskStatus.RUNNING, final):
                self.tick()
                self.change(objects, status)

    @precondition(lambda self: self.live)
    @rule(index=st.integers(0, 10**6), field=st.sampled_from(EXTRA_FIELDS), value=json_values)
    def set_field(self, index: int, field: str, value: Any) -> None:
        objects = self.pair(index)
        self.both(lambda side: getattr(objects[side], f"set_{field}")(value))

    @precondition(lambda self: self.live)
    @rule(index=st.integers(0, 10**6), value=json_values, bad=st.booleans())
    def atomic_sets(self, index: int, value: Any, bad: bool) -> None:
        """Two sets in one atomic block; with ``bad`` the second is refused: neither is
        stored on the event log (the memory storage, which has no atomic blocks, keeps
        the first, so the check is only on the event log)."""
        log_obj, memory_obj = self.pair(index)
        if bad:
            before = snapshot(self.log)
            with pytest.raises(PipelinesEventsError), log_obj.atomic():
                log_obj.set_note(value)
                log_obj.set_count(float("nan"))
            assert snapshot(self.log) == before
            return
        for obj in (log_obj, memory_obj):
            with obj.atomic():
                obj.set_note(value)
                obj.set_count(value)
            obj.save()

    @precondition(lambda self: self.live)
    @rule(index=st.integers(0, 10**6), value=st.sampled_from([float("nan"), {1: 2}, object()]))
    def refused_value(self, index: int, value: Any) -> None:
        objects = self.pair(index)
        outcome = self.both(lambda side: objects[side].set_data(value))
        assert outcome == ("error", "InvalidValueError")

    @rule(before=st.one_of(st.none(), st.integers(-5, 5)))
    def cleanup(self, before: int | None) -> None:
        self.tick()
        when = None if before is None else self.clock.now + timedelta(seconds=before)
        removed = self.both(lambda side: [self.log, self.memory][side].cleanup(before=when))
        assert removed[0] == "ok"
        if removed[1]:
            gone = set(removed[1])
            self.live = [i for i in self.live if self.log_run(i) not in gone]

    def log_run(self, object_id: str) -> str:
        return self.memory_objects[self.ids[object_id]].get_run_id()

    @rule(snapshots=st.sampled_from([None, 1, 5]))
    def reopen(self, snapshots: int | None) -> None:
        """Close the event-log storage and open it again from the file."""
        self.log.close()
        kwargs: dict[str, Any] = {"durability": "none"}
        if snapshots is None:
            kwargs["snapshots"] = False
        else:
            kwargs["snapshot_every"] = snapshots
        self.log = EventLogPipelineResultsStorage(self.path, **kwargs)
        self.reopens += 1

    # -- what must hold after every step ----------------------------------------------

    @invariant()
    def same_state(self) -> None:
        assert snapshot(self.log) == snapshot(self.memory)

    @invariant()
    def same_query_answers(self) -> None:
        log, memory = self.log, self.memory
        for pipeline_id in (None, "p1", "p2", "nope"):
            assert self.mapped(log.get_pipeline_executions(pipeline_id)) == [
                e.get_id() for e in memory.get_pipeline_executions(pipeline_id)
            ]
        for number in range(self.runs + 1):
            run_id = f"run-{number}"
            log_execution = log.get_pipeline_execution(run_id)
            memory_execution = memory.get_pipeline_execution(run_id)
            assert (log_execution is None) == (memory_execution is None)
            for pipeline_id in (None, "p1"):
                assert self.mapped(log.get_pipeline_results(run_id, pipeline_id)) == [
                    r.get_id() for r in memory.get_pipeline_results(run_id, pipeline_id)
                ]
            assert self.mapped(log.get_task_executions(run_id)) == [
                t.get_id() for t in memory.get_task_executions(run_id)
            ]
            assert self.mapped(log.get_task_results(run_id)) == [
                t.get_id() for t in memory.get_task_results(run_id)
            ]
        for object_id in self.live:
            memory_id = self.ids[object_id]
            kind = self.kinds[object_id]
            if kind == "pipeline_result":
                assert self.mapped(log.get_task_executions(pipeline_result_id=object_id)) == [
                    t.get_id() for t in memory.get_task_executions(pipeline_result_id=memory_id)
                ]
                assert self.mapped(log.get_task_results(pipeline_result_id=object_id)) == [
                    t.get_id() for t in memory.get_task_results(pipeline_result_id=memory_id)
                ]
            elif kind == "task_execution":
                assert self.mapped(log.get_task_results(task_execution_id=object_id)) == [
                    t.get_id() for t in memory.get_task_results(task_execution_id=memory_id)
                ]
        for getter in ("get_pipeline_result", "get_task_execution", "get_task_result"):
            assert getattr(log, getter)("no-such-id") is None
            assert getattr(memory, getter)("no-such-id") is None


SameAnswers.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestSameAnswers = SameAnswers.TestCase
