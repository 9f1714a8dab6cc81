"""The storage tests of the values of fields: the caller's copies, nesting, refused values."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pytest

from pipelines_events.errors import InvalidValueError
from pipelines_events.events import MAX_DEPTH
from pipelines_events.results.base import (
    PipelineExecution,
    PipelineResultsStorage,
    TaskResult,
)
from pipelines_events.testing.capabilities import StorageTestCase
from pipelines_events.testing.examples import (
    ExamplePipeline,
    ExampleTask,
    _all_objects,
    _build,
    _fresh,
    _nested,
    _tree,
)

__all__ = ["FieldTests"]


class FieldTests(StorageTestCase):
    """A stored value is the storage's own copy; a value that cannot be stored is refused whole."""

    __test__ = False

    # -- what a get_ returns is the caller's ------------------------------------------

    def test_changing_what_a_get_returns_changes_nothing(
        self, storage: PipelineResultsStorage
    ) -> None:
        execution = _build(storage, input_data={"source": "tests", "rows": [1, 2]})
        results, task_executions, task_results = _tree(execution)
        for obj in _all_objects(execution):
            obj.set_payload({"rows": [1, {"deep": [2]}], "flag": True})
            obj.set_items([{"n": 1}])
        before = self.describe(storage)
        for obj in _all_objects(execution):
            payload = obj.get_payload()
            payload["rows"][1]["deep"].append(3)
            payload["rows"].append("more")
            payload["added"] = 1
            obj.get_items()[0]["n"] = 99
            obj.get_items().append("x")
        for obj in [execution, *results, *task_executions, *task_results]:
            data = obj.get_input_data()
            data["rows"].append(3)
            data.setdefault("retries", 3)
        for obj in [*results, *task_executions, *task_results]:
            obj.get_serializable_pipeline_object()["n"] = -1
        for obj in [*task_executions, *task_results]:
            config = obj.get_config()
            if config is not None:
                config.setdefault("retries", 3)
                config["added"] = True
        for task_result in task_results:
            task_object = task_result.get_serializable_task_object()
            if isinstance(task_object, dict):
                task_object["letter"] = "changed"
        assert self.describe(storage) == before
        for obj in _all_objects(execution):
            fresh = _fresh(storage, obj)
            assert fresh.get_payload() == {"rows": [1, {"deep": [2]}], "flag": True}
            assert fresh.get_items() == [{"n": 1}]

    def test_changing_a_value_after_storing_it_changes_nothing(
        self, storage: PipelineResultsStorage
    ) -> None:
        config: dict[str, Any] = {"retries": 2, "steps": ["a"]}
        task_object: dict[str, Any] = {"letter": "a", "tags": ["x"]}
        pipeline_object: dict[str, Any] = {"n": 1, "path": [0]}
        input_data: dict[str, Any] = {"source": "tests", "rows": [1]}
        pipeline = ExamplePipeline(
            "tests.P",
            [ExampleTask("only", config=config, objects=[task_object])],
            objects=[pipeline_object],
        )
        execution = _build(storage, pipeline=pipeline, input_data=input_data)
        _, (task_execution,), (task_result,) = _tree(execution)
        payload: dict[str, Any] = {"rows": [1]}
        task_result.set_payload(payload)
        config["steps"].append("b")
        config["retries"] = 5
        task_object["tags"].append("y")
        pipeline_object["path"].append(1)
        input_data["rows"].append(2)
        payload["rows"].append(2)
        fresh = _fresh(storage, task_result)
        assert isinstance(fresh, TaskResult)
        assert fresh.get_config() == {"retries": 2, "steps": ["a"]}
        assert fresh.get_serializable_task_object() == {"letter": "a", "tags": ["x"]}
        assert fresh.get_serializable_pipeline_object() == {"n": 1, "path": [0]}
        assert fresh.get_input_data() == {"source": "tests", "rows": [1]}
        assert fresh.get_payload() == {"rows": [1]}
        assert _fresh(storage, task_execution).get_config() == {"retries": 2, "steps": ["a"]}

    # -- nesting ------------------------------------------------------------------------

    def test_values_nested_to_the_limit_round_trip_and_deeper_are_refused(
        self, storage: PipelineResultsStorage
    ) -> None:
        at_limit = _nested(MAX_DEPTH)
        execution = _build(
            storage,
            pipeline=ExamplePipeline(
                "tests.P",
                [ExampleTask("only", config={"deep": _nested(MAX_DEPTH - 1)})],
                objects=[_nested(MAX_DEPTH)],
            ),
            input_data=_nested(MAX_DEPTH),
        )
        _, (task_execution,), (task_result,) = _tree(execution)
        task_result.set_payload(at_limit)
        assert _fresh(storage, task_result).get_payload() == at_limit
        assert _fresh(storage, execution).get_input_data() == at_limit
        config = _fresh(storage, task_execution).get_config()
        assert config == {"deep": _nested(MAX_DEPTH - 1)}
        before = self.describe(storage)
        too_deep = _nested(MAX_DEPTH + 1)
        for value in (too_deep, {"key": _nested(MAX_DEPTH)}, (_nested(MAX_DEPTH),)):
            with pytest.raises(InvalidValueError, match="'payload'") as caught:
                task_result.set_payload(value)
            caught.match(f"more than {MAX_DEPTH} levels deep")
        with pytest.raises(InvalidValueError, match=r"'input_data'.*more than 64 levels deep"):
            _build(storage, "run-2", input_data=too_deep)
        too_deep_config = ExamplePipeline("tests.P", [ExampleTask("a", config=too_deep)])
        with pytest.raises(InvalidValueError, match=r"'config'.*more than 64 levels deep"):
            _build(storage, "run-3", too_deep_config)
        assert self.describe(storage) == before
        assert _fresh(storage, task_result).get_payload() == at_limit

    # -- bad values ---------------------------------------------------------------------

    def test_set_status_refuses_what_is_not_a_status(self, storage: PipelineResultsStorage) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        before = self.describe(storage)
        with pytest.raises(InvalidValueError, match="'BOGUS' is not a status"):
            task_result.set_status("BOGUS")  # type: ignore[arg-type]
        for value in ("DONE", 3, None):
            with pytest.raises(InvalidValueError, match="status"):
                task_result.set_status(value)  # type: ignore[arg-type]
        assert self.describe(storage) == before

    def test_set_times_refuse_what_is_not_an_aware_datetime(
        self, storage: PipelineResultsStorage
    ) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        before = self.describe(storage)
        with pytest.raises(InvalidValueError, match="'started'"):
            task_result.set_started("yesterday")  # type: ignore[arg-type]
        with pytest.raises(InvalidValueError, match="'completed'"):
            task_result.set_completed(1700000000)  # type: ignore[arg-type]
        with pytest.raises(InvalidValueError, match="naive datetime"):
            task_result.set_started(datetime(2026, 1, 1, 12, 0))
        with pytest.raises(InvalidValueError, match="'message'"):
            task_result.set_message(["not", "a", "str"])  # type: ignore[arg-type]
        assert self.describe(storage) == before

    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            ({1, 2}, "set"),
            (float("nan"), "NaN"),
            (float("inf"), "infinity"),
            ({"rows": [1.0, math.nan]}, r"payload\['rows'\]\[1\]"),
            ({1: "int key"}, "key"),
            (object(), "object"),
            ("lone \ud800 surrogate", "surrogate"),
        ],
        ids=["set", "nan", "inf", "nested-nan", "int-key", "object", "surrogate"],
    )
    def test_unstorable_values_are_refused(
        self, storage: PipelineResultsStorage, value: Any, problem: str
    ) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        task_result.set_payload("kept")
        before = self.describe(storage)
        with pytest.raises(InvalidValueError, match="'payload'") as caught:
            task_result.set_payload(value)
        caught.match(problem)
        assert self.describe(storage) == before
        assert _fresh(storage, task_result).get_payload() == "kept"
        with pytest.raises(InvalidValueError, match="'fresh_field'"):
            task_result.set_fresh_field(value)
        with pytest.raises(AttributeError):
            _fresh(storage, task_result).get_fresh_field()

    @pytest.mark.parametrize(
        "field", ["id", "run_id", "pipeline_id", "task_id", "pipeline_task", "parent_id"]
    )
    def test_identifying_fields_follow_the_seed_or_are_refused(
        self, storage: PipelineResultsStorage, field: str
    ) -> None:
        """The seed: ``set_foo`` sets ``foo``. A storage that indexes the fields that
        identify an object (``refuses_identifying_fields``) refuses instead, naming the
        field, and changes nothing."""
        execution = _build(storage)
        _, _, task_results = _tree(execution)
        if not self.refuses_identifying_fields:
            # (An execution has no task id, and a task result's task name is its task
            # execution's: those getters are defined, so they do not read the field.)
            derived = {(PipelineExecution.kind, "task_id"), (TaskResult.kind, "pipeline_task")}
            for obj in (execution, task_results[0]):
                getattr(obj, f"set_{field}")(f"changed-{field}")
                if (obj.kind, field) not in derived:
                    assert getattr(obj, f"get_{field}")() == f"changed-{field}"
            return
        before = self.describe(storage)
        for obj in (execution, task_results[0]):
            with pytest.raises(InvalidValueError, match=f"cannot set field '{field}'"):
                getattr(obj, f"set_{field}")("changed")
        assert self.describe(storage) == before
