"""The :class:`Pipeline` base class: tasks declared as attributes, run in dependency order."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import msgspec

from pipelines_events.errors import PipelineDefinitionError
from pipelines_events.registry import registry
from pipelines_events.reporters import LoggingReporter
from pipelines_events.results.base import (
    PipelineExecution,
    StatusReporter,
    class_path,
)
from pipelines_events.results.helpers import build_pipeline_execution
from pipelines_events.runners import (
    PipelineRunner,
    cancel_below,
    cancelled_message,
    fail_task_execution,
)
from pipelines_events.runners.eager import Runner
from pipelines_events.status import PipelineTaskStatus
from pipelines_events.task import Task, get_object

__all__ = ["Pipeline"]


class Pipeline:
    """Base of pipelines. Declare tasks as class attributes (``fetch = FetchTask()``) and,
    optionally, ``ordering``: ``{"clean": ["fetch"]}`` runs ``clean`` after ``fetch``.

    Tasks run in dependency order, otherwise in declaration order (inherited tasks
    first). ``pipeline_id`` is the class's dotted path unless the class sets it. A bad
    ``ordering`` (an unknown task, a cycle) raises :class:`PipelineDefinitionError`
    when the class is defined.
    """

    pipeline_id: str = "pipelines_events.pipeline.Pipeline"
    """The id the pipeline is stored and loaded by (the class's dotted path by default)."""
    ordering: ClassVar[Mapping[str, Sequence[str]]] = {}
    """Task name -> the names of the tasks it runs after."""

    tasks: ClassVar[dict[str, Task]] = {}
    """Task name -> task, in declaration order (as the original's ``Pipeline.tasks``)."""

    _tasks: ClassVar[dict[str, Task]] = {}
    _run_order: ClassVar[tuple[str, ...]] = ()
    _dependencies: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "pipeline_id" not in cls.__dict__:
            cls.pipeline_id = class_path(cls)
        elif not isinstance(cls.pipeline_id, str) or not cls.pipeline_id:
            raise PipelineDefinitionError(
                f"{class_path(cls)}.pipeline_id: give a non-empty str, not {cls.pipeline_id!r}"
            )
        cls._tasks = _collect_tasks(cls)
        if "tasks" in cls._tasks:
            raise PipelineDefinitionError(
                f"{class_path(cls)}: a task cannot be named 'tasks' (Pipeline.tasks lists "
                "the tasks); give it another name"
            )
        cls.tasks = dict(cls._tasks)
        cls._dependencies = _dependencies(cls, cls._tasks, cls.ordering)
        cls._run_order = _run_order(cls, cls._tasks, cls._dependencies)
        registry.declare(cls)

    # -- the BuildablePipeline protocol ---------------------------------------------------

    @classmethod
    def get_id(cls) -> str:
        """The pipeline's id (``pipeline_id``); a class method, as the original's."""
        return cls.pipeline_id

    def get_iterator(self) -> Any:
        """The objects to run the pipeline for, one pipeline result each; None runs it once."""
        return None

    def get_serializable_pipeline_object(self, obj: Any) -> Any:
        """``obj`` of the pipeline iterator as stored with its pipeline result (JSON-able)."""
        return obj

    def get_build_tasks(self) -> list[Task]:
        """The tasks, in the order they run."""
        return [self._tasks[name] for name in self._run_order]

    @classmethod
    def get_tasks(cls) -> dict[str, Task]:
        """Task name -> task, in declaration order."""
        return dict(cls._tasks)

    @classmethod
    def get_dependencies(cls) -> dict[str, list[str]]:
        """Task name -> the tasks it runs after: ``ordering`` and each task's
        ``config["parents"]`` together, every task present."""
        return {name: list(after) for name, after in cls._dependencies.items()}

    def deserialize_pipeline_object(self, stored: Any) -> Any:
        """The pipeline object rebuilt from its stored form (see
        :func:`~pipelines_events.task.get_object`)."""
        return get_object(stored)

    # -- running --------------------------------------------------------------------------

    def start(
        self,
        run_id: str | None = None,
        input_data: Any = None,
        runner: PipelineRunner | None = None,
        reporter: StatusReporter | None = None,
    ) -> PipelineExecution:
        """Build the result objects of a run (each reported PENDING) and hand the
        execution to ``runner.start(execution, reporter=reporter)``.

        ``run_id`` defaults to a new UUID, ``runner`` to the eager runner, ``reporter``
        to a :class:`~pipelines_events.reporters.LoggingReporter`. A task config that does
        not validate records only the execution, as CONFIG_ERROR; input data that does not
        validate records every object, the task results of the tasks that refused it as
        VALIDATION_ERROR and the rest CANCELLED; neither runs anything nor raises. A
        ``run_id`` that is already in the storage, or values that cannot be stored, raise
        before anything is written. Returns the run's execution.
        """
        if run_id is None:
            run_id = str(uuid.uuid4())
        if runner is None:
            runner = Runner()
        if reporter is None:
            reporter = LoggingReporter()
        registry.register_pipeline(type(self), pipeline_id=self.get_id(), replace=True)

        config_errors = self.get_config_errors()
        if config_errors:
            execution = build_pipeline_execution(
                self, run_id, runner, reporter, input_data, build_all=False
            )
            execution.report_status_change(
                reporter, PipelineTaskStatus.CONFIG_ERROR, "; ".join(config_errors.values())
            )
            return execution

        input_errors = self.get_input_errors(input_data)
        execution = build_pipeline_execution(
            self, run_id, runner, reporter, input_data, build_all=True
        )
        if input_errors:
            _report_input_errors(execution, reporter, input_errors, self._run_order)
            return execution
        with registry.using(self):
            start = getattr(runner, "start", None)
            if start is not None:
                start(execution, reporter=reporter)
            else:
                runner.run(execution, reporter)
        return execution

    def get_config_errors(self) -> dict[str, str]:
        """Task name -> why its config does not validate, for the tasks whose does not."""
        errors: dict[str, str] = {}
        for task in self.get_build_tasks():
            try:
                task.get_config()
            except msgspec.ValidationError as exc:
                errors[task.pipeline_task] = f"config of task {task.pipeline_task!r}: {exc}"
        return errors

    def get_input_errors(self, input_data: Any) -> dict[str, str]:
        """Task name -> why ``input_data`` does not validate, for the tasks it does not."""
        errors: dict[str, str] = {}
        for task in self.get_build_tasks():
            try:
                task.clean_input_data(input_data)
            except msgspec.ValidationError as exc:
                errors[task.pipeline_task] = f"input data of task {task.pipeline_task!r}: {exc}"
        return errors

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {self.get_id()!r}>"


def _report_input_errors(
    execution: PipelineExecution,
    reporter: StatusReporter,
    errors: dict[str, str],
    run_order: Sequence[str],
) -> None:
    """VALIDATION_ERROR on the task results of the tasks in ``errors``, the rest CANCELLED."""
    first = next(name for name in run_order if name in errors)
    for result in execution.get_pipeline_results():
        for task_execution in result.get_task_executions():
            message = errors.get(task_execution.get_pipeline_task())
            if message is not None:
                fail_task_execution(
                    task_execution, reporter, PipelineTaskStatus.VALIDATION_ERROR, message
                )
        cancel_below(result, reporter, cancelled_message(first))
    if not execution.get_pipeline_results():
        execution.report_status_change(
            reporter, PipelineTaskStatus.VALIDATION_ERROR, "; ".join(errors.values())
        )


def _collect_tasks(cls: type[Pipeline]) -> dict[str, Task]:
    """The tasks of ``cls`` and its bases, in declaration order (bases first)."""
    tasks: dict[str, Task] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Task):
                tasks[name] = value
            elif name in tasks:
                del tasks[name]  # a subclass replaced the task with something else
    for name, task in tasks.items():
        others = task.declared_names() - {name}
        if others:
            also = ", ".join(repr(other) for other in sorted(others))
            raise PipelineDefinitionError(
                f"{class_path(cls)}: task {name!r} is the same Task object as {also}; "
                "give each task attribute its own Task object"
            )
    return tasks


def _dependencies(
    cls: type[Pipeline], tasks: dict[str, Task], ordering: Mapping[str, Sequence[str]]
) -> dict[str, tuple[str, ...]]:
    """Task name -> the names it runs after, from ``ordering`` and the tasks' parents."""
    where = f"{class_path(cls)}.ordering"
    if not isinstance(ordering, Mapping):
        raise PipelineDefinitionError(
            f"{where}: give a dict of task name -> list of task names, not {ordering!r}"
        )
    after: dict[str, list[str]] = {name: [] for name in tasks}
    for name, before in ordering.items():
        if name not in tasks:
            raise PipelineDefinitionError(f"{where}: unknown task {name!r}{_known(tasks)}")
        if isinstance(before, str) or not isinstance(before, Sequence | set | frozenset):
            raise PipelineDefinitionError(
                f"{where}[{name!r}]: give a list of task names, not {before!r}"
            )
        for dependency in before:
            if dependency not in tasks:
                raise PipelineDefinitionError(
                    f"{where}[{name!r}]: unknown task {dependency!r}{_known(tasks)}"
                )
            if dependency not in after[name]:
                after[name].append(dependency)
    for name, task in tasks.items():
        for dependency in task.get_parents():
            if dependency not in tasks or dependency == name:
                raise PipelineDefinitionError(
                    f"{class_path(cls)}.{name}: config 'parents': unknown task "
                    f"{dependency!r}{_known({k: v for k, v in tasks.items() if k != name})}"
                )
            if dependency not in after[name]:
                after[name].append(dependency)
    return {name: tuple(before) for name, before in after.items()}


def _run_order(
    cls: type[Pipeline], tasks: dict[str, Task], after: Mapping[str, Sequence[str]]
) -> tuple[str, ...]:
    """The task names in dependency order, ties kept in declaration order."""
    where = f"{class_path(cls)}.ordering"
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(tasks):
        ready = next(
            (
                name
                for name in tasks
                if name not in placed and all(dep in placed for dep in after[name])
            ),
            None,
        )
        if ready is None:
            cycle = _find_cycle(after, placed)
            raise PipelineDefinitionError(f"{where}: cycle {' -> '.join(map(repr, cycle))}")
        order.append(ready)
        placed.add(ready)
    return tuple(order)


def _find_cycle(after: Mapping[str, Sequence[str]], placed: set[str]) -> list[str]:
    """A cycle among the tasks not placed, as names from a task back to itself."""
    start = next(name for name in after if name not in placed)
    path: list[str] = []
    while start not in path:
        path.append(start)
        start = next(dep for dep in after[start] if dep not in placed)
    cycle = [*path[path.index(start) :], start]
    cycle.reverse()  # "a -> b" reads "a runs before b"
    return cycle


def _known(tasks: Mapping[str, Task]) -> str:
    names = ", ".join(repr(name) for name in tasks)
    return f" (the tasks are {names})" if names else " (the pipeline has no tasks)"
