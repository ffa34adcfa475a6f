"""The web view's front door; each page family has its module (web_runs, web_insights, reports)."""
from __future__ import annotations

from bot.context import Context
from bot.router import Redirect, Router, WebReply, WebRequest

router = Router("web")


@router.page("GET", "/")
async def home(request: WebRequest, ctx: Context) -> WebReply:
    """The dashboard starts at the runs list."""
    return Redirect("/runs")
