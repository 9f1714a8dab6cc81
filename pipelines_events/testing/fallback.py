"""The storage tests of the seed's ``get_``/``set_`` fallback and the values it round-trips."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from pipelines_events.results.base import (
    PipelineResultsStorage,
    PipelineStorageObject,
    TaskResult,
)
from pipelines_events.testing.capabilities import StorageTestCase
from pipelines_events.testing.examples import (
    PENDING,
    RUNNING,
    T0,
    _all_objects,
    _build,
    _fresh,
    _single_pipeline,
    _tree,
)

__all__ = ["FallbackTests"]


class FallbackTests(StorageTestCase):
    """``get_foo``/``set_foo``: a defined method first, then the hooks; values round-trip."""

    __test__ = False

    # -- the get_/set_ fallback ---------------------------------------------------------

    def test_a_defined_getter_answers_with_its_type(self, storage: PipelineResultsStorage) -> None:
        """``get_status`` is defined: it gives the status member back, on the object that
        set it and on a fresh one, never the stored text the fallback would give."""
        for obj in _all_objects(_build(storage)):
            assert obj.get_status() is PENDING
            obj.set_status(RUNNING)
            assert obj.get_status() is RUNNING
            assert _fresh(storage, obj).get_status() is RUNNING

    def test_get_falls_back_to_the_attribute(self, storage: PipelineResultsStorage) -> None:
        for obj in _all_objects(_build(storage)):
            assert not hasattr(obj, "get_colour")
            obj.set_colour("blue")
            assert obj.get_colour() == "blue"
            assert _fresh(storage, obj).get_colour() == "blue"

    def test_unknown_attribute_raises_attribute_error(
        self, storage: PipelineResultsStorage
    ) -> None:
        execution = _build(storage)
        results, task_executions, _ = _tree(execution)
        for obj in _all_objects(execution):
            with pytest.raises(AttributeError, match="no_such_field"):
                obj.get_no_such_field()
            with pytest.raises(AttributeError):
                obj.no_such_attribute  # noqa: B018
            with pytest.raises(AttributeError):
                obj.get_  # noqa: B018
        missing: list[tuple[PipelineStorageObject, str]] = [
            (execution, "get_config"),
            (execution, "get_pipeline_task"),
            (execution, "get_serializable_pipeline_object"),
            (results[0], "get_config"),
            (results[0], "get_serializable_task_object"),
            (task_executions[0], "get_serializable_task_object"),
        ]
        for obj, name in missing:
            with pytest.raises(AttributeError):
                getattr(obj, name)()

    @pytest.mark.parametrize(
        "value",
        [
            "text ünïcødé ✓",
            "",
            0,
            -(2**53),
            2**64,
            -(2**63) - 1,
            2**200,
            1.5,
            -0.0,
            5e-324,
            1.7976931348623157e308,
            True,
            False,
            None,
            [1, "two", [3.25, None]],
            {"nested": {"list": [1, 2], "flag": False}, "empty": {}},
            [],
        ],
        ids=repr,
    )
    def test_set_then_get_round_trips_json_values(
        self, storage: PipelineResultsStorage, value: Any
    ) -> None:
        for obj in _all_objects(_build(storage, pipeline=_single_pipeline(items=1))):
            obj.set_payload(value)
            for source in (obj, _fresh(storage, obj)):
                got = source.get_payload()
                assert got == value and type(got) is type(value)

    def test_set_then_get_round_trips_aware_datetimes(
        self, storage: PipelineResultsStorage
    ) -> None:
        moment = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5)))
        for obj in _all_objects(_build(storage, pipeline=_single_pipeline(items=1))):
            obj.set_deadline(moment)
            obj.set_started(moment)
            for source in (obj, _fresh(storage, obj)):
                assert source.get_deadline() == moment
                assert source.get_deadline().utcoffset() is not None
                assert source.get_started() == moment

    def test_set_overwrites_and_stays_on_its_object(self, storage: PipelineResultsStorage) -> None:
        _, _, task_results = _tree(_build(storage))
        task_results[0].set_payload(1)
        task_results[0].set_payload({"v": 2})
        assert _fresh(storage, task_results[0]).get_payload() == {"v": 2}
        with pytest.raises(AttributeError):
            _fresh(storage, task_results[1]).get_payload()

    def test_set_status_and_times_directly(self, storage: PipelineResultsStorage) -> None:
        _, _, task_results = _tree(_build(storage))
        task_result = task_results[0]
        task_result.set_status(RUNNING)
        task_result.set_started(T0)
        task_result.set_completed(T0 + timedelta(seconds=1))
        task_result.set_message("by hand")
        task_result.save()
        fresh = _fresh(storage, task_result)
        assert fresh.get_status() is RUNNING
        assert fresh.get_started() == T0
        assert fresh.get_completed() == T0 + timedelta(seconds=1)
        assert fresh.get_message() == "by hand"
        assert isinstance(fresh, TaskResult) and fresh.get_duration() == 1.0

    # -- the seed's get_/set_ rules on the objects users hold -------------------------------

    def test_get_falls_back_to_a_plain_attribute_of_the_object_held(
        self, storage: PipelineResultsStorage
    ) -> None:
        for obj in _all_objects(_build(storage)):
            try:
                obj.note = "x"  # type: ignore[attr-defined]
            except AttributeError:
                continue  # objects with __slots__ take no new attributes: nothing to find
            assert obj.get_note() == "x"

    def test_get_falls_back_to_a_property_of_a_subclass(
        self, storage: PipelineResultsStorage
    ) -> None:
        for obj in _all_objects(_build(storage)):
            base = type(obj)
            with_property = type(
                f"Coloured{base.__name__}",
                (base,),
                {"colour": property(lambda self: f"red {self.get_id()}")},
            )
            obj.__class__ = with_property
            assert obj.get_colour() == f"red {obj.get_id()}"

    def test_a_defined_set_method_is_used_instead_of_the_fallback(
        self, storage: PipelineResultsStorage
    ) -> None:
        for obj in _all_objects(_build(storage)):
            base = type(obj)
            heard: list[Any] = []
            with_setter = type(
                f"Noted{base.__name__}",
                (base,),
                {"set_note": lambda self, value, heard=heard: heard.append(value)},
            )
            obj.__class__ = with_setter
            obj.set_note("by the method")
            assert heard == ["by the method"]
            with pytest.raises(AttributeError, match="note"):
                _fresh(storage, obj).get_note()

    def test_a_defined_get_method_is_used_before_the_fallback(
        self, storage: PipelineResultsStorage
    ) -> None:
        for obj in _all_objects(_build(storage)):
            base = type(obj)
            obj.set_note("stored")
            with_getter = type(
                f"Read{base.__name__}", (base,), {"get_note": lambda self: "from the method"}
            )
            obj.__class__ = with_getter
            assert obj.get_note() == "from the method"
