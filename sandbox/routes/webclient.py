"""The sandbox's web client: `/` serves sandbox/web/index.html, `/static/...` the rest of sandbox/web/.

The client is plain HTML, CSS and ES modules with no build step. It talks only to /api/v4 and the
WebSocket, like Mattermost's web app, so whatever it shows went through the same routes a real client uses.
The Content-Security-Policy keeps it honest: scripts, styles and connections from this origin only, so
nothing can come from the network, and no inline script or style attribute can run even if the renderer
ever let one through.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def _csp(request: web.Request) -> str:
    # 'self' does not cover ws:// in every browser; name the socket's origin explicitly.
    ws_scheme = "wss" if request.secure else "ws"
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {ws_scheme}://{request.host}; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB_DIR / "index.html", headers={
        "Content-Security-Policy": _csp(request), "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = (WEB_DIR / name).resolve()
    # Only files directly inside sandbox/web (no sub-folders, no escaping it with ..).
    if path.parent != WEB_DIR or not path.is_file() or name.startswith("."):
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


def setup(app: web.Application) -> None:
    app.router.add_get("/", index)
    # The login page (`/login?redirect_to=...`, where /oauth/authorize sends people who are not signed in)
    # is the same client: it signs in, then goes to redirect_to when that is a path on this origin.
    app.router.add_get("/login", index)
    app.router.add_get("/static/{name}", static)
