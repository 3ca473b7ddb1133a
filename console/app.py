"""The console's web app: its pages, its static files and its middlewares."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from console.pages import alerts, explorer, platform, signin, targets
from console.state import ConsoleState
from console.web import STATE, middlewares

__all__ = ["STATIC", "build_app"]

#: the console's own assets (styles, scripts, uPlot): no CDN, no build step
STATIC = Path(__file__).parent / "static"


async def _home(request: web.Request) -> web.Response:
    raise web.HTTPFound("/alerts")


async def _favicon(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


def build_app(state: ConsoleState, secure: bool) -> web.Application:
    """The app serving ``state``; ``secure``: it is served over HTTPS (Secure cookies, HSTS)."""
    app = web.Application(
        middlewares=middlewares(state.sessions, secure), client_max_size=64 * 1024
    )
    app[STATE] = state
    app.router.add_get("/", _home, name="home")
    app.router.add_get("/favicon.ico", _favicon, name="favicon")
    for module in (alerts, targets, explorer, platform, signin):
        app.add_routes(module.routes())
    app.router.add_static("/static/", STATIC, name="static", append_version=False)
    return app
