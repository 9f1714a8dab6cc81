"""The guard every request passes: GET or HEAD only, the token when one is set, a
loopback ``Host`` when the server is loopback-only; and the security headers of every
response."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Final
from urllib.parse import parse_qsl, urlencode

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The Content-Security-Policy of every response: only this site's own script and style,
no inline script or style, no frames."""
TOKEN_COOKIE: Final = "pipelines_events_token"
LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_HEADERS: Final = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


def plain(status: int, text: str) -> PlainTextResponse:
    """A plain-text response: ``text`` and a newline."""
    return PlainTextResponse(text + "\n", status_code=status)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Guard:
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
            return plain(405, "this site is read-only: it answers GET and HEAD only")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.loopback_only:
            host = _host_name(headers.get("host", ""))
            if not is_loopback(host):
                return plain(
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
                return plain(401, "the token in the link is wrong; ask for the current link")
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
        return plain(
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


__all__ = ["CSP", "LOOPBACK_NAMES", "TOKEN_COOKIE", "Guard", "is_loopback", "plain"]
