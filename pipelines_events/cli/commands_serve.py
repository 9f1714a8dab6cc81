"""The ``serve`` command: the read-only web page of a log (needs the ``web`` extra)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Final

from pipelines_events.cli.common import add_command, log_path
from pipelines_events.cli.exits import EXIT_OK
from pipelines_events.errors import InvalidValueError, LogOpenError, PipelinesEventsError
from pipelines_events.log.open import is_url

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8000


def register(commands: Any) -> None:
    """Add ``serve`` to the parser's subcommands."""
    summary = (
        "Serve a read-only web page of the runs, live as they change (needs the web extra: "
        "pip install 'pipelines-events[web]')."
    )
    parser = add_command(commands, "serve", summary, _serve)
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"the address to listen on (default: {DEFAULT_HOST}, this machine only)",
    )
    parser.add_argument(
        "--port",
        default=str(DEFAULT_PORT),
        metavar="PORT",
        help=f"the port to listen on, 0 for any free one (default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--public",
        action="store_true",
        help="allow a --host that is not loopback; every request must then carry a token",
    )
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        type=Path,
        help="the token requests must carry (default with --public: a new random one, printed)",
    )


def parse_port(text: str) -> int:
    """The port given to ``--port``: a whole number from 0 to 65535."""
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise InvalidValueError(f"--port: {text!r} is not a port; give a number from 0 to 65535")
    return int(text)


def _serve(args: argparse.Namespace) -> int:
    port = parse_port(args.port)
    path = log_path(args)
    if not is_url(path) and not Path(path).exists():
        raise LogOpenError(f"{path}: no such log file")
    try:
        from pipelines_events.web import server
    except ImportError as exc:
        missing = (exc.name or "a dependency").split(".")[0]
        raise PipelinesEventsError(
            f"serve needs the web extra ({missing} is missing): pip install 'pipelines-events[web]'"
        ) from None
    server.serve(
        path, args.host, port, public=args.public, token_file=args.token_file, out=sys.stdout
    )
    return EXIT_OK
