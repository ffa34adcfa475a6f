"""Post routes (api4/post.go): create, ephemeral, read, edit, patch, delete, channel lists, threads.

Every post a client reads goes through Post.to_json, which strips action integrations.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox import ops
from sandbox.auth import require_user, token_from_request
from sandbox.errors import AppError, forbidden, invalid_body
from sandbox.ids import is_valid_id
from sandbox.routes._helpers import (
    created,
    get_channel,
    get_post,
    hub_of,
    json_response,
    paging,
    query_bool,
    read_object,
    state_of,
    url_id,
)
from sandbox.state import Channel, Post, State, User


def can_post(state: State, me: User, channel: Channel) -> bool:
    # create_post in the channel; public channels also accept team-level create_post_public.
    if state.has_channel_permission(me, channel, "create_post"):
        return True
    return channel.type == "O" and state.has_team_permission(me, channel.team_id, "create_post_public")


async def create_post(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    body = await read_object(request, "post")
    channel_id = body.get("channel_id")
    if not isinstance(channel_id, str) or not channel_id:
        raise invalid_body("channel_id")
    channel = state.channels.get(channel_id)
    if channel is None or not can_post(state, me, channel):
        raise forbidden("create_post", me.id)
    # api4/post.go createPostChecks: file_ids need upload_file in the channel (sandbox/routes/files.py).
    if body.get("file_ids") and not state.has_channel_permission(me, channel, "upload_file"):
        raise forbidden("upload_file", me.id)
    body["set_online"] = request.query.get("set_online", "true").lower() != "false"
    # user_id is forced to the session user; delete_at, remote_id and embeds are cleared.
    post = ops.create_post(state, hub_of(request), me, body)
    # createPost: `UpdateLastActivityAtIfNeeded(*c.AppContext.Session())`, which moves lastUserActivityAt of
    # this session's WebSocket connections (what the reaper measures, sandbox/hub.py).
    hub_of(request).touch(me.id, token_from_request(request) or "")
    return created(post.to_json())


async def create_ephemeral(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    body = await read_object(request, "ephemeral_post")
    user_id, post = body.get("user_id"), body.get("post")
    if not isinstance(user_id, str) or not is_valid_id(user_id):
        raise invalid_body("user_id")
    if not isinstance(post, dict):
        raise invalid_body("post")
    # A system permission that only system_admin holds by default: plain bots get 403.
    if not state.has_system_permission(me, "create_post_ephemeral"):
        raise forbidden("create_post_ephemeral", me.id)
    props = post.get("props") if isinstance(post.get("props"), dict) else None
    data = ops.send_ephemeral(state, hub_of(request), user_id, str(post.get("channel_id") or ""),
                              str(post.get("message") or ""), props, root_id=str(post.get("root_id") or ""),
                              sender_id=me.id)
    return created(data)


def readable_post(request: web.Request, me: User) -> Post:
    state = state_of(request)
    post = get_post(state, url_id(request, "post_id"))
    channel = state.channels[post.channel_id]
    if not state.can_read_channel(me, channel):
        raise forbidden("read_channel_content", me.id)
    return post


async def get_post_route(request: web.Request) -> web.Response:
    me = require_user(request)
    return json_response(readable_post(request, me).to_json())


def editable_post(request: web.Request, me: User, permission: str = "edit_post") -> Post:
    """A missing post answers 403, not 404: the permission check comes first (api4 updatePost)."""
    state = state_of(request)
    post = state.posts.get(request.match_info["post_id"])
    if post is None or post.delete_at:
        raise forbidden(permission, me.id)
    channel = state.channels[post.channel_id]
    if not state.has_channel_permission(me, channel, permission):
        raise forbidden(permission, me.id)
    if post.user_id != me.id:
        others = permission.replace("_post", "_others_posts")
        if not state.has_channel_permission(me, channel, others):
            raise forbidden(others, me.id)
    return post


def _check_edit_time_limit(request: web.Request, post: Post, changes_message: bool) -> None:
    """ServiceSettings.PostEditTimeLimit, checked in the API handlers only, after the permission checks
    (api4/post.go updatePost: `PostEditTimeLimit != -1 && GetMillis() > CreateAt + limit*1000 &&
    post.Message != originalPost.Message`; patchPost -> postPatchChecks: the same with `message != nil`).
    No exception for the author, bots or system admins. app.UpdatePost has no such check, so an
    integration action's `update` (app/integration_action.go DoPostActionWithCookie) is not limited."""
    limit = int(state_of(request).config.get("PostEditTimeLimit", -1))
    if limit == -1 or not changes_message:
        return
    if hub_of(request).clock() * 1000 > post.create_at + limit * 1000:
        raise AppError("api.post.update_post.permissions_time_limit.app_error", 400,
                       f"Post edit is only allowed for {limit} seconds. Please ask your System "
                       "Administrator for details.")


def _check_editable(post: Post) -> None:
    if post.type.startswith("system_"):
        raise AppError("api.post.update_post.system_message.app_error", 400,
                       "Unable to update system message.")


async def update_post(request: web.Request) -> web.Response:
    me = require_user(request)
    post_id = url_id(request, "post_id")
    body = await read_object(request, "post")
    if body.get("id") != post_id:
        raise invalid_body("id")
    post = editable_post(request, me)
    message = body.get("message", "")
    # A missing message is "" in Go, so it counts as a change of a non-empty message.
    _check_edit_time_limit(request, post, changes_message=message != post.message)
    _check_editable(post)
    props = body.get("props")
    if not isinstance(message, str) or (props is not None and not isinstance(props, dict)):
        raise invalid_body("post")
    # A full replace: props missing from the body are wiped, message missing is blanked.
    file_ids = list(body["file_ids"]) if isinstance(body.get("file_ids"), list) else None
    ops.update_post(state_of(request), hub_of(request), post, message=message, props=props or {},
                    file_ids=file_ids)
    if isinstance(body.get("is_pinned"), bool):
        post.is_pinned = body["is_pinned"]
    return json_response(post.to_json())


async def patch_post(request: web.Request) -> web.Response:
    me = require_user(request)
    url_id(request, "post_id")
    body = await read_object(request, "post")
    post = editable_post(request, me)
    # postPatchChecks refuses any patch that carries a message, even the same one (`message != nil`).
    _check_edit_time_limit(request, post, changes_message=body.get("message") is not None)
    _check_editable(post)
    message = body.get("message", post.message)
    props = body.get("props")
    if message is None:
        message = post.message
    if not isinstance(message, str) or (props is not None and not isinstance(props, dict)):
        raise invalid_body("post")
    file_ids = list(body["file_ids"]) if isinstance(body.get("file_ids"), list) else None
    ops.update_post(state_of(request), hub_of(request), post, message=message, props=props, file_ids=file_ids)
    if isinstance(body.get("is_pinned"), bool):
        post.is_pinned = body["is_pinned"]
    return json_response(post.to_json())


async def pin_post(request: web.Request) -> web.Response:
    """api4/post.go pinPost -> saveIsPinnedPost: a post that is missing (or deleted) or in a channel the
    caller may not read answers 403 (read_channel_content); else is_pinned is patched and the answer is
    {"status": "OK"}. No edit permission is needed: anyone who reads the channel may pin."""
    me = require_user(request)
    state = state_of(request)
    post = state.posts.get(url_id(request, "post_id"))
    if post is None or post.delete_at:
        raise forbidden("read_channel_content", me.id)
    if not state.can_read_channel(me, state.channels[post.channel_id]):
        raise forbidden("read_channel_content", me.id)
    post.is_pinned = True
    return json_response({"status": "OK"})


async def delete_post(request: web.Request) -> web.Response:
    me = require_user(request)
    url_id(request, "post_id")
    post = editable_post(request, me, "delete_post")
    ops.delete_post(state_of(request), hub_of(request), post, me)
    return json_response({"status": "OK"})


def post_list(state: State, ordered: list[Post], extra: list[Post] = ()) -> dict[str, Any]:
    posts = {p.id: p.to_json() for p in [*ordered, *extra]}
    return {"order": [p.id for p in ordered], "posts": posts, "next_post_id": "", "prev_post_id": "",
            "has_next": False, "first_inaccessible_post_time": 0}


def _roots_of(state: State, posts: list[Post]) -> list[Post]:
    """Lists carry the root of every reply they contain, outside `order` (GetPostsPage)."""
    ids = {p.id for p in posts}
    roots = {p.root_id for p in posts if p.root_id and p.root_id not in ids}
    return [state.posts[r] for r in roots if r in state.posts]


async def channel_posts(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    channel = get_channel(state, url_id(request, "channel_id"))
    if not state.can_read_channel(me, channel):
        raise forbidden("read_channel_content", me.id)
    include_deleted = query_bool(request, "include_deleted")
    all_posts = [state.posts[i] for i in state.channel_posts.get(channel.id, [])]
    newest_first = sorted(all_posts, key=lambda p: (p.create_at, p.id), reverse=True)
    since = request.query.get("since", "")
    if since:
        try:
            since_ms = int(since)
        except ValueError:
            raise invalid_body("since") from None
        # Everything changed since then, edits and deletions included (GetPostsSince).
        changed = [p for p in newest_first if p.update_at >= since_ms]
        return json_response(post_list(state, changed, _roots_of(state, changed)))
    live = [p for p in newest_first if include_deleted or not p.delete_at]
    page, per_page = paging(request)
    before, after = request.query.get("before", ""), request.query.get("after", "")
    if before or after:
        anchor = before or after
        index = next((i for i, p in enumerate(live) if p.id == anchor), None)
        if index is None:
            return json_response(post_list(state, []))
        if before:
            window = live[index + 1:][page * per_page:(page + 1) * per_page]
        else:
            older_end = index - page * per_page
            window = live[max(0, older_end - per_page):max(0, older_end)]
    else:
        window = live[page * per_page:(page + 1) * per_page]
    body = post_list(state, window, _roots_of(state, window))
    if window:
        first, last = live.index(window[0]), live.index(window[-1])
        body["next_post_id"] = live[first - 1].id if first > 0 else ""
        body["prev_post_id"] = live[last + 1].id if last + 1 < len(live) else ""
        body["has_next"] = first > 0
    return json_response(body)


async def thread(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    post = readable_post(request, me)
    root = state.posts[post.root_id] if post.root_id else post
    members = [root] + [p for p in state.posts.values() if p.root_id == root.id and not p.delete_at]
    members.sort(key=lambda p: (p.create_at, p.id), reverse=True)
    return json_response(post_list(state, members))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v4/posts", create_post)
    r.add_post("/api/v4/posts/ephemeral", create_ephemeral)
    r.add_get("/api/v4/posts/{post_id}", get_post_route)
    r.add_put("/api/v4/posts/{post_id}", update_post)
    r.add_put("/api/v4/posts/{post_id}/patch", patch_post)
    r.add_delete("/api/v4/posts/{post_id}", delete_post)
    r.add_post("/api/v4/posts/{post_id}/pin", pin_post)
    r.add_get("/api/v4/posts/{post_id}/thread", thread)
    r.add_get("/api/v4/channels/{channel_id}/posts", channel_posts)
