"""The ASGI app: routes, the guard every request passes, the live stream.

The app opens the log read-only (:class:`EventLogPipelineResultsStorage` with
``readonly=True``) and answers GET and HEAD only. The storage is shared by the threads
that serve requests; a lock of the app's own serialises its use.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipelines_events.errors import PipelinesEventsError
from pipelines_events.events import LogPosition
from pipelines_events.log.open import LogTarget
from pipelines_events.results.eventlog import EventLogPipelineResultsStorage
from pipelines_events.web import data, live, pages

logger = logging.getLogger("pipelines_events.web")

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The Content-Security-Policy of every response: only this site's own script and style,
no inline script or style, no frames."""
TOKEN_COOKIE: Final = "pipelines_events_token"
POLL_INTERVAL: Final = 0.2
"""Seconds between two looks at the log by a live stream with nothing new to send."""
KEEPALIVE: Final = 15.0
"""Seconds of silence after which a live stream sends a comment line."""
LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_STATIC: Final = {"app.js": "text/javascript", "app.css": "text/css"}
_HEADERS: Final = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]
_encoder: Final = msgspec.json.Encoder()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _State:
    """What the routes share: the storage, its lock, the file reader, the verify cache."""

    def __init__(self, path: LogTarget) -> None:
        self.path = path
        self.storage = EventLogPipelineResultsStorage(path, readonly=True)
        try:
            self.tail = live.LogTail(self.storage.log)
        except BaseException:
            self.storage.close()
            raise
        self.lock = threading.Lock()
        self.verify = data.VerifyCache(str(path))
        self.closing = False

    def head(self) -> LogPosition:
        with self.lock:
            return data.head_of(self.storage)

    def wait(self, after: LogPosition) -> bool:
        """Wait until a batch follows ``after`` in the log, or POLL_INTERVAL passes."""
        try:
            return self.storage.log.wait(after, POLL_INTERVAL)
        except PipelinesEventsError:
            return False  # the log closed under the wait: the loop sees it next

    def messages(
        self, start: LogPosition, end: LogPosition, expected: int, run_id: str | None
    ) -> tuple[list[live.LiveMessage], LogPosition, int]:
        with self.lock:
            return live.messages(self.storage, self.tail, start, end, expected, run_id)

    def close(self) -> None:
        self.closing = True
        with self.lock:
            self.tail.close()
            self.storage.close()


# -- responses -------------------------------------------------------------------------------


def _plain(status: int, text: str) -> PlainTextResponse:
    return PlainTextResponse(text + "\n", status_code=status)


def _json(value: Any) -> Response:
    return Response(_encoder.encode(value), media_type="application/json")


def _params(request: Request, allowed: tuple[str, ...]) -> Mapping[str, str]:
    data.check_params([name for name, _ in request.query_params.multi_items()], allowed)
    return request.query_params


Handler = Callable[[Request], Response]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` run in a worker thread, its refusals turned into plain 400 and 404."""

    async def endpoint(request: Request) -> Response:
        try:
            return await run_in_threadpool(handler, request)
        except data.BadParameter as exc:
            return _plain(400, str(exc))
        except data.NotFound as exc:
            return _plain(404, str(exc))
        except PipelinesEventsError as exc:
            logger.warning("%s %s: %s", request.method, request.url.path, exc)
            return _plain(500, f"the log cannot be read: {exc}")

    endpoint.__name__ = handler.__name__
    return endpoint


# -- the app ---------------------------------------------------------------------------------


def create_app(
    log: LogTarget, *, token: str | None = None, loopback_only: bool = True
) -> Starlette:
    """The web page of the log at ``log``, opened read-only now (a missing or damaged log
    raises :class:`~pipelines_events.errors.LogError` here).

    With ``token`` every request must carry it (``Authorization: Bearer``, the cookie a
    ``?token=`` link sets, or ``?token=``). With ``loopback_only`` the ``Host`` header must
    name this machine's loopback (which defeats DNS rebinding).
    """
    state = _State(log)  # a path, or a URL (never made a Path: that would mangle it)
    static = {
        name: resources.files("pipelines_events.web").joinpath("static", name).read_bytes()
        for name in _STATIC
    }

    def runs(request: Request) -> Response:
        params = _params(request, ("status", "pipeline", "since", "until", "page", "per_page"))
        wanted, page, per_page = _run_query(params)
        with state.lock:
            result = data.run_page(state.storage, wanted, page, per_page)
        return HTMLResponse(pages.runs_page(result, wanted))

    def api_runs(request: Request) -> Response:
        params = _params(request, ("status", "pipeline", "since", "until", "page", "per_page"))
        wanted, page, per_page = _run_query(params)
        with state.lock:
            result = data.run_page(state.storage, wanted, page, per_page)
        return _json(result)

    def run(request: Request) -> Response:
        run_id = data.text_param(_params(request, ("id",)), "id", required=True)
        assert run_id is not None
        with state.lock:
            detail = data.run_detail(state.storage, run_id)
        return HTMLResponse(pages.run_page(detail))

    def api_run(request: Request) -> Response:
        run_id = data.text_param(_params(request, ("id",)), "id", required=True)
        assert run_id is not None
        with state.lock:
            detail = data.run_detail(state.storage, run_id)
        return _json(detail.tree)

    def history(request: Request) -> Response:
        object_id = data.text_param(_params(request, ("id",)), "id", required=True)
        assert object_id is not None
        changes = data.object_history(str(state.path), object_id)
        return HTMLResponse(pages.history_page(object_id, changes))

    def api_history(request: Request) -> Response:
        object_id = data.text_param(_params(request, ("id",)), "id", required=True)
        assert object_id is not None
        return _json(data.object_history(str(state.path), object_id))

    def digest(request: Request) -> Response:
        _params(request, ())
        with state.lock:
            rows = data.digest_rows(state.storage)
        return HTMLResponse(pages.digest_page(rows))

    def api_digest(request: Request) -> Response:
        _params(request, ())
        with state.lock:
            rows = data.digest_rows(state.storage)
        return _json(rows)

    def verify(request: Request) -> Response:
        expect = data.text_param(_params(request, ("expect",)), "expect")
        return HTMLResponse(pages.verify_page(state.verify.report(expect), expect))

    def api_verify(request: Request) -> Response:
        expect = data.text_param(_params(request, ("expect",)), "expect")
        report = state.verify.report(expect)
        return _json({**msgspec.structs.asdict(report), "badge": pages.verify_badge_text(report)})

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static:
            return _plain(404, f"no file {name!r} here; the files are {', '.join(static)}")
        return Response(static[name], media_type=_STATIC[name])

    async def events(request: Request) -> Response:
        try:
            params = _params(request, ("after", "run"))
            run_id = data.text_param(params, "run")
            resume = request.headers.get("last-event-id")
            if resume is not None and resume.strip() != "":
                after: int | None = data.int_param(
                    {"Last-Event-ID": resume.strip()}, "Last-Event-ID", 0, 0, 10**15
                )
            else:
                after = data.int_param(params, "after", -1, 0, 10**15)
                after = None if after < 0 else after
            head = await run_in_threadpool(state.head)
        except data.BadParameter as exc:
            return _plain(400, str(exc))
        except PipelinesEventsError as exc:
            return _plain(500, f"the log cannot be read: {exc}")
        start = head.seq if after is None else after
        return StreamingResponse(
            _stream(state, start, head, run_id),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.close()

    routes = [
        Route("/", _endpoint(runs)),
        Route("/run", _endpoint(run)),
        Route("/object", _endpoint(history)),
        Route("/digest", _endpoint(digest)),
        Route("/verify", _endpoint(verify)),
        Route("/api/runs", _endpoint(api_runs)),
        Route("/api/run", _endpoint(api_run)),
        Route("/api/history", _endpoint(api_history)),
        Route("/api/digest", _endpoint(api_digest)),
        Route("/api/verify", _endpoint(api_verify)),
        Route("/events", events),
        Route("/static/{name}", asset),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.add_middleware(_Guard, token=token, loopback_only=loopback_only)
    app.state.web = state
    return app


def _run_query(params: Mapping[str, str]) -> tuple[data.RunFilter, int, int]:
    wanted = data.run_filter(params)
    page = data.int_param(params, "page", 1, 1, data.MAX_PAGE)
    per_page = data.int_param(params, "per_page", data.PER_PAGE, 1, data.MAX_PER_PAGE)
    return wanted, page, per_page


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _plain(404, f"no page at {request.url.path}; the run list is at /")
    if exc.status_code == 405:
        return _plain(405, "this site is read-only: it answers GET and HEAD only")
    return _plain(exc.status_code, str(exc.detail))


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _plain(500, "internal error; the server's log has the details")


async def _stream(
    state: _State, after: int, head: LogPosition, run_id: str | None
) -> AsyncIterator[str]:
    """The SSE messages of the events after seq ``after``, then of each new one."""
    yield "retry: 1000\n\n"
    if after > head.seq:
        yield (
            "event: reset\ndata: the log holds fewer events than the page has seen "
            f"(seq {after} > {head.seq}): reload\n\n"
        )
        return
    try:
        offset = await run_in_threadpool(state.tail.cursor_after, after, head)
        expected = after + 1
        quiet_since = time.monotonic()
        while not state.closing:
            head = await run_in_threadpool(state.head)
            if head.seq > offset.seq:
                sent, offset, expected = await run_in_threadpool(
                    state.messages, offset, head, expected, run_id
                )
                for message in sent:
                    payload = _encoder.encode(message).decode()
                    yield f"id: {message.seq}\nevent: change\ndata: {payload}\n\n"
                quiet_since = time.monotonic()
                continue
            if time.monotonic() - quiet_since > KEEPALIVE:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            # Woken as soon as a batch is in the log, or after POLL_INTERVAL at most.
            await run_in_threadpool(state.wait, head)
    except PipelinesEventsError as exc:
        text = str(exc).replace("\r", " ").replace("\n", " ")
        yield f"event: failure\ndata: {text}\n\n"


class _Guard:
    """Every request: GET or HEAD only, the token when one is set, a loopback ``Host`` when
    the server is loopback-only; every response: the security headers."""

    def __init__(self, app: ASGIApp, token: str | None, loopback_only: bool) -> None:
        self.app = app
        self.token = token
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here: refuse before any route sees them
            await send({"type": "websocket.close", "code": 1008})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> Response | None:
        if scope["method"] not in ("GET", "HEAD"):
            return _plain(405, "this site is read-only: it answers GET and HEAD only")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.loopback_only:
            host = _host_name(headers.get("host", ""))
            if not is_loopback(host):
                return _plain(
                    400,
                    f"the Host header names {host!r}, not this machine's loopback: this "
                    "server only answers requests to localhost or 127.0.0.1",
                )
        if self.token is None:
            return None
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [value for name, value in query if name == "token"]
        if given:
            if not self._valid(given[-1]):
                return _plain(401, "the token in the link is wrong; ask for the current link")
            rest = urlencode([(name, value) for name, value in query if name != "token"])
            response = Response(
                status_code=303, headers={"location": scope["path"] + ("?" + rest if rest else "")}
            )
            response.set_cookie(TOKEN_COOKIE, given[-1], httponly=True, samesite="strict", path="/")
            return response
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer ") and self._valid(bearer[7:].strip()):
            return None
        cookie = _cookie(headers.get("cookie", ""), TOKEN_COOKIE)
        if cookie is not None and self._valid(cookie):
            return None
        return _plain(
            401,
            "this server needs its token: open the link `pipelines-events serve` printed "
            "(it ends in ?token=...), or send the header Authorization: Bearer TOKEN",
        )

    def _valid(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode(), self.token.encode())


def _host_name(host: str) -> str:
    """The name in a ``Host`` header, without its port."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
