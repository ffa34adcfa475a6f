"""Sidebar categories per user and team (api4/channel_category.go, app/channel_category.go,
store/sqlstore/channel_store_categories.go in mattermost/mattermost).

Each category holds its own rows (the store's SidebarChannels), and a channel may have rows in several
categories: it then shows in each. Defaults are created lazily on the first GET. The `channels` and
`direct_messages` categories also show, implicitly and first, every channel of the user that has a row in
no category of the team (`completePopulatingCategoryChannelsT`). Channel ids the user is not a member of are
dropped silently (api4 `validateSidebarCategoryChannels`).

- Creating a category with channels *moves* them: `CreateSidebarCategory` deletes their rows in every
  category of the team first.
- Updating categories (`PUT .../categories` or `.../categories/{id}`) *replaces the rows of the categories
  in the request and of no other*: `UpdateSidebarCategories` deletes `SidebarChannels WHERE CategoryId IN
  (the request's ids)` and inserts the given lists ("Note that this means that moving channels between
  categories requires updating both the source and destination categories."). A channel given to a custom
  category keeps any row it had elsewhere, so moving one takes source and destination in one bulk PUT, as
  the web app's `moveChannelToCategory` sends them. The app layer adds nothing to that but mute syncing
  (app/channel_category.go `muteChannelsForUpdatedCategories`).
- A channel the user joins gets no row (the web app files it locally, `addChannelToInitialCategory`
  without `setOnServer`): it shows in `channels` implicitly until some PUT gives it a row.
- Leaving a channel drops the user's rows for it (sqlstore/channel_store.go `RemoveMembers`: "cleanup
  sidebarchannels table if the user is no longer a member of that channel"): see ops.remove_channel_member.
- There is no version or etag: two read-modify-writes of one category race and the later one wins.
"""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sandbox.auth import require_user
from sandbox.errors import AppError, forbidden, invalid_body
from sandbox.ids import new_id
from sandbox.routes._helpers import hub_of, json_response, read_json, state_of, url_id, user_id_param
from sandbox.state import DEFAULT_CATEGORY_TYPES, Category, State, User

SORTINGS = {"", "manual", "recent", "alpha"}


def _error(status: int) -> AppError:
    return AppError("app.channel.sidebar_categories.app_error", status, "Unable to get sidebar categories.")


def ensure_defaults(state: State, user_id: str, team_id: str) -> list[Category]:
    """createInitialSidebarCategories: favorites, channels, direct_messages with ids <type>_<uid>_<tid>."""
    key = (user_id, team_id)
    if not state.categories.get(key):
        state.categories[key] = [
            Category(id=f"{kind}_{user_id}_{team_id}", user_id=user_id, team_id=team_id, type=kind,
                     display_name=name, sort_order=order, sorting="recent" if kind == "direct_messages" else "")
            for kind, name, order in DEFAULT_CATEGORY_TYPES
        ]
    return state.categories[key]


def member_channel_ids(state: State, user_id: str, team_id: str) -> list[str]:
    """The channels a category may hold: the user's channels in the team, plus their DMs and GMs."""
    return [c.id for c in state.channels.values()
            if (c.team_id == team_id or c.type in ("D", "G")) and state.is_channel_member(c.id, user_id)]


def effective_channels(state: State, user_id: str, team_id: str) -> dict[str, list[str]]:
    """What GET shows per category: its own rows (a channel with rows in two categories shows in both),
    after, for `channels` and `direct_messages`, the member channels with a row in no category of the team
    (not archived, by display name): completePopulatingCategoryChannelsT's `append(channels, rows...)`."""
    categories = ensure_defaults(state, user_id, team_id)
    valid = set(member_channel_ids(state, user_id, team_id))
    placed: set[str] = set()
    rows: dict[str, list[str]] = {}
    for category in categories:
        ids = [cid for cid in dict.fromkeys(category.channel_ids) if cid in valid]
        placed.update(ids)
        rows[category.id] = ids
    leftovers = sorted((state.channels[c] for c in valid - placed if not state.channels[c].delete_at),
                       key=lambda c: (c.display_name.lower(), c.name))
    result: dict[str, list[str]] = {}
    for category in categories:
        implicit: list[str] = []
        if category.type == "channels":
            implicit = [c.id for c in leftovers if c.type in ("O", "P") and c.team_id == team_id]
        elif category.type == "direct_messages":
            implicit = [c.id for c in leftovers if c.type in ("D", "G")]
        result[category.id] = implicit + rows[category.id]
    return result


def category_json(state: State, category: Category) -> dict[str, Any]:
    ids = effective_channels(state, category.user_id, category.team_id)[category.id]
    return category.to_json(channel_ids=ids)


def ordered_json(state: State, user_id: str, team_id: str) -> dict[str, Any]:
    categories = ensure_defaults(state, user_id, team_id)
    channels = effective_channels(state, user_id, team_id)
    return {"categories": [c.to_json(channel_ids=channels[c.id]) for c in categories],
            "order": [c.id for c in categories]}


def _renumber(categories: list[Category]) -> None:
    for index, category in enumerate(categories):
        category.sort_order = index * 10


def _member_ids(state: State, category: Category, channel_ids: list[str]) -> list[str]:
    """validateSidebarCategoryChannels: ids of channels the user is not a member of are dropped silently."""
    valid = set(member_channel_ids(state, category.user_id, category.team_id))
    return [cid for cid in dict.fromkeys(channel_ids) if cid in valid]


def _move_channels(state: State, categories: list[Category], target: Category, channel_ids: list[str]) -> None:
    """Creating a category moves its channels: CreateSidebarCategory first deletes their rows in every
    category of the team ("Remove any channels from their previous categories and add them to the new one")."""
    kept = _member_ids(state, target, channel_ids)
    for other in categories:
        if other is not target:
            other.channel_ids = [cid for cid in other.channel_ids if cid not in kept]
    target.channel_ids = kept


def _replace_channels(state: State, target: Category, channel_ids: list[str]) -> None:
    """Updating a category replaces its own rows and nobody else's: UpdateSidebarCategories deletes
    `SidebarChannels WHERE CategoryId IN (the request's categories)` and inserts the given lists, so "moving
    channels between categories requires updating both the source and destination categories"; a channel
    given here keeps its rows in any category not in the request."""
    target.channel_ids = _member_ids(state, target, channel_ids)


def _target(request: web.Request) -> tuple[State, User, str, str]:
    state = state_of(request)
    me = require_user(request)
    user_id = user_id_param(request, me)
    team_id = url_id(request, "team_id")
    # SessionHasPermissionToUser (State.has_permission_to_user): yourself, manage_system, or
    # edit_other_users but never on a system admin's categories.
    if not state.has_permission_to_user(me, user_id):
        raise forbidden("edit_other_users", me.id)
    return state, me, user_id, team_id


def _may_use_category(state: State, me: User, user_id: str, team_id: str, category_id: Any) -> bool:
    """app/authorization.go SessionHasPermissionToCategory: edit_other_users, or a category that exists
    and is the caller's own, of the URL's user and team."""
    if state.has_system_permission(me, "edit_other_users"):
        return True
    if me.id != user_id:
        return False
    # A member's default categories exist from the team join on a real server (here from the first GET).
    owned = ensure_defaults(state, me.id, team_id) if state.is_team_member(team_id, me.id) else []
    return any(c.id == category_id for c in owned)


def _category_target(request: web.Request) -> tuple[State, User, str, str]:
    """_target, then SessionHasPermissionToCategory for the URL's category: 403 (SetPermissionError)."""
    state, me, user_id, team_id = _target(request)
    if not _may_use_category(state, me, user_id, team_id, request.match_info["category_id"]):
        raise forbidden("edit_other_users", me.id)
    return state, me, user_id, team_id


def _check_categories(state: State, me: User, user_id: str, team_id: str, ids: list[Any]) -> None:
    """updateCategoriesForTeamForUser / updateCategoryOrderForTeamForUser: each id must pass
    SessionHasPermissionToCategory, else 400 SetInvalidParam("category") (invalid_body_param)."""
    for category_id in ids:
        if not _may_use_category(state, me, user_id, team_id, category_id):
            raise invalid_body("category")


def _publish(request: web.Request, event: str, data: dict[str, Any], user_id: str, team_id: str) -> None:
    hub_of(request).publish(event, data, user_id=user_id, team_id=team_id)


async def get_categories(request: web.Request) -> web.Response:
    state, _, user_id, team_id = _target(request)
    return json_response(ordered_json(state, user_id, team_id))


async def create_category(request: web.Request) -> web.Response:
    state, _, user_id, team_id = _target(request)
    body = await read_json(request, "category")
    if not isinstance(body, dict):
        raise invalid_body("category")
    if body.get("user_id") != user_id or body.get("team_id") != team_id:
        raise invalid_body("category")
    display_name = body.get("display_name")
    channel_ids = body.get("channel_ids") or []
    if not isinstance(display_name, str) or not isinstance(channel_ids, list):
        raise invalid_body("category")
    categories = state.categories.get((user_id, team_id))
    if not categories:
        raise _error(404)  # the store finds no categories to place the new one among
    category = Category(id=new_id(), user_id=user_id, team_id=team_id, type="custom",
                        display_name=display_name, sort_order=0, muted=bool(body.get("muted")),
                        collapsed=bool(body.get("collapsed")),
                        sorting=body.get("sorting") if body.get("sorting") in SORTINGS else "")
    # Right after Favorites when Favorites comes first, otherwise first.
    position = 1 if categories[0].type == "favorites" else 0
    categories.insert(position, category)
    _renumber(categories)
    _move_channels(state, categories, category, [c for c in channel_ids if isinstance(c, str)])
    _publish(request, "sidebar_category_created", {"category_id": category.id}, user_id, team_id)
    return json_response(category_json(state, category))  # 200, not 201


async def get_order(request: web.Request) -> web.Response:
    state, _, user_id, team_id = _target(request)
    categories = state.categories.get((user_id, team_id))
    if not categories:
        raise _error(404)
    return json_response([c.id for c in categories])


async def put_order(request: web.Request) -> web.Response:
    state, me, user_id, team_id = _target(request)
    body = await read_json(request, "order")
    if not isinstance(body, list) or not all(isinstance(x, str) for x in body):
        raise invalid_body("order")
    _check_categories(state, me, user_id, team_id, body)
    categories = state.categories.get((user_id, team_id))
    if not categories:
        raise _error(404)
    by_id = {c.id: c for c in categories}
    if len(body) != len(by_id) or set(body) != set(by_id):
        raise _error(400)  # ErrInvalidInput: every category exactly once
    categories[:] = [by_id[i] for i in body]
    _renumber(categories)
    _publish(request, "sidebar_category_order_updated", {"order": list(body)}, user_id, team_id)
    return json_response(list(body))


def _find(state: State, user_id: str, team_id: str, category_id: str) -> Category:
    for category in state.categories.get((user_id, team_id)) or []:
        if category.id == category_id:
            return category
    raise _error(404)


async def get_category(request: web.Request) -> web.Response:
    state, _, user_id, team_id = _category_target(request)
    category = _find(state, user_id, team_id, request.match_info["category_id"])
    return json_response(category_json(state, category))


def _apply_updates(state: State, user_id: str, team_id: str, updates: list[Any]) -> list[Category]:
    categories = state.categories.get((user_id, team_id)) or []
    by_id = {c.id: c for c in categories}
    for update in updates:
        # Categories of someone else (or another team) cannot be updated through this URL.
        if not isinstance(update, dict) or update.get("user_id") != user_id \
                or update.get("team_id") != team_id or update.get("id") not in by_id:
            raise invalid_body("category")
        if not isinstance(update.get("channel_ids", []), list):
            raise invalid_body("category")
    changed: list[Category] = []
    for update in updates:
        category = by_id[update["id"]]
        # user_id, team_id, sort_order and type are read-only; display_name only for custom ones.
        if category.type == "custom" and isinstance(update.get("display_name"), str) and update["display_name"]:
            category.display_name = update["display_name"]
        if update.get("sorting") in SORTINGS and "sorting" in update:
            category.sorting = update["sorting"]
        # The body is the whole category (UpdateSidebarCategories copies it): a field left out is its
        # zero value, so a missing `channel_ids` empties the category and a missing `collapsed` opens it.
        if category.type != "direct_messages":
            category.muted = update.get("muted") is True
        category.collapsed = update.get("collapsed") is True
        if category.type != "direct_messages":
            _replace_channels(state, category, [c for c in update.get("channel_ids") or [] if isinstance(c, str)])
        changed.append(category)
    return changed


def _publish_updated(request: web.Request, state: State, changed: list[Category], user_id: str,
                     team_id: str) -> list[dict[str, Any]]:
    payload = [category_json(state, c) for c in changed]
    _publish(request, "sidebar_category_updated",
             {"updatedCategories": json.dumps(payload, separators=(",", ":"))}, user_id, team_id)
    return payload


async def put_category(request: web.Request) -> web.Response:
    state, _, user_id, team_id = _category_target(request)
    category_id = request.match_info["category_id"]
    body = await read_json(request, "category")
    if not isinstance(body, dict) or body.get("id") != category_id:
        raise invalid_body("category")
    _find(state, user_id, team_id, category_id)
    changed = _apply_updates(state, user_id, team_id, [body])
    return json_response(_publish_updated(request, state, changed, user_id, team_id)[0])


async def put_categories(request: web.Request) -> web.Response:
    state, me, user_id, team_id = _target(request)
    body = await read_json(request, "category")
    if not isinstance(body, list):
        raise invalid_body("category")
    _check_categories(state, me, user_id, team_id, [c.get("id") if isinstance(c, dict) else None for c in body])
    ensure_defaults(state, user_id, team_id)
    changed = _apply_updates(state, user_id, team_id, body)
    return json_response(_publish_updated(request, state, changed, user_id, team_id))


async def delete_category(request: web.Request) -> web.Response:
    state, _, user_id, team_id = _category_target(request)
    category = _find(state, user_id, team_id, request.match_info["category_id"])
    if category.type != "custom":
        raise _error(400)  # only custom categories can be deleted
    categories = state.categories[(user_id, team_id)]
    categories.remove(category)
    _renumber(categories)
    # Its channels fall back to the default categories (implicit membership).
    _publish(request, "sidebar_category_deleted", {"category_id": category.id}, user_id, team_id)
    return json_response({"status": "OK"})


def setup(app: web.Application) -> None:
    base = "/api/v4/users/{user_id}/teams/{team_id}/channels/categories"
    r = app.router
    r.add_get(base, get_categories)
    r.add_post(base, create_category)
    r.add_put(base, put_categories)
    r.add_get(base + "/order", get_order)
    r.add_put(base + "/order", put_order)
    r.add_get(base + "/{category_id}", get_category)
    r.add_put(base + "/{category_id}", put_category)
    r.add_delete(base + "/{category_id}", delete_category)
