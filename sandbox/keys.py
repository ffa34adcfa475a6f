"""Typed keys for what the sandbox keeps on its aiohttp application and requests."""
from __future__ import annotations

from typing import Any

from aiohttp import web

STATE: web.AppKey[Any] = web.AppKey("state")
HUB: web.AppKey[Any] = web.AppKey("hub")
ADMIN_TOKEN: web.AppKey[str] = web.AppKey("admin_token")
RATE_LIMITER: web.AppKey[Any] = web.AppKey("rate_limiter")
SANDBOX: web.AppKey[Any] = web.AppKey("sandbox")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
