"""What every command shares: how a command is added, the ``--log`` and ``--format``
options and the storage."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from rich.console import Console

from pipelines_events.conf import STORAGE_SETTING, settings, storage_setting
from pipelines_events.errors import (
    ImproperlyConfigured,
    LogError,
    ObjectNotFoundError,
    PipelinesEventsError,
)
from pipelines_events.log.open import LogTarget, is_url
from pipelines_events.results.base import PipelineResultsStorage
from pipelines_events.results.eventlog import DEFAULT_PATH, EventLogPipelineResultsStorage
from pipelines_events.results.helpers import get_pipeline_results_storage, load_storage_class

FORMATS = ("table", "json", "jsonl")

_BIDI: Final = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\x1b": "\\x1b"}
_ESCAPES: Final = {
    **{code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)]},
    **{ord(char): f"\\u{ord(char):04x}" for char in _BIDI + "\u2028\u2029"},
    **{ord(char): text for char, text in _NAMED.items()},
}


def printable(text: object) -> str:
    """``text`` (or ``str(text)``) safe to print on a terminal, shown literally: control
    characters (C0, DEL, C1), bidi overrides and line separators become escapes such as
    ``\\x1b``, ``\\n`` and ``\\u202e``. Rich markup in it is never interpreted as long as
    it goes to the console inside a :class:`rich.text.Text`; applying it twice changes
    nothing more."""
    return (text if isinstance(text, str) else str(text)).translate(_ESCAPES)


def log_target(text: str) -> LogTarget:
    """A ``--log`` value: a URL (``postgresql://...``, ``memory://NAME``) as given, else a
    path."""
    return text if is_url(text) else Path(text)


def missing_log_file(log: LogTarget | None) -> bool:
    """Whether ``--log`` names a file that does not exist (a URL is the engine's to
    check: it is never looked up as a path)."""
    return log is not None and not is_url(log) and not Path(log).exists()


def add_command(
    commands: Any,
    name: str,
    summary: str,
    handler: Callable[[argparse.Namespace], int],
    *,
    formats: bool = False,
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` to ``commands`` (``summary`` is its help and description),
    run by ``handler``, with ``--log`` and, with ``formats``, ``--format``."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=summary, description=summary)
    parser.set_defaults(handler=handler)
    add_log_option(parser)
    if formats:
        add_format_option(parser)
    return parser


def add_log_option(parser: argparse.ArgumentParser) -> None:
    """``--log PATH|URL``: use this log instead of the configured storage."""
    parser.add_argument(
        "--log",
        metavar="PATH|URL",
        type=log_target,
        help="the log to use: a JSON-lines file, or a postgresql:// URL "
        "(default: the configured storage)",
    )


def add_format_option(parser: argparse.ArgumentParser) -> None:
    """``--format table|json|jsonl`` for commands that print records."""
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )


def open_storage(args: argparse.Namespace, *, readonly: bool = False) -> PipelineResultsStorage:
    """The storage of ``--log``, else the one the settings configure.

    With ``readonly``, an event-log storage is a new read-only one (the caller closes it):
    it never creates, repairs or snapshots the log. A configured storage of another class
    is the shared configured one.
    """
    log: LogTarget | None = args.log
    if log is not None:
        return EventLogPipelineResultsStorage(log, readonly=readonly)
    if not readonly:
        return get_pipeline_results_storage()
    dotted, kwargs = storage_setting()
    source = setting_source()
    storage_class = load_storage_class(dotted)
    if not issubclass(storage_class, EventLogPipelineResultsStorage):
        return get_pipeline_results_storage()
    try:
        return storage_class(**{**kwargs, "readonly": True})
    except LogError:
        raise  # it names the log file; the command line adds where the setting came from
    except (TypeError, ValueError, PipelinesEventsError) as exc:
        raise ImproperlyConfigured(
            f"{STORAGE_SETTING} (from {source}) is {dotted} with kwargs it refuses: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def setting_source() -> str:
    """Where the storage setting comes from: ``default``, ``settings module 'x' (...)``..."""
    return settings.lookup(STORAGE_SETTING)[1]


def log_path(args: argparse.Namespace) -> LogTarget:
    """The log of ``--log``, else the ``path`` of the configured event-log storage (a path
    or a URL).

    Reads the setting only: nothing is opened or created (read-only commands must not
    create a missing log).
    """
    log: LogTarget | None = args.log
    if log is not None:
        return log
    dotted, kwargs = storage_setting()
    storage_class = load_storage_class(dotted)
    if not issubclass(storage_class, EventLogPipelineResultsStorage):
        raise ImproperlyConfigured(
            f"{STORAGE_SETTING} is {dotted}, not an event-log storage, so it has no log "
            "file: pass --log PATH"
        )
    target = kwargs.get("path", DEFAULT_PATH)
    return log_target(target) if isinstance(target, str) else Path(target)


def console() -> Console:
    """The console commands print to (no colour when not a terminal)."""
    return Console(highlight=False, soft_wrap=False)


MIN_RUN_PREFIX: Final = 4
"""The shortest start of a run id the commands take in place of the whole id."""


def match_run_id(run_ids: list[str], text: str, where: str) -> str | None:
    """The run id ``text`` is, or the one run id it uniquely starts (at least
    :data:`MIN_RUN_PREFIX` characters); None when no run id matches.

    Raises :class:`ObjectNotFoundError` listing the candidates when several start with it.
    """
    if text in run_ids:
        return text
    if len(text) < MIN_RUN_PREFIX:
        return None
    found = [run_id for run_id in run_ids if run_id.startswith(text)]
    if len(found) == 1:
        return found[0]
    if found:
        shown = ", ".join(found[:10]) + (", …" if len(found) > 10 else "")
        raise ObjectNotFoundError(
            f"{len(found)} runs have an id starting with {text!r} in {where} ({shown}); "
            "give more of it"
        )
    return None


def storage_run_ids(storage: PipelineResultsStorage) -> list[str]:
    """Every run id of ``storage``, oldest first: from the engine's run index when the log
    keeps one (no run is loaded), else from the executions."""
    if isinstance(storage, EventLogPipelineResultsStorage):
        index = storage.run_index()
        if index is not None:
            return [summary.run_id for summary in index]
    return [execution.get_run_id() for execution in storage.get_pipeline_executions()]


def resolve_run_id(args: argparse.Namespace, text: str) -> str:
    """The whole run id ``text`` stands for in the storage of ``args`` (read-only), see
    :func:`match_run_id`; ``text`` itself when no run matches or there is no log to read."""
    log: LogTarget | None = args.log
    if missing_log_file(log):
        return text
    try:
        storage = open_storage(args, readonly=True)
    except LogError:
        return text  # the command itself reports the log's problem
    try:
        where = str(log) if log is not None else "the configured storage"
        run_ids = storage_run_ids(storage)
        return match_run_id(run_ids, text, where) or text
    finally:
        if isinstance(storage, EventLogPipelineResultsStorage) and storage.readonly:
            storage.close()
