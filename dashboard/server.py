"""The dashboard's web server (aiohttp): one page, its JSON and a server-sent-events stream.

Routes, all GET, nothing else served (no static folder, so no path can reach a file):

- ``/``: the page (:data:`PAGE`, one HTML file with inline CSS and JS, no external asset);
- ``/api/snapshot``: the current snapshot (:mod:`dashboard.snapshot`) as JSON;
- ``/api/events``: server-sent events, one ``snapshot`` event every ``period_s`` (1 s).

Hostile requests: the server binds to 127.0.0.1 only; a ``Host`` header that is not
``127.0.0.1``/``localhost``/``[::1]`` gets 421 (a DNS-rebinding page cannot read it);
request lines and header fields are bounded (:data:`HEADER_LIMITS`: 400 above them); at
most :data:`MAX_STREAMS` event streams at once (503 beyond); other paths 404, other
methods 405. While no page is open the server reads nothing (idle).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from importlib import resources
from typing import Any, Protocol

from aiohttp import web

log = logging.getLogger(__name__)

PAGE = resources.files("dashboard").joinpath("page.html").read_bytes()
MAX_STREAMS = 8
HEADER_LIMITS = {"max_line_size": 4096, "max_field_size": 4096, "max_headers": 64}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
                               "style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SOURCE_KEY: web.AppKey[Any] = web.AppKey("source", object)
STATE_KEY: web.AppKey[Any] = web.AppKey("state", object)


class Source(Protocol):
    mode: str

    def snapshot(self) -> dict[str, Any]: ...


class StreamState:
    """The open event streams and the one shared snapshot they all send."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self.streams = 0
        self.lock = asyncio.Lock()


def _json_bytes(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), default=_nan_safe,
                      allow_nan=False).encode()


def _nan_safe(value: object) -> object:
    raise TypeError(f"not JSON: {type(value).__name__}")


def _clean(value: Any) -> Any:
    """NaN and infinities as null (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


async def _snapshot_bytes(app: web.Application) -> bytes:
    source = app[SOURCE_KEY]
    async with app[STATE_KEY].lock:  # one reader of the files at a time
        snap = await asyncio.to_thread(source.snapshot)
    return _json_bytes(_clean(snap))


@web.middleware
async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """Only local Host names; security headers on every answer."""
    host = request.host.rsplit(":", 1)[0] if not request.host.startswith("[") else \
        request.host.split("]")[0] + "]"
    if host not in LOCAL_HOSTS:
        raise web.HTTPMisdirectedRequest(text="dashboard: local requests only\n")
    response = await handler(request)
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


async def page(_request: web.Request) -> web.Response:
    return web.Response(body=PAGE, content_type="text/html", charset="utf-8")


async def snapshot(request: web.Request) -> web.Response:
    return web.Response(body=await _snapshot_bytes(request.app),
                        content_type="application/json")


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: a ``snapshot`` event now and every period after."""
    state: StreamState = request.app[STATE_KEY]
    if state.streams >= MAX_STREAMS:
        raise web.HTTPServiceUnavailable(text="dashboard: too many open streams\n")
    state.streams += 1
    try:
        response = web.StreamResponse(headers={**SECURITY_HEADERS,
                                               "Content-Type": "text/event-stream"})
        await response.prepare(request)
        while True:
            body = await _snapshot_bytes(request.app)
            await response.write(b"event: snapshot\ndata: " + body + b"\n\n")
            await asyncio.sleep(state.period_s)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    finally:
        state.streams -= 1


def make_app(source: Source, period_s: float = 1.0) -> web.Application:
    """The application over a data source (see :mod:`dashboard.source`)."""
    app = web.Application(middlewares=[guard], client_max_size=1024)
    app[SOURCE_KEY] = source
    app[STATE_KEY] = StreamState(period_s)
    app.router.add_get("/", page)
    app.router.add_get("/api/snapshot", snapshot)
    app.router.add_get("/api/events", events)
    return app


async def serve(app: web.Application, port: int, ready: Any = None) -> None:
    """Serve on 127.0.0.1:port until cancelled; ``ready(port)`` once listening."""
    runner = web.AppRunner(app, access_log=None, **HEADER_LIMITS)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, shutdown_timeout=1.0)
    await site.start()
    bound = runner.addresses[0][1]
    if ready is not None:
        ready(bound)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
