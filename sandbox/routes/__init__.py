"""Route modules of the sandbox; each has `setup(app)` that adds its routes."""
from __future__ import annotations

from aiohttp import web

from sandbox.routes import (
    actions,
    categories,
    channel_views,
    channels,
    commands,
    commands_execute,
    commands_webhook,
    files,
    groups,
    oauth,
    posts,
    system,
    teams,
    testing,
    users,
    webclient,
    websocket,
)

MODULES = [system, users, teams, channels, posts, categories, commands, commands_execute, commands_webhook,
           actions, websocket, testing, channel_views, webclient, oauth, files, groups]


def setup(app: web.Application) -> None:
    for module in MODULES:
        module.setup(app)
