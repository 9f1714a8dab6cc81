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
    def final_statuses(cls) -> frozenset[PipelineTaskStatus]:
        """Statuses nothing leaves: DONE, the failed statuses and CANCELLED."""
        return _FINAL

    @classmethod
    def failed_statuses(cls) -> frozenset[PipelineTaskStatus]:
        """Statuses that count as a failure in the digest."""
        return _FAILED

    @classmethod
    def success_statuses(cls) -> frozenset[PipelineTaskStatus]:
        """Statuses that count as a success in the digest."""
        return _SUCCESS

    @property
    def is_final(self) -> bool:
        """Whether this status is final."""
        return self in _FINAL

    def has_advanced(self, previous: PipelineTaskStatus | None) -> bool:
        """Whether moving from ``previous`` to this status is an advance.

        PENDING -> RUNNING -> a final status; no status leaves a final one and
        no status advances to itself. ``None`` (no status yet) advances to anything.
        """
        if previous is None:
            return True
        return _RANK[self] > _RANK[previous]


_FINAL = frozenset(
    {
        PipelineTaskStatus.DONE,
        PipelineTaskStatus.CONFIG_ERROR,
        PipelineTaskStatus.VALIDATION_ERROR,
        PipelineTaskStatus.RUNTIME_ERROR,
        PipelineTaskStatus.CANCELLED,
    }
)
_FAILED = frozenset(
    {
        PipelineTaskStatus.CONFIG_ERROR,
        PipelineTaskStatus.VALIDATION_ERROR,
        PipelineTaskStatus.RUNTIME_ERROR,
    }
)
_SUCCESS = frozenset({PipelineTaskStatus.DONE})
_RANK = {
    status: (2 if status in _FINAL else 1 if status.name == "RUNNING" else 0)
    for status in PipelineTaskStatus
}
