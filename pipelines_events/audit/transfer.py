"""A run's log exported, replayed step by step, imported elsewhere: the names of
:mod:`~pipelines_events.audit.export`, :mod:`~pipelines_events.audit.importing` and
:mod:`~pipelines_events.audit.replay`, importable from here as before."""

from __future__ import annotations

from pipelines_events.audit.export import (
    PART_SUFFIX,
    ExportSummary,
    export,
    remove_abandoned_exports,
)
from pipelines_events.audit.importing import EXTENDED, IMPORTED, PRESENT, ImportOutcome
from pipelines_events.audit.replay import Replay, ReplayStep, import_log, replay

__all__ = [
    "EXTENDED",
    "IMPORTED",
    "PART_SUFFIX",
    "PRESENT",
    "ExportSummary",
    "ImportOutcome",
    "Replay",
    "ReplayStep",
    "export",
    "import_log",
    "remove_abandoned_exports",
    "replay",
]
