"""WebSocket hub: connections, per-connection seq, delivery filter, replay on reconnect."""
from __future__ import annotations

from typing import Any, Iterable

from sandbox.state import State


class Hub:
    def __init__(self, state: State) -> None:
        self.state = state

    def publish(self, event: str, data: dict[str, Any], *, user_id: str = "", channel_id: str = "",
                team_id: str = "", omit_users: Iterable[str] = (), connection_id: str = "",
                omit_connection_id: str = "") -> None:
        """Queue an event for every connection the real delivery filter would pick."""
        raise NotImplementedError

    async def drop_all(self) -> None:
        """Close every socket abruptly (fault injection); sessions stay resumable."""
        raise NotImplementedError

    async def close_all(self) -> None:
        """Close every socket at shutdown."""
        raise NotImplementedError
