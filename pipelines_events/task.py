"""The :class:`Task` base class: one step of a pipeline, declared as a pipeline attribute."""

from __future__ import annotations

import abc
import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from pipelines_events.errors import InvalidValueError, PipelineDefinitionError, PipelinesEventsError
from pipelines_events.registry import install_loader, registry
from pipelines_events.results.base import class_path
from pipelines_events.status import PipelineTaskStatus

if TYPE_CHECKING:
    from pipelines_events.results.base import StatusReporter, TaskResult

__all__ = [
    "ConfigValidationError",
    "InputValidationError",
    "Task",
    "TaskConfig",
    "TaskError",
    "get_object",
]

# The runtime's one wiring step: result objects load pipelines and tasks by id through the
# registry (results/ sits below the runtime and cannot import it, so it is told here).
install_loader(registry)

_MODEL_KEYS = frozenset({"pk", "app_label", "model_name"})


def get_object(stored: Any) -> Any:
    """A stored pipeline or task object rebuilt, as the original did: a Django model
    instance for ``{"pk": ..., "app_label": ..., "model_name": ...}`` (fetched from the
    database) when Django is set up, None for an empty value, else ``stored`` as it is."""
    if not stored:
        return None
    if isinstance(stored, dict) and stored.keys() >= _MODEL_KEYS:
        try:
            apps = importlib.import_module("django.apps").apps
        except ImportError:
            return stored
        if not apps.ready:  # Django is not set up in this process: no models to fetch
            return stored
        model = apps.get_model(stored["app_label"], stored["model_name"])
        return model._default_manager.get(pk=stored["pk"])
    return stored


class TaskConfig(msgspec.Struct):
    """A base for ``ConfigType`` structs (the original's ``TaskConfig``). Fields a config
    has and the struct does not declare (such as ``parents``) are ignored."""


class TaskError(PipelinesEventsError, ValueError):
    """A task's config or input data does not validate; ``task`` is the task."""

    def __init__(self, task: Task, msg: str) -> None:
        super().__init__(msg)
        self.task = task
        self.msg = msg


class ConfigValidationError(TaskError):
    """The task's config does not validate against its ``ConfigType``."""


class InputValidationError(TaskError):
    """The run's input data does not validate against the task's ``InputType``."""


class Task(abc.ABC):
    """Base of tasks. Subclass it, implement :meth:`run`, and declare an instance as an
    attribute of a :class:`~pipelines_events.Pipeline`: ``fetch = FetchTask(config={...})``.

    ``ConfigType`` and ``InputType`` (optional :class:`msgspec.Struct` subclasses) validate
    the task's config and the run's input data. ``task_id`` is the class's dotted path
    unless the class sets it; ``pipeline_task`` is the name of the attribute the task is
    declared as. Subclasses that override ``__init__`` must still accept ``config=``:
    runners rebuild tasks from their id and stored config.
    """

    ConfigType: ClassVar[type[msgspec.Struct] | None] = None
    """Validates the config: ``msgspec.convert(config, ConfigType)``."""
    InputType: ClassVar[type[msgspec.Struct] | None] = None
    """Validates the run's input data: ``msgspec.convert(input_data, InputType)``."""

    task_id: str = "pipelines_events.task.Task"
    """The id the task is stored and loaded by (the class's dotted path by default)."""
    strict_validation: ClassVar[bool] = False
    """False (the default): config and input are converted leniently, as the original's
    pydantic models did (``"0"`` is accepted for an int field). True: types must match."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "task_id" not in cls.__dict__:
            cls.task_id = class_path(cls)
        elif not isinstance(cls.task_id, str) or not cls.task_id:
            raise PipelineDefinitionError(
                f"{class_path(cls)}.task_id: give a non-empty str, not {cls.task_id!r}"
            )
        if not isinstance(cls.__dict__.get("strict_validation", False), bool):
            raise PipelineDefinitionError(
                f"{class_path(cls)}.strict_validation: give True or False, "
                f"not {cls.__dict__['strict_validation']!r}"
            )
        for name in ("ConfigType", "InputType"):
            value = cls.__dict__.get(name)
            if value is not None and not (
                isinstance(value, type) and issubclass(value, msgspec.Struct)
            ):
                raise PipelineDefinitionError(
                    f"{class_path(cls)}.{name}: give a msgspec.Struct subclass or None, "
                    f"not {value!r}"
                )
        registry.declare(cls)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config: Any = {} if config is None else config
        """The config as given (see :meth:`get_config` for the validated one)."""
        self.pipeline_task: str = ""
        """The name of the pipeline attribute this task is declared as."""
        self.pipeline_object: Any = None
        """During :meth:`run`: the object of the pipeline iterator being run."""
        self.task_object: Any = None
        """During :meth:`run`: the object of the task iterator being run."""
        self._declared_as: list[tuple[type, str]] = []

    def __set_name__(self, owner: type, name: str) -> None:
        self._declared_as.append((owner, name))
        self.pipeline_task = name

    def declared_names(self) -> set[str]:
        """The attribute names this task object has been declared as (on any class)."""
        return {name for _owner, name in self._declared_as}

    # -- the run ----------------------------------------------------------------------

    @abc.abstractmethod
    def run(self, pipeline_id: str, run_id: str, cleaned_data: Any) -> None:
        """Do the task's work for ``self.pipeline_object`` and ``self.task_object``.

        ``cleaned_data`` is the run's input data, validated by ``InputType`` when the
        class sets one. An exception marks the task result RUNTIME_ERROR.
        """

    def get_iterator(self) -> Any:
        """The objects to run the task for, one task result each; None runs it once."""
        return None

    def get_serializable_task_object(self, obj: Any) -> Any:
        """``obj`` of the task iterator as stored with its task result (JSON-able)."""
        return obj

    # -- config and input data ----------------------------------------------------------

    @classmethod
    def get_id(cls) -> str:
        """The task's id (``task_id``)."""
        return cls.task_id

    def get_config(self) -> Any:
        """The validated config: a ``ConfigType`` instance, or the config dict when the
        class sets no ``ConfigType``. Raises :class:`msgspec.ValidationError`."""
        strict = self.strict_validation
        if self.ConfigType is not None:
            return msgspec.convert(self.config, self.ConfigType, strict=strict)
        return msgspec.convert(self.config, dict[str, Any], strict=strict)

    @property
    def cleaned_config(self) -> Any:
        """The validated config (:meth:`get_config`); raises :class:`ConfigValidationError`."""
        try:
            return self.get_config()
        except msgspec.ValidationError as exc:
            raise ConfigValidationError(self, f"config of task {self.name!r}: {exc}") from exc

    def get_parents(self) -> list[str]:
        """The tasks this one runs after, from ``config["parents"]`` (the original's way;
        ``Pipeline.ordering`` is the other). Raises :class:`PipelineDefinitionError`."""
        parents = self.config.get("parents", []) if isinstance(self.config, dict) else []
        if isinstance(parents, str) or not isinstance(parents, Sequence):
            raise PipelineDefinitionError(
                f"task {self.name!r}: config 'parents': give a list of task names, not {parents!r}"
            )
        for parent in parents:
            if not isinstance(parent, str):
                raise PipelineDefinitionError(
                    f"task {self.name!r}: config 'parents': give task names, not {parent!r}"
                )
        return list(parents)

    def get_serializable_config(self) -> Any:
        """The validated config as a JSON-able dict (as stored with task executions)."""
        try:
            return msgspec.to_builtins(self.get_config())
        except TypeError as exc:
            raise InvalidValueError(f"task {self.name!r}: config cannot be stored: {exc}") from exc

    def clean_input_data(self, input_data: Any) -> Any:
        """``input_data`` validated by ``InputType`` (as given when the class sets none).

        No input (None) is an empty object: an ``InputType`` whose fields all have
        defaults accepts it. Raises :class:`msgspec.ValidationError`.
        """
        if self.InputType is None:
            return input_data
        if input_data is None:
            input_data = {}
        return msgspec.convert(input_data, self.InputType, strict=self.strict_validation)

    # -- the original's per-task-result start ------------------------------------------------

    def deserialize_task_object(self, stored: Any) -> Any:
        """The task object rebuilt from its stored form (see :func:`get_object`)."""
        return get_object(stored)

    def start(self, task_result: TaskResult, reporter: StatusReporter | None) -> bool:
        """Run this task for one task result, as the original's ``Task.start``: RUNNING,
        then :meth:`run` with ``pipeline_object`` and ``task_object`` rebuilt from what
        is stored, then DONE; returns True.

        Input data that does not validate records VALIDATION_ERROR and raises
        :class:`InputValidationError`; an exception of :meth:`run` records RUNTIME_ERROR
        (its text as message) and is raised again.
        """
        try:
            task_result.report_status_change(reporter, PipelineTaskStatus.RUNNING)
            self.pipeline_object = task_result.get_pipeline_object()
            self.task_object = self.deserialize_task_object(
                task_result.get_serializable_task_object()
            )
            try:
                cleaned_data = self.clean_input_data(task_result.get_input_data())
            except msgspec.ValidationError as exc:
                raise InputValidationError(
                    self, f"input data of task {self.name!r}: {exc}"
                ) from exc
            self.run(
                pipeline_id=task_result.get_pipeline_id(),
                run_id=task_result.get_run_id(),
                cleaned_data=cleaned_data,
            )
        except Exception as exc:
            status = (
                PipelineTaskStatus.VALIDATION_ERROR
                if isinstance(exc, InputValidationError)
                else PipelineTaskStatus.RUNTIME_ERROR
            )
            task_result.report_status_change(reporter, status, str(exc) or type(exc).__name__)
            raise
        task_result.report_status_change(reporter, PipelineTaskStatus.DONE)
        return True

    @property
    def name(self) -> str:
        """The pipeline attribute name, or the task id for an undeclared task."""
        return self.pipeline_task or self.task_id

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {self.name!r} config={self.config!r}>"
