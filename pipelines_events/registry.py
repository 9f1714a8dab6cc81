"""Finds pipelines and tasks by id: the ones registered, else by importing the id.

:func:`install_loader` makes :data:`registry` the loader of the result objects
(``PipelineExecution.get_pipeline()``, ``TaskExecution.get_task()``); the runtime calls it
once, in :mod:`pipelines_events.task`. Pipelines are
registered explicitly (:func:`register_pipeline`, usable as a class decorator) or by
``Pipeline.start()`` (the class); a pipeline's tasks are registered with it. An id that is not
registered is imported as a dotted path (``module.QualName``).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from pipelines_events.dotted import DottedPathError, import_dotted
from pipelines_events.errors import PipelinesEventsError
from pipelines_events.results.base import ObjectLoader, PipelineStorageObject, class_path

if TYPE_CHECKING:
    from pipelines_events.pipeline import Pipeline
    from pipelines_events.task import Task

__all__ = [
    "NotRegisteredError",
    "Registry",
    "get_pipeline_class",
    "get_task_class",
    "install_loader",
    "load_pipeline",
    "load_task",
    "register_pipeline",
    "register_task",
    "registry",
]

_P = TypeVar("_P", bound="type[Pipeline] | Pipeline")
_T = TypeVar("_T", bound="type[Task]")


class NotRegisteredError(PipelinesEventsError, IndexError):
    """No pipeline or task has the id, registered or importable (a :class:`LookupError`;
    an :class:`IndexError` as the original's registries raised)."""


class Registry:
    """Pipelines and tasks by id; implements the result objects' ``ObjectLoader``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._pipelines: dict[str, type[Pipeline] | Pipeline] = {}
        self._tasks: dict[str, type[Task]] = {}
        self._declared_pipelines: weakref.WeakValueDictionary[str, type[Pipeline]] = (
            weakref.WeakValueDictionary()
        )
        self._declared_tasks: weakref.WeakValueDictionary[str, type[Task]] = (
            weakref.WeakValueDictionary()
        )
        self._local = threading.local()

    @contextlib.contextmanager
    def using(self, pipeline: Pipeline) -> Iterator[None]:
        """Within the block, in this thread only, :meth:`load_pipeline` of ``pipeline``'s
        id returns ``pipeline`` itself (how ``Pipeline.start()`` lets its runner see the
        object it was started on)."""
        active: dict[str, Pipeline] = getattr(self._local, "active", None) or {}
        pipeline_id = pipeline.get_id()
        previous = active.get(pipeline_id)
        active[pipeline_id] = pipeline
        self._local.active = active
        try:
            yield
        finally:
            if previous is None:
                del active[pipeline_id]
            else:
                active[pipeline_id] = previous

    # -- registering --------------------------------------------------------------------

    def register_pipeline(
        self, pipeline: _P, *, pipeline_id: str | None = None, replace: bool = False
    ) -> _P:
        """Register a pipeline class (or a pipeline object, returned as it is by
        :meth:`load_pipeline`) under its id (or ``pipeline_id``), with its tasks; returns
        it, so it works as a class decorator.

        Registering a class that is already registered, as itself or through an object of
        it, changes nothing. Without ``replace``, another class already registered under
        the id, or a task class under a task's id, is an error (:class:`ValueError`).
        """
        from pipelines_events.pipeline import Pipeline

        cls: type[Pipeline]
        if isinstance(pipeline, Pipeline):
            default_id, cls = pipeline.get_id(), type(pipeline)
        elif isinstance(pipeline, type) and issubclass(pipeline, Pipeline):
            default_id, cls = pipeline.pipeline_id, pipeline
        else:
            raise TypeError(f"register a Pipeline subclass or object, not {pipeline!r}")
        key = default_id if pipeline_id is None else pipeline_id
        with self._lock:
            current = self._pipelines.get(key)
            current_cls = current if current is None or isinstance(current, type) else type(current)
            if current_cls is cls and isinstance(pipeline, type):
                return pipeline
            if current_cls is not None and current_cls is not cls and not replace:
                raise ValueError(
                    f"pipeline id {key!r} is already registered to "
                    f"{class_path(current_cls)}; cannot register {class_path(cls)}"
                )
            tasks = [type(task) for task in cls.get_tasks().values()]
            for task_cls in tasks:
                self._check_task(task_cls, replace)
            self._pipelines[key] = pipeline
            for task_cls in tasks:
                self._tasks[task_cls.task_id] = task_cls
        return pipeline

    def register_task(self, task: _T, *, replace: bool = False) -> _T:
        """Register a task class under its ``task_id``; returns it (a decorator).

        Without ``replace``, another class already registered under the same id is an
        error (:class:`ValueError`).
        """
        from pipelines_events.task import Task

        if not (isinstance(task, type) and issubclass(task, Task)):
            raise TypeError(f"register a Task subclass, not {task!r}")
        with self._lock:
            self._check_task(task, replace)
            self._tasks[task.task_id] = task
        return task

    def _check_task(self, task: type[Task], replace: bool) -> None:
        current = self._tasks.get(task.task_id)
        if current is not None and current is not task and not replace:
            raise ValueError(
                f"task id {task.task_id!r} is already registered to {class_path(current)}; "
                f"cannot register {class_path(task)}"
            )

    def declare(self, cls: type[Pipeline] | type[Task]) -> None:
        """Remember a class as it is defined (``Pipeline`` and ``Task`` subclasses call
        this), as the original's registries did: found by its id after the registered
        ones, the latest definition of an id winning; never an error, never kept alive."""
        from pipelines_events.pipeline import Pipeline

        with self._lock:
            if issubclass(cls, Pipeline):
                self._declared_pipelines[cls.pipeline_id] = cls
            else:
                self._declared_tasks[cls.task_id] = cls

    def load_task_from_id(self, pipeline_task: str, task_id: str, config: dict[str, Any]) -> Task:
        """:meth:`load_task` with the original's argument order."""
        return self.load_task(task_id, pipeline_task, config)

    def unregister_pipeline(self, pipeline_id: str) -> None:
        """Forget the pipeline registered under ``pipeline_id`` (its tasks stay)."""
        with self._lock:
            self._pipelines.pop(pipeline_id, None)

    def clear(self) -> None:
        """Forget every registered pipeline and task."""
        with self._lock:
            self._pipelines.clear()
            self._tasks.clear()

    # -- finding ------------------------------------------------------------------------

    def get_pipeline_class(self, pipeline_id: str) -> type[Pipeline]:
        """The class of pipeline ``pipeline_id``; :class:`NotRegisteredError` if unknown."""
        found = self._find_pipeline(pipeline_id)
        return found if isinstance(found, type) else type(found)

    def get_task_class(self, task_id: str) -> type[Task]:
        """The class of task ``task_id``; :class:`NotRegisteredError` if unknown."""
        from pipelines_events.task import Task

        with self._lock:
            found = self._tasks.get(task_id) or self._declared_tasks.get(task_id)
        if found is not None:
            return found
        obj = self._import(task_id, "task")
        if not (isinstance(obj, type) and issubclass(obj, Task)):
            raise NotRegisteredError(
                f"task {task_id!r}: the object at that path is not a Task subclass ({obj!r})"
            )
        if obj.task_id != task_id:
            raise NotRegisteredError(
                f"task {task_id!r}: the class at that path has task_id {obj.task_id!r}"
            )
        return obj

    def _find_pipeline(self, pipeline_id: str) -> type[Pipeline] | Pipeline:
        from pipelines_events.pipeline import Pipeline

        active: dict[str, Pipeline] = getattr(self._local, "active", None) or {}
        if pipeline_id in active:
            return active[pipeline_id]
        with self._lock:
            found = self._pipelines.get(pipeline_id) or self._declared_pipelines.get(pipeline_id)
        if found is not None:
            return found
        obj = self._import(pipeline_id, "pipeline")
        if not (isinstance(obj, type) and issubclass(obj, Pipeline)):
            raise NotRegisteredError(
                f"pipeline {pipeline_id!r}: the object at that path is not a Pipeline "
                f"subclass ({obj!r})"
            )
        if obj.pipeline_id != pipeline_id:
            raise NotRegisteredError(
                f"pipeline {pipeline_id!r}: the class at that path has pipeline_id "
                f"{obj.pipeline_id!r}"
            )
        return obj

    @staticmethod
    def _import(dotted: str, what: str) -> Any:
        try:
            return import_dotted(dotted)
        except DottedPathError as exc:
            raise NotRegisteredError(
                f"no {what} with id {dotted!r}: it is not registered, and importing it as a "
                f"dotted path failed ({exc.problem})"
            ) from exc

    # -- the ObjectLoader protocol ----------------------------------------------------------

    def load_pipeline(self, pipeline_id: str) -> Pipeline:
        """The pipeline ``pipeline_id``: the one in use in this thread (see :meth:`using`),
        else the registered object, else a new object of its class."""
        found = self._find_pipeline(pipeline_id)
        return found() if isinstance(found, type) else found

    def load_task(self, task_id: str, pipeline_task: str, config: dict[str, Any]) -> Task:
        """A new task of class ``task_id`` with ``config``, declared as ``pipeline_task``."""
        task = self.get_task_class(task_id)(config=config)
        task.pipeline_task = pipeline_task
        return task


registry = Registry()
"""The registry the result objects load pipelines and tasks through."""

register_pipeline = registry.register_pipeline
register_task = registry.register_task
get_pipeline_class = registry.get_pipeline_class
get_task_class = registry.get_task_class
load_pipeline = registry.load_pipeline
load_task = registry.load_task


def install_loader(loader: ObjectLoader | None = None) -> None:
    """Make ``loader`` (by default :data:`registry`) what every result object loads its
    pipeline and tasks through (``PipelineStorageObject.loader``).

    The results layer cannot import the runtime, so the runtime wires itself in: this is
    the one place it does, called when :mod:`pipelines_events.task` (which every pipeline,
    task and runner imports) is loaded.
    """
    PipelineStorageObject.loader = registry if loader is None else loader
