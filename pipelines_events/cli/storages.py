"""The storage a command reads or writes (``--log``, else the configured one), the run it
names, and the console its results go to."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from typing import Final

from rich.console import Console

from pipelines_events.cli import live
from pipelines_events.cli.common import (
    console,
    match_run_id,
    missing_log_file,
    open_storage,
    storage_run_ids,
)
from pipelines_events.conf import STORAGE_SETTING, settings
from pipelines_events.errors import (
    ImproperlyConfigured,
    LogError,
    LogOpenError,
    ObjectNotFoundError,
)
from pipelines_events.log.open import LogTarget
from pipelines_events.results.base import PipelineExecution, PipelineResultsStorage, class_path
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.results.helpers import get_pipeline_results_storage, reset_storage_object

__all__ = ["find_run", "reading", "stdout", "storage_name", "writing"]

_PIPED_WIDTH: Final = 1000


def stdout() -> Console:
    """The console of results: as wide as a line needs when it is not a terminal (and
    ``COLUMNS`` does not say), so piped output is neither wrapped nor cut."""
    out = console()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = _PIPED_WIDTH
    return out


@contextlib.contextmanager
def reading(args: argparse.Namespace) -> Iterator[PipelineResultsStorage]:
    """The storage of ``--log`` or the configured one, opened read-only when it is an event
    log (which must exist: reading never creates, repairs or snapshots it), and closed
    afterwards; a configured storage of another class is the shared one, left open."""
    log: LogTarget | None = args.log
    if missing_log_file(log):
        raise LogOpenError(f"{log}: no such log file")
    with live.working("reading the log"):
        storage = open_storage(args, readonly=True)
    try:
        yield storage
    finally:
        if isinstance(storage, EventLogPipelineResultsStorage) and storage.readonly:
            storage.close()


@contextlib.contextmanager
def writing(args: argparse.Namespace) -> Iterator[PipelineResultsStorage]:
    """Within the block the helpers (so ``Pipeline.start``) use the storage of ``--log``,
    else the configured one; yields it, opened."""
    log: LogTarget | None = args.log
    override: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if log is not None:
        override = settings.override_settings(
            **{STORAGE_SETTING: (class_path(EventLogPipelineResultsStorage), {"path": str(log)})}
        )
    with override:
        try:
            try:
                storage = get_pipeline_results_storage()
            except ImproperlyConfigured as exc:
                if log is not None and isinstance(exc.__cause__, LogError):
                    raise exc.__cause__ from None  # --log names the problem, not the setting
                raise
            yield storage
        finally:
            if log is not None:
                reset_storage_object()


def storage_name(args: argparse.Namespace, storage: PipelineResultsStorage) -> str:
    """Where the storage is, for messages: the ``--log`` given, the log's location, or
    "the configured storage"."""
    if args.log is not None:
        return str(args.log)
    if isinstance(storage, EventLogPipelineResultsStorage):
        return storage.log.location
    return "the configured storage"


def find_run(storage: PipelineResultsStorage, run_id: str, where: str) -> PipelineExecution:
    """The execution of ``run_id``, or of the one run whose id starts with it."""
    execution = storage.get_pipeline_execution(run_id)
    if execution is not None:
        return execution
    found = match_run_id(storage_run_ids(storage), run_id, where)
    execution = None if found is None else storage.get_pipeline_execution(found)
    if execution is not None:
        return execution
    raise ObjectNotFoundError(
        f"no run has the id {run_id!r} in {where}; `pipelines-events runs` lists them"
    )
