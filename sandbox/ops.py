"""Operations with the real server's side effects, shared by route modules and demo seeding.

Each takes the State and the Hub (for WebSocket events), validates as the real server does, and raises
AppError with the real id on failure. Routes do auth, permissions and parsing, then call these.
"""
from __future__ import annotations

from typing import Any

from sandbox.state import Channel, Post, State, Team, User


def create_user(state: State, hub, *, username: str, password: str = "", email: str = "",
                roles: str = "system_user", is_bot: bool = False, first_name: str = "",
                last_name: str = "", nickname: str = "") -> User:
    raise NotImplementedError


def create_token(state: State, user_id: str, description: str = "") -> str:
    """A personal access token (or bot token); returns the secret."""
    raise NotImplementedError


def create_team(state: State, hub, *, name: str, display_name: str, type: str = "O",
                creator: User | None = None) -> Team:
    """Also creates `town-square` and `off-topic`, as the real server does."""
    raise NotImplementedError


def add_team_member(state: State, hub, team: Team, user: User) -> None:
    """Joins the team and its town-square / off-topic channels."""
    raise NotImplementedError


def create_channel(state: State, hub, *, team: Team, creator: User, name: str, display_name: str,
                   type: str = "O", purpose: str = "", header: str = "") -> Channel:
    raise NotImplementedError


def add_channel_member(state: State, hub, channel: Channel, user: User, actor: User) -> bool:
    """True when the user was added, False when already a member (no event, no post)."""
    raise NotImplementedError


def create_post(state: State, hub, author: User, post: dict[str, Any], *,
                from_webhook: bool = False, system: bool = False) -> Post:
    """Validate (runes, props size, type, root), assign action ids, set from_bot, store, emit `posted`."""
    raise NotImplementedError


def update_post(state: State, hub, post: Post, *, message: str, props: dict[str, Any] | None,
                keep_webhook_props: bool = False) -> Post:
    """Replace message and props (None keeps props), set edit_at, emit `post_edited`.

    keep_webhook_props: the action-update quirk (from_webhook, override_username, override_icon_url keep
    the original post's values).
    """
    raise NotImplementedError


def send_ephemeral(state: State, hub, user_id: str, channel_id: str, message: str,
                   props: dict[str, Any] | None = None, root_id: str = "") -> dict[str, Any]:
    """Build a system_ephemeral post (not stored) and emit `ephemeral_message` to that user only."""
    raise NotImplementedError
