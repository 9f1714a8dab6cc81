"""Run the web page with uvicorn: check the address, bind it, print the link, serve."""

from __future__ import annotations

import re
import secrets
import socket
from pathlib import Path
from typing import Final, TextIO

import uvicorn

from pipelines_events.errors import InvalidValueError
from pipelines_events.log.open import LogTarget
from pipelines_events.web.app import create_app, is_loopback

MIN_TOKEN_LENGTH: Final = 16
"""The shortest token ``--token-file`` may hold."""
_TOKEN: Final = re.compile(r"[A-Za-z0-9._~-]+")


def read_token(path: Path) -> str:
    """The token in the file at ``path`` (surrounding whitespace dropped)."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidValueError(f"--token-file {path}: cannot read it: {exc}") from None
    if len(token) < MIN_TOKEN_LENGTH or not _TOKEN.fullmatch(token):
        raise InvalidValueError(
            f"--token-file {path}: give a token of at least {MIN_TOKEN_LENGTH} characters, "
            "each a letter, a digit or one of . _ ~ - (it travels in a cookie)"
        )
    return token


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (port 0: any free one)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise InvalidValueError(f"--host {host}: not an address of this machine: {exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise InvalidValueError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def serve(
    log: LogTarget,
    host: str,
    port: int,
    *,
    public: bool,
    token_file: Path | None,
    out: TextIO,
) -> None:
    """Serve the page of ``log`` until interrupted.

    A ``host`` that is not loopback needs ``public``; then, or with ``token_file``, every
    request must carry the token (read from ``token_file``, else a new random one).
    """
    loopback = is_loopback(host)
    if not loopback and not public:
        raise InvalidValueError(
            f"--host {host} is not a loopback address: anyone who reaches this machine could "
            "read the log. Pass --public to listen there anyway (every request must then "
            "carry the token printed at start)"
        )
    token: str | None = None
    if token_file is not None:
        token = read_token(token_file)
    elif not loopback:
        token = secrets.token_urlsafe(32)
    app = create_app(log, token=token, loopback_only=loopback and token is None)
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    link = f"http://{shown}:{actual}/"
    if token is not None:
        link += f"?token={token}"
    print(f"serving {log} read-only at {link}  (Ctrl-C stops)", file=out, flush=True)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
