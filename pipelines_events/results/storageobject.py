"""The base of the four result objects: the seed's ``get_``/``set_`` fallback, the loader
of pipelines and tasks, and status changes with their propagation to the parent."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol

from pipelines_events.errors import InvalidValueError
from pipelines_events.events import copy_value, encode_value, utc_now
from pipelines_events.results.checks import IDENTIFYING_FIELDS, as_status, encode_field_value
from pipelines_events.results.reporting import StatusReporter, status_change_message
from pipelines_events.status import PipelineTaskStatus

__all__ = ["Batch", "ObjectLoader", "PipelineStorageObject"]

_RUNNING = PipelineTaskStatus.RUNNING
_FAILED = PipelineTaskStatus.error_statuses()


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

    def get_pipeline(self) -> Any:
        """The pipeline object, loaded by its id."""
        return self.loader.load_pipeline(self.get_pipeline_id())

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
