"""The event log: append batches of events atomically and read them back from a position."""

from pipelines_events.log.base import EventLog
from pipelines_events.log.jsonl import (
    DURABILITY_MODES,
    JsonlEventLog,
    LogPermissionsWarning,
    TornWriteRepaired,
    read_events,
)
from pipelines_events.log.open import open_log

__all__ = [
    "DURABILITY_MODES",
    "EventLog",
    "JsonlEventLog",
    "LogPermissionsWarning",
    "TornWriteRepaired",
    "open_log",
    "read_events",
]
