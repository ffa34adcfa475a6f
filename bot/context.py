"""What commands and handlers see of the world: one object, wired in bot/app.py (or by tests)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bot.actions import Signer
from bot.clock import Clock
from bot.models import Gateway, MattermostError, MMTeam, MMUser
from bot.rendering import Renderer
from bot.tasks import EditWatch, KeyedLocks, Tasks


class UserDirectory:
    """Usernames and roles by id, cached briefly: rendering a checklist must not cost a call per item."""

    def __init__(self, gateway: Gateway, ttl_s: float = 300.0) -> None:
        self.gateway = gateway
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, MMUser]] = {}

    def remember(self, user: MMUser) -> None:
        self._cache[user.id] = (time.monotonic(), user)

    async def get_many(self, user_ids: list[str]) -> dict[str, MMUser]:
        now = time.monotonic()
        found: dict[str, MMUser] = {}
        missing = []
        for uid in dict.fromkeys(u for u in user_ids if u):
            hit = self._cache.get(uid)
            if hit and now - hit[0] < self.ttl_s:
                found[uid] = hit[1]
            else:
                missing.append(uid)
        if missing:
            for user in await self.gateway.get_users_by_ids(missing):
                self.remember(user)
                found[user.id] = user
        return found

    async def get(self, user_id: str) -> MMUser | None:
        return (await self.get_many([user_id])).get(user_id)

    async def names(self, user_ids: list[str]) -> dict[str, str]:
        return {uid: u.username for uid, u in (await self.get_many(user_ids)).items()}

    async def by_username(self, usernames: list[str]) -> dict[str, MMUser]:
        wanted = [u.lstrip("@").lower() for u in usernames if u]
        if not wanted:
            return {}
        users = await self.gateway.get_users_by_usernames(list(dict.fromkeys(wanted)))
        for user in users:
            self.remember(user)
        return {u.username: u for u in users}


@dataclass
class Context:
    gateway: Gateway
    db: Any  # storage.db.Database: `await db.run(fn, *args)` runs fn(session, *args) off the loop
    clock: Clock
    renderer: Renderer
    signer: Signer
    playbooks: Any  # bot.playbooks registry: dict id -> Playbook
    settings: Any
    bot_user: MMUser
    public_url: str
    tasks: Tasks = field(default_factory=Tasks)
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    edits: EditWatch = field(default_factory=EditWatch)
    batches: dict[str, Any] = field(default_factory=dict)  # bot.tasks.Batcher by name (group commits)
    teams: dict[str, MMTeam] = field(default_factory=dict)
    users: UserDirectory | None = None
    reminders: Any = None  # handlers.reminders.ReminderService, wired by bot/app.py
    hooks: Any = None  # outgoing webhooks, wired by bot/app.py
    router: Any = None  # the root Router, for generated help
    playbook_errors: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.users is None:
            self.users = UserDirectory(self.gateway)

    @property
    def action_url(self) -> str:
        return f"{self.public_url}/mattermost/action"

    @property
    def dialog_url(self) -> str:
        return f"{self.public_url}/mattermost/dialog"

    def render(self, template: str, /, **values: Any) -> str:
        return self.renderer.render(template, **values)

    async def is_admin(self, user_id: str) -> bool:
        user = await self.users.get(user_id)  # type: ignore[union-attr]
        return bool(user and user.is_admin)


__all__ = ["Context", "UserDirectory", "MattermostError"]
