"""Request helpers shared by the REST route modules: body parsing, URL ids, paging, lookups."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sandbox import gojson
from sandbox.errors import AppError, invalid_body, invalid_url
from sandbox.ids import is_valid_id
from sandbox.keys import HUB, STATE
from sandbox.state import Channel, Post, State, Team, User

DEFAULT_PER_PAGE = 60
MAX_PER_PAGE = 200


def state_of(request: web.Request) -> State:
    return request.app[STATE]


def hub_of(request: web.Request):
    return request.app[HUB]


async def read_json(request: web.Request, name: str) -> Any:
    """The body as JSON; 400 api.context.invalid_body_param.app_error (Name=name) when it is not."""
    raw = await request.read()
    try:
        return gojson.loads(raw) if raw else None
    except ValueError:
        raise invalid_body(name) from None


async def read_object(request: web.Request, name: str) -> dict[str, Any]:
    body = await read_json(request, name)
    if not isinstance(body, dict):
        raise invalid_body(name)
    return body


def url_id(request: web.Request, key: str) -> str:
    value = request.match_info[key]
    if not is_valid_id(value):
        raise invalid_url(key)
    return value


def user_id_param(request: web.Request, me: User, key: str = "user_id") -> str:
    """`me` stands for the caller wherever a user id goes in the URL."""
    value = request.match_info[key]
    if value == "me":
        return me.id
    if not is_valid_id(value):
        raise invalid_url(key)
    return value


def paging(request: web.Request) -> tuple[int, int]:
    """?page (0-based) & ?per_page (default 60, capped at 200, like Context.Params)."""
    def number(key: str, default: int) -> int:
        raw = request.query.get(key, "")
        if raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise invalid_url(key) from None
        if value < 0:
            raise invalid_url(key)
        return value

    page = number("page", 0)
    per_page = min(number("per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    return page, per_page


def page_slice(items: list, request: web.Request) -> list:
    page, per_page = paging(request)
    return items[page * per_page:(page + 1) * per_page]


def query_bool(request: web.Request, key: str) -> bool:
    return request.query.get(key, "").lower() == "true"


def get_user(state: State, user_id: str) -> User:
    user = state.users.get(user_id)
    if user is None:
        raise AppError("app.user.missing_account.const", 404, "Unable to find the user.")
    return user


def get_team(state: State, team_id: str) -> Team:
    team = state.teams.get(team_id)
    if team is None:
        raise AppError("app.team.get.find.app_error", 404, "Unable to find the existing team.")
    return team


def get_channel(state: State, channel_id: str) -> Channel:
    channel = state.channels.get(channel_id)
    if channel is None:
        raise AppError("app.channel.get.existing.app_error", 404, "Unable to find the existing channel.")
    return channel


def get_post(state: State, post_id: str) -> Post:
    post = state.posts.get(post_id)
    if post is None or post.delete_at:
        raise AppError("app.post.get.app_error", 404, "Unable to get the post.")
    return post


def user_json(viewer: User, user: User) -> dict[str, Any]:
    """SanitizeProfile: others lose private fields; emails stay (PrivacySettings.ShowEmailAddress=true)."""
    if viewer.id == user.id or viewer.is_admin():
        return user.to_json()
    data = user.to_json(sanitize=True)
    data["email"] = user.email
    return data


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with Content-Type exactly `application/json`, no charset, as the real server writes it
    (mattermostdriver only decodes JSON on an exact match)."""
    return web.Response(body=json.dumps(data, separators=(",", ":")).encode(), status=status,
                        content_type="application/json", headers=headers)


def created(data: Any) -> web.Response:
    return json_response(data, status=201)
