"""The routes of the web app: each page and its JSON twin read the same data once, run in
a worker thread, and turn refusals into plain 400 and 404 responses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from typing import Any, Final

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from pipelines_events.errors import PipelinesEventsError
from pipelines_events.web import data, pages
from pipelines_events.web.guard import plain
from pipelines_events.web.state import AppState
from pipelines_events.web.stream import sse_stream

logger = logging.getLogger("pipelines_events.web")

_STATIC: Final = {"app.js": "text/javascript", "app.css": "text/css"}
_RUN_QUERY: Final = ("status", "pipeline", "since", "until", "page", "per_page")
_encoder: Final = msgspec.json.Encoder()


def _json(value: Any) -> Response:
    return Response(_encoder.encode(value), media_type="application/json")


def _params(request: Request, allowed: tuple[str, ...]) -> Mapping[str, str]:
    data.check_params([name for name, _ in request.query_params.multi_items()], allowed)
    return request.query_params


def _id_param(request: Request) -> str:
    value = data.text_param(_params(request, ("id",)), "id", required=True)
    assert value is not None
    return value


Handler = Callable[[Request], Response]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` run in a worker thread, its refusals turned into plain 400 and 404."""

    async def endpoint(request: Request) -> Response:
        try:
            return await run_in_threadpool(handler, request)
        except data.BadParameter as exc:
            return plain(400, str(exc))
        except data.NotFound as exc:
            return plain(404, str(exc))
        except PipelinesEventsError as exc:
            logger.warning("%s %s: %s", request.method, request.url.path, exc)
            return plain(500, f"the log cannot be read: {exc}")

    endpoint.__name__ = handler.__name__
    return endpoint


class _Handlers:
    """The handlers over one :class:`AppState`: a page and its JSON twin share the read."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.static = {
            name: resources.files("pipelines_events.web").joinpath("static", name).read_bytes()
            for name in _STATIC
        }

    def _run_list(self, request: Request) -> tuple[data.RunPage, data.RunFilter]:
        params = _params(request, _RUN_QUERY)
        wanted = data.run_filter(params)
        page = data.int_param(params, "page", 1, 1, data.MAX_PAGE)
        per_page = data.int_param(params, "per_page", data.PER_PAGE, 1, data.MAX_PER_PAGE)
        with self.state.lock:
            return data.run_page(self.state.storage, wanted, page, per_page), wanted

    def runs(self, request: Request) -> Response:
        return HTMLResponse(pages.runs_page(*self._run_list(request)))

    def api_runs(self, request: Request) -> Response:
        return _json(self._run_list(request)[0])

    def _run_detail(self, request: Request) -> data.RunDetail:
        run_id = _id_param(request)
        with self.state.lock:
            return data.run_detail(self.state.storage, run_id)

    def run(self, request: Request) -> Response:
        return HTMLResponse(pages.run_page(self._run_detail(request)))

    def api_run(self, request: Request) -> Response:
        return _json(self._run_detail(request).tree)

    def history(self, request: Request) -> Response:
        object_id = _id_param(request)
        changes = data.object_history(str(self.state.path), object_id)
        return HTMLResponse(pages.history_page(object_id, changes))

    def api_history(self, request: Request) -> Response:
        return _json(data.object_history(str(self.state.path), _id_param(request)))

    def _digest_rows(self, request: Request) -> list[data.DigestRow]:
        _params(request, ())
        with self.state.lock:
            return data.digest_rows(self.state.storage)

    def digest(self, request: Request) -> Response:
        return HTMLResponse(pages.digest_page(self._digest_rows(request)))

    def api_digest(self, request: Request) -> Response:
        return _json(self._digest_rows(request))

    def verify(self, request: Request) -> Response:
        expect = data.text_param(_params(request, ("expect",)), "expect")
        return HTMLResponse(pages.verify_page(self.state.verify.report(expect), expect))

    def api_verify(self, request: Request) -> Response:
        expect = data.text_param(_params(request, ("expect",)), "expect")
        report = self.state.verify.report(expect)
        return _json({**msgspec.structs.asdict(report), "badge": pages.verify_badge_text(report)})

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.static:
            return plain(404, f"no file {name!r} here; the files are {', '.join(self.static)}")
        return Response(self.static[name], media_type=_STATIC[name])

    async def events(self, request: Request) -> Response:
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
            head = await run_in_threadpool(self.state.head)
        except data.BadParameter as exc:
            return plain(400, str(exc))
        except PipelinesEventsError as exc:
            return plain(500, f"the log cannot be read: {exc}")
        start = head.seq if after is None else after
        return StreamingResponse(
            sse_stream(self.state, start, head, run_id),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )


def routes(state: AppState) -> list[Route]:
    """The app's routes, over ``state``."""
    handlers = _Handlers(state)
    return [
        Route("/", _endpoint(handlers.runs)),
        Route("/run", _endpoint(handlers.run)),
        Route("/object", _endpoint(handlers.history)),
        Route("/digest", _endpoint(handlers.digest)),
        Route("/verify", _endpoint(handlers.verify)),
        Route("/api/runs", _endpoint(handlers.api_runs)),
        Route("/api/run", _endpoint(handlers.api_run)),
        Route("/api/history", _endpoint(handlers.api_history)),
        Route("/api/digest", _endpoint(handlers.api_digest)),
        Route("/api/verify", _endpoint(handlers.api_verify)),
        Route("/events", handlers.events),
        Route("/static/{name}", handlers.asset),
    ]


__all__ = ["routes"]
