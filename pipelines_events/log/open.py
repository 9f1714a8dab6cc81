"""One factory for every engine: :func:`open_log` takes a path or a URL.

- a path (``str`` or path-like, no ``scheme://``): the JSON-lines file log;
- ``postgresql://...`` or ``postgres://...``: the PostgreSQL log (needs the ``postgres``
  extra: ``pip install 'pipelines-events[postgres]'``);
- ``memory://NAME``: the in-memory log called NAME in this process (for tests).
"""

from __future__ import annotations

import importlib
import os
import re
from typing import Any, Final

from pipelines_events.errors import LogOpenError
from pipelines_events.log.base import EventLog

LogTarget = str | os.PathLike[str]
"""What :func:`open_log` takes: a path or a URL."""

POSTGRES_SCHEMES: Final = ("postgresql", "postgres")
_SCHEME: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme_of(target: LogTarget) -> str | None:
    """The URL scheme of ``target`` (lower case), or None for a path."""
    if not isinstance(target, str):
        return None
    match = _SCHEME.match(target)
    return None if match is None else match.group(1).lower()


def is_url(target: object) -> bool:
    """Whether ``target`` is a log URL rather than a path."""
    return isinstance(target, str) and scheme_of(target) is not None


def open_log(target: LogTarget, **options: Any) -> EventLog:
    """Open the log at ``target`` (a path or a URL) with the engine's ``options``.

    Raises :class:`~pipelines_events.errors.LogOpenError` for an unknown scheme, a
    missing driver or a value the engine refuses, and :class:`TypeError` for an option
    the engine does not take.
    """
    if isinstance(target, EventLog):
        raise LogOpenError(f"open_log takes a path or a URL, not an open log ({target.location})")
    _check_target(target)
    scheme = scheme_of(target)
    if scheme is None:
        from pipelines_events.log.jsonl import JsonlEventLog

        return JsonlEventLog(target, **_checked(options, "the file log", target))
    assert isinstance(target, str)
    if scheme in POSTGRES_SCHEMES:
        try:
            engine = importlib.import_module("pipelines_events.log.postgres")
        except ImportError as exc:
            raise LogOpenError(
                f"{redact_url(target)}: the PostgreSQL engine needs psycopg 3 ({exc}): "
                "pip install 'pipelines-events[postgres]'"
            ) from None
        log: EventLog = engine.PostgresEventLog(target, **options)
        return log
    if scheme == "memory":
        from pipelines_events.log.memory import MemoryEventLog

        name = target[len("memory://") :]
        if not name or "/" in name or "?" in name:
            raise LogOpenError(f"{target}: an in-memory log is memory://NAME (a name, no path)")
        return MemoryEventLog(name, **_checked(options, "the in-memory log", target))
    if scheme == "file":
        raise LogOpenError(
            f"{redact_url(target)}: give the file log's path itself, not a file:// URL"
        )
    raise LogOpenError(
        f"{redact_url(target)}: unknown log URL scheme {scheme!r}: give a file path, a "
        "postgresql:// URL or memory://NAME"
    )


_NEAR_URL: Final = re.compile(r"^(postgresql|postgres|memory|file):(?!//)", re.IGNORECASE)


def _check_target(target: object) -> None:
    """Refuse, before anything is created, a target no engine can mean."""
    if isinstance(target, str | bytes) or hasattr(target, "__fspath__"):
        try:
            text = os.fspath(target)
        except TypeError:
            return  # the file log names the wrong type
        if isinstance(text, bytes):
            return
        if not text.strip():
            raise LogOpenError(f"the log path is empty ({text!r}): give a file path or a URL")
        if "\0" in text:
            raise LogOpenError(f"{text!r}: the log path contains a NUL byte")
        match = _NEAR_URL.match(text) if isinstance(target, str) else None
        if match is not None:
            raise LogOpenError(
                f"{redact_url(text)}: this looks like a {match.group(1)} URL without its "
                f"'//': write {match.group(1)}://..., or start a file's name with ./"
            )


_FILE_OPTIONS: Final = frozenset(
    {
        "durability",
        "mode",
        "max_event_bytes",
        "readonly",
        "run_index",
        "segment_bytes",
        "segment_events",
        "segment_compression",
    }
)
_MEMORY_OPTIONS: Final = frozenset({"durability", "max_event_bytes", "readonly"})


def _checked(options: dict[str, Any], engine: str, target: LogTarget) -> dict[str, Any]:
    allowed = _FILE_OPTIONS if engine == "the file log" else _MEMORY_OPTIONS
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(
            f"{engine} got an unexpected keyword argument {unknown[0]!r} "
            f"(it takes {', '.join(sorted(allowed))})"
        )
    return options


def redact_url(url: str) -> str:
    """``url`` with its password (in the user part or a ``password`` parameter) as ``***``."""
    match = _SCHEME.match(url) or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url)
    if match is None:
        return url
    head, rest = url[: match.end()], url[match.end() :]
    cut = min((at for at in (rest.find("?"), rest.find("#")) if at >= 0), default=len(rest))
    main, query = rest[:cut], rest[cut:]
    at = main.rfind("@")  # a password may hold an '@' or a '/' left unquoted
    if at >= 0 and ":" in main[:at]:
        main = main[: main.index(":")] + ":***" + main[at:]
    query = re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", query)
    return head + main + query


__all__ = ["POSTGRES_SCHEMES", "LogTarget", "is_url", "open_log", "redact_url", "scheme_of"]
