"""The results storage interface: the four result objects and the storage that holds them.

A custom storage extends :class:`PipelineResultsStorage` and returns objects that extend
:class:`PipelineExecution`, :class:`PipelineResult`, :class:`TaskExecution` and
:class:`TaskResult`. Reading a property ``foo`` goes through ``get_foo()``: a method of
that name if the class has one, else the object's :meth:`~PipelineStorageObject.getter`
hook (by default: the attribute ``foo``), else :class:`AttributeError`. ``set_foo(value)``
works the same way through :meth:`~PipelineStorageObject.setter`. A method a custom
storage (or one of its objects) does not implement raises :class:`NotImplementedError`
naming the class and the method.

The interface lives in one module a concept: :mod:`~pipelines_events.results.storageobject`
(the objects' base), :mod:`~pipelines_events.results.objects` (the four objects),
:mod:`~pipelines_events.results.storage` (the storage), :mod:`~pipelines_events.results.planning`
(build planning), :mod:`~pipelines_events.results.checks` (value checks) and
:mod:`~pipelines_events.results.reporting` (the reporter protocol). This module gathers
their public names, where the seed puts them.
"""

from __future__ import annotations

from types import FunctionType

from pipelines_events.results.checks import (
    IDENTIFYING_FIELDS,
    as_status,
    class_path,
    encode_field_value,
    not_implemented,
)
from pipelines_events.results.objects import (
    PipelineExecution,
    PipelineResult,
    TaskExecution,
    TaskResult,
)
from pipelines_events.results.planning import (
    BuildablePipeline,
    BuildableTask,
    BuildPlan,
    PlannedPipelineResult,
    PlannedTaskExecution,
    plan_build,
)
from pipelines_events.results.reporting import (
    REPORTER_HOOKS,
    StatusReporter,
    check_reporter,
    status_change_message,
)
from pipelines_events.results.storage import PipelineResultsStorage
from pipelines_events.results.storageobject import Batch, ObjectLoader, PipelineStorageObject
from projections.digest import PipelineDigest, PipelineDigestItem

__all__ = [
    "IDENTIFYING_FIELDS",
    "REPORTER_HOOKS",
    "Batch",
    "BuildPlan",
    "BuildablePipeline",
    "BuildableTask",
    "ObjectLoader",
    "PipelineDigest",
    "PipelineDigestItem",
    "PipelineExecution",
    "PipelineResult",
    "PipelineResultsStorage",
    "PipelineStorageObject",
    "PlannedPipelineResult",
    "PlannedTaskExecution",
    "StatusReporter",
    "TaskExecution",
    "TaskResult",
    "as_status",
    "check_reporter",
    "class_path",
    "encode_field_value",
    "not_implemented",
    "plan_build",
    "status_change_message",
]


def _home_here() -> None:
    # The seed's home of these names: their classes and functions name this module (in
    # messages, reprs, pickles and the reference), wherever in results/ they are written.
    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type | FunctionType) and obj.__module__.startswith(
            "pipelines_events.results."
        ):
            obj.__module__ = __name__


_home_here()
