"""The results storage interface: the four result objects and the storage that holds them.

A custom storage extends :class:`PipelineResultsStorage` and returns objects that extend
:class:`PipelineExecution`, :class:`PipelineResult`, :class:`TaskExecution` and
:class:`TaskResult`. Reading a property ``foo`` goes through ``get_foo()``: a method of
that name if the class has one, else the object's :meth:`~PipelineStorageObject.getter`
hook (by default: the attribute ``foo``), else :class:`AttributeError`. ``set_foo(value)``
works the same way through :meth:`~PipelineStorageObject.setter`. A method a custom
storage (or one of its objects) does not implement raises :class:`NotImplementedError`
naming the class and the method.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from pipelines_events.errors import InvalidValueError
from pipelines_events.events import (
    PIPELINE_EXECUTION,
    PIPELINE_RESULT,
    TASK_EXECUTION,
    TASK_RESULT,
    copy_value,
    encode_value,
    utc_now,
)
from pipelines_events.status import PipelineTaskStatus
from projections.digest import PipelineDigest, PipelineDigestItem

__all__ = [
    "IDENTIFYING_FIELDS",
    "REPORTER_HOOKS",
    "Batch",
    "BuildPlan",
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

_RUNNING = PipelineTaskStatus.RUNNING
_FAILED = PipelineTaskStatus.error_statuses()


class StatusReporter(Protocol):
    """What a reporter must offer to hear about status changes (as the original's
    ``PipelineReporter``: :class:`pipelines_events.reporters.PipelineReporter` has them all)."""

    def report_context_object(
        self, context_object: Any, status: PipelineTaskStatus, message: str
    ) -> None: ...

    def report_pipeline_execution(
        self, pipeline_execution: Any, status: PipelineTaskStatus, message: str
    ) -> None: ...

    def report_pipeline_result(
        self, pipeline_result: Any, status: PipelineTaskStatus, message: str
    ) -> None: ...

    def report_task_execution(
        self, task_execution: Any, status: PipelineTaskStatus, message: str
    ) -> None: ...

    def report_task_result(
        self, task_result: Any, status: PipelineTaskStatus, message: str
    ) -> None: ...


REPORTER_HOOKS = (
    "report_context_object",
    "report_pipeline_execution",
    "report_pipeline_result",
    "report_task_execution",
    "report_task_result",
)
"""The methods a reporter must have (see :class:`StatusReporter`)."""


def check_reporter(reporter: object) -> None:
    """Raise :class:`TypeError` unless ``reporter`` is None or has every reporter hook."""
    if reporter is None:
        return
    missing = [name for name in REPORTER_HOOKS if not callable(getattr(reporter, name, None))]
    if missing:
        raise TypeError(
            f"reporter: {type(reporter).__name__} has no {', '.join(missing)}; give a "
            "pipelines_events.reporters.PipelineReporter (subclass it and implement report)"
        )


def status_change_message(status: PipelineTaskStatus, message: str) -> str:
    """What a status change tells the reporter: ``"Changed state to RUNNING - go"``."""
    return f"Changed state to {status.value}{' - ' + message if message else ''}"


def not_implemented(
    obj: object, method: str, hint: str = "a custom storage implements the methods it is used for"
) -> NotImplementedError:
    """The error a method a custom storage, object or runner does not implement raises."""
    return NotImplementedError(f"{type(obj).__name__} does not implement {method}(): {hint}")


class ObjectLoader(Protocol):
    """Turns stored ids back into pipeline and task objects (the runtime provides one)."""

    def load_pipeline(self, pipeline_id: str) -> Any: ...

    def load_task(self, task_id: str, pipeline_task: str, config: dict[str, Any]) -> Any: ...


class _UnsetLoader:
    def load_pipeline(self, pipeline_id: str) -> Any:
        raise LookupError(
            f"cannot load pipeline {pipeline_id!r}: no loader is installed "
            "(import pipelines_events.task, or call pipelines_events.registry.install_loader())"
        )

    def load_task(self, task_id: str, pipeline_task: str, config: dict[str, Any]) -> Any:
        raise LookupError(
            f"cannot load task {task_id!r}: no loader is installed "
            "(import pipelines_events.task, or call pipelines_events.registry.install_loader())"
        )


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


class Batch:
    """What an :meth:`~PipelineStorageObject.atomic` block did: ``stored`` is False when
    its ``require`` check failed and nothing was stored."""

    __slots__ = ("stored",)

    def __init__(self) -> None:
        self.stored = True


class PipelineStorageObject:
    """Base of the four result objects: the ``get_``/``set_`` fallback and status changes."""

    kind: ClassVar[str] = ""
    loader: ClassVar[ObjectLoader] = _UnsetLoader()
    """How ``get_pipeline()`` and ``get_task()`` find classes; set by the runtime
    (:func:`pipelines_events.registry.install_loader`)."""

    # -- the get_/set_ fallback -------------------------------------------------------

    def getter(self, name: str) -> Callable[[], Any]:
        """A function returning property ``name``; :class:`AttributeError` if there is none.

        Lists and dicts come back as copies (:func:`copy_value`): changing what a ``get_``
        returned never changes the stored property.
        """
        try:
            object.__getattribute__(self, name)
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__} has no get_{name}() and no {name!r} to fall back on"
            ) from None
        return lambda: copy_value(getattr(self, name))

    def setter(self, name: str) -> Callable[[Any], None]:
        """A function storing a copy of a value as property ``name`` (the attribute
        ``name``; changing the value afterwards changes nothing stored; tuples are stored
        as lists)."""

        def set_value(value: Any) -> None:
            if name in IDENTIFYING_FIELDS:
                encode_value(name, value)  # the seed sets it; the value must still be storable
            else:
                encode_field_value(name, value)
            setattr(self, name, copy_value(value))

        return set_value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("get_") and len(name) > 4:
            return self.getter(name[4:])
        if name.startswith("set_") and len(name) > 4:
            return self.setter(name[4:])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- common properties --------------------------------------------------------------

    def get_id(self) -> str:
        """The object's id."""
        return str(self.getter("id")())

    def get_run_id(self) -> str:
        """The id of the run the object belongs to."""
        return str(self.getter("run_id")())

    def get_pipeline_id(self) -> str:
        """The id of the pipeline that was run."""
        return str(self.getter("pipeline_id")())

    def get_status(self) -> PipelineTaskStatus:
        """The current status."""
        return as_status(self.getter("status")())

    def set_status(self, value: PipelineTaskStatus) -> None:
        """Record a new status (prefer :meth:`report_status_change`)."""
        self.setter("status")(value)

    def get_started(self) -> datetime | None:
        """When the object became RUNNING."""
        value: datetime | None = self.getter("started")()
        return value

    def set_started(self, value: datetime | None) -> None:
        """Record when the object became RUNNING."""
        self.setter("started")(value)

    def get_completed(self) -> datetime | None:
        """When the object reached a final status."""
        value: datetime | None = self.getter("completed")()
        return value

    def set_completed(self, value: datetime | None) -> None:
        """Record when the object reached a final status."""
        self.setter("completed")(value)

    def get_message(self) -> str:
        """The message recorded with the last status change."""
        value = self.getter("message")()
        return "" if value is None else str(value)

    def set_message(self, value: str) -> None:
        """Record a status message."""
        self.setter("message")(value)

    def get_traceback(self) -> str:
        """The traceback recorded with a failure ("" when none was)."""
        try:
            value = self.getter("traceback")()
        except AttributeError:
            return ""
        return "" if value is None else str(value)

    def set_traceback(self, value: str) -> None:
        """Record the traceback of a failure."""
        self.setter("traceback")(value)

    def get_task_id(self) -> str | None:
        """The id of the task, for task executions and task results; None otherwise."""
        return None

    def save(self) -> None:
        """Commit the object's changes (a no-op where every ``set_`` is already stored)."""

    def atomic(
        self, require: Callable[[], bool] | None = None
    ) -> contextlib.AbstractContextManager[Batch]:
        """A block whose ``set_`` calls are stored together or not at all.

        ``require`` is checked again when the block is stored (with the latest state of
        the storage, under its lock where it has one); if it is False nothing is stored
        and the yielded :class:`Batch` says so.
        """
        return contextlib.nullcontext(Batch())

    # -- relations ------------------------------------------------------------------------

    def get_parent(self) -> PipelineStorageObject | None:
        """The object this one belongs to (None for an execution)."""
        return None

    def get_children(self) -> Sequence[PipelineStorageObject]:
        """The objects that belong to this one."""
        return ()

    def children_outcome(self) -> PipelineTaskStatus | None:
        """The status the children add up to once all are final, else None.

        A failed status if any child failed, CANCELLED if any was cancelled, else DONE.
        """
        failed: PipelineTaskStatus | None = None
        cancelled = False
        for child in self.get_children():
            status = child.get_status()
            if not status.is_final:
                return None
            if status in _FAILED:
                failed = failed or status
            cancelled = cancelled or status is PipelineTaskStatus.CANCELLED
        if failed is not None:
            return failed
        return PipelineTaskStatus.CANCELLED if cancelled else PipelineTaskStatus.DONE

    # -- status changes ---------------------------------------------------------------

    def report_status_change(
        self,
        reporter: StatusReporter | None,
        status: PipelineTaskStatus | str,
        message: str = "",
        propagate: bool = True,
        traceback: str = "",
    ) -> bool:
        """Record ``status`` if it has advanced; returns whether it was recorded.

        A ``traceback`` (of a failure) is stored in the same block, as ``traceback``.

        RUNNING sets ``started``, a final status sets ``completed``; status, time and
        message are stored together, then the reporter hears of it
        (``report_context_object(self, status, "Changed state to STATUS - message")``).
        Unless ``propagate``
        is False the parent follows: RUNNING at once, a final status once all the
        parent's children are final (a failed child decides it, see
        :meth:`children_outcome`).
        """
        status = as_status(status)
        if not isinstance(message, str):
            raise InvalidValueError(f"message: give a str, not {type(message).__name__}")
        if not isinstance(traceback, str):
            raise InvalidValueError(f"traceback: give a str, not {type(traceback).__name__}")
        if not self.get_status().has_advanced(status):
            return False
        now = utc_now()
        clear_message = not message and bool(self.get_message())
        with self.atomic(require=lambda: self.get_status().has_advanced(status)) as batch:
            self.set_status(status)
            if status is _RUNNING:
                self.set_started(now)
            elif status.is_final:
                self.set_completed(now)
            if message or clear_message:
                self.set_message(message)
            if traceback:
                self.set_traceback(traceback)
        if not batch.stored:
            return False
        self.save()
        if reporter is not None:
            reporter.report_context_object(self, status, status_change_message(status, message))
        if propagate:
            self._propagate(reporter, status, message)
        return True

    def _propagate(
        self, reporter: StatusReporter | None, status: PipelineTaskStatus, message: str
    ) -> None:
        parent = self.get_parent()
        if parent is None:
            return
        if status is _RUNNING:
            parent.report_status_change(reporter, status, message)
            return
        # A parent ends once all its children have ended; a failed child decides how.
        outcome = parent.children_outcome()
        if outcome is None:
            return
        parent.report_status_change(reporter, outcome, parent.outcome_message(outcome, message))

    def outcome_message(self, outcome: PipelineTaskStatus, message: str = "") -> str:
        """The message of ``outcome`` (from :meth:`children_outcome`): the first failed
        child's message when it is a failure, else ``message``."""
        if outcome in _FAILED:
            return next(
                (c.get_message() for c in self.get_children() if c.get_status() is outcome),
                message,
            )
        return message

    def __repr__(self) -> str:
        try:
            return f"<{type(self).__name__} {self.get_id()} {self.get_status().name}>"
        except Exception:
            return f"<{type(self).__name__}>"


def _optional(obj: PipelineStorageObject, name: str) -> Any:
    """Field ``name`` of ``obj``, or None when it has none."""
    try:
        return obj.getter(name)()
    except AttributeError:
        return None


def _rebuilt(owner: Any, hook: str, stored: Any) -> Any:
    """``stored`` rebuilt by ``owner.<hook>(stored)``, or as it is when there is no hook."""
    method = getattr(owner, hook, None)
    return stored if method is None else method(stored)


class PipelineExecution(PipelineStorageObject):
    """The overall state of one run of a pipeline (one per run)."""

    kind = PIPELINE_EXECUTION
    content_type_name: ClassVar[str] = "PipelineExecution"

    def get_input_data(self) -> Any:
        """The input data the run was started with."""
        return self.getter("input_data")()

    def get_runner(self) -> str:
        """The dotted path of the runner class."""
        return str(self.getter("runner")())

    def get_reporter(self) -> str:
        """The dotted path of the reporter class."""
        return str(self.getter("reporter")())

    def get_pipeline(self) -> Any:
        """The pipeline object, loaded by its id."""
        return self.loader.load_pipeline(self.get_pipeline_id())

    def get_runner_host(self) -> str | None:
        """The host the run's runner ran on (None when not recorded)."""
        value = _optional(self, "runner_host")
        return value if isinstance(value, str) else None

    def set_runner_host(self, value: str) -> None:
        """Record the host the run's runner runs on."""
        self.setter("runner_host")(value)

    def get_runner_pid(self) -> int | None:
        """The process id of the run's runner (None when not recorded)."""
        value = _optional(self, "runner_pid")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def set_runner_pid(self, value: int) -> None:
        """Record the process id of the run's runner."""
        self.setter("runner_pid")(value)

    def get_pipeline_results(self) -> Sequence[PipelineResult]:
        """The pipeline results of the run."""
        raise not_implemented(self, "get_pipeline_results")

    def get_children(self) -> Sequence[PipelineStorageObject]:
        return self.get_pipeline_results()


class PipelineResult(PipelineStorageObject):
    """The state of the pipeline for one object of the pipeline iterator."""

    kind = PIPELINE_RESULT
    content_type_name: ClassVar[str] = "PipelineResult"

    def get_serializable_pipeline_object(self) -> Any:
        """The pipeline object this result ran for, as stored."""
        return self.getter("serializable_pipeline_object")()

    def get_input_data(self) -> Any:
        """The input data of the run."""
        return self.get_pipeline_execution().get_input_data()

    def get_runner(self) -> str:
        """The dotted path of the runner class."""
        return self.get_pipeline_execution().get_runner()

    def get_reporter(self) -> str:
        """The dotted path of the reporter class."""
        return self.get_pipeline_execution().get_reporter()

    def get_pipeline(self) -> Any:
        """The pipeline object, loaded by its id."""
        return self.loader.load_pipeline(self.get_pipeline_id())

    def get_pipeline_object(self) -> Any:
        """The pipeline object, rebuilt from its stored form by the pipeline's
        ``deserialize_pipeline_object`` (as stored when the pipeline has none)."""
        return _rebuilt(
            self.get_pipeline(),
            "deserialize_pipeline_object",
            self.get_serializable_pipeline_object(),
        )

    def get_pipeline_execution(self) -> PipelineExecution:
        """The execution this result belongs to."""
        raise not_implemented(self, "get_pipeline_execution")

    def get_task_executions(self) -> Sequence[TaskExecution]:
        """One task execution per task of the pipeline."""
        raise not_implemented(self, "get_task_executions")

    def get_parent(self) -> PipelineStorageObject | None:
        return self.get_pipeline_execution()

    def get_children(self) -> Sequence[PipelineStorageObject]:
        return self.get_task_executions()


class TaskExecution(PipelineStorageObject):
    """The overall state of one task within a pipeline result."""

    kind = TASK_EXECUTION
    content_type_name: ClassVar[str] = "TaskExecution"

    def get_task_id(self) -> str:
        """The id of the task class."""
        return str(self.getter("task_id")())

    def get_pipeline_task(self) -> str:
        """The name of the task's attribute on the pipeline."""
        return str(self.getter("pipeline_task")())

    def get_config(self) -> Any:
        """The task's config, as stored."""
        return self.getter("config")()

    def get_input_data(self) -> Any:
        """The input data of the run."""
        return self.get_pipeline_result().get_input_data()

    def get_serializable_pipeline_object(self) -> Any:
        """The pipeline object of the pipeline result."""
        return self.get_pipeline_result().get_serializable_pipeline_object()

    def get_pipeline(self) -> Any:
        """The pipeline object, loaded by its id."""
        return self.loader.load_pipeline(self.get_pipeline_id())

    def get_pipeline_object(self) -> Any:
        """The pipeline object, rebuilt from its stored form by the pipeline's
        ``deserialize_pipeline_object`` (as stored when the pipeline has none)."""
        return _rebuilt(
            self.get_pipeline(),
            "deserialize_pipeline_object",
            self.get_serializable_pipeline_object(),
        )

    def get_task(self) -> Any:
        """The task object, loaded by its id with its config."""
        return self.loader.load_task(
            self.get_task_id(), self.get_pipeline_task(), self.get_config() or {}
        )

    def get_pipeline_result(self) -> PipelineResult:
        """The pipeline result this task execution belongs to."""
        raise not_implemented(self, "get_pipeline_result")

    def get_task_results(self) -> Sequence[TaskResult]:
        """One task result per object of the task iterator."""
        raise not_implemented(self, "get_task_results")

    def get_parent(self) -> PipelineStorageObject | None:
        return self.get_pipeline_result()

    def get_children(self) -> Sequence[PipelineStorageObject]:
        return self.get_task_results()


class TaskResult(PipelineStorageObject):
    """The state of one task for one object of the task iterator."""

    kind = TASK_RESULT
    content_type_name: ClassVar[str] = "TaskResult"

    def get_task_id(self) -> str:
        """The id of the task class."""
        return str(self.getter("task_id")())

    def get_pipeline_task(self) -> str:
        """The name of the task's attribute on the pipeline."""
        return self.get_task_execution().get_pipeline_task()

    def get_config(self) -> Any:
        """The task's config, as stored."""
        return self.get_task_execution().get_config()

    def get_serializable_task_object(self) -> Any:
        """The task object this result ran for, as stored."""
        return self.getter("serializable_task_object")()

    def get_serializable_pipeline_object(self) -> Any:
        """The pipeline object of the pipeline result."""
        return self.get_task_execution().get_serializable_pipeline_object()

    def get_input_data(self) -> Any:
        """The input data of the run."""
        return self.get_task_execution().get_input_data()

    def get_task(self) -> Any:
        """The task object, loaded by its id with its config."""
        return self.get_task_execution().get_task()

    def get_pipeline(self) -> Any:
        """The pipeline object, loaded by its id."""
        return self.loader.load_pipeline(self.get_pipeline_id())

    def get_pipeline_object(self) -> Any:
        """The pipeline object, rebuilt from its stored form by the pipeline's
        ``deserialize_pipeline_object`` (as stored when the pipeline has none)."""
        return _rebuilt(
            self.get_pipeline(),
            "deserialize_pipeline_object",
            self.get_serializable_pipeline_object(),
        )

    def get_task_object(self) -> Any:
        """The task object, rebuilt from its stored form by the task's
        ``deserialize_task_object`` (as stored when the task has none)."""
        return _rebuilt(
            self.get_task(), "deserialize_task_object", self.get_serializable_task_object()
        )

    def get_duration(self) -> float | None:
        """Seconds from started to completed, or None until both are known."""
        started, completed = self.get_started(), self.get_completed()
        if started is None or completed is None:
            return None
        return (completed - started).total_seconds()

    def get_task_execution(self) -> TaskExecution:
        """The task execution this result belongs to."""
        raise not_implemented(self, "get_task_execution")

    def get_parent(self) -> PipelineStorageObject | None:
        return self.get_task_execution()


# -- building ---------------------------------------------------------------------------


class BuildablePipeline(Protocol):
    """What ``build_pipeline_execution`` needs of a pipeline."""

    def get_id(self) -> str: ...

    def get_iterator(self) -> Any: ...

    def get_serializable_pipeline_object(self, obj: Any) -> Any: ...

    def get_build_tasks(self) -> Sequence[BuildableTask]: ...


class BuildableTask(Protocol):
    """What ``build_pipeline_execution`` needs of a task."""

    task_id: str
    pipeline_task: str

    def get_serializable_config(self) -> Any: ...

    def get_iterator(self) -> Any: ...

    def get_serializable_task_object(self, obj: Any) -> Any: ...


@dataclass
class PlannedTaskExecution:
    """A task execution to create, with the stored objects of its task results."""

    pipeline_task: str
    task_id: str
    config: Any
    task_objects: list[Any] = field(default_factory=list)


@dataclass
class PlannedPipelineResult:
    """A pipeline result to create, with its task executions."""

    pipeline_object: Any
    task_executions: list[PlannedTaskExecution] = field(default_factory=list)


@dataclass
class BuildPlan:
    """Every object ``build_pipeline_execution`` creates, with validated values."""

    pipeline_id: str
    run_id: str
    runner: str
    reporter: str
    input_data: Any
    pipeline_results: list[PlannedPipelineResult] = field(default_factory=list)

    def count(self) -> int:
        """How many objects the plan creates."""
        total = 1
        for result in self.pipeline_results:
            total += 1
            for execution in result.task_executions:
                total += 1 + len(execution.task_objects)
        return total


def _objects(iterator: Any) -> Iterator[Any]:
    """The objects of an iterator; ``None`` means a single ``None`` object."""
    if iterator is None:
        yield None
    else:
        yield from iterator


def plan_build(
    pipeline: BuildablePipeline,
    run_id: str,
    runner: object,
    reporter: object,
    input_data: Any,
    build_all: bool = True,
) -> BuildPlan:
    """Work out and validate every object of a run before anything is stored.

    One pipeline result per object of the pipeline iterator (one when it is None), one
    task execution per task, one task result per object of the task iterator (one when
    it is None). Raises :class:`InvalidValueError` for a run id or value that cannot be
    stored.
    """
    if not isinstance(run_id, str) or not run_id:
        raise InvalidValueError(f"run_id: give a non-empty str, not {run_id!r}")
    encode_value("input_data", input_data)
    plan = BuildPlan(
        pipeline_id=pipeline.get_id(),
        run_id=run_id,
        runner=class_path(runner),
        reporter=class_path(reporter),
        input_data=input_data,
    )
    if not build_all:
        return plan
    tasks = list(pipeline.get_build_tasks())
    for pipeline_object in _objects(pipeline.get_iterator()):
        stored = pipeline.get_serializable_pipeline_object(pipeline_object)
        encode_value("serializable_pipeline_object", stored)
        result = PlannedPipelineResult(stored)
        for task in tasks:
            config = task.get_serializable_config()
            encode_value("config", config)
            execution = PlannedTaskExecution(task.pipeline_task, task.task_id, config)
            for task_object in _objects(task.get_iterator()):
                stored_task_object = task.get_serializable_task_object(task_object)
                encode_value("serializable_task_object", stored_task_object)
                execution.task_objects.append(stored_task_object)
            result.task_executions.append(execution)
        plan.pipeline_results.append(result)
    return plan


class PipelineResultsStorage:
    """Where result objects live. Subclass it to write a custom storage.

    A storage may implement only the methods it is used for (a read-only dashboard
    storage, say): the others raise :class:`NotImplementedError` naming the class and
    the method.

    Queries return objects oldest first; the ``get_x(_id)`` lookups return None for an
    id that does not exist.
    """

    def build_pipeline_execution(
        self,
        pipeline: BuildablePipeline,
        run_id: str,
        runner: object,
        reporter: object,
        input_data: Any,
        build_all: bool = True,
    ) -> PipelineExecution:
        """Create the execution of a run and, with ``build_all``, every object below it.

        Without ``build_all`` only the execution is created (to record a config error).
        """
        raise not_implemented(self, "build_pipeline_execution")

    def get_pipeline_digest(self) -> PipelineDigest:
        """Per pipeline id: runs, successes, failures, last ran, average runtime."""
        raise not_implemented(self, "get_pipeline_digest")

    def get_pipeline_executions(
        self, pipeline_id: str | None = None
    ) -> Sequence[PipelineExecution]:
        """Executions, optionally of one pipeline."""
        raise not_implemented(self, "get_pipeline_executions")

    def get_pipeline_execution(self, run_id: str) -> PipelineExecution | None:
        """The execution of run ``run_id``."""
        raise not_implemented(self, "get_pipeline_execution")

    def get_pipeline_results(
        self, run_id: str | None = None, pipeline_id: str | None = None
    ) -> Sequence[PipelineResult]:
        """Pipeline results, optionally of one run or one pipeline."""
        raise not_implemented(self, "get_pipeline_results")

    def get_pipeline_result(self, _id: str) -> PipelineResult | None:
        """The pipeline result with id ``_id``."""
        raise not_implemented(self, "get_pipeline_result")

    def get_task_executions(
        self, run_id: str | None = None, pipeline_result_id: str | None = None
    ) -> Sequence[TaskExecution]:
        """Task executions, optionally of one run or one pipeline result."""
        raise not_implemented(self, "get_task_executions")

    def get_task_execution(self, _id: str) -> TaskExecution | None:
        """The task execution with id ``_id``."""
        raise not_implemented(self, "get_task_execution")

    def get_task_results(
        self,
        run_id: str | None = None,
        pipeline_result_id: str | None = None,
        task_execution_id: str | None = None,
    ) -> Sequence[TaskResult]:
        """Task results, optionally of one run, pipeline result or task execution."""
        raise not_implemented(self, "get_task_results")

    def get_task_result(self, _id: str) -> TaskResult | None:
        """The task result with id ``_id``."""
        raise not_implemented(self, "get_task_result")

    def cleanup(self, before: datetime | None = None) -> list[str]:
        """Remove finished runs (completed before ``before`` when given); returns their ids.

        Runs that are still PENDING or RUNNING are never removed.
        """
        raise not_implemented(self, "cleanup")

    def close(self) -> None:
        """Release what the storage holds open (nothing, unless a subclass holds files)."""
        return None
