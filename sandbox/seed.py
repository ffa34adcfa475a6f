"""The system admin every sandbox has, and the `--demo` data."""
from __future__ import annotations

from typing import Any

from sandbox.state import State

DEMO_USERS = ("alice", "bob", "carol")
DEMO_PASSWORD = "demo"
DEMO_BOT = "playbooks"


class _NoHub:
    """Seeding runs before any socket can exist, so its events have no one to reach."""

    def publish(self, *args: Any, **kwargs: Any) -> None:
        return None


def bootstrap(state: State, admin_token: str | None) -> str:
    """Create `sysadmin` with a personal access token (random when None); return the token."""
    import secrets

    from sandbox.ids import new_id
    from sandbox.state import Token, User

    token = admin_token or secrets.token_hex(13)
    user = User(id=new_id(), username="sysadmin", email="sysadmin@sandbox.local", password="sysadmin",
                roles="system_user system_admin")
    state.users[user.id] = user
    state.tokens[token] = Token(id=new_id(), token=token, user_id=user.id, description="sandbox admin")
    return token


def add_demo(state: State, hub: Any = None) -> dict[str, Any]:
    """Team `demo`, users alice, bob, carol (password `demo`) and a bot account with a token.

    Returns {"team_id", "users": {username: id}, "bot_user_id", "bot_token", "admin_id"}.
    """
    from sandbox import ops

    hub = hub or _NoHub()
    admin = state.user_by_username("sysadmin")
    team = ops.create_team(state, hub, name="demo", display_name="Demo", creator=admin)
    users: dict[str, str] = {}
    for name in DEMO_USERS:
        user = ops.create_user(state, hub, username=name, password=DEMO_PASSWORD,
                               email=f"{name}@sandbox.local", first_name=name.capitalize())
        ops.add_team_member(state, hub, team, user)
        users[name] = user.id
    bot = ops.create_user(state, hub, username=DEMO_BOT, is_bot=True, first_name="Playbooks")
    bot.bot_display_name = "Playbooks"
    bot.bot_description = "Runs playbooks: checklists, status updates, retrospectives."
    bot.bot_owner_id = admin.id if admin else ""
    ops.add_team_member(state, hub, team, bot)
    token = ops.create_token(state, bot.id, "demo bot token")
    # As an admin sets up a server for a bot whose slash command replies should read as from the bot
    # (System Console > Integrations > Enable integrations to override usernames / profile picture icons).
    state.config["EnablePostUsernameOverride"] = True
    state.config["EnablePostIconOverride"] = True
    return {"team_id": team.id, "users": users, "bot_user_id": bot.id, "bot_token": token,
            "admin_id": admin.id if admin else ""}
