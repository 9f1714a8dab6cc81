"""Output helpers both render modules share: JSON out, closed pipes, short values."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable
from typing import Any, Final, NoReturn

import msgspec

from pipelines_events.cli.common import printable
from pipelines_events.cli.exits import EXIT_OK

NONE: Final = "—"
"""What a table shows for a missing value."""

_encoder: Final = msgspec.json.Encoder()


def stop_on_closed_output() -> NoReturn:
    """The reader of stdout went away (``| head``): stop quietly, as a success."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(EXIT_OK)


def write_json(value: Any) -> None:
    """Print ``value`` as one JSON document on one line."""
    try:
        sys.stdout.write(_encoder.encode(value).decode() + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        stop_on_closed_output()


def write_jsonl(values: Iterable[Any]) -> None:
    """Print each value as one line of JSON."""
    for value in values:
        write_json(value)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compact(value: Any, limit: int) -> str:
    """A value on one short printable line: a str as is, anything else as compact JSON
    (``repr`` when JSON cannot hold it); control characters escaped (:func:`printable`)."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = _encoder.encode(value).decode()
        except (TypeError, msgspec.EncodeError):
            text = repr(value)
    return clip(printable(text), limit)
