"""The command-line entry point: the parser and the dispatch to each command."""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from pipelines_events import __version__
from pipelines_events.cli import (
    commands_audit,
    commands_cleanup,
    commands_runs,
    commands_serve,
    commands_show,
)
from pipelines_events.cli.common import printable, setting_source
from pipelines_events.cli.exits import EXIT_ERROR, EXIT_INTERRUPTED
from pipelines_events.conf import STORAGE_SETTING
from pipelines_events.errors import ImproperlyConfigured, LogOpenError, PipelinesEventsError
from pipelines_events.log.open import redact_url


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    parser = argparse.ArgumentParser(
        prog="pipelines-events",
        description="Run pipelines and audit their results, kept as an event-sourced log.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands_runs.register_run(commands)
    commands_show.register(commands)  # runs, show
    commands_runs.register(commands)  # demo, cancel
    commands_cleanup.register(commands)
    commands_audit.register(commands)
    commands_serve.register(commands)
    return parser


def setup_django() -> bool:
    """``django.setup()`` when ``DJANGO_SETTINGS_MODULE`` is set, so the commands use the
    storage (and the pipelines) the Django project configures; returns whether it did.

    Raises :class:`ImproperlyConfigured` naming the variable when Django is not
    installed or the settings module cannot be set up.
    """
    module = os.environ.get("DJANGO_SETTINGS_MODULE")
    if not module:
        return False
    try:
        django = importlib.import_module("django")
    except ImportError:
        raise ImproperlyConfigured(
            f"DJANGO_SETTINGS_MODULE is {module!r}, but Django is not installed; install it "
            "or unset the variable"
        ) from None
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as manage.py does: the project beside you imports
    try:
        django.setup()
    except Exception as exc:
        raise ImproperlyConfigured(
            f"DJANGO_SETTINGS_MODULE {module!r}: Django cannot be set up: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    if os.getcwd() not in sys.path:  # as `python -m` does, for the console script too
        sys.path.insert(0, os.getcwd())
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    _suggest_command(parser, words)
    args, extra = parser.parse_known_args(words)
    if extra:  # the usage of the subcommand given, not of the whole tool
        _subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            setup_django()
            status: int = args.handler(args)
        except (PipelinesEventsError, NotImplementedError) as exc:
            # NotImplementedError: a partial custom storage lacks what the command needs.
            text = str(exc)
            if (
                isinstance(exc, LogOpenError)
                and getattr(args, "log", None) is None
                and not _about_a_named_log(args, text)
            ):
                text += f" (the log of {STORAGE_SETTING}, from {setting_source()}; or pass --log)"
            print(printable(f"pipelines-events: error: {text}"), file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    return status


def _about_a_named_log(args: argparse.Namespace, text: str) -> bool:
    """Whether the error ``text`` is about a log the command line named (replay's source,
    ``--into``), not the configured one."""
    named = (getattr(args, name, None) for name in ("file", "into"))
    return any(
        log is not None and text.startswith(redact_url(os.fspath(log)) + ":") for log in named
    )


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[name]
            return found
    return parser  # pragma: no cover - every command is a subparser


def _suggest_command(parser: argparse.ArgumentParser, words: list[str]) -> None:
    """A usage error with "did you mean" for a mistyped command (the first word that is
    not an option)."""
    word = next((w for w in words if not w.startswith("-")), None)
    if word is None:
        return
    names = [
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    ]
    if word in names:
        return
    close = difflib.get_close_matches(word, names, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(n) for n in close)}?" if close else ""
    parser.error(f"unknown command {word!r}{hint} (commands: {', '.join(names)})")


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A warning as one printable line on stderr, not Python's two-line report."""
    out = sys.stderr if file is None else file
    print(printable(f"pipelines-events: warning: {message}"), file=out)


if __name__ == "__main__":  # pragma: no cover - exercised through python -m
    sys.exit(main())
