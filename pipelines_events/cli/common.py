"""What every command shares: the ``--log`` and ``--format`` options and the storage."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from pipelines_events.conf import STORAGE_SETTING, storage_setting
from pipelines_events.errors import ImproperlyConfigured
from pipelines_events.results.base import PipelineResultsStorage
from pipelines_events.results.eventlog import DEFAULT_PATH, EventLogPipelineResultsStorage
from pipelines_events.results.helpers import get_pipeline_results_storage, load_storage_class

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
    """The log file of ``--log``, else the ``path`` of the configured event-log storage.

    Reads the setting only: nothing is opened or created (read-only commands must not
    create a missing log).
    """
    log: Path | None = args.log
    if log is not None:
        return log
    dotted, kwargs = storage_setting()
    storage_class = load_storage_class(dotted)
    if not issubclass(storage_class, EventLogPipelineResultsStorage):
        raise ImproperlyConfigured(
            f"{STORAGE_SETTING} is {dotted}, not an event-log storage, so it has no log "
            "file: pass --log PATH"
        )
    return Path(kwargs.get("path", DEFAULT_PATH))


def console() -> Console:
    """The console commands print to (no colour when not a terminal)."""
    return Console(highlight=False, soft_wrap=False)
