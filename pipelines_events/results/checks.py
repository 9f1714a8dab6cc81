"""The checks of values the result objects store: statuses, fields, class paths, and the
error of a method a storage does not implement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipelines_events.errors import InvalidValueError
from pipelines_events.events import encode_value
from pipelines_events.status import PipelineTaskStatus

__all__ = ["IDENTIFYING_FIELDS", "as_status", "class_path", "encode_field_value", "not_implemented"]


def not_implemented(
    obj: object, method: str, hint: str = "a custom storage implements the methods it is used for"
) -> NotImplementedError:
    """The error a method a custom storage, object or runner does not implement raises."""
    return NotImplementedError(f"{type(obj).__name__} does not implement {method}(): {hint}")


def as_status(value: Any) -> PipelineTaskStatus:
    """``value`` as a :class:`PipelineTaskStatus` (a member, its name or value), or raise
    :class:`InvalidValueError` naming the statuses that exist."""
    if isinstance(value, PipelineTaskStatus):
        return value
    if isinstance(value, str):
        member = PipelineTaskStatus.__members__.get(value.upper())
        if member is not None:
            return member
    names = ", ".join(PipelineTaskStatus.__members__)
    raise InvalidValueError(f"{value!r} is not a status; the statuses are {names}")


def class_path(obj: object) -> str:
    """The dotted path of ``obj``'s class (how runners and reporters are recorded)."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


IDENTIFYING_FIELDS = frozenset(
    {"id", "run_id", "kind", "parent_id", "pipeline_id", "task_id", "pipeline_task"}
)
"""Fields fixed when an object is built: ``set_`` refuses them (queries index them)."""


def encode_field_value(name: str, value: Any) -> tuple[Any, str | None]:
    """Check ``value`` for field ``name`` and return its stored form ``(json, vtype)``.

    Raises :class:`InvalidValueError` for a status that is not a status, times that are
    not datetimes, a message that is not a str, a field that identifies the object
    (:data:`IDENTIFYING_FIELDS`), or a value JSON cannot hold.
    """
    if name in IDENTIFYING_FIELDS:
        raise InvalidValueError(
            f"cannot set field {name!r}: it identifies the object and is fixed when the "
            "object is built"
        )
    if name == "status":
        if not isinstance(value, PipelineTaskStatus):
            as_status(value)
            raise InvalidValueError(
                f"field 'status': give a PipelineTaskStatus, not {type(value).__name__} {value!r}"
            )
    elif name in ("started", "completed"):
        if value is not None and not isinstance(value, datetime):
            raise InvalidValueError(
                f"field {name!r}: give an aware datetime or None, not {type(value).__name__}"
            )
    elif name == "message" and not isinstance(value, str):
        raise InvalidValueError(f"field 'message': give a str, not {type(value).__name__}")
    return encode_value(name, value)
