"""The sandbox's in-memory world: users, teams, channels, posts, commands, categories, tokens.

Route modules read and change this state; nothing here does I/O. JSON shapes follow the real server's
models (server/public/model): fields without `omitempty` in Go are always present here too.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sandbox.config import defaults as config_defaults
from sandbox.ids import now_ms

SERVER_VERSION = "10.5.0"

# Default permissions of the built-in roles (a reduced but faithful subset of the real defaults in
# server/channels/app/permissions_migrations.go and model/role.go).
ROLE_PERMISSIONS: dict[str, set[str]] = {
    "system_user": {
        "create_direct_channel", "create_group_channel", "create_team", "list_public_teams",
        "join_public_teams", "view_members", "create_bot", "create_user_access_token_own",
        # Custom user groups (model/role.go MakeDefaultRoles system_user; added to existing servers by
        # app/permissions_migrations.go getAddCustomUserGroupsPermissions).
        "create_custom_group", "edit_custom_group", "delete_custom_group", "restore_custom_group",
        "manage_custom_group_members",
    },
    "system_admin": {"*"},
    "team_user": {
        "view_team", "list_team_channels", "join_public_channels", "read_public_channel",
        "create_public_channel", "create_private_channel", "add_user_to_team", "invite_user",
        # Not create_post_public: that belongs to the opt-in team_post_all_public role, so by default
        # only channel members may post (model/role.go).
    },
    "team_admin": {
        "manage_slash_commands", "manage_own_slash_commands", "manage_others_slash_commands",
        "manage_team", "manage_team_roles", "remove_user_from_team", "manage_public_channel_members",
        "manage_private_channel_members", "delete_public_channel", "delete_private_channel",
        "manage_public_channel_properties", "manage_private_channel_properties", "delete_others_posts",
        "edit_others_posts",
    },
    "channel_user": {
        "read_channel", "read_channel_content", "create_post", "edit_post", "delete_post",
        "add_reaction", "remove_reaction", "use_channel_mentions", "use_slash_commands",
        "manage_public_channel_members", "manage_private_channel_members",
        "manage_public_channel_properties", "manage_private_channel_properties",
        "delete_public_channel", "delete_private_channel", "upload_file", "get_public_link",
        "create_post_public",
    },
    "channel_admin": {"manage_channel_roles", "use_group_mentions"},
    # Guests (model/role.go MakeDefaultRoles: system_guest, team_guest, channel_guest). No view_members,
    # list_team_channels, join_public_channels, create_*_channel, add_user_to_team or
    # manage_*_channel_members: a guest cannot list or join public channels, create channels or add people.
    "system_guest": {"create_direct_channel", "create_group_channel"},
    "team_guest": {"view_team"},
    "channel_guest": {
        "read_channel", "add_reaction", "remove_reaction", "upload_file", "edit_post", "create_post",
        "use_channel_mentions", "use_slash_commands",
        # Granted alongside read_channel by permissions_migrations.go (as for channel_user above).
        "read_channel_content",
    },
}

DEFAULT_CATEGORY_TYPES = [
    ("favorites", "Favorites", 0),
    ("channels", "Channels", 10),
    ("direct_messages", "Direct Messages", 20),
]


@dataclass
class User:
    id: str
    username: str
    email: str
    password: str = ""
    first_name: str = ""
    last_name: str = ""
    nickname: str = ""
    roles: str = "system_user"
    is_bot: bool = False
    bot_description: str = ""
    bot_owner_id: str = ""
    bot_display_name: str = ""
    locale: str = "en"
    # model.User.Timezone (a StringMap): the web app sets automaticTimezone from the browser.
    timezone: dict[str, str] = field(default_factory=lambda: {
        "automaticTimezone": "", "manualTimezone": "", "useAutomaticTimezone": "true"})
    create_at: int = field(default_factory=now_ms)
    update_at: int = field(default_factory=now_ms)
    delete_at: int = 0

    def role_set(self) -> set[str]:
        return set(self.roles.split())

    def is_admin(self) -> bool:
        return "system_admin" in self.role_set()

    def is_guest(self) -> bool:
        """model.User.IsGuest: the roles hold system_guest (a guest has no system_user)."""
        return "system_guest" in self.role_set()

    def to_json(self, sanitize: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.update_at,
            "delete_at": self.delete_at,
            "username": self.username,
            "auth_data": "",
            "auth_service": "",
            "email": self.email,
            "nickname": self.nickname,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "position": "",
            "roles": self.roles,
            "notify_props": {"desktop": "mention", "email": "true", "push": "mention",
                             "channel": "true", "comments": "never", "mention_keys": "",
                             "first_name": "false"},
            "last_password_update": self.create_at,
            "last_picture_update": 0,
            "locale": self.locale,
            # The real server sends strings here although the OpenAPI file says boolean
            # (model.User.Timezone is a map[string]string).
            "timezone": dict(self.timezone),
            "disable_welcome_email": False,
        }
        if self.is_bot:
            data["is_bot"] = True
            data["bot_description"] = self.bot_description
        if sanitize:
            data["email"] = ""
            data.pop("last_password_update", None)
            data.pop("notify_props", None)
            data["auth_data"] = ""
        return data


@dataclass
class Token:
    id: str
    token: str
    user_id: str
    description: str = ""
    is_active: bool = True
    # model.Session.ExpiresAt in ms (0: never, as the sandbox's login sessions and every PAT); IsExpired is
    # `GetMillis() > ExpiresAt`, read on State.clock. Only OAuth sessions (sandbox/oauth.py) set it.
    expires_at: int = 0
    is_oauth: bool = False  # model.Session.IsOAuth: a token issued by /oauth/access_token

    def to_json(self, with_secret: bool = False) -> dict[str, Any]:
        data = {"id": self.id, "user_id": self.user_id, "description": self.description,
                "is_active": self.is_active}
        if with_secret:
            data["token"] = self.token
        return data


@dataclass
class Team:
    id: str
    name: str
    display_name: str
    type: str = "O"
    description: str = ""
    email: str = ""
    create_at: int = field(default_factory=now_ms)
    update_at: int = field(default_factory=now_ms)
    delete_at: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "create_at": self.create_at, "update_at": self.update_at,
            "delete_at": self.delete_at, "display_name": self.display_name, "name": self.name,
            "description": self.description, "email": self.email, "type": self.type,
            "company_name": "", "allowed_domains": "", "invite_id": "",
            "allow_open_invite": self.type == "O", "last_team_icon_update": 0,
            "scheme_id": "", "group_constrained": False, "policy_id": None,
        }


@dataclass
class TeamMember:
    team_id: str
    user_id: str
    roles: str = "team_user"
    delete_at: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"team_id": self.team_id, "user_id": self.user_id, "roles": self.roles,
                "delete_at": self.delete_at, "scheme_user": "team_guest" not in self.roles.split(),
                "scheme_admin": "team_admin" in self.roles, "scheme_guest": "team_guest" in self.roles.split(),
                "explicit_roles": ""}


@dataclass
class Channel:
    id: str
    team_id: str
    type: str
    name: str
    display_name: str
    creator_id: str = ""
    header: str = ""
    purpose: str = ""
    create_at: int = field(default_factory=now_ms)
    update_at: int = field(default_factory=now_ms)
    delete_at: int = 0
    last_post_at: int = 0
    last_root_post_at: int = 0
    total_msg_count: int = 0
    total_msg_count_root: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "create_at": self.create_at, "update_at": self.update_at,
            "delete_at": self.delete_at, "team_id": self.team_id, "type": self.type,
            "display_name": self.display_name, "name": self.name, "header": self.header,
            "purpose": self.purpose, "last_post_at": self.last_post_at,
            "total_msg_count": self.total_msg_count, "extra_update_at": 0,
            "creator_id": self.creator_id, "scheme_id": None, "props": None,
            "group_constrained": None, "shared": None,
            "total_msg_count_root": self.total_msg_count_root, "policy_id": None,
            "last_root_post_at": self.last_root_post_at,
        }


@dataclass
class ChannelMember:
    channel_id: str
    user_id: str
    roles: str = "channel_user"
    last_viewed_at: int = 0
    msg_count: int = 0
    mention_count: int = 0
    last_update_at: int = field(default_factory=now_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id, "user_id": self.user_id, "roles": self.roles,
            "last_viewed_at": self.last_viewed_at, "msg_count": self.msg_count,
            "mention_count": self.mention_count, "mention_count_root": 0, "msg_count_root": 0,
            "urgent_mention_count": 0,
            "notify_props": {"desktop": "default", "email": "default", "ignore_channel_mentions": "default",
                             "mark_unread": "all", "push": "default"},
            "last_update_at": self.last_update_at, "scheme_user": "channel_guest" not in self.roles.split(),
            "scheme_admin": "channel_admin" in self.roles.split(),
            "scheme_guest": "channel_guest" in self.roles.split(),
            "explicit_roles": "",
        }


@dataclass
class Post:
    id: str
    channel_id: str
    user_id: str
    message: str = ""
    type: str = ""
    props: dict[str, Any] = field(default_factory=dict)
    root_id: str = ""
    create_at: int = field(default_factory=now_ms)
    update_at: int = field(default_factory=now_ms)
    edit_at: int = 0
    delete_at: int = 0
    is_pinned: bool = False
    hashtags: str = ""
    file_ids: list[str] = field(default_factory=list)
    pending_post_id: str = ""
    original_id: str = ""
    # The FileInfos of the attached files, as metadata.files (sandbox/routes/files.py attach_files).
    files_metadata: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The post as every client sees it: action integrations are stripped (StripActionIntegrations)."""
        return {
            "id": self.id, "create_at": self.create_at, "update_at": self.update_at,
            "edit_at": self.edit_at, "delete_at": self.delete_at, "is_pinned": self.is_pinned,
            "user_id": self.user_id, "channel_id": self.channel_id, "root_id": self.root_id,
            "original_id": self.original_id, "message": self.message, "type": self.type,
            "props": strip_integrations(self.props), "hashtags": self.hashtags,
            "file_ids": list(self.file_ids) if self.file_ids else [],
            "pending_post_id": self.pending_post_id, "reply_count": 0, "last_reply_at": 0,
            "participants": None,
            "metadata": {"files": copy.deepcopy(self.files_metadata)} if self.files_metadata else {},
        }


def strip_integrations(props: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of props without `integration` on any action: clients never see it."""
    out = copy.deepcopy(props) if props else {}
    for attachment in out.get("attachments") or []:
        if isinstance(attachment, dict):
            for action in attachment.get("actions") or []:
                if isinstance(action, dict):
                    action.pop("integration", None)
    return out


@dataclass
class Command:
    id: str
    token: str
    team_id: str
    trigger: str
    url: str
    method: str = "P"
    creator_id: str = ""
    display_name: str = ""
    description: str = ""
    username: str = ""
    icon_url: str = ""
    auto_complete: bool = False
    auto_complete_desc: str = ""
    auto_complete_hint: str = ""
    create_at: int = field(default_factory=now_ms)
    update_at: int = field(default_factory=now_ms)
    delete_at: int = 0

    def to_json(self, sanitize: bool = False) -> dict[str, Any]:
        data = {
            "id": self.id, "token": self.token, "create_at": self.create_at,
            "update_at": self.update_at, "delete_at": self.delete_at, "creator_id": self.creator_id,
            "team_id": self.team_id, "trigger": self.trigger, "method": self.method,
            "username": self.username, "icon_url": self.icon_url, "auto_complete": self.auto_complete,
            "auto_complete_desc": self.auto_complete_desc, "auto_complete_hint": self.auto_complete_hint,
            "display_name": self.display_name, "description": self.description, "url": self.url,
            "plugin_id": "",
        }
        if sanitize:
            for key in ("token", "creator_id", "method", "url", "username", "icon_url"):
                data[key] = ""
        return data


@dataclass
class Category:
    id: str
    user_id: str
    team_id: str
    type: str
    display_name: str
    sort_order: int
    sorting: str = ""
    muted: bool = False
    collapsed: bool = False
    channel_ids: list[str] = field(default_factory=list)

    def to_json(self, channel_ids: list[str] | None = None) -> dict[str, Any]:
        return {
            "id": self.id, "user_id": self.user_id, "team_id": self.team_id,
            "sort_order": self.sort_order, "sorting": self.sorting, "type": self.type,
            "display_name": self.display_name, "muted": self.muted, "collapsed": self.collapsed,
            "channel_ids": list(self.channel_ids if channel_ids is None else channel_ids),
        }


@dataclass
class CommandWebhook:
    """A `response_url` hook: valid 30 minutes, 5 uses (model.CommandWebhook)."""

    id: str
    command_id: str
    user_id: str
    channel_id: str
    root_id: str
    create_at: int
    use_count: int = 0


@dataclass
class OAuthApp:
    """model.OAuthApp (server/public/model/oauth.go), without the newer DCR fields (all `omitempty`)."""

    id: str
    creator_id: str
    client_secret: str
    name: str
    homepage: str
    callback_urls: list[str]
    description: str = ""
    icon_url: str = ""
    is_trusted: bool = False
    mattermost_app_id: str = ""
    create_at: int = 0
    update_at: int = 0

    def to_json(self, sanitize: bool = False) -> dict[str, Any]:
        """OAuthApp.Sanitize blanks the secret (getOAuthAppInfo, GetAuthorizedAppsForUser)."""
        return {
            "id": self.id, "creator_id": self.creator_id, "create_at": self.create_at,
            "update_at": self.update_at, "client_secret": "" if sanitize else self.client_secret,
            "name": self.name, "description": self.description, "icon_url": self.icon_url,
            "callback_urls": list(self.callback_urls), "homepage": self.homepage,
            "is_trusted": self.is_trusted, "mattermost_app_id": self.mattermost_app_id,
        }


@dataclass
class OAuthAuthData:
    """model.AuthData: an authorization code (52 characters), valid AuthCodeExpireTime = 600 s."""

    client_id: str
    user_id: str
    code: str
    create_at: int
    redirect_uri: str
    state: str = ""
    scope: str = "user"
    expires_in: int = 600


@dataclass
class OAuthAccessData:
    """model.AccessData: the session token and refresh token one user holds for one app."""

    client_id: str
    user_id: str
    token: str
    refresh_token: str
    redirect_uri: str
    expires_at: int
    scope: str = "user"


@dataclass
class Group:
    """model.Group (server/public/model/group.go); the sandbox has only `custom` groups (no LDAP)."""
    id: str
    name: str
    display_name: str
    description: str = ""
    source: str = "custom"
    allow_reference: bool = True
    create_at: int = field(default_factory=now_ms)
    update_at: int = field(default_factory=now_ms)
    delete_at: int = 0

    def to_json(self, member_count: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "source": self.source,
            # RemoteId *string without omitempty: null for a custom group.
            "remote_id": None,
            "create_at": self.create_at,
            "update_at": self.update_at,
            "delete_at": self.delete_at,
            "has_syncables": False,
            "allow_reference": self.allow_reference,
        }
        if member_count is not None:
            data["member_count"] = member_count
        return data


@dataclass
class Fault:
    """Fail the next `remaining` requests matching method and path pattern with a status or a delay,
    after letting the first `skip` of them through; `handled`: the server does the work first and only
    the answer is an error (a reply lost after the server acted: a proxy timeout, a dropped connection)."""

    method: str
    path: str  # a regular expression matched against the request path
    status: int = 500
    delay_s: float = 0.0
    remaining: int = 1
    error_id: str = "app.sandbox.injected_fault.app_error"
    skip: int = 0
    handled: bool = False


class State:
    """Everything the sandbox knows. Route modules mutate it directly; it does no I/O."""

    def __init__(self, site_url: str = "") -> None:
        self.site_url = site_url
        self.users: dict[str, User] = {}
        self.tokens: dict[str, Token] = {}  # token string -> Token (PATs, bot tokens, login sessions)
        self.teams: dict[str, Team] = {}
        self.team_members: dict[tuple[str, str], TeamMember] = {}  # (team_id, user_id)
        self.channels: dict[str, Channel] = {}
        self.channel_members: dict[tuple[str, str], ChannelMember] = {}  # (channel_id, user_id)
        self.posts: dict[str, Post] = {}
        self.channel_posts: dict[str, list[str]] = {}  # channel id -> post ids, oldest first
        self.commands: dict[str, Command] = {}
        self.categories: dict[tuple[str, str], list[Category]] = {}  # (user_id, team_id) -> in order
        self.command_webhooks: dict[str, CommandWebhook] = {}
        self.files: dict[str, Any] = {}  # file id -> sandbox.routes.files.StoredFile
        self.faults: list[Fault] = []
        self.refuse_connections_until: float = 0.0
        self.rate_limit: dict[str, Any] | None = None  # {"per_sec": 10, "max_burst": 100}
        # Flat; the admin-settable part and its nested names are in sandbox/config.py (FIELDS).
        self.config: dict[str, Any] = {
            **{k: v for k, v in config_defaults().items() if k != "SiteURL"},
            "MaxPostSize": 16383,
            "CommandWebhookLifetimeMs": 30 * 60 * 1000,
        }
        # Every request the sandbox served, for tests that count the bot's calls.
        self.request_log: list[tuple[str, str, str]] = []  # (method, path, user_id)
        # This server's role permissions (what an admin edits in System Console > Permissions): the
        # defaults, per sandbox, so a test can grant a role a permission without touching other sandboxes.
        self.role_permissions: dict[str, set[str]] = {r: set(p) for r, p in ROLE_PERMISSIONS.items()}
        # The one injectable time source (seconds since the epoch): the hub's `clock` reads and writes this
        # (Sandbox.set_clock), session expiry and OAuth codes read it too.
        self.clock: Callable[[], float] = time.time
        # OAuth 2.0 service provider (sandbox/oauth.py): apps by client id, codes, access data by token.
        self.oauth_apps: dict[str, OAuthApp] = {}
        self.oauth_codes: dict[str, OAuthAuthData] = {}
        self.oauth_access: dict[str, OAuthAccessData] = {}  # session token -> its access data
        # model.Preference rows (user_id, category, name) -> value; only category `oauth_app` is used.
        self.preferences: dict[tuple[str, str, str], str] = {}
        # Custom user groups (sandbox/routes/groups.py) and their members: (group_id, user_id) -> create_at.
        self.groups: dict[str, Group] = {}
        self.group_members: dict[tuple[str, str], int] = {}
        # The server's licence (app.Srv().License()): None = unlicensed (Team Edition), else
        # {"SkuShortName": "professional"|"enterprise", "LDAPGroups": bool}. Custom groups need a
        # professional or enterprise one (api4/group.go licensedAndConfiguredForGroupBySource).
        self.license: dict[str, Any] | None = None

    def group_member_ids(self, group_id: str) -> list[str]:
        return [uid for (gid, uid) in self.group_members if gid == group_id]

    def now_ms(self) -> int:
        """model.GetMillis on the injectable clock."""
        return int(self.clock() * 1000)

    # -- lookups -------------------------------------------------------------------------------
    def user_by_username(self, username: str) -> User | None:
        username = username.lower()
        return next((u for u in self.users.values() if u.username == username), None)

    def team_by_name(self, name: str) -> Team | None:
        return next((t for t in self.teams.values() if t.name == name and not t.delete_at), None)

    def channel_by_name(self, team_id: str, name: str, include_deleted: bool = False) -> Channel | None:
        for channel in self.channels.values():
            if channel.team_id == team_id and channel.name == name:
                if include_deleted or not channel.delete_at:
                    return channel
        return None

    def is_team_member(self, team_id: str, user_id: str) -> bool:
        member = self.team_members.get((team_id, user_id))
        return member is not None and not member.delete_at

    def is_channel_member(self, channel_id: str, user_id: str) -> bool:
        return (channel_id, user_id) in self.channel_members

    def channel_member_ids(self, channel_id: str) -> list[str]:
        return [uid for (cid, uid) in self.channel_members if cid == channel_id]

    def user_team_ids(self, user_id: str) -> list[str]:
        return [tid for (tid, uid), m in self.team_members.items() if uid == user_id and not m.delete_at]

    # -- permissions ---------------------------------------------------------------------------
    def has_system_permission(self, user: User, permission: str) -> bool:
        for role in user.role_set():
            perms = self.role_permissions.get(role, set())
            if "*" in perms or permission in perms:
                return True
        return False

    def has_team_permission(self, user: User, team_id: str, permission: str) -> bool:
        if self.has_system_permission(user, permission):
            return True
        member = self.team_members.get((team_id, user.id))
        if member is None or member.delete_at:
            return False
        return any(permission in self.role_permissions.get(r, set()) for r in member.roles.split())

    def has_channel_permission(self, user: User, channel: Channel, permission: str) -> bool:
        if self.has_system_permission(user, permission):
            return True
        member = self.channel_members.get((channel.id, user.id))
        if member is not None and any(
            permission in self.role_permissions.get(r, set()) for r in member.roles.split()
        ):
            return True
        if channel.team_id:
            return self.has_team_permission(user, channel.team_id, permission) and (
                member is not None or channel.type == "O"
                and permission in {"read_channel", "read_public_channel", "read_channel_content"}
            )
        return False

    def has_permission_to_user(self, me: User, user_id: str) -> bool:
        """app/authorization.go SessionHasPermissionToUser, current code: manage_system, or yourself, or
        edit_other_users for anyone *but a system admin* (`if user.IsSystemAdmin() { return false }`;
        older servers let edit_other_users act on admins too)."""
        if not user_id:
            return False
        if self.has_system_permission(me, "manage_system") or me.id == user_id:
            return True
        if not self.has_system_permission(me, "edit_other_users"):
            return False
        target = self.users.get(user_id)
        return target is not None and not target.is_admin()

    def can_see_user(self, viewer: User, other_id: str) -> bool:
        """app/user.go UserCanSeeOtherUser with GetViewUsersRestrictions: yourself; anyone with the
        system permission view_members (system_user has it, system_guest not); else only people in a team
        where the viewer has view_members (no default team role grants it) or in a channel the viewer is a
        member of."""
        if viewer.id == other_id or self.has_system_permission(viewer, "view_members"):
            return True
        for team_id in self.user_team_ids(viewer.id):
            if self.has_team_permission(viewer, team_id, "view_members") and self.is_team_member(team_id, other_id):
                return True
        return any(uid == viewer.id and (cid, other_id) in self.channel_members for (cid, uid) in self.channel_members)

    def can_read_channel(self, user: User, channel: Channel) -> bool:
        if user.is_admin() or self.is_channel_member(channel.id, user.id):
            return True
        return channel.type == "O" and self.has_team_permission(user, channel.team_id, "read_public_channel")
