"""The dashboard's web server under aiohttp's test client: what it serves, what it refuses."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout
from aiohttp.test_utils import TestClient, TestServer

from dashboard import server
from dashboard.source import ReplaySource
from tests.support.dashboard_runs import write_bundle


def with_client(folder: Path, body: Callable[[TestClient], Awaitable[Any]],
                period_s: float = 0.2) -> Any:
    """Run ``body(client)`` against the dashboard of a synthetic bundle."""
    write_bundle(folder)

    async def go() -> Any:
        app = server.make_app(ReplaySource(folder, speed=20), period_s=period_s)
        async with TestClient(TestServer(app, host="127.0.0.1", **server.HEADER_LIMITS)) as c:
            return await body(c)

    return asyncio.run(go())


async def raw_get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of a GET sent byte for byte, path unnormalized."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                 .encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


def test_page_has_no_external_asset(tmp_path: Path) -> None:
    async def body(c: TestClient) -> None:
        r = await c.get("/")
        assert r.status == 200 and r.content_type == "text/html"
        text = await r.text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]

    with_client(tmp_path, body)


def test_snapshot_is_json_of_the_run(tmp_path: Path) -> None:
    async def body(c: TestClient) -> dict[str, Any]:
        r = await c.get("/api/snapshot")
        assert r.status == 200
        return json.loads(await r.text())

    snap = with_client(tmp_path, body)
    assert snap["mode"] == "replay" and snap["plcs"][0]["name"] == "plc1"


def test_event_stream_sends_snapshots_every_period(tmp_path: Path) -> None:
    async def body(c: TestClient) -> int:
        r = await c.get("/api/events")
        assert r.headers["Content-Type"].startswith("text/event-stream")

        async def three_events() -> int:
            events = 0
            while events < 3:
                line = await r.content.readline()
                if line.startswith(b"data: "):
                    json.loads(line[6:])
                    events += 1
            return events

        events = await asyncio.wait_for(three_events(), 5)  # asyncio.timeout is 3.11+
        r.close()
        return events

    assert with_client(tmp_path, body) == 3


def test_only_the_page_and_its_endpoints_are_served(tmp_path: Path) -> None:
    async def body(c: TestClient) -> None:
        for path in ("/page.html", "/dashboard/page.html", "/api", "/api/snapshot/x"):
            assert (await c.get(path, allow_redirects=False)).status == 404, path
        # Raw request lines: a client library would normalize these paths before sending.
        assert c.port is not None
        for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd",
                     "/api/../../dashboard/server.py", "/..%2f..%2fetc%2fpasswd"):
            status, text = await raw_get(c.port, path)
            assert status == 404, path
            assert "root:" not in text and "import" not in text
        assert (await c.post("/api/snapshot", data=b"x")).status == 405
        assert (await c.delete("/")).status == 405

    with_client(tmp_path, body)


def test_foreign_host_names_are_refused(tmp_path: Path) -> None:
    async def body(c: TestClient) -> None:
        r = await c.get("/api/snapshot", headers={"Host": "attacker.example:8765"})
        assert r.status == 421
        ok = await c.get("/api/snapshot", headers={"Host": "localhost:8765"})
        assert ok.status == 200

    with_client(tmp_path, body)


def test_huge_headers_are_refused(tmp_path: Path) -> None:
    async def body(c: TestClient) -> None:
        r = await c.get("/", headers={"X-Big": "a" * 20_000})
        assert r.status == 400
        many = {f"X-H{i}": "1" for i in range(200)}
        assert (await c.get("/", headers=many)).status == 400
        r = await c.get("/?" + "q" * 20_000)
        assert r.status in (400, 414)

    with_client(tmp_path, body)


def test_event_streams_are_bounded(tmp_path: Path) -> None:
    async def body(c: TestClient) -> tuple[list[int], int]:
        url = str(c.make_url("/api/events"))
        async with ClientSession(timeout=ClientTimeout(total=10)) as s:
            streams = [await s.get(url) for _ in range(server.MAX_STREAMS)]
            extra = await s.get(url)
            statuses = [r.status for r in streams]
            for r in streams:
                r.close()
            extra_status = extra.status
            extra.close()
            # A closed stream frees its place.
            await asyncio.sleep(0.5)
            again = await s.get(url)
            again_status = again.status
            again.close()
        return [*statuses, again_status], extra_status

    statuses, extra = with_client(tmp_path, body)
    assert statuses == [200] * (server.MAX_STREAMS + 1)
    assert extra == 503
