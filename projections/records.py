"""The record of one result object: its fields in slots (what every task result has) or
in ``extra``, its parent and its children."""

from __future__ import annotations

from typing import Any

ABSENT: Any = object()
"""The value of a slot the object does not hold (a task object may be None)."""

_SLOTS: dict[str, str] = {
    "status": "status",
    "started": "started",
    "completed": "completed",
    "message": "message",
    "serializable_task_object": "task_object",
}
"""Fields kept in slots of their own (what every task result has); the rest go in
``extra``. A dict per object would cost more memory than all the slots together."""


class ResultRecord:
    """The current state of one result object.

    Read fields with :meth:`get` and :meth:`has`, or all at once with :attr:`attrs`.
    ``children`` holds the ids of its child objects in creation order (an empty tuple
    until the first); ``open_children`` how many of them are not in a final status.
    """

    __slots__ = (
        "children",
        "completed",
        "extra",
        "id",
        "kind",
        "message",
        "open_children",
        "parent_id",
        "run_id",
        "started",
        "status",
        "task_object",
    )

    def __init__(
        self, kind: str, id: str, run_id: str, parent_id: str | None, attrs: dict[str, Any]
    ) -> None:
        self.kind = kind
        self.id = id
        self.run_id = run_id
        self.parent_id = parent_id
        self.status: Any = attrs.pop("status", None)
        self.started: Any = attrs.pop("started", None)
        self.completed: Any = attrs.pop("completed", None)
        self.message: Any = attrs.pop("message", None)
        self.task_object: Any = attrs.pop("serializable_task_object", ABSENT)
        self.extra: dict[str, Any] | None = attrs or None
        self.children: list[str] | tuple[()] = ()
        self.open_children = 0

    def get(self, name: str, default: Any = None) -> Any:
        """The value of field ``name``, or ``default`` when the object has none."""
        slot = _SLOTS.get(name)
        if slot is not None:
            value = getattr(self, slot)
            return default if value is ABSENT else value
        extra = self.extra
        return default if extra is None else extra.get(name, default)

    def has(self, name: str) -> bool:
        """Whether the object holds field ``name``."""
        slot = _SLOTS.get(name)
        if slot is not None:
            value = getattr(self, slot)
            # A task object may be None; the other slots hold None until first set.
            return value is not ABSENT if slot == "task_object" else value is not None
        return self.extra is not None and name in self.extra

    def set(self, name: str, value: Any) -> None:
        """Store ``value`` as field ``name``."""
        slot = _SLOTS.get(name)
        if slot is not None:
            setattr(self, slot, value)
        elif self.extra is None:
            self.extra = {name: value}
        else:
            self.extra[name] = value

    @property
    def attrs(self) -> dict[str, Any]:
        """Every field the object holds, as a new dict (its lists and dicts are the stored
        ones: do not change them)."""
        fields = {name: self.get(name) for name in _SLOTS if self.has(name)}
        if self.extra:
            fields.update(self.extra)
        return fields

    def __repr__(self) -> str:
        return f"ResultRecord({self.kind} {self.id} run={self.run_id} {self.attrs!r})"


__all__ = ["ABSENT", "ResultRecord"]
