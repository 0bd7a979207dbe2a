"""The web server behind ``kurabe serve``: textual-serve's :class:`~textual_serve.server.Server`,
with what a team's raters need on top.

- Each browser tab gets its own process, ``kurabe study rate STUDY --rater NAME [--db DB]``,
  started by textual-serve's :class:`~textual_serve.app_service.AppService` over the tab's
  websocket and ended when the websocket closes (the tab closes or reloads). That process
  rates stored replies only: it loads no model.
- The rater's name: with ``rater_header`` set, only from that request header (an authenticating
  proxy sets it; a name in the URL is ignored); without it, from the URL, which the name form on
  the first page fills in. The server itself authenticates no one.
- At most ``max_raters`` processes at once; past that the page (and the websocket) says the
  places are taken.
- Every URL on the page is built per request from ``X-Forwarded-Proto``, ``X-Forwarded-Host``
  and ``X-Forwarded-Prefix`` (else ``base_path``), not from textual-serve's fixed public URL
  (textual-serve issue #42), so it works behind a proxy under a path prefix.
- A name the study does not take (it names its raters, and not this one) gets a page saying so
  before any process starts; a websocket opened from another site's page (its ``Origin`` is not
  this server as the browser sees it) is closed before any process starts, so a page elsewhere
  cannot rate in a logged-in rater's name.
- The page is kurabe's own template (``serve_page/``): the font comes from textual-serve's
  bundled static files, not from a web font service, so nothing is fetched from the internet.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import sys
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp_jinja2
import jinja2
import textual_serve
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server

from foundation.errors import KurabeError
from kurabe.store.store import Store
from kurabe.store.target import DB_ENV

log = logging.getLogger("kurabe.serve")

PAGE_DIR = Path(__file__).resolve().parent / "serve_page"
STATIC_DIR = Path(textual_serve.__file__).resolve().parent / "static"
MAX_NAME_LENGTH = 64
RELOAD_GRACE_STEPS = 30
"""Tenths of a second a full server waits for a place before it says so."""


def valid_rater(name: str | None) -> str | None:
    """The rater's name, stripped, or None where it is empty, too long or has control
    characters."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        return None
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        return None
    return name


class RaterServer(Server):
    """Serves one study's rating queue, one ``kurabe study rate`` process per tab."""

    def __init__(
        self,
        study: str,
        *,
        host: str,
        port: int,
        db: str | None,
        rater_header: str | None,
        max_raters: int,
        base_path: str = "",
    ) -> None:
        super().__init__(
            command="kurabe study rate",
            host=host,
            port=port,
            title=f"kurabe · {study}",
            statics_path=STATIC_DIR,
            templates_path=PAGE_DIR,
        )
        self.study = study
        self.db = db
        self.rater_header = rater_header
        self.max_raters = max_raters
        self.base_path = base_path.rstrip("/")
        self.active: dict[AppService, str] = {}
        """The running raters' processes, and whose each is."""

    def rater_command(self, rater: str) -> str:
        """The shell command textual-serve runs for one tab (``exec``: the app is the child
        process itself, so ending it ends the rater's process). The store reaches it through
        ``KURABE_DB`` (:meth:`serve`), not its arguments, which any user of the machine can read
        (a ``postgresql://`` URL may carry a password)."""
        parts = [sys.executable, "-m", "kurabe.cli", "study", "rate", self.study]
        parts += ["--rater", rater]
        return "exec " + " ".join(shlex.quote(part) for part in parts)

    def serve(self, debug: bool = False) -> None:
        if self.db is not None:
            os.environ[DB_ENV] = self.db  # the raters' processes inherit the environment
        super().serve(debug)

    async def _make_app(self) -> web.Application:
        app = web.Application()
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        app.add_routes(
            [
                web.get("/", self.handle_index, name="index"),
                web.get("/ws", self.handle_websocket, name="websocket"),
                web.get("/ws/{rater}", self.handle_websocket, name="rater_websocket"),
                web.get("/download/{key}", self.handle_download, name="download"),
                web.static("/static", self.statics_path, name="static"),
            ]
        )
        app.on_startup.append(self.on_startup)
        app.on_shutdown.append(self.on_shutdown)
        return app

    async def on_startup(self, app: web.Application) -> None:
        who = f"header {self.rater_header}" if self.rater_header else "a name typed on the page"
        self.console.print(
            f"kurabe serve: study {self.study!r} on http://{self.host}:{self.port}"
            f"{self.base_path}/ (raters: {who}; at most {self.max_raters} at once; "
            "no authentication of its own)"
        )

    def request_rater(self, request: web.Request) -> str | None:
        """Who this request rates as: the proxy's header when one is configured (never the
        URL then), else the name in the URL."""
        if self.rater_header:
            return valid_rater(request.headers.get(self.rater_header))
        return valid_rater(request.match_info.get("rater") or request.query.get("rater"))

    def prefix(self, request: web.Request) -> str:
        """The path the proxy serves kurabe under ("" when none)."""
        return (request.headers.get("X-Forwarded-Prefix") or self.base_path).rstrip("/")

    def origin(self, request: web.Request, websocket: bool = False) -> str:
        """scheme://host as the browser sees it, from the proxy's ``X-Forwarded-*`` headers."""
        scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
        host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
        if websocket:
            scheme = "wss" if scheme == "https" else "ws"
        return f"{scheme}://{host}"

    async def place_free(self) -> bool:
        """Whether a rater can start now. A full server waits a moment first: the websocket of
        a reloaded tab can arrive before its old process has ended."""
        for _ in range(RELOAD_GRACE_STEPS):
            if len(self.active) < self.max_raters:
                return True
            await asyncio.sleep(0.1)
        return len(self.active) < self.max_raters

    def same_origin(self, request: web.Request) -> bool:
        """Whether a websocket comes from this server's own page (browsers always send
        ``Origin`` with a websocket; a request without one is not a browser's)."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
        return urlsplit(origin).netloc == host

    def refusal(self, rater: str) -> str | None:
        """Why the study does not take ``rater`` (None when it does); joins them otherwise, as
        ``kurabe study rate`` would."""
        try:
            with Store.open_default(self.db) as store:
                study = store.studies.get(self.study)
                if not study.closed:  # a closed study opens to look back
                    store.studies.join(study, rater)
        except KurabeError as exc:
            return str(exc)
        return None

    def message(self, request: web.Request, status: int, **context: Any) -> web.Response:
        context.setdefault("title", self.title)
        context.setdefault("study", self.study)
        context.setdefault("static_url", self.prefix(request) + "/static/")
        context.setdefault("form", False)
        response = aiohttp_jinja2.render_template("message.html", request, context)
        response.set_status(status)
        return response

    async def handle_index(self, request: web.Request) -> web.Response:
        rater = self.request_rater(request)
        # A rater who reloads keeps their place: the browser holds the old page's websocket
        # (and so its process) open until this answer arrives.
        reloading = rater is not None and rater in self.active.values()
        if not reloading and not await self.place_free():
            return self.message(
                request,
                503,
                heading="All rater places are taken",
                text=f"{self.max_raters} raters are rating now, the most this server takes at "
                "once. Try again in a while.",
            )
        if rater is None and self.rater_header:
            return self.message(
                request,
                401,
                heading="No rater name from the proxy",
                text=f"This server takes the rater's name from the {self.rater_header} header, "
                "which the authenticating proxy in front of it sets. None came with this "
                "request.",
            )
        if rater is None:
            return self.message(
                request,
                200,
                heading="Who is rating?",
                text="Type your name: your ratings are stored under it.",
                form=True,
            )
        refused = await asyncio.to_thread(self.refusal, rater)
        if refused is not None:
            return self.message(
                request, 403, heading="Not one of this study's raters", text=refused
            )
        prefix = self.prefix(request)
        websocket_path = f"{prefix}/ws" + ("" if self.rater_header else "/" + quote(rater, ""))
        font_size = request.query.get("fontsize", "16")
        context = {
            "title": self.title,
            "rater": rater,
            "static_url": prefix + "/static/",
            "websocket_url": self.origin(request, websocket=True) + websocket_path,
            "font_size": int(font_size) if font_size.isdigit() else 16,
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        rater = self.request_rater(request)
        if rater is None or not self.same_origin(request) or not await self.place_free():
            await websocket.close(message=b"refused")
            return websocket
        width = request.query.get("width", "80")
        height = request.query.get("height", "24")

        async def close() -> None:
            await websocket.close()

        app_service = AppService(
            self.rater_command(rater),
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=close,
            download_manager=self.download_manager,
            debug=self.debug,
        )
        self.active[app_service] = rater
        try:
            await app_service.start(
                int(width) if width.isdigit() else 80, int(height) if height.isdigit() else 24
            )
            try:
                await self._process_messages(websocket, app_service)
            finally:
                await app_service.stop()
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:
            log.exception(error)
        finally:
            self.active.pop(app_service, None)
        return websocket
