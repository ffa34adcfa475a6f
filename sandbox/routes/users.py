"""User, login, bot and access-token routes (api4/user.go, api4/bot.go, api4/user_access_token.go)."""
from __future__ import annotations

from aiohttp import web

from sandbox import ops
from sandbox.auth import require_user, token_from_request
from sandbox.errors import AppError, forbidden, invalid_body
from sandbox.routes._helpers import (
    created,
    get_team,
    get_user,
    hub_of,
    json_response,
    page_slice,
    read_json,
    read_object,
    state_of,
    url_id,
    user_id_param,
    user_json,
)
from sandbox.state import ROLE_PERMISSIONS, User

SYSTEM_ROLES = {r for r in ROLE_PERMISSIONS if r.startswith("system_")} | {
    "system_guest", "system_user_access_token", "system_post_all", "system_post_all_public",
    "system_manager", "system_user_manager", "system_read_only_admin", "system_custom_group_admin"}


def can_edit_user(state, me: User, target_id: str) -> bool:
    """SessionHasPermissionToUser (State.has_permission_to_user)."""
    return state.has_permission_to_user(me, target_id)


async def create_user(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    # Without a token/invite the real server needs EnableOpenServer (off by default) unless the
    # caller can create users; the sandbox models the default: admins create users.
    if not state.has_system_permission(me, "create_user"):
        raise AppError("api.user.create_user.no_open_server", 403,
                       "This server does not allow open signups.  Please speak with your Administrator "
                       "to receive an invitation.")
    body = await read_object(request, "user")
    for key in ("username", "email", "password", "first_name", "last_name", "nickname"):
        if key in body and not isinstance(body[key], str):
            raise invalid_body("user")
    if not body.get("password"):
        raise AppError("model.user.is_valid.pwd.app_error", 400, "Your password must contain at least "
                       "5 characters.")
    user = ops.create_user(state, hub_of(request), username=body.get("username", ""),
                           password=body["password"], email=body.get("email", ""),
                           first_name=body.get("first_name", ""), last_name=body.get("last_name", ""),
                           nickname=body.get("nickname", ""))
    return created(user_json(me, user))


async def login(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await read_object(request, "login_id")
    login_id = str(body.get("login_id") or "").lower()
    password = str(body.get("password") or "")
    user = next((u for u in state.users.values()
                 if login_id and (u.username == login_id or u.email == login_id)), None)
    if user is not None and user.is_bot:
        raise AppError("api.user.login.bot_login_forbidden.app_error", 401, "Bot login is forbidden.")
    if user is None or not user.password or user.password != password or user.delete_at:
        raise AppError("api.user.login.invalid_credentials_email_username", 401,
                       "Enter a valid email or username and/or password.")
    token = ops.create_session(state, user.id)
    response = json_response(user.to_json(), headers={"Token": token})
    # The web client's cookies: HttpOnly session, readable user id and CSRF token.
    response.set_cookie("MMAUTHTOKEN", token, httponly=True, path="/", samesite="Lax")
    response.set_cookie("MMUSERID", user.id, path="/", samesite="Lax")
    response.set_cookie("MMCSRF", ops.new_action_id(), path="/", samesite="Lax")
    return response


async def logout(request: web.Request) -> web.Response:
    # APIHandler: works without a valid session; revokes the session token if there is one.
    state = state_of(request)
    try:
        token = token_from_request(request)
    except AppError:
        token = None
    record = state.tokens.get(token or "")
    if record is not None and record.description == "session":
        del state.tokens[token]
    response = json_response({"status": "OK"})
    for name in ("MMAUTHTOKEN", "MMUSERID", "MMCSRF"):
        response.del_cookie(name, path="/")
    return response


async def get_user_route(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    user = get_user(state, user_id_param(request, me))
    # api4/user.go getUser: UserCanSeeOtherUser, else SetPermissionError(PermissionViewMembers).
    if not state.can_see_user(me, user.id):
        raise forbidden("view_members", me.id)
    return json_response(user_json(me, user))


async def get_by_username(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    user = state.user_by_username(request.match_info["username"])
    if user is None:
        raise AppError("app.user.get_by_username.app_error", 404, "Unable to find an existing account "
                       "matching your username for this team. This team may require an invite from the "
                       "team owner to join.")
    if not state.can_see_user(me, user.id):  # api4/user.go getUserByUsername, as getUser
        raise forbidden("view_members", me.id)
    return json_response(user_json(me, user))


async def get_by_email(request: web.Request) -> web.Response:
    """api4/user.go getUserByEmail: emails hidden from the caller (PrivacySettings.ShowEmailAddress off
    and not a system admin: GetSanitizeOptions) answer 403 api.user.get_user_by_email.permissions.app_error;
    no such account 404 (app.GetUserByEmail, MissingAccountError); one the caller may not see 403."""
    state = state_of(request)
    me = require_user(request)
    if not state.config.get("ShowEmailAddress", True) and not me.is_admin():
        raise AppError("api.user.get_user_by_email.permissions.app_error", 403,
                       "Unable to get user by email.")
    wanted = request.match_info["email"].lower()
    user = next((u for u in state.users.values() if u.email.lower() == wanted and not u.delete_at), None)
    if user is None:
        raise AppError("app.user.missing_account.const", 404, "Unable to find the user.")
    if not state.can_see_user(me, user.id):
        raise forbidden("view_members", me.id)
    return json_response(user_json(me, user))


async def users_by_ids(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    body = await read_json(request, "user_ids")
    if not isinstance(body, list) or not body or not all(isinstance(x, str) for x in body):
        raise invalid_body("user_ids")
    since = int(request.query.get("since") or 0)
    # Unknown ids are silently dropped (GetUsersByIds).
    users = [state.users[i] for i in dict.fromkeys(body) if i in state.users]
    # Those the caller may not see are dropped too (GetUsersByIds with ViewUsersRestrictions).
    users = [u for u in users if state.can_see_user(me, u.id)]
    return json_response([user_json(me, u) for u in users if u.update_at > since or not since])


async def users_by_usernames(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    body = await read_json(request, "usernames")
    if not isinstance(body, list) or not body or not all(isinstance(x, str) for x in body):
        raise invalid_body("usernames")
    users = [u for u in (state.user_by_username(n) for n in dict.fromkeys(body)) if u is not None]
    users = [u for u in users if state.can_see_user(me, u.id)]  # GetUsersByUsernames: ViewRestrictions
    return json_response([user_json(me, u) for u in users])


async def list_users(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    # RestrictUsersGetByPermissions: a guest lists only people it shares a channel with.
    users = [u for u in state.users.values() if state.can_see_user(me, u.id)]
    in_team = request.query.get("in_team", "")
    if in_team:
        if not state.has_team_permission(me, in_team, "view_team"):
            raise forbidden("view_team", me.id)
        users = [u for u in users if state.is_team_member(in_team, u.id)]
    not_in_team = request.query.get("not_in_team", "")
    if not_in_team:
        users = [u for u in users if not state.is_team_member(not_in_team, u.id)]
    in_channel = request.query.get("in_channel", "")
    if in_channel:
        channel = state.channels.get(in_channel)
        if channel is None or not state.can_read_channel(me, channel):
            raise forbidden("read_channel", me.id)
        users = [u for u in users if state.is_channel_member(in_channel, u.id)]
    not_in_channel = request.query.get("not_in_channel", "")
    if not_in_channel:
        users = [u for u in users if not state.is_channel_member(not_in_channel, u.id)]
    if request.query.get("active") == "true":
        users = [u for u in users if not u.delete_at]
    elif request.query.get("inactive") == "true":
        users = [u for u in users if u.delete_at]
    # The store orders by username when no sort is given.
    users.sort(key=lambda u: u.username)
    return json_response([user_json(me, u) for u in page_slice(users, request)])


async def update_roles(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    user = get_user(state, url_id(request, "user_id"))
    body = await read_object(request, "roles")
    roles = body.get("roles")
    if not isinstance(roles, str):
        raise invalid_body("roles")
    if not state.has_system_permission(me, "manage_roles"):
        raise forbidden("manage_roles", me.id)
    names = roles.split()
    if not names or any(r not in SYSTEM_ROLES for r in names):
        raise AppError("api.user.update_user_roles.bad_role.app_error", 400,
                       "Unable to update roles: a role name is not valid.")
    user.roles = " ".join(names)
    user.update_at = ops.now_ms()
    hub_of(request).publish("user_role_updated", {"user_id": user.id, "roles": user.roles},
                            user_id=user.id)
    return json_response({"status": "OK"})


async def update_active(request: web.Request) -> web.Response:
    """Deactivate or reactivate an account (api4/user.go updateUserActive): `{"active": bool}`. Someone
    else's needs sysconsole_write_user_management_users (system admins; `manage_system` here); one's own
    deactivation needs TeamSettings.EnableUserDeactivation, else 401. A deactivated account keeps its
    rows (delete_at is set) and can no longer sign in or use its tokens (sandbox/auth.py)."""
    state = state_of(request)
    me = require_user(request)
    user = get_user(state, url_id(request, "user_id"))
    body = await read_object(request, "active")
    active = body.get("active")
    if not isinstance(active, bool):
        raise invalid_body("active")
    self_deactivate = not active and user.id == me.id
    if not self_deactivate and not state.has_system_permission(me, "manage_system"):
        raise AppError("api.user.update_active.permissions.app_error", 403,
                       "You do not have the appropriate permissions.")
    if self_deactivate and not state.config.get("EnableUserDeactivation", False):
        raise AppError("api.user.update_active.not_enable.app_error", 401,
                       "You cannot deactivate yourself because this feature is not enabled. Please contact your "
                       "System Administrator.")
    user.delete_at = 0 if active else ops.now_ms()
    user.update_at = ops.now_ms()  # (the real server also broadcasts user_updated; nothing here reads it)
    return json_response({"status": "OK"})


PATCHABLE = ("nickname", "first_name", "last_name", "locale")
TIMEZONE_KEYS = ("automaticTimezone", "manualTimezone", "useAutomaticTimezone")


async def patch_user(request: web.Request) -> web.Response:
    """PUT /users/{user_id}/patch (api4/user.go patchUser): yourself, or edit_other_users; a system
    admin's profile only with manage_system. The fields the sandbox models: names, locale, timezone
    (a map of strings: model.User.Timezone is a StringMap)."""
    state = state_of(request)
    me = require_user(request)
    uid = url_id(request, "user_id")
    patch = await read_object(request, "user")
    if not can_edit_user(state, me, uid):
        raise forbidden("edit_other_users", me.id)
    user = state.users.get(uid)
    if user is None:
        raise AppError("api.context.invalid_url_param.app_error", 400, "Invalid or missing user_id parameter.")
    if user.is_admin() and not state.has_system_permission(me, "manage_system"):
        raise forbidden("manage_system", me.id)
    for key in PATCHABLE:
        if key in patch:
            if not isinstance(patch[key], str):
                raise invalid_body("user")
            setattr(user, key, patch[key])
    if "timezone" in patch:
        zone = patch["timezone"]
        if not isinstance(zone, dict) or not all(isinstance(v, str) for v in zone.values()):
            raise invalid_body("user")
        user.timezone = {k: str(zone.get(k, user.timezone.get(k, ""))) for k in TIMEZONE_KEYS}
    user.update_at = ops.now_ms()
    return json_response(user_json(me, user))


def bot_json(user: User) -> dict:
    return {"user_id": user.id, "username": user.username, "display_name": user.bot_display_name,
            "description": user.bot_description, "owner_id": user.bot_owner_id,
            "create_at": user.create_at, "update_at": user.update_at, "delete_at": user.delete_at}


async def create_bot(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    body = await read_object(request, "bot")
    if not state.config.get("EnableBotAccountCreation", True):
        raise AppError("api.bot.create_disabled", 403, "Bot creation has been disabled.")
    if not state.has_system_permission(me, "create_bot"):
        raise forbidden("create_bot", me.id)
    username = body.get("username")
    display_name = body.get("display_name") or ""
    description = body.get("description") or ""
    if not isinstance(username, str) or not isinstance(display_name, str) or not isinstance(description, str):
        raise invalid_body("bot")
    if ops.runes(display_name) > 64:
        raise AppError("model.bot.is_valid.username.app_error", 400, "Invalid display name.")
    if ops.runes(description) > 1024:
        raise AppError("model.bot.is_valid.description.app_error", 400, "Invalid description.")
    # The bot's user: is_bot, system_user, email <username>@localhost (app.CreateBot).
    user = ops.create_user(state, hub_of(request), username=username, is_bot=True,
                           first_name=display_name)
    user.bot_display_name = display_name
    user.bot_description = description
    user.bot_owner_id = me.id
    return created(bot_json(user))


async def get_bot(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    user = state.users.get(url_id(request, "bot_user_id"))
    visible = user is not None and user.is_bot and (
        (user.bot_owner_id == me.id and state.has_system_permission(me, "read_bots"))
        or state.has_system_permission(me, "read_others_bots") or user.bot_owner_id == me.id)
    if user is None or not user.is_bot or not visible \
            or (user.delete_at and not query_true(request, "include_deleted")):
        raise AppError("store.sql_bot.get.missing.app_error", 404, "Bot does not exist.")
    return json_response(bot_json(user))


def query_true(request: web.Request, key: str) -> bool:
    return request.query.get(key, "").lower() == "true"


async def create_access_token(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    target = get_user(state, url_id(request, "user_id"))
    body = await read_object(request, "token")
    description = body.get("description")
    if not isinstance(description, str) or not description:
        raise invalid_body("description")
    if not state.config.get("EnableUserAccessTokens", True):
        raise AppError("api.user.create_user_access_token.disabled", 501,
                       "Personal access tokens are disabled on this server.")
    # create_user_access_token is a system-admin permission by default; tokens for someone else
    # (a bot you own included) also need the right to edit that user or manage the bot.
    if not state.has_system_permission(me, "create_user_access_token"):
        raise forbidden("create_user_access_token", me.id)
    if not can_edit_user(state, me, target.id) and not (target.is_bot and target.bot_owner_id == me.id):
        raise forbidden("edit_other_users", me.id)
    secret = ops.create_token(state, target.id, description)
    record = state.tokens[secret]
    return json_response(record.to_json(with_secret=True))


async def user_teams(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    uid = user_id_param(request, me)
    if not can_edit_user(state, me, uid):
        raise forbidden("edit_other_users", me.id)
    return json_response([state.teams[t].to_json() for t in state.user_team_ids(uid)
                              if t in state.teams])


async def user_team_members(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    uid = user_id_param(request, me)
    if not can_edit_user(state, me, uid):
        raise forbidden("edit_other_users", me.id)
    members = [m.to_json() for (tid, u), m in state.team_members.items() if u == uid and not m.delete_at]
    return json_response(members)


async def user_team_channels(request: web.Request) -> web.Response:
    """The user's channels in a team, plus their DMs and GMs (GetChannelsForTeamForUser)."""
    state = state_of(request)
    me = require_user(request)
    uid = user_id_param(request, me)
    team_id = url_id(request, "team_id")
    if not can_edit_user(state, me, uid):
        raise forbidden("edit_other_users", me.id)
    get_team(state, team_id)
    if not state.has_team_permission(me, team_id, "view_team"):
        raise forbidden("view_team", me.id)
    include_deleted = query_true(request, "include_deleted")
    channels = [c for c in state.channels.values()
                if (c.team_id == team_id or c.type in ("D", "G")) and state.is_channel_member(c.id, uid)
                and (include_deleted or not c.delete_at)]
    channels.sort(key=lambda c: c.display_name.lower())
    return json_response([c.to_json() for c in channels])


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v4/users", create_user)
    r.add_get("/api/v4/users", list_users)
    r.add_post("/api/v4/users/login", login)
    r.add_post("/api/v4/users/logout", logout)
    r.add_post("/api/v4/users/ids", users_by_ids)
    r.add_post("/api/v4/users/usernames", users_by_usernames)
    r.add_get("/api/v4/users/username/{username}", get_by_username)
    r.add_get("/api/v4/users/email/{email}", get_by_email)
    r.add_get("/api/v4/users/{user_id}", get_user_route)
    r.add_put("/api/v4/users/{user_id}/roles", update_roles)
    r.add_put("/api/v4/users/{user_id}/active", update_active)
    r.add_put("/api/v4/users/{user_id}/patch", patch_user)
    r.add_post("/api/v4/users/{user_id}/tokens", create_access_token)
    r.add_get("/api/v4/users/{user_id}/teams", user_teams)
    r.add_get("/api/v4/users/{user_id}/teams/members", user_team_members)
    r.add_get("/api/v4/users/{user_id}/teams/{team_id}/channels", user_team_channels)
    r.add_post("/api/v4/bots", create_bot)
    r.add_get("/api/v4/bots/{bot_user_id}", get_bot)


