"""Operations with the real server's side effects, shared by route modules and demo seeding.

Each takes the State and the Hub (for WebSocket events), validates as the real server does, and raises
AppError with the real id on failure. Routes do auth, permissions and parsing, then call these.
"""
from __future__ import annotations

import base64
import json
import re
import secrets
from typing import Any

from sandbox import attachments, gojson
from sandbox.errors import AppError
from sandbox.ids import is_valid_id, new_id, now_ms
from sandbox.state import (
    Channel,
    ChannelMember,
    Post,
    State,
    Team,
    TeamMember,
    Token,
    User,
)

# model.IsValidUsername: lowercase letters, digits, '.', '-', '_'; 1..64; a few reserved words.
USERNAME_RE = re.compile(r"^[a-z0-9.\-_]+$")
RESERVED_USERNAMES = {"all", "channel", "matterbot", "system"}
USERNAME_MAX = 64

# model.IsValidChannelIdentifier. The v9/v10 rule (at least 2 characters, ending in a letter or
# digit) is stricter than master's (1 character, trailing '-'/'_' allowed): a bot that passes
# here passes on every server from v9 to master.
CHANNEL_NAME_RE = re.compile(r"^[a-z0-9]+([a-z\-_0-9]+|(__)?)[a-z0-9]+$")
CHANNEL_NAME_MAX = 64  # varchar(64) column; the real server fails at insert, we answer 400
CHANNEL_NAME_ERROR = "model.channel.is_valid.2_or_more.app_error"  # master: ...1_or_more...
GM_NAME_RE = re.compile(r"^[a-f0-9]{40}$")
DISPLAY_NAME_MAX_RUNES = 64
HEADER_MAX_RUNES = 1024
PURPOSE_MAX_RUNES = 250

# model.IsValidTeamName: like a channel name without underscores; reserved URL words refused.
TEAM_NAME_RE = re.compile(r"^[a-z0-9]+([a-z\-0-9]+|(__)?)[a-z0-9]+$")
RESERVED_TEAM_NAMES = {"admin", "api", "channel", "claim", "error", "files", "help", "landing", "login",
                       "mfa", "oauth", "plug", "plugins", "post", "signup", "boards", "playbooks"}

POST_PROPS_MAX_RUNES = 800_000  # model.PostPropsMaxRunes
POST_HASHTAGS_MAX_RUNES = 1000
POST_FILE_IDS_MAX_RUNES = 300
# model.Post.IsValid: these types, or anything starting with custom_.
KNOWN_POST_TYPES = {
    "", "system_generic", "system_join_leave", "system_auto_responder", "system_add_remove",
    "system_join_channel", "system_guest_join_channel", "system_leave_channel", "system_join_team",
    "system_leave_team", "system_add_to_channel", "system_add_guest_to_chan", "system_remove_from_channel",
    "system_move_channel", "system_add_to_team", "system_remove_from_team", "slack_attachment",
    "system_header_change", "system_purpose_change", "system_displayname_change",
    "system_convert_channel", "system_channel_deleted", "system_channel_restored",
    "system_change_chan_privacy", "add_bot_teams_channels", "reminder", "me", "system_wrangler",
    "system_gm_to_channel",
}
DEFAULT_CHANNELS = [("town-square", "Town Square"), ("off-topic", "Off-Topic")]
ACTION_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def runes(text: str) -> int:
    """Go's utf8.RuneCountInString: Python str length is already code points."""
    return len(text)


def invalid_param(name: str) -> AppError:
    """Context.SetInvalidParam (api.context.invalid_param.app_error), distinct from the body/url ids."""
    return AppError("api.context.invalid_param.app_error", 400, f"Invalid {name} parameter.")


# -- users ---------------------------------------------------------------------------------------

def validate_username(username: str) -> None:
    if (not username or len(username) > USERNAME_MAX or not USERNAME_RE.match(username)
            or username in RESERVED_USERNAMES):
        raise AppError("model.user.is_valid.username.app_error", 400,
                       "Username must begin with a letter, and contain between 3 to 22 lowercase "
                       "characters made up of numbers, letters, and the symbols '.', '-', and '_'.")


def create_user(state: State, hub, *, username: str, password: str = "", email: str = "",
                roles: str = "system_user", is_bot: bool = False, first_name: str = "",
                last_name: str = "", nickname: str = "") -> User:
    # The real server lowercases usernames and emails before validating (User.PreSave).
    username = (username or "").strip().lower()
    validate_username(username)
    email = (email or "").strip().lower() or (f"{username}@localhost" if is_bot else "")
    if not email or "@" not in email or " " in email:
        raise AppError("model.user.is_valid.email.app_error", 400, "Invalid email.")
    if state.user_by_username(username) is not None:
        raise AppError("app.user.save.username_exists.app_error", 400,
                       "An account with that username already exists.")
    if any(u.email == email for u in state.users.values()):
        raise AppError("app.user.save.email_exists.app_error", 400,
                       "An account with that email already exists.")
    user = User(id=new_id(), username=username, email=email, password=password, roles=roles,
                is_bot=is_bot, first_name=first_name, last_name=last_name, nickname=nickname)
    state.users[user.id] = user
    return user


def create_guest(state: State, hub, *, username: str, password: str = "", email: str = "",
                 first_name: str = "", last_name: str = "") -> User:
    """A guest account (roles "system_guest", no system_user). The real server makes guests only by
    invitation (api4/team.go inviteGuestsToChannels) or demotion (api4/user.go demoteUserToGuest), both
    needing a license and GuestAccountsSettings.Enable; the sandbox makes them directly for tests."""
    return create_user(state, hub, username=username, password=password, email=email, roles="system_guest",
                       first_name=first_name, last_name=last_name)


def demote_to_guest(state: State, hub, user: User) -> None:
    """What app/user.go DemoteUserToGuest does to an existing user (store SqlUserStore.DemoteUserToGuest):
    roles become system_guest (other system roles dropped), every team membership team_guest and every
    channel membership channel_guest; user_role_updated goes to the user. The route
    (POST /users/{id}/demote) is not served: it needs a license (api.team.demote_user_to_guest.license.error,
    501) and is not in the sandbox's OpenAPI file."""
    user.roles = "system_guest"
    user.update_at = now_ms()
    for (_, uid), member in state.team_members.items():
        if uid == user.id:
            member.roles = "team_guest"
    for (_, uid), cmember in state.channel_members.items():
        if uid == user.id:
            cmember.roles = "channel_guest"
    hub.publish("user_role_updated", {"user_id": user.id, "roles": user.roles}, user_id=user.id)


def create_token(state: State, user_id: str, description: str = "") -> str:
    """A personal access token (or bot token); returns the secret."""
    secret = new_id()
    state.tokens[secret] = Token(id=new_id(), token=secret, user_id=user_id, description=description)
    return secret


def create_session(state: State, user_id: str) -> str:
    """A login session; in the sandbox it is a token like any other."""
    secret = new_id()
    state.tokens[secret] = Token(id=new_id(), token=secret, user_id=user_id, description="session")
    return secret


# -- teams ---------------------------------------------------------------------------------------

def create_team(state: State, hub, *, name: str, display_name: str, type: str = "O",
                creator: User | None = None) -> Team:
    """Also creates `town-square` and `off-topic`, as the real server does."""
    if not name or len(name) > 64 or len(name) < 2 or not TEAM_NAME_RE.match(name):
        raise AppError("model.team.is_valid.url.app_error", 400,
                       "Team URL must be 2-64 lowercase letters, numbers and '-'.")
    if name in RESERVED_TEAM_NAMES:
        raise AppError("model.team.is_valid.reserved.app_error", 400, "This URL is unavailable.")
    if not display_name or runes(display_name) > 64:
        raise AppError("model.team.is_valid.name.app_error", 400, "Invalid name.")
    if type not in ("O", "I"):
        raise AppError("model.team.is_valid.type.app_error", 400, "Invalid type.")
    if any(t.name == name for t in state.teams.values()):
        raise AppError("app.team.save.existing.app_error", 400, "A team with that name already exists.")
    team = Team(id=new_id(), name=name, display_name=display_name, type=type,
                email=creator.email if creator else "")
    state.teams[team.id] = team
    for channel_name, channel_display in DEFAULT_CHANNELS:
        channel = Channel(id=new_id(), team_id=team.id, type="O", name=channel_name,
                          display_name=channel_display)
        state.channels[channel.id] = channel
        state.channel_posts[channel.id] = []
    if creator is not None:
        add_team_member(state, hub, team, creator, roles="team_user team_admin")
    return team


def add_team_member(state: State, hub, team: Team, user: User, roles: str | None = None) -> TeamMember:
    """Joins the team and its town-square / off-topic channels (JoinUserToTeam). A guest joins as
    team_guest (app/team.go JoinUserToTeam: SchemeGuest = user.IsGuest(), SchemeUser = !user.IsGuest())."""
    existing = state.team_members.get((team.id, user.id))
    if existing is not None and not existing.delete_at:
        return existing
    if roles is None:
        roles = "team_guest" if user.is_guest() else "team_user"
    member = TeamMember(team_id=team.id, user_id=user.id, roles=roles)
    state.team_members[(team.id, user.id)] = member
    hub.publish("added_to_team", {"team_id": team.id, "user_id": user.id}, user_id=user.id)
    if user.is_guest():
        return member  # JoinUserToTeam: `if !user.IsGuest() { JoinDefaultChannels }`: guests join none
    for channel_name, _ in DEFAULT_CHANNELS:
        channel = state.channel_by_name(team.id, channel_name)
        if channel is None:
            continue
        _insert_channel_member(state, hub, channel, user)
        # ExperimentalEnableDefaultChannelLeaveJoinMessages (default on): postJoinTeamMessage.
        _system_post(state, hub, channel, user, "system_join_team", f"{user.username} joined the team.",
                     {"username": user.username})
    return member


# -- channels ------------------------------------------------------------------------------------

def _strip_controls(text: str) -> str:
    """model.SanitizeUnicode: drop control and format characters (Cc/Cf, bidi marks...)."""
    import unicodedata

    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))


def validate_channel_fields(state: State, *, team_id: str, name: str, display_name: str,
                            header: str, purpose: str, type: str, channel_id: str = "") -> None:
    if runes(display_name) > DISPLAY_NAME_MAX_RUNES:
        raise AppError("model.channel.is_valid.display_name.app_error", 400, "Invalid display name.")
    if len(name) > CHANNEL_NAME_MAX:
        raise AppError(CHANNEL_NAME_ERROR, 400, "Name must be 2 or more lowercase alphanumeric characters.",
                       "the name is longer than 64 characters (varchar(64) on the real server)")
    if not CHANNEL_NAME_RE.match(name):
        raise AppError(CHANNEL_NAME_ERROR, 400, "Name must be 2 or more lowercase alphanumeric characters.")
    if type not in ("D", "G"):
        parts = name.split("__")
        if GM_NAME_RE.match(name) or (len(parts) == 2 and is_valid_id(parts[0]) and is_valid_id(parts[1])):
            raise AppError("model.channel.is_valid.name.app_error", 400, "Invalid channel name.")
    if runes(header) > HEADER_MAX_RUNES:
        raise AppError("model.channel.is_valid.header.app_error", 400, "Invalid header.")
    if runes(purpose) > PURPOSE_MAX_RUNES:
        raise AppError("model.channel.is_valid.purpose.app_error", 400, "Invalid purpose.")
    # Uniqueness is over (team_id, name) among all channels ever created, archived ones included.
    for other in state.channels.values():
        if other.team_id == team_id and other.name == name and other.id != channel_id:
            raise AppError("store.sql_channel.save_channel.exists.app_error", 400,
                           "A channel with that name already exists on the same team.")


def create_channel(state: State, hub, *, team: Team, creator: User, name: str, display_name: str,
                   type: str = "O", purpose: str = "", header: str = "") -> Channel:
    if type in ("D", "G"):
        raise AppError("api.channel.create_channel.direct_channel.app_error", 400,
                       "Must use createDirectChannel API service for direct message channel creation.")
    if type not in ("O", "P"):
        raise AppError("model.channel.is_valid.type.app_error", 400, "Invalid type.")
    # app/channel.go CreateChannelWithUser: GetNumberOfChannelsOnTeam + 1 > TeamSettings.MaxChannelsPerTeam
    # -> 400, before the channel is validated or saved. The count is the store's GetTeamChannels
    # (`SELECT * FROM Channels WHERE TeamId = ? AND Type != 'D'`): archived channels count too.
    limit = int(state.config.get("MaxChannelsPerTeam", 2000))
    count = sum(1 for c in state.channels.values() if c.team_id == team.id and c.type != "D")
    if count + 1 > limit:
        raise AppError("api.channel.create_channel.max_channel_limit.app_error", 400,
                       f"Unable to create more than {limit} channels for current team.")
    name = _strip_controls(name)
    display_name = _strip_controls(display_name).strip()
    validate_channel_fields(state, team_id=team.id, name=name, display_name=display_name,
                            header=header, purpose=purpose, type=type)
    channel = Channel(id=new_id(), team_id=team.id, type=type, name=name, display_name=display_name,
                      creator_id=creator.id, header=header, purpose=purpose)
    state.channels[channel.id] = channel
    state.channel_posts[channel.id] = []
    # The creator becomes a channel admin (CreateChannel with addMember), then the join post,
    # then channel_created to the creator only.
    _insert_channel_member(state, hub, channel, creator, roles="channel_user channel_admin")
    _system_post(state, hub, channel, creator, "system_join_channel",
                 f"{creator.username} joined the channel.", {"username": creator.username})
    hub.publish("channel_created", {"channel_id": channel.id, "team_id": team.id}, user_id=creator.id)
    return channel


def _insert_channel_member(state: State, hub, channel: Channel, user: User,
                           roles: str | None = None) -> ChannelMember:
    member = state.channel_members.get((channel.id, user.id))
    if roles is None:
        # app/channel.go addUserToChannel: SchemeGuest = user.IsGuest(), SchemeUser = !user.IsGuest().
        roles = "channel_guest" if user.is_guest() else "channel_user"
    if member is None:
        member = ChannelMember(channel_id=channel.id, user_id=user.id, roles=roles,
                               last_viewed_at=now_ms(), msg_count=channel.total_msg_count)
        state.channel_members[(channel.id, user.id)] = member
    return member


def add_channel_member(state: State, hub, channel: Channel, user: User, actor: User) -> bool:
    """True when the user was added, False when already a member (no event, no post)."""
    if channel.type in ("D", "G"):
        raise AppError("api.channel.add_user_to_channel.type.app_error", 400,
                       "Can not add user to this channel type.")
    if channel.delete_at:
        raise AppError("api.channel.add_user.to.channel.failed.deleted.app_error", 400,
                       "Failed to add user to channel because channel has been archived.")
    team_member = state.team_members.get((channel.team_id, user.id))
    if team_member is None:
        raise AppError("app.team.get_member.missing.app_error", 404,
                       "No team member found for that user ID and team ID.")
    if team_member.delete_at:
        raise AppError("api.channel.add_user.to.channel.failed.deleted.app_error", 400,
                       "Failed to add user to channel because they have been removed from the team.")
    if state.is_channel_member(channel.id, user.id):
        return False
    _insert_channel_member(state, hub, channel, user)
    # user_added goes to the channel, so the new member (now a member) receives it too.
    hub.publish("user_added", {"user_id": user.id, "team_id": channel.team_id}, channel_id=channel.id)
    if actor.id == user.id:
        _system_post(state, hub, channel, user, "system_join_channel",
                     f"{user.username} joined the channel.", {"username": user.username})
    else:
        _system_post(state, hub, channel, actor, "system_add_to_channel",
                     f"{user.username} added to the channel by {actor.username}.",
                     {"userId": actor.id, "username": actor.username,
                      "addedUserId": user.id, "addedUsername": user.username})
    return True


def remove_channel_member(state: State, hub, channel: Channel, user: User, actor: User) -> None:
    if channel.type in ("D", "G"):
        raise AppError("api.channel.remove_user_from_channel.type.app_error", 400,
                       "Can not remove user from this channel type.")
    if channel.name == "town-square":
        raise AppError("api.channel.remove.default.app_error", 400,
                       "Unable to remove user from the default channel town-square.")
    if state.channel_members.pop((channel.id, user.id), None) is None:
        return
    # SqlChannelStore.RemoveMembers: "cleanup sidebarchannels table if the user is no longer a member of
    # that channel" - rejoining later, the channel shows under Channels again, not where it was filed.
    for (owner_id, _team_id), categories in state.categories.items():
        if owner_id == user.id:
            for category in categories:
                category.channel_ids = [cid for cid in category.channel_ids if cid != channel.id]
    if actor.id == user.id:
        _system_post(state, hub, channel, user, "system_leave_channel",
                     f"{user.username} left the channel.", {"username": user.username})
    else:
        _system_post(state, hub, channel, actor, "system_remove_from_channel",
                     f"{user.username} was removed from the channel.",
                     {"removedUserId": user.id, "removedUsername": user.username})
    hub.publish("user_removed", {"channel_id": channel.id, "remover_id": actor.id}, user_id=user.id)
    hub.publish("user_removed", {"user_id": user.id, "remover_id": actor.id}, channel_id=channel.id)


def direct_channel(state: State, hub, creator: User, other: User) -> tuple[Channel, bool]:
    """GetOrCreateDirectChannel: (channel, created). Name is min(id)__max(id)."""
    a, b = sorted([creator.id, other.id])
    name = f"{a}__{b}"
    for channel in state.channels.values():
        if channel.type == "D" and channel.name == name:
            return channel, False
    channel = Channel(id=new_id(), team_id="", type="D", name=name, display_name="", creator_id=creator.id)
    state.channels[channel.id] = channel
    state.channel_posts[channel.id] = []
    for uid in {a, b}:
        _insert_channel_member(state, hub, channel, state.users[uid])
    hub.publish("direct_added", {"creator_id": creator.id, "teammate_id": other.id}, channel_id=channel.id)
    return channel, True


def channel_event_json(channel: Channel) -> str:
    return json.dumps(channel.to_json(), separators=(",", ":"))


def archive_channel(state: State, hub, channel: Channel, actor: User) -> None:
    if channel.type in ("D", "G"):
        raise AppError("api.channel.delete_channel.type.invalid", 400,
                       "Unable to delete direct or group message channels.")
    if channel.name == "town-square":
        raise AppError("api.channel.delete_channel.cannot.app_error", 400,
                       "Unable to delete the default channel town-square.")
    if channel.delete_at:
        raise AppError("api.channel.delete_channel.deleted.app_error", 400,
                       "The channel has been archived or deleted.")
    _system_post(state, hub, channel, actor, "system_channel_deleted",
                 f"{actor.username} archived the channel", {"username": actor.username})
    channel.delete_at = channel.update_at = now_ms()
    hub.publish("channel_deleted", {"channel_id": channel.id, "delete_at": channel.delete_at},
                team_id=channel.team_id)


def restore_channel(state: State, hub, channel: Channel, actor: User) -> None:
    if not channel.delete_at:
        raise AppError("api.channel.restore_channel.restored.app_error", 400,
                       "Unable to unarchive channel. The channel is not archived.")
    channel.delete_at = 0
    channel.update_at = now_ms()
    hub.publish("channel_restored", {"channel_id": channel.id}, team_id=channel.team_id)
    _system_post(state, hub, channel, actor, "system_channel_restored",
                 f"{actor.username} unarchived the channel", {"username": actor.username})


def patch_channel(state: State, hub, channel: Channel, patch: dict[str, Any], actor: User) -> Channel:
    old = {k: getattr(channel, k) for k in ("name", "display_name", "header", "purpose")}
    new = dict(old)
    for key in old:
        if key in patch and patch[key] is not None:
            if not isinstance(patch[key], str):
                from sandbox.errors import invalid_body

                raise invalid_body("channel")
            new[key] = patch[key]
    new["name"] = _strip_controls(new["name"])
    new["display_name"] = _strip_controls(new["display_name"])
    if channel.type not in ("D", "G") or new["name"] != old["name"]:
        validate_channel_fields(state, team_id=channel.team_id, name=new["name"],
                                display_name=new["display_name"], header=new["header"],
                                purpose=new["purpose"], type=channel.type, channel_id=channel.id)
    for key, value in new.items():
        setattr(channel, key, value)
    channel.update_at = now_ms()
    if new["display_name"] != old["display_name"]:
        _system_post(state, hub, channel, actor, "system_displayname_change",
                     f"{actor.username} updated the channel display name from: {old['display_name']} "
                     f"to: {new['display_name']}",
                     {"username": actor.username, "old_displayname": old["display_name"],
                      "new_displayname": new["display_name"]})
    if new["header"] != old["header"]:
        _system_post(state, hub, channel, actor, "system_header_change",
                     f"{actor.username} updated the channel header to: {new['header']}",
                     {"username": actor.username, "old_header": old["header"], "new_header": new["header"]})
    if new["purpose"] != old["purpose"]:
        _system_post(state, hub, channel, actor, "system_purpose_change",
                     f"{actor.username} updated the channel purpose to: {new['purpose']}",
                     {"username": actor.username, "old_purpose": old["purpose"],
                      "new_purpose": new["purpose"]})
    hub.publish("channel_updated", {"channel": channel_event_json(channel)}, channel_id=channel.id)
    return channel


# -- posts ---------------------------------------------------------------------------------------

def new_action_id() -> str:
    """26 characters of [a-z0-9]: valid for the click route on every version (model.NewId)."""
    return "".join(secrets.choice(ACTION_ID_ALPHABET) for _ in range(26))


def generate_action_ids(props: dict[str, Any]) -> None:
    """Post.GenerateActionIds: give every action without an id a fresh one, at save time."""
    for attachment in props.get("attachments") or []:
        if isinstance(attachment, dict):
            for action in attachment.get("actions") or []:
                if isinstance(action, dict) and not action.get("id"):
                    action["id"] = new_action_id()


def validate_post(state: State, post: Post) -> None:
    """model.Post.IsValid (server/public/model/post.go), the parts a client can trip on."""
    max_runes = int(state.config.get("MaxPostSize", 16383))
    if runes(post.message) > max_runes:
        # Current code: "model.post.is_valid.message_length.app_error" (params Length and MaxLength, which
        # AppError does not serialize); it was "model.post.is_valid.msg.app_error" before.
        raise AppError("model.post.is_valid.message_length.app_error", 400,
                       "Post Message property is longer than the maximum permitted length.",
                       f"id={post.id}")
    if runes(post.hashtags) > POST_HASHTAGS_MAX_RUNES:
        raise AppError("model.post.is_valid.hashtags.app_error", 400, "Invalid Hashtags.")
    if gojson.runes(list(post.file_ids or [])) > POST_FILE_IDS_MAX_RUNES:  # ArrayToJSON: json.Marshal
        raise AppError("model.post.is_valid.file_ids.app_error", 400, "Invalid file ids.")
    if post.type not in KNOWN_POST_TYPES and not post.type.startswith("custom_") \
            and post.type != "system_ephemeral":
        raise AppError("model.post.is_valid.type.app_error", 400, "Invalid type.")
    # StringInterfaceToJSON(o.GetProps()) is json.Marshal: <, >, & (and U+2028/9) count six runes each.
    if gojson.runes(post.props) > POST_PROPS_MAX_RUNES:
        raise AppError("model.post.is_valid.props.app_error", 400, "Invalid props.")


def _hashtags(message: str) -> str:
    tags = re.findall(r"(?<![\w#])#[A-Za-z][A-Za-z0-9_\-]*[A-Za-z0-9]", message)
    return " ".join(dict.fromkeys(tags))


# model.ChannelMentions: `~name` not preceded by a word character (Go's \B is ASCII).
_CHANNEL_MENTION_RE = re.compile(r"\B~([a-zA-Z0-9\-_]+)", re.ASCII)


def fill_in_post_props(state: State, post: Post, channel: Channel) -> None:
    """app/post.go FillInPostProps (on create and on every update): the open channels of the post's team
    that its message mentions as ~name go into props.channel_mentions ({name: {display_name, team_name}}),
    which is how clients know `~town-square` is a channel and `~30` is not; none -> the prop is removed."""
    mentions: dict[str, Any] = {}
    team = state.teams.get(channel.team_id) if channel.team_id else None
    for name in dict.fromkeys(_CHANNEL_MENTION_RE.findall(post.message)):
        mentioned = state.channel_by_name(channel.team_id, name) if team is not None else None
        if mentioned is not None and mentioned.type == "O":
            mentions[mentioned.name] = {"display_name": mentioned.display_name, "team_name": team.name}
    if mentions:
        post.props["channel_mentions"] = mentions
    else:
        post.props.pop("channel_mentions", None)


def create_post(state: State, hub, author: User, post: dict[str, Any], *,
                from_webhook: bool = False, system: bool = False) -> Post:
    """Validate (runes, props size, type, root), assign action ids, set from_bot, store, emit `posted`."""
    channel = state.channels.get(str(post.get("channel_id") or ""))
    if channel is None:
        raise invalid_param("post.channel_id")
    post_type = str(post.get("type") or "")
    if not system and post_type.startswith("system_"):
        # CreatePostAsUser refuses system_ types from clients before anything else.
        raise invalid_param("post.type")
    if channel.delete_at:
        raise AppError("api.post.create_post.can_not_post_to_deleted.error", 400,
                       "Can not post to deleted channel.")
    props = post.get("props")
    props = json.loads(json.dumps(props)) if isinstance(props, dict) else {}
    if author.is_bot:
        props["from_bot"] = "true"
    if from_webhook:
        props["from_webhook"] = "true"
    root_id = str(post.get("root_id") or "")
    if root_id:
        root = state.posts.get(root_id)
        if root is None or root.delete_at:
            raise AppError("api.post.create_post.root_id.app_error", 400, "Invalid RootId parameter.")
        if root.channel_id != channel.id:
            # CreatePostAsUser turns this 500 into a 400.
            raise AppError("api.post.create_post.channel_root_id.app_error", 400,
                           "Invalid ChannelId for RootId parameter.")
        if root.root_id:
            raise AppError("api.post.create_post.root_id.app_error", 400, "Invalid RootId parameter.")
    message = post.get("message")
    if message is not None and not isinstance(message, str):
        from sandbox.errors import invalid_body

        raise invalid_body("post")
    file_ids = post.get("file_ids") or []
    record = Post(id=new_id(), channel_id=channel.id, user_id=author.id, message=message or "",
                  type=post_type, props=props, root_id=root_id,
                  file_ids=list(file_ids) if isinstance(file_ids, list) else [],
                  pending_post_id=str(post.get("pending_post_id") or ""))
    create_at = post.get("create_at")
    if isinstance(create_at, int) and create_at > 0 and state.has_system_permission(author, "manage_system"):
        record.create_at = record.update_at = create_at
    record.hashtags = _hashtags(record.message)
    fill_in_post_props(state, record, channel)
    generate_action_ids(record.props)  # PreCommit: before IsValid, so they count toward the limit
    validate_post(state, record)
    if record.file_ids:
        from sandbox.routes.files import attach_files  # routes import ops: imported here, not at the top

        attach_files(state, record)
    store_post(state, hub, record, channel, author, set_online=bool(post.get("set_online", True)))
    return record


def store_post(state: State, hub, record: Post, channel: Channel, author: User,
               set_online: bool = True) -> None:
    state.posts[record.id] = record
    state.channel_posts.setdefault(channel.id, []).append(record.id)
    channel.last_post_at = record.create_at
    channel.total_msg_count += 1
    if not record.root_id:
        channel.last_root_post_at = record.create_at
        channel.total_msg_count_root += 1
    member = state.channel_members.get((channel.id, author.id))
    if member is not None:
        member.msg_count = channel.total_msg_count
        member.last_viewed_at = record.create_at
    _publish_posted(state, hub, record, channel, author, set_online)


def post_event_json(post: Post) -> str:
    """data.post of every post event: a JSON string, integrations stripped (Post.ToJSON)."""
    return json.dumps(post.to_json(), separators=(",", ":"))


def mentioned_user_ids(state: State, post: Post, channel: Channel, author: User) -> list[str]:
    """Channel members mentioned by @username, or everyone on @channel/@all/@here (not the author)."""
    members = [uid for uid in state.channel_member_ids(channel.id) if uid != author.id]
    if channel.type == "D":
        return members
    words = {w.rstrip(".-_").lower() for w in re.findall(r"@([a-z0-9.\-_]+)", post.message, re.I)}
    if words & {"channel", "all", "here"} and not post.type:
        return members
    return [uid for uid in members if state.users[uid].username in words]


def _publish_posted(state: State, hub, post: Post, channel: Channel, author: User, set_online: bool) -> None:
    team_id = channel.team_id
    display = channel.display_name
    if channel.type == "D":
        display = f"@{author.username}"  # DMs are named after the sender in notifications
    data: dict[str, Any] = {
        "post": post_event_json(post), "channel_type": channel.type,
        "channel_display_name": display, "channel_name": channel.name,
        "sender_name": "@" + str(post.props.get("override_username") or author.username),
        "team_id": team_id, "set_online": set_online,
    }
    if post.file_ids:
        data["otherFile"] = "true"
    mentioned = mentioned_user_ids(state, post, channel, author) if not post.type.startswith("system_") else []
    # `mentions` is per recipient: each mentioned user gets a copy listing only themselves.
    hub.publish("posted", data, channel_id=channel.id, omit_users=mentioned)
    for uid in mentioned:
        hub.publish("posted", {**data, "mentions": json.dumps([uid])}, channel_id=channel.id, user_id=uid)


def _system_post(state: State, hub, channel: Channel, actor: User, type: str, message: str,
                 props: dict[str, Any]) -> Post:
    record = Post(id=new_id(), channel_id=channel.id, user_id=actor.id, message=message, type=type,
                  props=dict(props))
    store_post(state, hub, record, channel, actor)
    return record


def update_post(state: State, hub, post: Post, *, message: str, props: dict[str, Any] | None,
                keep_webhook_props: bool = False, file_ids: list[str] | None = None) -> Post:
    """Replace message and props (None keeps props) and file ids (None keeps them), set edit_at, emit
    `post_edited`.

    edit_at as app/post.go UpdatePost sets it: when the message changes, else when the file ids or the
    attachments (sandbox/attachments.py, compared before new actions get their ids) differ; other props
    never make an edit.

    keep_webhook_props: the action-update quirk (from_webhook, override_username, override_icon_url keep
    the original post's values).
    """
    channel = state.channels[post.channel_id]
    if channel.delete_at:
        raise AppError("api.post.update_post.can_not_update_post_in_deleted.error", 400,
                       "Can not update a post in a deleted channel.")
    new_props = dict(post.props) if props is None else json.loads(json.dumps(props))
    if props is not None and keep_webhook_props:
        for key in ("from_webhook", "override_username", "override_icon_url"):
            if key in post.props:
                new_props[key] = post.props[key]
            else:
                new_props.pop(key, None)
    new_file_ids = list(post.file_ids) if file_ids is None else list(file_ids)
    edited = (message != post.message or new_file_ids != list(post.file_ids)
              or not attachments.equal(post.props, new_props))
    generate_action_ids(new_props)
    candidate = Post(**{**post.__dict__, "message": message, "props": new_props, "file_ids": new_file_ids})
    candidate.hashtags = _hashtags(message)
    fill_in_post_props(state, candidate, channel)
    validate_post(state, candidate)
    now = now_ms()
    if edited:
        post.edit_at = now
    post.message = message
    post.hashtags = candidate.hashtags
    post.props = new_props
    post.file_ids = new_file_ids
    post.update_at = now
    hub.publish("post_edited", {"post": post_event_json(post)}, channel_id=post.channel_id)
    return post


def delete_post(state: State, hub, post: Post, actor: User) -> None:
    """Soft delete; a root takes its replies with it. Emits post_deleted."""
    now = now_ms()
    victims = [post] + ([p for p in state.posts.values() if p.root_id == post.id and not p.delete_at]
                        if not post.root_id else [])
    for victim in victims:
        victim.delete_at = victim.update_at = now
    data = {"post": post_event_json(post), "delete_by": actor.id}
    hub.publish("post_deleted", data, channel_id=post.channel_id)


def encode_action_cookie(post: dict[str, Any], action: dict[str, Any]) -> str:
    """The sandbox's PostActionCookie: base64 JSON (the real one is AES-GCM; clients treat it as opaque)."""
    cookie = {"type": action.get("type", ""), "post_id": post["id"], "root_id": post.get("root_id", ""),
              "channel_id": post["channel_id"], "data_source": action.get("data_source", ""),
              "integration": action.get("integration"), "retain_props": {}, "remove_props": []}
    return base64.b64encode(json.dumps(cookie).encode()).decode()


def decode_action_cookie(cookie: str) -> dict[str, Any] | None:
    try:
        data = json.loads(base64.b64decode(cookie.encode(), validate=True))
    except (ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def send_ephemeral(state: State, hub, user_id: str, channel_id: str, message: str,
                   props: dict[str, Any] | None = None, root_id: str = "",
                   sender_id: str = "") -> dict[str, Any]:
    """Build a system_ephemeral post (not stored) and emit `ephemeral_message` to that user only.

    Actions get their ids and an opaque `cookie` carrying the integration (AddPostActionCookies), since
    there is no database row to look the action up in when it is clicked. Returns the client JSON.
    """
    props = json.loads(json.dumps(props)) if props else {}
    generate_action_ids(props)
    now = now_ms()
    record = Post(id=new_id(), channel_id=channel_id, user_id=sender_id or user_id, message=message,
                  type="system_ephemeral", props=props, root_id=root_id, create_at=now, update_at=now)
    post_json = record.to_json()
    for attachment, client_attachment in zip(props.get("attachments") or [],
                                            post_json["props"].get("attachments") or [], strict=False):
        if not isinstance(attachment, dict):
            continue
        for action, client_action in zip(attachment.get("actions") or [],
                                         client_attachment.get("actions") or [], strict=False):
            if isinstance(action, dict) and action.get("integration"):
                client_action["cookie"] = encode_action_cookie(post_json, action)
    hub.publish("ephemeral_message", {"post": json.dumps(post_json, separators=(",", ":"))},
                user_id=user_id, channel_id=channel_id)
    return post_json
