"""The :class:`Task` base class: one step of a pipeline, declared as a pipeline attribute."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import msgspec

from pipelines_events.errors import InvalidValueError, PipelineDefinitionError
from pipelines_events.results.base import class_path

__all__ = ["Task"]


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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "task_id" not in cls.__dict__:
            cls.task_id = class_path(cls)
        elif not isinstance(cls.task_id, str) or not cls.task_id:
            raise PipelineDefinitionError(
                f"{class_path(cls)}.task_id: give a non-empty str, not {cls.task_id!r}"
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

    def get_config(self) -> Any:
        """The validated config: a ``ConfigType`` instance, or the config dict when the
        class sets no ``ConfigType``. Raises :class:`msgspec.ValidationError`."""
        if self.ConfigType is not None:
            return msgspec.convert(self.config, self.ConfigType)
        return msgspec.convert(self.config, dict[str, Any])

    def get_serializable_config(self) -> Any:
        """The validated config as a JSON-able dict (as stored with task executions)."""
        try:
            return msgspec.to_builtins(self.get_config())
        except TypeError as exc:
            raise InvalidValueError(f"task {self.name!r}: config cannot be stored: {exc}") from exc

    def clean_input_data(self, input_data: Any) -> Any:
        """``input_data`` validated by ``InputType`` (as given when the class sets none).

        Raises :class:`msgspec.ValidationError`.
        """
        if self.InputType is None:
            return input_data
        return msgspec.convert(input_data, self.InputType)

    @property
    def name(self) -> str:
        """The pipeline attribute name, or the task id for an undeclared task."""
        return self.pipeline_task or self.task_id

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {self.name!r} config={self.config!r}>"
