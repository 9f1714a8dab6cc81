"""The arguments several commands share: times, counts, seconds, and ``show``'s point in
time (``--as-of``/``--at-seq``)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Final

from pipelines_events import audit
from pipelines_events.cli import render_audit as out_audit
from pipelines_events.cli.common import log_path
from pipelines_events.errors import InvalidValueError

__all__ = [
    "TIME_HELP",
    "add_point_in_time_options",
    "open_view",
    "parse_count_option",
    "parse_seconds_option",
    "parse_time_option",
    "view_title",
]

TIME_HELP: Final = "an ISO 8601 time such as 2026-11-05T12:00:00Z (UTC when no offset is given)"
"""How an option taking a time says what it takes."""


# -- arguments --------------------------------------------------------------------------------


def parse_time_option(option: str, text: str | None) -> datetime | None:
    """The time given to ``option``; :class:`InvalidValueError` naming it if it is not one."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidValueError(f"{option}: {text!r} is not a time; give {TIME_HELP}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def parse_count_option(option: str, text: str | None, what: str = "a seq") -> int | None:
    """The whole number (at least 0) given to ``option`` (``what`` it counts, for errors)."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidValueError(f"{option}: {text!r} is not {what}; give a whole number, 0 or more")
    return value


def parse_seconds_option(option: str, text: str | None) -> float | None:
    """The seconds (a number, at least 0) given to ``option``."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise InvalidValueError(f"{option}: {text!r} is not a number of at least 0")
    return value


# -- show --as-of / --at-seq ------------------------------------------------------------------


def add_point_in_time_options(parser: argparse.ArgumentParser) -> None:
    """``--as-of TIME`` and ``--at-seq N`` for a command that shows stored state (``show``)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--as-of",
        metavar="TIME",
        help=f"show the state as it stood at TIME: {TIME_HELP}",
    )
    group.add_argument(
        "--at-seq",
        metavar="N",
        help="show the state after the batch holding event N of the log (0: empty)",
    )


def open_view(args: argparse.Namespace) -> audit.StorageView | None:
    """The read-only storage view ``--as-of``/``--at-seq`` ask for, or None without them.

    The view offers the storage's ``get_`` methods and queries; ``view.describe()`` says
    where it stands, for a title.
    """
    as_of = parse_time_option("--as-of", getattr(args, "as_of", None))
    at_seq = parse_count_option("--at-seq", getattr(args, "at_seq", None))
    if as_of is None and at_seq is None:
        return None
    return audit.view_at(log_path(args), seq=at_seq, as_of=as_of)


def view_title(run_id: str, view: audit.StorageView) -> str:
    """The title of a run shown through a view: where in the log it stands."""
    title = f"run {run_id} as of seq {view.seq}"
    if view.requested_seq is not None and view.requested_seq != view.seq:
        title += f" (the batch holding seq {view.requested_seq} ends there)"
    if view.time is not None:
        title += f", {out_audit.format_time(view.time)} UTC"
    if view.as_of is not None:
        title += f" (asked: as of {out_audit.format_time(view.as_of)} UTC)"
    return title
