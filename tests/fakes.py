"""An in-memory `Gateway` for handler tests, behaving like MattermostGateway + a real server.

It reproduces what the bot relies on (tests/handlers/test_gateway_contract.py runs the same assertions
against this and against the real gateway + sandbox): error ids and statuses, permissions of a plain versus
an admin bot, idempotent member adds and DMs, lazily created sidebar categories, channel ids of non-members
silently dropped from categories, PATCH semantics of update_post.

    fake = FakeGateway()                       # `me` is an admin bot called "playbooks"
    team = fake.add_team("eng", members=[fake.bot_id])
    alice = fake.add_user("alice", teams=[team.id])
    fake.fail_next("create_post", 500, "app.post.save.app_error")
    plain = fake.as_user(fake.add_user("plainbot", is_bot=True).id)   # same world, another caller
"""
from __future__ import annotations

import base64
import itertools
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bot.models import (
    MattermostError,
    MMCategory,
    MMChannel,
    MMCommand,
    MMCommandResponse,
    MMPost,
    MMTeam,
    MMUser,
)

_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
_CHANNEL_NAME = re.compile(r"^[a-z0-9]+([a-z\-_0-9]+|(__)?)[a-z0-9]*$")
MAX_POST_RUNES = 16383

PERMISSIONS = "api.context.permissions.app_error"


def new_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(26))


@dataclass
class Call:
    method: str
    args: dict[str, Any]


@dataclass
class Ephemeral:
    user_id: str
    channel_id: str
    message: str
    props: dict[str, Any]
    sender_id: str


@dataclass
class OpenedDialog:
    trigger_id: str
    url: str
    dialog: dict[str, Any]


@dataclass
class _Failure:
    status: int
    error_id: str
    message: str
    remaining: int


@dataclass
class World:
    """The fake server's state, shared by every FakeGateway made with `as_user`."""

    users: dict[str, MMUser] = field(default_factory=dict)
    teams: dict[str, MMTeam] = field(default_factory=dict)
    team_members: set[tuple[str, str]] = field(default_factory=set)  # (team_id, user_id)
    team_admins: set[tuple[str, str]] = field(default_factory=set)
    channels: dict[str, MMChannel] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)  # channel id -> user ids, join order
    channel_admins: set[tuple[str, str]] = field(default_factory=set)
    posts: dict[str, MMPost] = field(default_factory=dict)
    commands: dict[str, MMCommand] = field(default_factory=dict)
    categories: dict[tuple[str, str], list[MMCategory]] = field(default_factory=dict)  # (user, team)
    ephemerals: list[Ephemeral] = field(default_factory=list)
    dialogs: list[OpenedDialog] = field(default_factory=list)
    responses: list[tuple[str, str]] = field(default_factory=list)  # (response_url, text)
    hooks: dict[str, list[Any]] = field(default_factory=dict)  # response_url -> [user_id, channel_id, uses]
    tokens: dict[str, str] = field(default_factory=dict)  # token -> user id, for whoami
    # file id -> [uploader, channel id, name, content, post id] (sandbox/routes/files.py's rules)
    files: dict[str, list[Any]] = field(default_factory=dict)
    clock: itertools.count = field(default_factory=lambda: itertools.count(1_700_000_000_000))
    # Mattermost groups: name -> member ids; None = the server has none for us (unlicensed: 501).
    groups: dict[str, set[str]] | None = field(default_factory=dict)
    # The installation's trigger-id key, as the real server keeps one (platform/config.go).
    signing_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))


class FakeGateway:
    """`bot.models.Gateway` in memory. `calls` counts API calls as the real gateway would (one per
    method, none for empty id lists); `call_log` records every method call with its arguments."""

    def __init__(self, *, bot_username: str = "playbooks", admin: bool = True, world: World | None = None,
                 user_id: str | None = None) -> None:
        self.world = world or World()
        if user_id is None:
            roles = "system_user system_admin" if admin else "system_user"
            user_id = self.add_user(bot_username, roles=roles, is_bot=True).id
        self.bot_id = user_id
        self.calls = 0
        self.call_log: list[Call] = []
        self._failures: dict[str, list[_Failure]] = {}
        self.closed = False

    # -- seeding and test helpers (not part of Gateway; no calls counted) ---------------------------

    def as_user(self, user_id: str) -> "FakeGateway":
        """Another caller (say a plain, non-admin bot) in the same world."""
        return FakeGateway(world=self.world, user_id=user_id)

    def add_user(self, username: str, *, roles: str = "system_user", is_bot: bool = False,
                 teams: list[str] = (), **fields: Any) -> MMUser:  # type: ignore[assignment]
        user = MMUser(id=new_id(), username=username.lower(), roles=roles, is_bot=is_bot, **fields)
        self.world.users[user.id] = user
        for team_id in teams:
            self.add_team_member(team_id, user.id)
        return user

    def add_team(self, name: str, display_name: str = "", *, members: list[str] = ()) -> MMTeam:  # type: ignore[assignment]
        team = MMTeam(id=new_id(), name=name, display_name=display_name or name.title())
        self.world.teams[team.id] = team
        for user_id in members:
            self.add_team_member(team.id, user_id)
        return team

    def add_team_member(self, team_id: str, user_id: str, *, admin: bool = False) -> None:
        self.world.team_members.add((team_id, user_id))
        if admin:
            self.world.team_admins.add((team_id, user_id))

    def fail_next(self, method: str, status: int, error_id: str, message: str = "", *, times: int = 1) -> None:
        """Make the next `times` calls of `method` raise MattermostError(status, error_id)."""
        if not hasattr(self, method):
            raise AttributeError(f"FakeGateway has no method {method!r}")
        self._failures.setdefault(method, []).append(_Failure(status, error_id, message, times))

    def trigger_id(self, user_id: str, at_ms: int | None = None) -> str:
        """A trigger id as a slash command or button click would hand to the bot for `user_id`, signed
        as the real server signs it (model.GenerateTriggerId), made now unless `at_ms` says when."""
        stamp = int(time.time() * 1000) if at_ms is None else at_ms
        prefix = f"{new_id()}:{user_id}:{stamp}:"
        signature = self.world.signing_key.sign(prefix.encode(), ec.ECDSA(hashes.SHA256()))
        return base64.b64encode((prefix + base64.b64encode(signature).decode()).encode()).decode()

    async def client_config(self) -> dict[str, str]:
        self._call("client_config")
        der = self.world.signing_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return {"SiteURL": "http://fake.invalid", "AsymmetricSigningPublicKey": base64.b64encode(der).decode()}

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [c.args for c in self.call_log if c.method == method]

    def posts_in(self, channel_id: str) -> list[MMPost]:
        return [p for p in self.world.posts.values() if p.channel_id == channel_id]

    @property
    def ephemerals(self) -> list[Ephemeral]:
        return self.world.ephemerals

    @property
    def dialogs(self) -> list[OpenedDialog]:
        return self.world.dialogs

    # -- plumbing -------------------------------------------------------------------------------------

    def _call(self, method: str, count: bool = True, **args: Any) -> None:
        self.call_log.append(Call(method, args))
        if count:
            self.calls += 1
        queue = self._failures.get(method)
        if queue:
            failure = queue[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                queue.pop(0)
            raise MattermostError(failure.status, failure.error_id, failure.message or "Injected by FakeGateway.",
                                  method="FAKE", path=method)

    @property
    def _me(self) -> MMUser:
        return self.world.users[self.bot_id]

    def _now(self) -> int:
        return next(self.world.clock)

    def _error(self, status: int, error_id: str, message: str = "") -> MattermostError:
        return MattermostError(status, error_id, message or error_id)

    def _user(self, user_id: str) -> MMUser:
        user = self.world.users.get(user_id)
        if user is None:
            raise self._error(404, "app.user.missing_account.const")
        return user

    def _channel(self, channel_id: str) -> MMChannel:
        channel = self.world.channels.get(channel_id)
        if channel is None:
            raise self._error(404, "app.channel.get.existing.app_error")
        return channel

    def _is_member(self, channel_id: str, user_id: str) -> bool:
        return user_id in self.world.members.get(channel_id, [])

    def _require_team_member(self, team_id: str) -> None:
        if not self._me.is_admin and (team_id, self.bot_id) not in self.world.team_members:
            raise self._error(403, PERMISSIONS)

    def _require_read(self, channel: MMChannel) -> None:
        if self._me.is_admin or self._is_member(channel.id, self.bot_id):
            return
        if channel.type == "O" and (channel.team_id, self.bot_id) in self.world.team_members:
            return
        raise self._error(403, PERMISSIONS)

    # -- users and teams -------------------------------------------------------------------------------

    async def me(self) -> MMUser:
        self._call("me")
        return self._me

    # -- OAuth apps: this fake Mattermost has the OAuth 2.0 provider off (one-time sign-in links only) --

    async def register_oauth_app(self, **_: Any) -> tuple[str, str]:
        self._call("register_oauth_app")
        raise MattermostError(501, "api.oauth.register_oauth_app.turn_off.app_error",
                              "The system admin has turned off OAuth2 Service Provider.", "", "POST", "/oauth/apps")

    async def oauth_app_exists(self, client_id: str) -> bool:
        self._call("oauth_app_exists")
        return False

    async def get_user(self, user_id: str) -> MMUser:
        self._call("get_user", user_id=user_id)
        return self._user(user_id)

    async def get_users_by_ids(self, user_ids: list[str]) -> list[MMUser]:
        self._call("get_users_by_ids", count=bool(user_ids), user_ids=list(user_ids))
        return [self.world.users[i] for i in dict.fromkeys(user_ids) if i in self.world.users]

    async def get_users_by_usernames(self, usernames: list[str]) -> list[MMUser]:
        self._call("get_users_by_usernames", count=bool(usernames), usernames=list(usernames))
        wanted = {u.lower() for u in usernames}
        return [u for u in self.world.users.values() if u.username in wanted]

    async def get_user_by_email(self, email: str) -> MMUser | None:
        self._call("get_user_by_email", email=email)
        wanted = email.lower()
        return next((u for u in self.world.users.values() if f"{u.username}@example.com" == wanted), None)

    async def user_group_names(self, user_id: str) -> list[str]:
        self._call("user_group_names", user_id=user_id)
        if self.world.groups is None:
            raise MattermostError(501, "api.license_error", "Your license does not support this feature.")
        return sorted(name for name, members in self.world.groups.items() if user_id in members)

    async def group_names(self, query: str) -> list[str]:
        self._call("group_names", query=query)
        if self.world.groups is None:
            raise MattermostError(501, "api.license_error", "Your license does not support this feature.")
        return sorted(name for name in self.world.groups if query.lower() in name)

    async def my_teams(self) -> list[MMTeam]:
        self._call("my_teams")
        return [t for t in self.world.teams.values() if (t.id, self.bot_id) in self.world.team_members]

    async def get_team(self, team_id: str) -> MMTeam:
        self._call("get_team", team_id=team_id)
        team = self.world.teams.get(team_id)
        if team is None:
            raise self._error(404, "app.team.get.find.app_error")
        return team

    async def get_team_by_name(self, name: str) -> MMTeam:
        self._call("get_team_by_name", name=name)
        for team in self.world.teams.values():
            if team.name == name:
                return team
        raise self._error(404, "app.team.get_by_name.missing.app_error")

    # -- slash commands --------------------------------------------------------------------------------

    def _require_manage_commands(self, team_id: str) -> None:
        if not (self._me.is_admin or (team_id, self.bot_id) in self.world.team_admins):
            raise self._error(403, PERMISSIONS)

    async def list_commands(self, team_id: str) -> list[MMCommand]:
        self._call("list_commands", team_id=team_id)
        self._require_manage_commands(team_id)
        return [c for c in self.world.commands.values() if c.team_id == team_id]

    async def create_command(self, team_id: str, trigger: str, url: str, *, display_name: str = "",
                             description: str = "", auto_complete_desc: str = "",
                             auto_complete_hint: str = "", username: str = "",
                             icon_url: str = "") -> MMCommand:
        self._call("create_command", team_id=team_id, trigger=trigger, url=url)
        self._require_manage_commands(team_id)
        trigger = trigger.lower()
        if not trigger or trigger.startswith("/") or " " in trigger:
            raise self._error(400, "model.command.is_valid.trigger.app_error")
        if not url.startswith(("http://", "https://")):
            raise self._error(400, "model.command.is_valid.url.app_error")
        if any(c.team_id == team_id and c.trigger == trigger for c in self.world.commands.values()):
            raise self._error(400, "api.command.duplicate_trigger.app_error")
        command = MMCommand(id=new_id(), team_id=team_id, trigger=trigger, url=url, token=new_id(),
                            method="P", auto_complete=True, auto_complete_desc=auto_complete_desc,
                            auto_complete_hint=auto_complete_hint, display_name=display_name,
                            description=description, creator_id=self.bot_id, username=username,
                            icon_url=icon_url)
        self.world.commands[command.id] = command
        return command

    async def update_command(self, command: MMCommand) -> MMCommand:
        self._call("update_command", command=command)
        old = self.world.commands.get(command.id)
        if old is None:
            raise self._error(404, "app.command.getcommand.app_error")
        try:
            self._require_manage_commands(old.team_id)
        except MattermostError:
            # A command's existence does not leak: no permission reads as not found.
            raise self._error(404, "app.command.getcommand.app_error") from None
        if command.team_id != old.team_id:
            raise self._error(400, "api.command.team_mismatch.app_error")
        new = replace(command, trigger=command.trigger.lower(), token=old.token, creator_id=old.creator_id)
        self.world.commands[command.id] = new
        return new

    # -- channels --------------------------------------------------------------------------------------

    async def create_channel(self, team_id: str, name: str, display_name: str, *, private: bool,
                             purpose: str = "", header: str = "") -> MMChannel:
        self._call("create_channel", team_id=team_id, name=name, display_name=display_name, private=private)
        if team_id not in self.world.teams:
            raise self._error(404, "app.team.get.find.app_error")
        self._require_team_member(team_id)
        if len(name) > 64 or not _CHANNEL_NAME.match(name):
            raise self._error(400, "model.channel.is_valid.2_or_more.app_error")
        if not display_name.strip():
            raise self._error(400, "model.channel.is_valid.display_name.app_error")
        if any(c.team_id == team_id and c.name == name for c in self.world.channels.values()):
            raise self._error(400, "store.sql_channel.save_channel.exists.app_error")
        channel = MMChannel(id=new_id(), team_id=team_id, name=name, display_name=display_name.strip(),
                            type="P" if private else "O", creator_id=self.bot_id)
        self.world.channels[channel.id] = channel
        self.world.members[channel.id] = [self.bot_id]
        self.world.channel_admins.add((channel.id, self.bot_id))
        return channel

    async def get_channel(self, channel_id: str) -> MMChannel:
        self._call("get_channel", channel_id=channel_id)
        channel = self._channel(channel_id)
        self._require_read(channel)
        return channel

    async def get_channel_by_name(self, team_id: str, name: str) -> MMChannel:
        self._call("get_channel_by_name", team_id=team_id, name=name)
        for channel in self.world.channels.values():
            if channel.team_id == team_id and channel.name == name and not channel.delete_at:
                # A private channel the caller cannot see reads as missing, not forbidden.
                if channel.type == "P" and not (self._me.is_admin or self._is_member(channel.id, self.bot_id)):
                    break
                return channel
        raise self._error(404, "app.channel.get_by_name.missing.app_error")

    async def add_channel_member(self, channel_id: str, user_id: str) -> None:
        self._call("add_channel_member", channel_id=channel_id, user_id=user_id)
        channel = self._channel(channel_id)
        if channel.type in ("D", "G"):
            raise self._error(400, "api.channel.add_user_to_channel.type.app_error")
        if not (self._me.is_admin or self._is_member(channel_id, self.bot_id)
                or (channel.type == "O" and user_id == self.bot_id)):
            raise self._error(403, PERMISSIONS)
        self._user(user_id)
        if (channel.team_id, user_id) not in self.world.team_members:
            raise self._error(404, "app.team.get_member.missing.app_error")
        if not self._is_member(channel_id, user_id):  # an existing member is a no-op, as on the server
            self.world.members[channel_id].append(user_id)

    async def get_channel_member_ids(self, channel_id: str) -> list[str]:
        self._call("get_channel_member_ids", channel_id=channel_id)
        self._require_read(self._channel(channel_id))
        return list(self.world.members.get(channel_id, []))

    async def is_channel_member(self, channel_id: str, user_id: str) -> bool:
        self._call("is_channel_member", channel_id=channel_id, user_id=user_id)
        channel = self._channel(channel_id)
        if not (self._me.is_admin or self._is_member(channel_id, self.bot_id)):
            if channel.type != "O":
                raise self._error(404, "app.channel.get.existing.app_error")
            self._require_read(channel)
        return self._is_member(channel_id, user_id)

    async def set_channel_admin(self, channel_id: str, user_id: str) -> None:
        self._call("set_channel_admin", channel_id=channel_id, user_id=user_id)
        self._channel(channel_id)
        if not (self._me.is_admin or (channel_id, self.bot_id) in self.world.channel_admins):
            raise self._error(403, PERMISSIONS)
        if not self._is_member(channel_id, user_id):
            raise self._error(404, "app.channel.get_member.missing.app_error")
        self.world.channel_admins.add((channel_id, user_id))

    async def archive_channel(self, channel_id: str) -> None:
        self._call("archive_channel", channel_id=channel_id)
        channel = self._channel(channel_id)
        if not (self._me.is_admin or self._is_member(channel_id, self.bot_id)):
            raise self._error(403, PERMISSIONS)
        if channel.delete_at:
            raise self._error(400, "api.channel.delete_channel.deleted.app_error")
        # The name stays taken: archived channels still block it (mattermost-api.md §7).
        self.world.channels[channel_id] = replace(channel, delete_at=next(self.world.clock))

    async def restore_channel(self, channel_id: str) -> None:
        self._call("restore_channel", channel_id=channel_id)
        channel = self._channel(channel_id)
        if not self._me.is_admin:  # restoreChannel needs manage_team on the channel's team
            raise self._error(403, PERMISSIONS)
        self.world.channels[channel_id] = replace(channel, delete_at=0)

    def is_channel_admin(self, channel_id: str, user_id: str) -> bool:
        return (channel_id, user_id) in self.world.channel_admins

    async def direct_channel(self, user_a: str, user_b: str) -> MMChannel:
        self._call("direct_channel", user_a=user_a, user_b=user_b)
        if self.bot_id not in (user_a, user_b) and not self._me.is_admin:
            raise self._error(403, PERMISSIONS)
        self._user(user_a), self._user(user_b)
        name = "__".join(sorted((user_a, user_b)))
        for channel in self.world.channels.values():
            if channel.type == "D" and channel.name == name:
                return channel
        channel = MMChannel(id=new_id(), team_id="", name=name, display_name="", type="D")
        self.world.channels[channel.id] = channel
        self.world.members[channel.id] = list(dict.fromkeys((user_a, user_b)))
        return channel

    # -- posts -----------------------------------------------------------------------------------------

    async def upload_file(self, channel_id: str, filename: str, content: bytes,
                          content_type: str = "application/octet-stream") -> str:
        self._call("upload_file", channel_id=channel_id, filename=filename, size=len(content),
                   content_type=content_type)
        channel = self.world.channels.get(channel_id)
        if channel is None or not (self._me.is_admin or self._is_member(channel_id, self.bot_id)):
            raise self._error(403, PERMISSIONS)
        if not content:
            raise self._error(400, "api.file.upload_file.read_request.app_error")
        file_id = new_id()
        self.world.files[file_id] = [self.bot_id, channel_id, filename, bytes(content), ""]
        return file_id

    def file_content(self, file_id: str) -> bytes:
        return bytes(self.world.files[file_id][3])

    async def create_post(self, channel_id: str, message: str, *, props: dict[str, Any] | None = None,
                          root_id: str = "", file_ids: list[str] | None = None) -> MMPost:
        self._call("create_post", channel_id=channel_id, message=message, props=props, root_id=root_id,
                   **({"file_ids": list(file_ids)} if file_ids else {}))
        channel = self.world.channels.get(channel_id)
        if channel is None or not (self._me.is_admin or self._is_member(channel_id, self.bot_id)):
            raise self._error(403, PERMISSIONS)
        if channel.delete_at:
            raise self._error(400, "api.post.create_post.can_not_post_to_deleted.error")
        if len(message) > MAX_POST_RUNES:
            raise self._error(400, "model.post.is_valid.message_length.app_error")
        if root_id:
            root = self.world.posts.get(root_id)
            if root is None or root.channel_id != channel_id or root.root_id:
                raise self._error(400, "api.post.create_post.root_id.app_error")
        props = dict(props or {})
        if self._me.is_bot:
            props["from_bot"] = "true"
        now = self._now()
        post_id = new_id()
        attached = []
        for file_id in file_ids or []:  # attachFilesToPost: unattached, the author's, this channel's
            record = self.world.files.get(file_id)
            if record and not record[4] and record[0] == self.bot_id and record[1] == channel_id:
                record[4] = post_id
                attached.append(file_id)
        post = MMPost(id=post_id, channel_id=channel_id, user_id=self.bot_id, message=message,
                      root_id=root_id, props=props, create_at=now, update_at=now, file_ids=tuple(attached))
        self.world.posts[post.id] = post
        return post

    async def update_post(self, post_id: str, message: str | None, props: dict[str, Any] | None) -> MMPost:
        self._call("update_post", post_id=post_id, message=message, props=props)
        post = self.world.posts.get(post_id)
        # A missing post answers 403, not 404, on the real server.
        if post is None or (post.user_id != self.bot_id and not self._me.is_admin):
            raise self._error(403, PERMISSIONS)
        new = replace(post, message=post.message if message is None else message,
                      props=post.props if props is None else dict(props),
                      update_at=self._now())
        self.world.posts[post_id] = new
        return new

    async def delete_post(self, post_id: str) -> None:
        self._call("delete_post", post_id=post_id)
        post = self.world.posts.get(post_id)
        # A missing post answers 403, as a refusal does (api4/post.go deletePost).
        if post is None or (post.user_id != self.bot_id and not self._me.is_admin):
            raise self._error(403, PERMISSIONS)
        del self.world.posts[post_id]

    async def pin_post(self, post_id: str) -> None:
        self._call("pin_post", post_id=post_id)
        if post_id not in self.world.posts:
            raise self._error(403, PERMISSIONS)

    async def get_post(self, post_id: str) -> MMPost:
        self._call("get_post", post_id=post_id)
        post = self.world.posts.get(post_id)
        if post is None:
            raise self._error(404, "app.post.get.app_error")
        return post

    async def get_channel_posts(self, channel_id: str, per_page: int = 60, page: int = 0) -> list[MMPost]:
        self._call("get_channel_posts", channel_id=channel_id, per_page=per_page,
                   **({"page": page} if page else {}))
        self._require_read(self._channel(channel_id))
        newest = sorted(self.posts_in(channel_id), key=lambda p: (p.create_at, p.id), reverse=True)
        size = max(1, min(200, per_page))
        return newest[page * size:(page + 1) * size]

    async def send_ephemeral(self, user_id: str, channel_id: str, message: str, *,
                             props: dict[str, Any] | None = None, root_id: str = "") -> None:
        self._call("send_ephemeral", user_id=user_id, channel_id=channel_id, message=message, props=props)
        # create_post_ephemeral is a system permission only system admins hold by default.
        if not self._me.is_admin:
            raise self._error(403, PERMISSIONS)
        self.world.ephemerals.append(Ephemeral(user_id, channel_id, message, dict(props or {}), self.bot_id))

    async def open_dialog(self, trigger_id: str, url: str, dialog: dict[str, Any]) -> None:
        self._call("open_dialog", trigger_id=trigger_id, url=url, dialog=dialog)
        # The shape of a real trigger id, base64("<client id>:<user id>:<millis>:<signature>"); the
        # signature is not checked here. Test helper `trigger_id()` makes valid ones.
        try:
            parts = base64.b64decode(trigger_id, validate=True).decode().split(":")
        except ValueError:
            raise self._error(400, "interactive_message.decode_trigger_id.base64_decode_failed") from None
        if len(parts) < 4:
            raise self._error(400, "interactive_message.decode_trigger_id.missing_data")
        if not url:
            raise self._error(400, "api.context.invalid_body_param.app_error")
        self.world.dialogs.append(OpenedDialog(trigger_id, url, dialog))

    def response_url(self, user_id: str, channel_id: str) -> str:
        """Test helper: the `response_url` a slash command by `user_id` in `channel_id` would carry."""
        url = f"http://fake.invalid/hooks/commands/{new_id()}"
        self.world.hooks[url] = [user_id, channel_id, 0]
        return url

    async def respond(self, response_url: str, text: str) -> None:
        self._call("respond", response_url=response_url, text=text)
        # As MattermostGateway: only Mattermost's own command hooks, never another origin.
        if not re.fullmatch(r"http://fake\.invalid/hooks/commands/[a-z0-9]{26}", response_url):
            raise MattermostError(0, "gateway.foreign_url", "not a Mattermost command hook", "", "POST",
                                  "response_url")
        hook = self.world.hooks.get(response_url)
        # As the server: unknown or expired hooks 404, a sixth use 400 (model.CommandWebhook, TryUse 5).
        if hook is None:
            raise self._error(404, "web.command_webhook.general.app_error")
        if hook[2] >= 5:
            raise self._error(400, "web.command_webhook.general.app_error")
        hook[2] += 1
        self.world.responses.append((response_url, text))
        self.world.ephemerals.append(Ephemeral(hook[0], hook[1], text, {}, self.bot_id))

    async def whoami(self, token: str) -> tuple[MMUser, list[str]]:
        self._call("whoami", token=token)
        user = self.world.tokens.get(token)
        if user is None:
            raise self._error(401, "api.context.session_expired.app_error")
        return self.world.users[user], [t for (t, u) in self.world.team_members if u == user]

    async def execute_command(self, token: str, channel_id: str, team_id: str, command: str,
                              root_id: str = "") -> MMCommandResponse:
        """As the server for a person's token: 401 for an unknown token, 403 where they may not post, the
        built-in /echo posting as them, 404 for any other trigger (the fake registers no custom commands)."""
        if not token:
            raise ValueError("execute_command needs the person's own token")
        self._call("execute_command", channel_id=channel_id, team_id=team_id, command=command)
        user_id = self.world.tokens.get(token)
        if user_id is None:
            raise self._error(401, "api.context.session_expired.app_error")
        channel = self.world.channels.get(channel_id)
        if channel is None or not self._is_member(channel_id, user_id):
            raise self._error(403, PERMISSIONS)
        trigger, _, text = command.partition(" ")
        if trigger.lower() != "/echo":
            raise self._error(404, "api.command.execute_command.not_found.app_error")
        now = self._now()
        post = MMPost(id=new_id(), channel_id=channel_id, user_id=user_id, message=text.strip(), root_id=root_id,
                      create_at=now, update_at=now)
        self.world.posts[post.id] = post
        return MMCommandResponse()

    # -- sidebar categories ----------------------------------------------------------------------------

    def _require_user_access(self, user_id: str) -> None:
        if user_id != self.bot_id and not self._me.is_admin:  # edit_other_users
            raise self._error(403, PERMISSIONS)

    def _member_channels(self, user_id: str, team_id: str) -> list[str]:
        return [cid for cid, c in self.world.channels.items()
                if c.team_id == team_id and not c.delete_at and self._is_member(cid, user_id)]

    def _ensure_categories(self, user_id: str, team_id: str) -> list[MMCategory]:
        key = (user_id, team_id)
        if key not in self.world.categories:
            # Created lazily on first read, as the server does; ids are `<type>_<user>_<team>`.
            self.world.categories[key] = [
                MMCategory(id=f"{kind}_{user_id}_{team_id}", user_id=user_id, team_id=team_id, type=kind,
                           display_name=name, sort_order=order, sorting="")
                for order, (kind, name) in enumerate(
                    [("favorites", "Favorites"), ("channels", "Channels"),
                     ("direct_messages", "Direct Messages")])]
        return self.world.categories[key]

    def _view(self, user_id: str, team_id: str) -> list[MMCategory]:
        """Categories as the server returns them: each its own rows (a channel may show in two), `channels`
        first every member channel with a row in no category (sandbox/routes/categories.py has the proof)."""
        cats = self._ensure_categories(user_id, team_id)
        placed = {cid for c in cats for cid in c.channel_ids}
        out = []
        for i, cat in enumerate(cats):
            ids = [cid for cid in cat.channel_ids if self._is_member(cid, user_id)]
            if cat.type == "channels":
                ids = [cid for cid in self._member_channels(user_id, team_id) if cid not in placed] + ids
            out.append(replace(cat, channel_ids=tuple(ids), sort_order=i * 10))
        return out

    def _move(self, cats: list[MMCategory], target_id: str, channel_ids: list[str]) -> None:
        moved = set(channel_ids)
        for i, cat in enumerate(cats):
            if cat.id != target_id:
                cats[i] = replace(cat, channel_ids=tuple(c for c in cat.channel_ids if c not in moved))

    async def get_categories(self, user_id: str, team_id: str) -> list[MMCategory]:
        self._call("get_categories", user_id=user_id, team_id=team_id)
        self._require_user_access(user_id)
        return self._view(user_id, team_id)

    async def create_category(self, user_id: str, team_id: str, display_name: str,
                              channel_ids: list[str]) -> MMCategory:
        self._call("create_category", user_id=user_id, team_id=team_id, display_name=display_name,
                   channel_ids=list(channel_ids))
        self._require_user_access(user_id)
        cats = self._ensure_categories(user_id, team_id)  # the real gateway GETs first when needed
        ids = [cid for cid in dict.fromkeys(channel_ids) if self._is_member(cid, user_id)]
        cat = MMCategory(id=new_id(), user_id=user_id, team_id=team_id, type="custom",
                         display_name=display_name, channel_ids=tuple(ids))
        self._move(cats, cat.id, ids)
        # Right after Favorites when Favorites is first, otherwise first.
        cats.insert(1 if cats and cats[0].type == "favorites" else 0, cat)
        return next(c for c in self._view(user_id, team_id) if c.id == cat.id)

    def _replace(self, category: MMCategory) -> None:
        """An update rewrites the rows of the category it names, and of no other."""
        cats = self._ensure_categories(category.user_id, category.team_id)
        index = next((i for i, c in enumerate(cats) if c.id == category.id), None)
        if index is None:
            raise self._error(404, "app.channel.sidebar_categories.app_error")
        old = cats[index]
        ids = [cid for cid in dict.fromkeys(category.channel_ids) if self._is_member(cid, category.user_id)]
        if old.type == "direct_messages":
            ids = list(old.channel_ids)  # the DM category's list cannot be changed
        cats[index] = replace(old, channel_ids=tuple(ids), muted=category.muted, collapsed=category.collapsed,
                              sorting=category.sorting,
                              display_name=category.display_name if old.type == "custom" else old.display_name)

    async def update_category(self, category: MMCategory) -> MMCategory:
        self._call("update_category", category=category)
        self._require_user_access(category.user_id)
        self._replace(category)
        return next(c for c in self._view(category.user_id, category.team_id) if c.id == category.id)

    async def update_categories(self, user_id: str, team_id: str,
                                categories: list[MMCategory]) -> list[MMCategory]:
        self._call("update_categories", user_id=user_id, team_id=team_id, categories=list(categories))
        self._require_user_access(user_id)
        mine = {c.id for c in self._ensure_categories(user_id, team_id)}
        if any(c.id not in mine for c in categories):
            raise self._error(400, "api.context.invalid_body_param.app_error")
        for category in categories:
            self._replace(replace(category, user_id=user_id, team_id=team_id))
        view = {c.id: c for c in self._view(user_id, team_id)}
        return [view[c.id] for c in categories]

    async def close(self) -> None:
        self.closed = True
