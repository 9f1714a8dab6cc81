"""The ASGI app: its routes (:mod:`~pipelines_events.web.routes`) behind the guard every
request passes (:mod:`~pipelines_events.web.guard`), over the shared state
(:mod:`~pipelines_events.web.state`).

The app opens the log read-only (the event-log storage with ``readonly=True``) and
answers GET and HEAD only. The storage is shared by the threads that serve requests; a
lock of the app's own serialises its use.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from pipelines_events.log.open import LogTarget
from pipelines_events.web.guard import CSP, LOOPBACK_NAMES, TOKEN_COOKIE, Guard, is_loopback, plain
from pipelines_events.web.routes import routes
from pipelines_events.web.state import POLL_INTERVAL, AppState
from pipelines_events.web.stream import KEEPALIVE

logger = logging.getLogger("pipelines_events.web")

__all__ = [
    "CSP",
    "KEEPALIVE",
    "LOOPBACK_NAMES",
    "POLL_INTERVAL",
    "TOKEN_COOKIE",
    "create_app",
    "is_loopback",
]


def create_app(
    log: LogTarget, *, token: str | None = None, loopback_only: bool = True
) -> Starlette:
    """The web page of the log at ``log``, opened read-only now (a missing or damaged log
    raises :class:`~pipelines_events.errors.LogError` here).

    With ``token`` every request must carry it (``Authorization: Bearer``, the cookie a
    ``?token=`` link sets, or ``?token=``). With ``loopback_only`` the ``Host`` header must
    name this machine's loopback (which defeats DNS rebinding).
    """
    state = AppState(log)  # a path, or a URL (never made a Path: that would mangle it)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.close()

    app = Starlette(
        routes=routes(state),
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.add_middleware(Guard, token=token, loopback_only=loopback_only)
    app.state.web = state
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return plain(404, f"no page at {request.url.path}; the run list is at /")
    if exc.status_code == 405:
        return plain(405, "this site is read-only: it answers GET and HEAD only")
    return plain(exc.status_code, str(exc.detail))


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return plain(500, "internal error; the server's log has the details")
