"""A local stand-in for a Mattermost server (API v4 and WebSocket), for tests, benchmarks and `make run`.

The bot never imports this package; it only talks to it over HTTP, as it would to a real server.
"""
from __future__ import annotations

from sandbox.server import Sandbox

__all__ = ["Sandbox"]
