"""``kurabe serve`` in a real headless Chromium (Debian's ``chromium`` package, driven by
Playwright with that executable; no browser is ever downloaded): a rater types their name, rates
the first item of a blind study with the study screen's keys, reloads and is on their next item;
two raters at once each get their own queue; the rater limit; the proxy's header and
``X-Forwarded-*`` URLs, and the whole page through a loopback reverse proxy under a path prefix;
names the study does not take and websockets from other sites start no process. The served terminal is read from the websocket's frames (what the app
wrote), since xterm.js draws on a canvas. A screenshot lands in ``test-artifacts/``.

Outside CI a missing chromium (or Playwright) skips with the command to install it; under
``CI=true`` it fails.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kurabe.cli import main
from kurabe.store.store import Store
from tests.study_support import MODELS, stored_session

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
STUDY = "browser"
REPLY = (
    "{turn}番目の返事：アニメは大好きです。"
    + "特に日常系の作品が好きで、毎晩少しずつ見ています。" * 6
)
ANSI = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-B]|[=>78])")


def chromium() -> str:
    path = shutil.which("chromium")
    missing = (
        "" if path else "no chromium: install Debian's package with `apt-get install chromium`"
    )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = missing or "no playwright: pip install -e '.[dev]'"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    assert path is not None
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_study(tmp_path: Path, target: str | Path | None = None) -> str:
    """A blind study of 3 items, 2 raters each, in ``target`` (default: an SQLite file)."""
    db = str(target or tmp_path / "k.sqlite3")
    with Store(db) as store:
        stored_session(store, 3, reply_text=REPLY)
    assert main(["study", "create", STUDY, "--sessions", "1", "--per-item", "2", "--db", db]) == 0
    return db


@contextmanager
def serve(db: str, *options: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``kurabe serve`` on a free loopback port: (its URL, the server process)."""
    port = free_port()
    command = [sys.executable, "-m", "kurabe.cli", "serve", STUDY, "--db", db]
    command += ["--host", "127.0.0.1", "--port", str(port), *options]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "static/css/xterm.css", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "kurabe serve did not answer in 30 s"
                time.sleep(0.2)
        yield url, server
    finally:
        server.terminate()
        server.wait(10)


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (the raters' apps)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def wait_until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return result


class Terminal:
    """A page showing the served app: what the app wrote since the page's latest websocket
    opened, as text."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.frames: list[bytes] = []
        page.on("websocket", self.opened)

    def opened(self, websocket: Any) -> None:
        frames: list[bytes] = []
        self.frames = frames
        websocket.on(
            "framereceived",
            lambda data: frames.append(data if isinstance(data, bytes) else data.encode()),
        )

    def reload(self) -> None:
        self.frames = []  # nothing from before the reload counts
        self.page.reload()

    def text(self) -> str:
        return ANSI.sub("", b"".join(self.frames).decode("utf-8", "ignore"))

    def wait_for(self, text: str, timeout: float = 30) -> float:
        """Seconds until ``text`` is on the page."""
        start = time.monotonic()
        while text not in self.text():
            assert time.monotonic() - start < timeout, f"{text!r} never showed:\n{self.text()}"
            self.page.wait_for_timeout(50)
        return time.monotonic() - start


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])


def open_idx(db: str, rater: str) -> tuple[int, int] | None:
    """(item id, item number) of the item ``rater`` holds now."""
    with Store(db) as store:
        study = store.studies.get(STUDY)
        claim = store.studies.open_claim(study.id, rater)
        return None if claim is None else (claim.item_id, store.studies.item(claim.item_id).idx)


def test_a_rater_rates_in_the_browser_and_reloads_onto_the_next_item(tmp_path: Path) -> None:
    path = chromium()
    db = make_study(tmp_path)
    from playwright.sync_api import sync_playwright

    with serve(db) as (url, server), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 800})
        page = context.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        terminal = Terminal(page)
        page.goto(url)
        assert page.inner_text("#heading") == "Who is rating?"
        page.fill("#rater", "はな")
        opened = time.monotonic()
        page.click("#start")
        terminal.wait_for("item ")
        print(f"\npage open to first item shown: {time.monotonic() - opened:.2f} s")
        item_id, idx = wait_until(lambda: open_idx(db, "はな"), "はな's claim")
        terminal.wait_for(f"item {idx} ")
        terminal.wait_for("アニメは大好き")  # Japanese reaches the page

        (rater_pid,) = children(server.pid)
        status = Path(f"/proc/{rater_pid}/status").read_text()
        rss = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert rss is not None
        print(f"RSS of one rater's process: {int(rss.group(1)) / 1024:.0f} MiB")
        assert db not in Path(f"/proc/{rater_pid}/cmdline").read_text()  # KURABE_DB carries it
        maps = Path(f"/proc/{rater_pid}/maps").read_text()
        assert "llama" not in maps and ".gguf" not in maps  # no engine, no weights

        page.keyboard.press("b")  # pane B
        page.keyboard.press("4")  # its score
        page.keyboard.press("p")
        terminal.wait_for("Best reply of turn")
        page.keyboard.press("a")  # pane A is best
        page.keyboard.press("Enter")

        def rated() -> bool:
            with Store(db) as store:
                study = store.studies.get(STUDY)
                claim = store.studies.claim_of(item_id, "はな")
                return (
                    claim is not None
                    and claim.done_at is not None
                    and [
                        (s.shown_position, s.score) for s in store.studies.scores(study.id, "はな")
                    ]
                    == [(1, 4)]
                    and [p.winner_shown_position for p in store.studies.picks(study.id, "はな")]
                    == [0]
                )

        wait_until(rated, "the rating in the store")
        page.wait_for_timeout(300)
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "serve-rater.png"
        page.screenshot(path=str(shot))
        print(f"screenshot: {shot}")
        for model in MODELS:  # the study is blind
            assert model not in terminal.text()

        terminal.reload()
        next_id, next_idx = wait_until(lambda: open_idx(db, "はな"), "the next claim")
        assert next_id != item_id
        terminal.wait_for(f"item {next_idx} ")
        assert all(model not in terminal.text() for model in MODELS)
        assert all(u.startswith(url) for u in requested), requested  # nothing from the internet

        context.close()  # the tab closes: its process ends
        wait_until(lambda: not children(server.pid), "the rater's process to end")
        browser.close()


def test_two_raters_at_once_each_get_their_own_queue_up_to_the_limit(
    tmp_path: Path, db_target: str | Path
) -> None:
    """On SQLite and on a team's PostgreSQL store."""
    chromium()
    db = make_study(tmp_path, db_target)
    from playwright.sync_api import sync_playwright

    with serve(db, "--max-raters", "2") as (url, server), sync_playwright() as playwright:
        browser = launch(playwright)
        contexts = [browser.new_context() for _ in range(2)]
        pages = [context.new_page() for context in contexts]
        terminals = [Terminal(page) for page in pages]
        raters = ("あき", "ken")
        for page, rater in zip(pages, raters, strict=True):
            page.goto(f"{url}?rater={rater}")
        for terminal, rater in zip(terminals, raters, strict=True):
            _, idx = wait_until(lambda rater=rater: open_idx(db, rater), f"{rater}'s claim")
            terminal.wait_for(f"item {idx} ")
        assert len(children(server.pid)) == 2
        terminals[0].reload()  # a full server still takes back a rater who reloads
        _, idx = wait_until(lambda: open_idx(db, raters[0]), f"{raters[0]}'s claim")
        terminals[0].wait_for(f"item {idx} ")

        third = browser.new_page()
        response = third.goto(url + "?rater=sora")
        assert response is not None and response.status == 503
        assert third.inner_text("#heading") == "All rater places are taken"
        with Store(db) as store:
            assert set(store.studies.raters(store.studies.get(STUDY).id)) == set(raters)

        for context in contexts:
            context.close()
        wait_until(lambda: not children(server.pid), "the raters' processes to end")
        browser.close()


def test_behind_a_proxy_the_name_comes_from_its_header_and_urls_follow_it(
    tmp_path: Path,
) -> None:
    chromium()
    db = make_study(tmp_path)
    from playwright.sync_api import sync_playwright

    with serve(db, "--rater-header", "X-Forwarded-User") as (url, _server):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "?rater=mallory", timeout=5)
        assert refused.value.code == 401

        proxied = urllib.request.Request(
            url + "?rater=mallory",
            headers={
                "X-Forwarded-User": "hana@example.org",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "rate.example.org",
                "X-Forwarded-Prefix": "/kurabe/",
            },
        )
        with urllib.request.urlopen(proxied, timeout=5) as response:
            body = response.read().decode()
        assert 'data-session-websocket-url="wss://rate.example.org/kurabe/ws"' in body
        assert 'src="/kurabe/static/js/textual.js"' in body
        assert "hana@example.org" in body and "mallory" not in body
        assert "https://" not in body  # no web font service, nothing else from outside

        with sync_playwright() as playwright:
            browser = launch(playwright)
            context = browser.new_context(extra_http_headers={"X-Forwarded-User": "proxied"})
            terminal = Terminal(context.new_page())
            terminal.page.goto(url + "?rater=mallory")
            _, idx = wait_until(lambda: open_idx(db, "proxied"), "the proxied rater's claim")
            terminal.wait_for(f"item {idx} ")
            with Store(db) as store:
                raters = store.studies.raters(store.studies.get(STUDY).id)
                assert set(raters) == {"hana@example.org", "proxied"}  # never mallory
            browser.close()


def test_refused_raters_and_other_sites_start_no_process(tmp_path: Path) -> None:
    """A name the study does not take gets a page saying why; a websocket from another site's
    page is closed: neither starts a rater's process. (No browser needed.)"""
    import aiohttp

    db = str(tmp_path / "k.sqlite3")
    with Store(db) as store:
        stored_session(store, 1)
    assert (
        main(
            [
                "study",
                "create",
                STUDY,
                "--sessions",
                "1",
                "--raters",
                "hana",
                "--per-item",
                "1",
                "--db",
                db,
            ]
        )
        == 0
    )

    async def websocket_from(origin: str, ws_url: str) -> str | None:
        async with (
            aiohttp.ClientSession() as client,
            client.ws_connect(ws_url, headers={"Origin": origin}) as websocket,
        ):
            message = await websocket.receive(timeout=10)
            return message.extra if message.type == aiohttp.WSMsgType.CLOSE else None

    with serve(db) as (url, server):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "?rater=mallory", timeout=5)
        assert refused.value.code == 403
        assert "not one of study" in refused.value.read().decode()

        ws_url = url.replace("http:", "ws:") + "ws/hana?width=80&height=24"
        assert asyncio.run(websocket_from("http://evil.example", ws_url)) == "refused"
        assert not children(server.pid)
        with Store(db) as store:
            assert store.studies.raters(store.studies.get(STUDY).id) == ["hana"]


@contextmanager
def proxy(backend: str, user: str) -> Iterator[str]:
    """A reverse proxy on loopback, as nginx with auth_request would be: it serves ``backend``
    under ``/kurabe/`` (the prefix stripped), websockets too, and adds ``X-Forwarded-User`` and
    the other ``X-Forwarded-*`` headers. Yields its URL for the prefix."""
    import aiohttp
    from aiohttp import web

    async def forward(request: web.Request) -> web.StreamResponse:
        target = backend + request.match_info["tail"]
        headers = {
            "X-Forwarded-User": user,
            "X-Forwarded-Proto": "http",
            "X-Forwarded-Host": request.host,
            "X-Forwarded-Prefix": "/kurabe",
        }
        async with aiohttp.ClientSession() as client:
            if request.headers.get("Upgrade", "").lower() != "websocket":
                async with client.get(target, params=request.query, headers=headers) as answer:
                    body = await answer.read()
                    kind = answer.headers.get("Content-Type", "application/octet-stream")
                    return web.Response(
                        body=body, status=answer.status, headers={"Content-Type": kind}
                    )
            browser_side = web.WebSocketResponse()
            await browser_side.prepare(request)
            headers["Origin"] = request.headers.get("Origin", "")
            async with client.ws_connect(
                target.replace("http:", "ws:", 1), params=request.query, headers=headers
            ) as server_side:

                async def pump(source: Any, sink: Any) -> None:
                    async for message in source:
                        if message.type == aiohttp.WSMsgType.TEXT:
                            await sink.send_str(message.data)
                        elif message.type == aiohttp.WSMsgType.BINARY:
                            await sink.send_bytes(message.data)

                pumps = [
                    asyncio.ensure_future(pump(browser_side, server_side)),
                    asyncio.ensure_future(pump(server_side, browser_side)),
                ]
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
                for task in pumps:
                    task.cancel()
                await browser_side.close()
            return browser_side

    app = web.Application()
    app.router.add_route("GET", "/kurabe/{tail:.*}", forward)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    port = free_port()
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/kurabe/"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_through_a_proxy_under_a_path_prefix(tmp_path: Path) -> None:
    """Chromium opens kurabe through a reverse proxy that serves it under /kurabe/ and names the
    rater: the page's script, font and websocket all go through the proxy, and the app rates
    under the proxy's name."""
    chromium()
    db = make_study(tmp_path)
    from playwright.sync_api import sync_playwright

    with (
        serve(db, "--rater-header", "X-Forwarded-User") as (url, server),
        proxy(url, "yui") as proxied_url,
        sync_playwright() as playwright,
    ):
        browser = launch(playwright)
        page = browser.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        terminal = Terminal(page)
        page.goto(proxied_url + "?rater=mallory")
        _, idx = wait_until(lambda: open_idx(db, "yui"), "yui's claim")
        terminal.wait_for(f"item {idx} ")
        assert len(children(server.pid)) == 1
        assert requested and all(u.startswith(proxied_url) for u in requested), requested
        with Store(db) as store:
            assert store.studies.raters(store.studies.get(STUDY).id) == ["yui"]
        browser.close()
        wait_until(lambda: not children(server.pid), "the rater's process to end")
