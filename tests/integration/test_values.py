"""Values on the event-log storage: every value it accepts survives a snapshot and a
reopen exactly; nesting deeper than the limit is refused before anything is written, and
everything accepted is read back by every command; what a ``get_`` returns is a copy."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pipelines_events.cli import main
from pipelines_events.errors import InvalidValueError
from pipelines_events.events import MAX_DEPTH, FieldSet, encode_value
from pipelines_events.log import JsonlEventLog
from pipelines_events.results import helpers
from pipelines_events.results.base import PipelineExecution, PipelineStorageObject
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.task import Task
from pipelines_events.testing import (
    ExamplePipeline,
    ExampleReporter,
    ExampleRunner,
    ExampleTask,
    describe_storage,
)
from projections import DigestProjection, ResultsProjection
from tests.support.snapshot_support import SnapshotIgnored, read_snapshot

T0 = datetime(2026, 11, 5, 12, 0, 0, 123456, tzinfo=UTC)
PLUS_FIVE = timezone(timedelta(hours=5))


def nested(levels: int) -> Any:
    """``levels`` lists and dicts inside one another, alternating, around a str."""
    value: Any = "bottom"
    for level in range(levels):
        value = [value] if level % 2 else {"down": value}
    return value


VALUES: list[Any] = [
    2**64,
    2**64 - 1,
    -(2**63) - 1,
    2**100,
    -(2**200),
    2**11999,  # 12000 bits, the longest int the log takes
    0,
    True,
    False,
    0.1,
    -0.0,
    1.0,
    5e-324,
    1.7976931348623157e308,
    "",
    "ünïcødé ✓ \u2028 \x00",
    None,
    [],
    {},
    [2**64, {"x": [1.5, None, -(2**70)]}, "s", True],
    {"big": 2**65, "nested": {"list": [[], {}], "float": 2.5}},
    PipelineTaskStatus.DONE,
    T0,
    nested(MAX_DEPTH),
]


def same(left: Any, right: Any) -> bool:
    """Equal and of the same types at every level (floats by their exact repr, datetimes
    with their offset)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return repr(left) == repr(right)
    if isinstance(left, datetime):
        return bool(left == right and left.utcoffset() == right.utcoffset())
    if isinstance(left, dict):
        return list(left) == list(right) and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


def open_storage(path: Path, **kwargs: Any) -> EventLogPipelineResultsStorage:
    kwargs.setdefault("durability", "none")
    kwargs.setdefault("log_options", {"run_index": False})  # the full fold and its snapshot
    kwargs.setdefault("snapshot_every", 1)
    return EventLogPipelineResultsStorage(path, **kwargs)


def build(
    storage: EventLogPipelineResultsStorage,
    run_id: str = "run-1",
    *,
    input_data: Any = None,
    config: Any = None,
    pipeline_object: Any = 1,
    task_object: Any = "a",
) -> PipelineExecution:
    pipeline = ExamplePipeline(
        "tests.Values",
        [ExampleTask("only", config=config, objects=[task_object])],
        objects=[pipeline_object],
    )
    return storage.build_pipeline_execution(
        pipeline, run_id, ExampleRunner(), ExampleReporter(), input_data
    )


def objects(execution: PipelineExecution) -> list[PipelineStorageObject]:
    (result,) = execution.get_pipeline_results()
    (task_execution,) = result.get_task_executions()
    (task_result,) = task_execution.get_task_results()
    return [execution, result, task_execution, task_result]


def fields(
    storage: EventLogPipelineResultsStorage, run_id: str = "run-1", payloads: bool = True
) -> list[Any]:
    """Every stored value of the run: build values and the ``payload`` of each object."""
    execution = storage.get_pipeline_execution(run_id)
    assert execution is not None
    execution_, result, task_execution, task_result = objects(execution)
    return [
        execution.get_input_data(),
        result.get_serializable_pipeline_object(),
        task_execution.get_config(),
        task_result.get_serializable_task_object(),
        *(
            obj.get_payload()
            for obj in (execution_, result, task_execution, task_result)
            if payloads
        ),
    ]


def snapshot_state(path: Path) -> tuple[Any, Any]:
    """What the snapshot beside ``path`` holds, restored by the projections themselves."""
    snapshot = read_snapshot(path.with_name(path.name + ".snapshot"))
    results = ResultsProjection.restore(snapshot.parts["results"])
    digest = DigestProjection.restore(snapshot.parts["digest"])
    return [(r.id, r.attrs) for r in results.run_objects("run-1")], digest.digest()


# -- every value survives a snapshot and a reopen -----------------------------------------


@pytest.mark.parametrize("value", VALUES, ids=lambda v: repr(v)[:40])
def test_every_value_survives_a_snapshot_and_a_reopen(tmp_path: Path, value: Any) -> None:
    path = tmp_path / "log.jsonl"
    build_value = None if isinstance(value, PipelineTaskStatus | datetime) else value
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no SnapshotIgnored, no other warning
        storage = open_storage(path)
        execution = build(
            storage,
            input_data=value,
            config=build_value,
            pipeline_object=value,
            task_object=value,
        )
        for obj in objects(execution):
            obj.set_payload(value)
        live = fields(storage)
        for got in live:
            assert got == value or got is None
        storage.close()  # writes the snapshot
        replayed = open_storage(path, snapshots=False)
        from_snapshot = open_storage(path)
        answers = fields(from_snapshot)
        assert all(same(a, b) for a, b in zip(answers, live, strict=True)), (answers, live)
        assert all(same(a, b) for a, b in zip(fields(replayed), live, strict=True))
        assert describe_storage(from_snapshot) == describe_storage(replayed)
        records, digest = snapshot_state(path)
        assert digest == replayed.get_pipeline_digest()
        assert len(records) == 4
        replayed.close()
        from_snapshot.close()


def test_an_int_over_64_bits_does_not_break_close_or_open(tmp_path: Path) -> None:
    """``close()`` and the constructor write snapshots: neither raises for 2**64 (they
    raised OverflowError from the msgpack encoder)."""
    path = tmp_path / "log.jsonl"
    storage = open_storage(path, snapshots=False)
    (_, _, _, task_result) = objects(build(storage))
    task_result.set_payload(2**64)
    task_result.set_other([-(2**64), {"n": 2**100}])
    storage.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # The log holds more events than snapshot_every: opening writes a snapshot.
        storage = open_storage(path, snapshot_every=3)
        assert storage.snapshot_path.exists()
        found = storage.get_task_results()[0]
        assert found.get_payload() == 2**64
        found.set_payload(-(2**64) - 5)
        storage.close()
        reopened = open_storage(path)
    assert reopened.get_task_results()[0].get_payload() == -(2**64) - 5
    assert reopened.get_task_results()[0].get_other() == [-(2**64), {"n": 2**100}]
    reopened.close()


def test_a_datetime_with_its_own_offset_in_the_log_keeps_it_through_a_snapshot(
    tmp_path: Path,
) -> None:
    """The storage writes datetimes in UTC, but a log may hold another offset (written by
    another tool): a snapshot gives back the same datetime with the same offset."""
    path = tmp_path / "log.jsonl"
    storage = open_storage(path)
    (_, _, _, task_result) = objects(build(storage))
    task_result.report_status_change(None, PipelineTaskStatus.RUNNING)
    storage.close()
    moment = datetime(2026, 3, 1, 9, 30, 15, 500, tzinfo=PLUS_FIVE)
    odd = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=5, seconds=30)))
    with JsonlEventLog(path, durability="none") as log:
        log.append(
            [
                FieldSet(
                    run_id="run-1",
                    kind="task_result",
                    id=task_result.get_id(),
                    field=name,
                    value=value.isoformat(),
                    vtype="datetime",
                )
                for name, value in (("deadline", moment), ("started", odd), ("completed", odd))
            ]
        )
    replayed = open_storage(path, snapshot_every=1)  # replays the new events, snapshots
    replayed.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_snapshot = open_storage(path)
    found = from_snapshot.get_task_results()[0]
    assert same(found.get_deadline(), moment)
    assert same(found.get_started(), odd)
    assert same(found.get_completed(), odd)
    from_snapshot.close()


# -- nesting --------------------------------------------------------------------------------


def test_nesting_one_level_over_the_limit_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    storage = open_storage(path)
    (_, _, _, task_result) = objects(build(storage))
    size = path.stat().st_size
    too_deep = nested(MAX_DEPTH + 1)
    with pytest.raises(InvalidValueError) as caught:
        task_result.set_payload(too_deep)
    assert str(caught.value).startswith(
        "field 'payload': the value nests lists and dicts more than 64 levels deep ("
    )
    assert str(caught.value).endswith("is level 65); at most 64 levels can be stored")
    with pytest.raises(InvalidValueError, match=r"^field 'input_data': .* more than 64 levels"):
        build(storage, "run-2", input_data=too_deep)
    with pytest.raises(InvalidValueError, match=r"^field 'config': .* more than 64 levels"):
        build(storage, "run-3", config={"deep": nested(MAX_DEPTH)})
    with pytest.raises(InvalidValueError, match="'serializable_task_object'"):
        build(storage, "run-4", task_object=too_deep)
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(InvalidValueError, match=r"payload\[0\] contains itself \(a cycle\)"):
        task_result.set_payload(cycle)
    assert path.stat().st_size == size
    assert [e.get_run_id() for e in storage.get_pipeline_executions()] == ["run-1"]
    storage.close()


def test_nesting_is_checked_without_recursing_past_the_limit() -> None:
    """A value nested far deeper than Python's recursion limit is refused as too deep
    (it raised a bare RecursionError)."""
    storage_value = nested(sys.getrecursionlimit() * 3)
    with pytest.raises(InvalidValueError, match="more than 64 levels deep"):
        encode_value("payload", storage_value)


@pytest.fixture
def clean_storage_setting() -> Iterator[None]:
    helpers.reset_storage_object()
    yield
    helpers.reset_storage_object()


def _at_depth(frames: int, call: Callable[[], int]) -> int:
    """``call()`` from ``frames`` Python frames deeper than here."""
    if frames <= 0:
        return call()
    return _at_depth(frames - 1, call)


@pytest.mark.usefixtures("clean_storage_setting")
def test_values_at_the_limit_are_read_back_by_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "log.jsonl"
    deep = nested(MAX_DEPTH)
    storage = open_storage(path)
    execution = build(
        storage,
        input_data=deep,
        config={"deep": nested(MAX_DEPTH - 1)},
        pipeline_object=deep,
        task_object=deep,
    )
    for obj in objects(execution):
        obj.set_payload(deep)
    (*_, task_result) = objects(execution)
    task_result.report_status_change(None, PipelineTaskStatus.DONE, "done")
    storage.close()  # a snapshot too
    export = tmp_path / "export.jsonl"
    commands = [
        ["runs", "--log", str(path)],
        ["runs", "--log", str(path), "--format", "json"],
        ["show", "run-1", "--log", str(path)],
        ["show", "run-1", "--log", str(path), "--format", "json"],
        ["history", "run-1", "--log", str(path)],
        ["history", "run-1", "--log", str(path), "--format", "jsonl"],
        ["export", "run-1", "--log", str(path), "-o", str(export)],
        ["verify", "--log", str(export)],
        ["history", "run-1", "--log", str(export), "--format", "json"],
    ]
    # From a deep stack too: a value accepted from a shallow stack must not crash a
    # reader called from a deeper one.
    for frames in (0, sys.getrecursionlimit() // 2):
        export.unlink(missing_ok=True)
        for argv in commands:
            capsys.readouterr()
            status = _at_depth(frames, lambda argv=argv: main(argv))  # type: ignore[misc]
            out, err = capsys.readouterr()
            assert status == 0, (argv, out, err)
            assert "Traceback" not in err
            if "json" in argv:
                assert json.loads(out)
            if argv[0] == "history" and "jsonl" in argv:
                changes = [json.loads(line) for line in out.splitlines()]
                assert any(change.get("new") == deep for change in changes)
    shown = json.loads(_run(capsys, ["show", "run-1", "--log", str(path), "--format", "json"]))
    assert deep in _leaves(shown)


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


def _leaves(value: Any) -> Iterator[Any]:
    """Every value inside a JSON document, the document included."""
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)


# -- what a get_ returns cannot change the stored state --------------------------------------


def test_changing_what_a_get_returns_writes_nothing_and_no_snapshot_keeps_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.jsonl"
    storage = open_storage(path, snapshot_every=10**9)
    execution = build(
        storage,
        input_data={"rows": [1, 2]},
        config={"retries": 2, "steps": ["a"]},
        pipeline_object={"n": 1},
        task_object={"letter": "a"},
    )
    execution_, result, task_execution, task_result = objects(execution)
    task_result.set_payload({"list": [1, {"deep": [2]}]})
    before = describe_storage(storage)
    size = path.stat().st_size

    task_execution.get_config().setdefault("retries", 3)
    task_execution.get_config()["steps"].append("b")
    task_result.get_config()["added"] = True
    for obj in (execution_, result, task_execution, task_result):
        obj.get_input_data()["rows"].append(3)
    for obj in (result, task_execution, task_result):
        obj.get_serializable_pipeline_object()["n"] = 99
    task_result.get_serializable_task_object()["letter"] = "z"
    task_result.get_payload()["list"][1]["deep"].append(3)
    assert path.stat().st_size == size  # no event written
    storage.write_snapshot()
    storage.close()
    assert path.stat().st_size == size
    for reopened in (open_storage(path), open_storage(path, snapshots=False)):
        assert describe_storage(reopened) == before
        found = reopened.get_task_executions()[0]
        assert found.get_config() == {"retries": 2, "steps": ["a"]}
        assert reopened.get_task_results()[0].get_payload() == {"list": [1, {"deep": [2]}]}
        reopened.close()
    records, _ = snapshot_state(path)
    config = next(attrs["config"] for _, attrs in records if "config" in attrs)
    assert config == {"retries": 2, "steps": ["a"]}


class Retrying(Task):
    """Changes its own config while it runs, as tasks do with defaults."""

    seen: ClassVar[list[Any]] = []

    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        self.config.setdefault("retries", 3)
        self.config["attempt"] = self.config.get("attempt", 0) + 1
        Retrying.seen.append(dict(self.config))


@pytest.mark.usefixtures("clean_storage_setting")
def test_a_task_changing_its_config_while_running_changes_nothing_stored(
    tmp_path: Path,
) -> None:
    from pipelines_events.conf import settings
    from pipelines_events.pipeline import Pipeline

    class Changes(Pipeline):
        only = Retrying(config={"limit": 1})

        def get_iterator(self) -> Any:
            return ["x", "y"]

    path = tmp_path / "log.jsonl"
    Retrying.seen.clear()
    setting = (
        "pipelines_events.results.eventlog.EventLogPipelineResultsStorage",
        {"path": path, "snapshot_every": 1},
    )
    with settings.override_settings(PIPELINES_PIPELINES_RESULTS_STORAGE=setting):
        execution = Changes().start(run_id="retrying")
        assert execution.get_status() is PipelineTaskStatus.DONE
        configs = [
            te.get_config() for te in execution.get_pipeline_results()[0].get_task_executions()
        ]
        assert configs == [{"limit": 1}]
        helpers.reset_storage_object()  # closes the storage that ran the tasks: a snapshot
    # Each task execution loaded its own copy of the stored config.
    assert Retrying.seen == [{"limit": 1, "retries": 3, "attempt": 1}] * 2
    with JsonlEventLog(path) as log:
        fields_set = {e.field for e in log.read_new() if isinstance(e, FieldSet)}
    assert "config" not in fields_set
    for reopened in (open_storage(path), open_storage(path, snapshots=False)):
        configs = [te.get_config() for te in reopened.get_task_executions()]
        assert configs == [{"limit": 1}, {"limit": 1}]
        reopened.close()


def test_a_value_changed_after_set_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    storage = open_storage(path)
    (*_, task_result) = objects(build(storage))
    value: dict[str, Any] = {"rows": [1]}
    task_result.set_payload(value)
    value["rows"].append(2)
    value["new"] = True
    assert task_result.get_payload() == {"rows": [1]}
    storage.close()
    assert open_storage(path).get_task_results()[0].get_payload() == {"rows": [1]}


def test_scalar_gets_are_not_copied(tmp_path: Path) -> None:
    """Only lists and dicts are copied: a str comes back as the stored object."""
    storage = open_storage(tmp_path / "log.jsonl")
    (*_, task_result) = objects(build(storage))
    task_result.set_payload("text " * 10)
    assert task_result.get_payload() is task_result.get_payload()
    assert task_result.get_status() is PipelineTaskStatus.PENDING
    storage.close()


def test_build_values_that_are_statuses_or_datetimes_come_back_as_such(tmp_path: Path) -> None:
    """A run's input data, pipeline and task objects may be a status or an aware datetime
    (as ``set_`` values may): a replay gives them back as such (it gave a str)."""
    path = tmp_path / "log.jsonl"
    storage = open_storage(path)
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=PLUS_FIVE)
    build(
        storage,
        input_data=moment,
        pipeline_object=PipelineTaskStatus.CANCELLED,
        task_object=moment,
    )
    live = fields(storage, payloads=False)
    storage.close()
    for reopened in (open_storage(path), open_storage(path, snapshots=False)):
        got = fields(reopened, payloads=False)
        assert got == [moment, PipelineTaskStatus.CANCELLED, None, moment]
        assert all(same(a, b) for a, b in zip(got, live, strict=True))
        assert type(got[1]) is PipelineTaskStatus
        reopened.close()


def test_the_snapshot_is_json_values_in_the_log_encoding(tmp_path: Path) -> None:
    """The results part of a snapshot holds big ints as JSON does (msgpack cannot)."""
    path = tmp_path / "log.jsonl"
    storage = open_storage(path)
    (*_, task_result) = objects(build(storage))
    task_result.set_payload(2**64)
    storage.close()
    part = read_snapshot(storage.snapshot_path).parts["results"]
    assert 2**64 in _leaves(json.loads(part))


def test_a_snapshot_that_cannot_be_encoded_warns_and_close_still_closes(tmp_path: Path) -> None:
    """A value far deeper than the limit, written into the log by another tool, cannot be
    encoded from a deep call stack: ``close()`` warns ``SnapshotIgnored`` and closes, and
    the next open replays the log."""
    path = tmp_path / "log.jsonl"
    storage = open_storage(path, snapshots=False)
    (*_, task_result) = objects(build(storage))
    storage.close()
    deep: list[Any] = []
    for _ in range(600):
        deep = [deep]
    with JsonlEventLog(path, durability="none") as log:
        log.append(
            [
                FieldSet(
                    run_id="run-1",
                    kind="task_result",
                    id=task_result.get_id(),
                    field="deep",
                    value=deep,
                )
            ]
        )
    storage = open_storage(path)  # replays the deep value and snapshots it (shallow stack)
    written = read_snapshot(storage.snapshot_path).position
    found = storage.get_task_results()[0]

    def change_and_close() -> int:
        found.set_after(1)
        storage.close()  # a snapshot is due: encoding it from here fails
        return 0

    with pytest.warns(SnapshotIgnored, match=r"cannot encode the snapshot \(RecursionError"):
        _at_depth(sys.getrecursionlimit() - 500, change_and_close)
    assert read_snapshot(storage.snapshot_path).position == written  # the previous one
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reopened = open_storage(path)
    assert reopened.get_task_results()[0].get_deep() == deep
    assert reopened.get_task_results()[0].get_after() == 1
    reopened.close()
