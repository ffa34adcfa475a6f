"""Typed views of Mattermost's payloads and the gateway's interface.

Everything outside bot/mattermost.py sees Mattermost only through `Gateway` and these small
dataclasses, never raw dicts. The real gateway (bot/mattermost.py) and the fake used in handler tests
(tests/fakes.py) both implement `Gateway`, and one contract suite runs against both.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class MattermostError(Exception):
    """A failed Mattermost call, keeping the server's error id (switch on `error_id`, never `message`)."""

    def __init__(self, status: int, error_id: str, message: str = "", request_id: str = "",
                 method: str = "", path: str = "") -> None:
        super().__init__(f"{method} {path} -> {status} {error_id}: {message}".strip())
        self.status = status
        self.error_id = error_id
        self.message = message
        self.request_id = request_id
        self.method = method
        self.path = path


def command_response(text: str, attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A slash command's ephemeral answer (model.CommandResponse), for the request's reply and a
    response_url alike. `skip_slack_parsing`: otherwise Mattermost rewrites Slack-style `<a|b>` and
    `<!here>` in the text and attachments before anyone sees it (app/command.go HandleCommandResponsePost:
    `if !response.SkipSlackParsing { ProcessSlackText ... }`), which garbles our Markdown (`<@user | me>`)."""
    body: dict[str, Any] = {"response_type": "ephemeral", "text": text, "skip_slack_parsing": True}
    if attachments:
        body["props"] = {"attachments": attachments}
    return body


@dataclass(frozen=True)
class MMUser:
    id: str
    username: str
    roles: str = ""
    is_bot: bool = False
    first_name: str = ""
    last_name: str = ""
    nickname: str = ""
    delete_at: int = 0
    timezone: str = ""  # IANA name the person uses in Mattermost ("" = not known: UTC)

    @property
    def is_admin(self) -> bool:
        return "system_admin" in self.roles.split()

    @property
    def is_guest(self) -> bool:
        """A guest account (roles `system_guest`): sees only what it was let into (mattermost-api.md §12)."""
        return "system_guest" in self.roles.split()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "MMUser":
        return cls(id=d["id"], username=d.get("username", ""), roles=d.get("roles", ""),
                   is_bot=bool(d.get("is_bot", False)), first_name=d.get("first_name", ""),
                   last_name=d.get("last_name", ""), nickname=d.get("nickname", ""),
                   delete_at=int(d.get("delete_at") or 0), timezone=_timezone(d.get("timezone")))


def _timezone(raw: Any) -> str:
    """model.User.Timezone: automaticTimezone when useAutomaticTimezone is "true", else manualTimezone
    (all strings; model/utils.go GetPreferredTimezone)."""
    if not isinstance(raw, dict):
        return ""
    key = "automaticTimezone" if str(raw.get("useAutomaticTimezone", "")) == "true" else "manualTimezone"
    value = raw.get(key)
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class MMTeam:
    id: str
    name: str
    display_name: str = ""

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "MMTeam":
        return cls(id=d["id"], name=d.get("name", ""), display_name=d.get("display_name", ""))


@dataclass(frozen=True)
class MMChannel:
    id: str
    team_id: str
    name: str
    display_name: str = ""
    type: str = "O"
    delete_at: int = 0
    creator_id: str = ""  # who created it ("" for direct and group messages)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "MMChannel":
        return cls(id=d["id"], team_id=d.get("team_id", ""), name=d.get("name", ""),
                   display_name=d.get("display_name", ""), type=d.get("type", "O"),
                   delete_at=int(d.get("delete_at") or 0), creator_id=d.get("creator_id") or "")


@dataclass(frozen=True)
class MMPost:
    id: str
    channel_id: str
    user_id: str
    message: str = ""
    root_id: str = ""
    type: str = ""
    props: dict[str, Any] = field(default_factory=dict)
    create_at: int = 0
    update_at: int = 0
    file_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "MMPost":
        return cls(id=d["id"], channel_id=d.get("channel_id", ""), user_id=d.get("user_id", ""),
                   message=d.get("message", ""), root_id=d.get("root_id", ""), type=d.get("type", ""),
                   props=d.get("props") or {}, create_at=int(d.get("create_at") or 0),
                   update_at=int(d.get("update_at") or 0), file_ids=tuple(d.get("file_ids") or ()))


@dataclass(frozen=True)
class MMCommand:
    id: str
    team_id: str
    trigger: str
    url: str = ""
    token: str = ""
    method: str = "P"
    auto_complete: bool = False
    auto_complete_desc: str = ""
    auto_complete_hint: str = ""
    display_name: str = ""
    description: str = ""
    creator_id: str = ""
    # Who the command's replies are shown as, where the server allows it (ServiceSettings.
    # EnablePostUsernameOverride / EnablePostIconOverride; app/command.go HandleCommandResponsePost).
    username: str = ""
    icon_url: str = ""

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "MMCommand":
        return cls(id=d["id"], team_id=d.get("team_id", ""), trigger=d.get("trigger", ""),
                   url=d.get("url", ""), token=d.get("token", ""), method=d.get("method", "P"),
                   auto_complete=bool(d.get("auto_complete")),
                   auto_complete_desc=d.get("auto_complete_desc", ""),
                   auto_complete_hint=d.get("auto_complete_hint", ""),
                   display_name=d.get("display_name", ""), description=d.get("description", ""),
                   creator_id=d.get("creator_id", ""), username=d.get("username", ""),
                   icon_url=d.get("icon_url", ""))


@dataclass(frozen=True)
class MMCategory:
    id: str
    user_id: str
    team_id: str
    type: str
    display_name: str
    channel_ids: tuple[str, ...] = ()
    sort_order: int = 0
    sorting: str = ""
    muted: bool = False
    collapsed: bool = False

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "MMCategory":
        return cls(id=d["id"], user_id=d.get("user_id", ""), team_id=d.get("team_id", ""),
                   type=d.get("type", ""), display_name=d.get("display_name", ""),
                   channel_ids=tuple(d.get("channel_ids") or ()), sort_order=int(d.get("sort_order") or 0),
                   sorting=d.get("sorting", ""), muted=bool(d.get("muted")),
                   collapsed=bool(d.get("collapsed")))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "user_id": self.user_id, "team_id": self.team_id, "type": self.type,
                "display_name": self.display_name, "channel_ids": list(self.channel_ids),
                "sort_order": self.sort_order, "sorting": self.sorting, "muted": self.muted,
                "collapsed": self.collapsed}


@dataclass(frozen=True)
class WsEvent:
    event: str
    data: dict[str, Any]
    broadcast: dict[str, Any]
    seq: int


@dataclass(frozen=True)
class OAuthTokens:
    """What Mattermost's token endpoint answers (model.AccessResponse)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int  # seconds

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OAuthTokens:
        access, refresh = data.get("access_token"), data.get("refresh_token", "")
        expires = data.get("expires_in", 0)
        if not isinstance(access, str) or not access or not isinstance(refresh, str) \
                or not isinstance(expires, int) or isinstance(expires, bool):
            raise MattermostError(0, "gateway.bad_response", "the token endpoint's answer has no access_token",
                                  "", "POST", "/oauth/access_token")
        return cls(access, refresh, expires)


@dataclass(frozen=True)
class MMCommandResponse:
    """What `POST /api/v4/commands/execute` answers (model.CommandResponse): the fields the bot reads."""

    text: str = ""
    response_type: str = ""
    goto_location: str = ""

    @classmethod
    def from_json(cls, data: Any) -> MMCommandResponse:
        if not isinstance(data, dict):
            return cls()
        return cls(*(str(data.get(k) or "") for k in ("text", "response_type", "goto_location")))


class Gateway(Protocol):
    """All Mattermost I/O. Every method is async and raises MattermostError on failure."""

    async def me(self) -> MMUser: ...
    async def get_user(self, user_id: str) -> MMUser: ...
    async def get_users_by_ids(self, user_ids: list[str]) -> list[MMUser]: ...
    async def get_users_by_usernames(self, usernames: list[str]) -> list[MMUser]: ...
    async def get_user_by_email(self, email: str) -> MMUser | None: ...
    async def user_group_names(self, user_id: str) -> list[str]: ...
    async def group_names(self, query: str) -> list[str]: ...
    async def my_teams(self) -> list[MMTeam]: ...
    async def get_team(self, team_id: str) -> MMTeam: ...
    async def get_team_by_name(self, name: str) -> MMTeam: ...

    async def list_commands(self, team_id: str) -> list[MMCommand]: ...
    async def create_command(self, team_id: str, trigger: str, url: str, *, display_name: str = "",
                             description: str = "", auto_complete_desc: str = "",
                             auto_complete_hint: str = "", username: str = "",
                             icon_url: str = "") -> MMCommand: ...
    async def update_command(self, command: MMCommand) -> MMCommand: ...

    async def create_channel(self, team_id: str, name: str, display_name: str, *, private: bool,
                             purpose: str = "", header: str = "") -> MMChannel: ...
    async def get_channel(self, channel_id: str) -> MMChannel: ...
    async def get_channel_by_name(self, team_id: str, name: str) -> MMChannel: ...
    async def add_channel_member(self, channel_id: str, user_id: str) -> None: ...
    async def get_channel_member_ids(self, channel_id: str) -> list[str]: ...
    async def is_channel_member(self, channel_id: str, user_id: str) -> bool: ...
    async def set_channel_admin(self, channel_id: str, user_id: str) -> None: ...
    async def direct_channel(self, user_a: str, user_b: str) -> MMChannel: ...
    async def archive_channel(self, channel_id: str) -> None: ...
    async def restore_channel(self, channel_id: str) -> None: ...

    async def create_post(self, channel_id: str, message: str, *, props: dict[str, Any] | None = None,
                          root_id: str = "", file_ids: list[str] | None = None) -> MMPost: ...
    async def upload_file(self, channel_id: str, filename: str, content: bytes,
                          content_type: str = "application/octet-stream") -> str:
        """Upload a file to a channel; its id, for `create_post(file_ids=...)` by the same user there."""
        ...
    async def update_post(self, post_id: str, message: str | None, props: dict[str, Any] | None) -> MMPost:
        """PATCH a post: `message` None keeps it (edits past PostEditTimeLimit), `props` None keeps them."""
        ...
    async def get_post(self, post_id: str) -> MMPost: ...
    async def pin_post(self, post_id: str) -> None: ...
    async def delete_post(self, post_id: str) -> None: ...
    async def get_channel_posts(self, channel_id: str, per_page: int = 60, page: int = 0) -> list[MMPost]:
        """The channel's posts, newest first: page `page` of `per_page` (which the server caps at 200)."""
        ...
    async def send_ephemeral(self, user_id: str, channel_id: str, message: str, *,
                             props: dict[str, Any] | None = None, root_id: str = "") -> None: ...

    async def open_dialog(self, trigger_id: str, url: str, dialog: dict[str, Any]) -> None: ...
    async def respond(self, response_url: str, text: str) -> None:
        """An ephemeral answer to a slash command through its `response_url` (30 min, 5 uses)."""
        ...

    async def whoami(self, token: str) -> tuple[MMUser, list[str]]:
        """Who owns a token, and their team ids (for the bot's REST API callers)."""
        ...

    async def user_team_ids(self, user_id: str) -> list[str]:
        """The ids of the teams a person is in (`GET /users/{id}/teams`; the web view's viewer)."""
        ...

    async def register_oauth_app(self, *, name: str, description: str, homepage: str, callback_url: str,
                                 trusted: bool) -> tuple[str, str]:
        """`POST /oauth/apps` with the bot's rights: (client id, client secret)."""
        ...

    async def oauth_app_exists(self, client_id: str) -> bool:
        """Whether Mattermost still knows the OAuth app (`GET /oauth/apps/{id}/info`)."""
        ...

    async def oauth_apps(self) -> list[dict[str, Any]]:
        """`GET /oauth/apps`: the OAuth apps the bot may see (needs manage_oauth)."""
        ...

    async def oauth_token(self, fields: dict[str, str]) -> OAuthTokens:
        """`POST <site>/oauth/access_token` (a form, no session): a code or a refresh token for tokens."""
        ...

    async def oauth_deauthorize(self, token: str, client_id: str) -> None:
        """`POST <site>/oauth/deauthorize` as the person (`token`): revoke their tokens for the app."""
        ...

    async def execute_command(self, token: str, channel_id: str, team_id: str, command: str,
                              root_id: str = "") -> MMCommandResponse:
        """`POST /api/v4/commands/execute` as the person whose own `token` this is (never the bot's): the
        command runs as them, in `channel_id`, exactly as if they had typed it. Never retried (a command
        must not run twice)."""
        ...

    async def client_config(self) -> dict[str, str]:
        """`GET /api/v4/config/client?format=old`: SiteURL, AsymmetricSigningPublicKey, ... (strings)."""
        ...

    async def get_categories(self, user_id: str, team_id: str) -> list[MMCategory]: ...
    async def create_category(self, user_id: str, team_id: str, display_name: str,
                              channel_ids: list[str]) -> MMCategory: ...
    async def update_category(self, category: MMCategory) -> MMCategory:
        """PUT one category: its channel list replaces its own rows only; other categories keep theirs."""
        ...
    async def update_categories(self, user_id: str, team_id: str,
                                categories: list[MMCategory]) -> list[MMCategory]:
        """PUT several categories at once (one transaction): how a channel moves from one to another."""
        ...

    calls: int  # Mattermost API calls made so far (benchmarks and tests count them)

    async def close(self) -> None: ...
