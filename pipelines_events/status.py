"""The status of a pipeline execution, pipeline result, task execution or task result."""

from __future__ import annotations

from enum import Enum


class PipelineTaskStatus(Enum):
    """A result object's status; it only moves PENDING -> RUNNING -> a final status."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    CONFIG_ERROR = "CONFIG_ERROR"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    RUNTIME_ERROR = "RUNTIME_ERROR"
    CANCELLED = "CANCELLED"

    # Members are singletons compared by identity, so hashing by identity is exact, and
    # it is C code: status lookups in sets and dicts are on the hot path of every fold.
    __hash__ = object.__hash__

    @classmethod
    def choices(cls) -> tuple[tuple[str, str], ...]:
        """``(name, value)`` of every status, for a Django field's ``choices``."""
        return tuple((status.name, status.value) for status in cls)

    @classmethod
    def final_statuses(cls) -> frozenset[PipelineTaskStatus]:
        """Statuses nothing leaves: the failed statuses and the success statuses."""
        return _FINAL

    @classmethod
    def non_final_statuses(cls) -> frozenset[PipelineTaskStatus]:
        """Statuses before the end: PENDING and RUNNING."""
        return _NON_FINAL

    @classmethod
    def failed_statuses(cls) -> frozenset[PipelineTaskStatus]:
        """Statuses that count as a failure in the digest: the errors and CANCELLED."""
        return _FAILED

    @classmethod
    def error_statuses(cls) -> frozenset[PipelineTaskStatus]:
        """The failed statuses but CANCELLED: CONFIG_ERROR, VALIDATION_ERROR, RUNTIME_ERROR.

        An error propagates to the parent at once and decides its outcome; CANCELLED
        waits, like DONE, for the parent's other children.
        """
        return _ERRORS

    @classmethod
    def success_statuses(cls) -> frozenset[PipelineTaskStatus]:
        """Statuses that count as a success in the digest."""
        return _SUCCESS

    @property
    def is_final(self) -> bool:
        """Whether this status is final."""
        return self in _FINAL

    def has_advanced(self, new_state: PipelineTaskStatus) -> bool:
        """Whether moving from this status to ``new_state`` is an advance.

        PENDING -> RUNNING -> a final status; no status leaves a final one and no status
        advances to itself.
        """
        return _RANK[new_state] > _RANK[self] and self not in _FINAL


_ERRORS = frozenset(
    {
        PipelineTaskStatus.CONFIG_ERROR,
        PipelineTaskStatus.VALIDATION_ERROR,
        PipelineTaskStatus.RUNTIME_ERROR,
    }
)
_FAILED = _ERRORS | {PipelineTaskStatus.CANCELLED}
_SUCCESS = frozenset({PipelineTaskStatus.DONE})
_FINAL = _FAILED | _SUCCESS
_NON_FINAL = frozenset({PipelineTaskStatus.PENDING, PipelineTaskStatus.RUNNING})
_RANK = {
    status: (2 if status in _FINAL else 1 if status.name == "RUNNING" else 0)
    for status in PipelineTaskStatus
}
