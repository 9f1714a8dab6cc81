"""What every command shares: the ``--log`` and ``--format`` options and the storage."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from pipelines_events.errors import ImproperlyConfigured
from pipelines_events.results.base import PipelineResultsStorage
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.helpers import get_pipeline_results_storage

FORMATS = ("table", "json", "jsonl")


def add_log_option(parser: argparse.ArgumentParser) -> None:
    """``--log PATH``: use this log file instead of the configured storage."""
    parser.add_argument(
        "--log",
        metavar="PATH",
        type=Path,
        help="the JSON-lines log to use (default: the configured storage)",
    )


def add_format_option(parser: argparse.ArgumentParser) -> None:
    """``--format table|json|jsonl`` for commands that print records."""
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )


def open_storage(args: argparse.Namespace) -> PipelineResultsStorage:
    """The storage of ``--log``, else the one the settings configure."""
    log: Path | None = args.log
    if log is not None:
        return EventLogPipelineResultsStorage(log)
    return get_pipeline_results_storage()


def log_path(args: argparse.Namespace) -> Path:
    """The log file of ``--log``, else of the configured event-log storage."""
    log: Path | None = args.log
    if log is not None:
        return log
    storage = get_pipeline_results_storage()
    if not isinstance(storage, EventLogPipelineResultsStorage):
        raise ImproperlyConfigured(
            "PIPELINES_PIPELINES_RESULTS_STORAGE is not an event-log storage, so it has no "
            "log file: pass --log PATH"
        )
    return storage.log.path


def console() -> Console:
    """The console commands print to (no colour when not a terminal)."""
    return Console(highlight=False, soft_wrap=False)
