"""OpenAPI conformance checking for tests (placeholder until written: passes everything through)."""
from __future__ import annotations

from aiohttp import web


def openapi_middleware(state):
    @web.middleware
    async def middleware(request, handler):
        return await handler(request)

    return middleware
