"""Headless Chromium driven over the DevTools protocol (aiohttp's websocket client).

A page that keeps a server-sent-events stream open never goes idle, so ``--dump-dom`` with
``--virtual-time-budget`` cannot be used on the dashboard; this opens the page, evaluates
JavaScript in it and takes screenshots while it stays live.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,2200")
START_TIMEOUT_S = 20.0


@contextmanager
def chromium(profile: Path) -> Iterator[str]:
    """Start Chromium with a DevTools port; yields its browser websocket URL."""
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
           "about:blank"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert proc.stderr is not None
        url = None
        for line in proc.stderr:
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                url = m.group(1)
                break
        assert url, "chromium printed no DevTools URL"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class Page:
    """One tab: ``await page.call(method, **params)``, ``evaluate``, ``screenshot``."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        await self.ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads((await self.ws.receive(timeout=30)).data)
            if reply.get("id") == msg_id:
                assert "error" not in reply, reply["error"]
                return reply.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        res = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return res["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            assert loop.time() < end, f"page: {expression!r} still falsy after {timeout_s} s"
            await asyncio.sleep(0.2)

    async def screenshot(self, path: Path) -> None:
        res = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(res["data"]))


async def open_page(session: aiohttp.ClientSession, browser_url: str, url: str
                    ) -> tuple[Page, aiohttp.ClientWebSocketResponse]:
    """A new tab showing ``url`` (its websocket stays open until closed)."""
    bws = await session.ws_connect(browser_url, max_msg_size=0)
    browser = Page(bws)
    target = await browser.call("Target.createTarget", url="about:blank")
    port = re.search(r":(\d+)/", browser_url).group(1)  # type: ignore[union-attr]
    ws = await session.ws_connect(
        f"ws://127.0.0.1:{port}/devtools/page/{target['targetId']}", max_msg_size=0)
    await bws.close()
    page = Page(ws)
    await page.call("Page.enable")
    await page.call("Page.navigate", url=url)
    return page, ws
