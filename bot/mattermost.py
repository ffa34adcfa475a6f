"""The real gateway: all Mattermost REST I/O, and the only module that imports mattermostdriver.

mattermostdriver's endpoint classes know the routes; everything under them is replaced by `_PooledClient`
because the stock client (7.3.2) opens a new connection per call (`requests.get/post`), has no default
timeout, maps errors to exception classes that drop Mattermost's error `id`, and returns a raw Response
whenever `Content-Type` is not exactly `application/json` (aiohttp and many proxies add `; charset=utf-8`).

The bot's token goes to Mattermost's origin and nowhere else: `[mattermost] url`, and the SiteURL the
server publishes (the same server by its public name, where response URLs point). It is attached per
request to API calls, never kept in the session's default headers, so no call can carry it elsewhere;
`absolute()` refuses any other origin and follows no redirect; a slash command's `response_url` is
answered at Mattermost's own origin, with no `Authorization` at all (command hooks need none).

Blocking driver calls run in a bounded ThreadPoolExecutor so the bot's aiohttp server never blocks. Each
executor job is exactly one HTTP attempt; the retry loop lives on the event loop, so a request waiting out
a `Retry-After` holds no thread and the injected async `sleep` makes retries testable without sleeping.
"""
from __future__ import annotations

import asyncio
import email.utils
import functools
import http.cookiejar
import logging
import random as _random
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3
from mattermostdriver import Driver
from mattermostdriver.client import Client
from requests.adapters import HTTPAdapter

from bot.metrics import ProcessMetrics
from bot.models import (
    MattermostError,
    MMCategory,
    MMChannel,
    MMCommand,
    MMCommandResponse,
    MMPost,
    MMTeam,
    MMUser,
    OAuthTokens,
    command_response,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Error ids the gateway makes up when the server gave none (status 0 = no HTTP answer at all).
TIMEOUT = "gateway.timeout"
CONNECTION_ERROR = "gateway.connection_error"
RATE_LIMITED = "gateway.rate_limited"  # 429 bodies are text/plain `limit exceeded`, not an AppError
BAD_RESPONSE = "gateway.bad_response"  # an error or success body that is not the JSON we expect
# A URL outside Mattermost's origin, or a response_url that is not one of Mattermost's command hooks:
# the bot never sends there (the token rule in the module docstring).
FOREIGN_URL = "gateway.foreign_url"
# GET channels/{id}/members/{user_id} for someone not in the channel (app/constants.go MissingChannelMemberError).
NOT_A_MEMBER = "app.channel.get_member.missing.app_error"

# Mattermost's response URLs: <SiteURL>/hooks/commands/<26-character hook id> (app/command.go
# tryExecuteCustomCommand: `c.GetSiteURL() + "/hooks/commands/" + hook.Id`; ids from model.NewId).
_HOOK_PATH = re.compile(r"/hooks/commands/[a-z0-9]{26}$")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries. `attempts` counts the first try; delays are in seconds."""

    attempts: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 10.0
    # A Retry-After longer than this is not waited out: the caller gets the 429 instead of a stuck handler.
    retry_after_max: float = 60.0

    def backoff(self, attempt: int, rnd: float) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so retries of many
        concurrent calls spread out while each still waits at least half the nominal delay."""
        nominal = min(self.backoff_max, self.backoff_base * 2.0 ** attempt)
        return nominal / 2 + nominal / 2 * rnd


class _HttpError(MattermostError):
    """A MattermostError with what the retry loop needs to know about it."""

    def __init__(self, *args: Any, retry_after: float | None = None, not_sent: bool = False) -> None:
        super().__init__(*args)
        self.retry_after = retry_after  # seconds from a 429's Retry-After header
        self.not_sent = not_sent  # the request surely never reached the server


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the HTTP-date form, allowed by RFC 9110 although Mattermost sends seconds
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _PooledClient(Client):  # type: ignore[misc]  # mattermostdriver ships no types: Client is Any
    """mattermostdriver's Client with one pooled Session, timeouts and MattermostError.

    One attempt per call: retrying is the gateway's job (see module docstring).
    """

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.token = options["token"]
        self.session = requests.Session()
        pool = int(options["pool_size"])
        # max_retries=0: urllib3 must not retry behind our back (a POST could be sent twice unseen).
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # No session-wide Authorization: make_request adds the token to API calls only.
        self.session.headers["Accept"] = "application/json"
        # No cookies either: the bot authenticates by bearer token alone, and a cookie set on a reply to a
        # call made with a person's token (execute_command) must never ride along on the bot's calls.
        self.session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self.origins = {_origin(f"{options['scheme']}://{options['url']}:{options['port']}")}
        self.session.verify = options["verify"]

    def make_request(self, method: str, endpoint: str, options: Any = None, params: Any = None,
                     data: Any = None, files: Any = None, basepath: str | None = None) -> requests.Response:
        url = (self._url if basepath is None else
               f"{self._options['scheme']}://{self._options['url']}:{self._options['port']}{basepath}")
        path = self._basepath + endpoint if basepath is None else basepath + endpoint
        method = method.upper()
        kwargs: dict[str, Any] = {"params": params or None, "timeout": self.request_timeout,
                                  # requests drops it on a redirect to another host (Session.rebuild_auth).
                                  "headers": {"Authorization": f"Bearer {self.token}"}}
        # The stock client sends `json={}` on every GET; only send a body when there is one.
        if options is not None:
            kwargs["json"] = options
        if data:
            kwargs["data"] = data
        if files:
            kwargs["files"] = files
        try:
            response = self.session.request(method, url + endpoint, **kwargs)
        except requests.Timeout as exc:
            raise _HttpError(0, TIMEOUT, f"no answer within {self.request_timeout}s: {exc}", "", method,
                             path, not_sent=isinstance(exc, requests.ConnectTimeout)) from exc
        except requests.ConnectionError as exc:
            raise _HttpError(0, CONNECTION_ERROR, str(exc), "", method, path,
                             not_sent=_never_sent(exc)) from exc
        if response.status_code >= 400:
            raise _error_from_response(response, method, path)
        return response

    def _json(self, response: requests.Response, method: str, endpoint: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise MattermostError(response.status_code, BAD_RESPONSE, response.text[:200],
                                  response.headers.get("X-Request-ID", ""), method,
                                  self._basepath + endpoint) from None

    def get(self, endpoint: str, options: Any = None, params: Any = None) -> Any:
        return self._json(self.make_request("get", endpoint, options, params), "GET", endpoint)

    def post(self, endpoint: str, options: Any = None, params: Any = None, data: Any = None,
             files: Any = None) -> Any:
        return self._json(self.make_request("post", endpoint, options, params, data, files), "POST", endpoint)

    def put(self, endpoint: str, options: Any = None, params: Any = None, data: Any = None) -> Any:
        return self._json(self.make_request("put", endpoint, options, params, data), "PUT", endpoint)

    def delete(self, endpoint: str, options: Any = None, params: Any = None, data: Any = None) -> Any:
        return self._json(self.make_request("delete", endpoint, options, params, data), "DELETE", endpoint)

    def absolute(self, method: str, url: str, body: Any = None, token: str | None = None,
                 form: dict[str, str] | None = None) -> Any:
        """A call at Mattermost's origin outside /api/v4 (a command hook), or as another user (`token`,
        theirs, never the bot's). Any other origin is refused before a byte is sent."""
        path = urlsplit(url).path or url
        if _origin(url) not in self.origins:
            log.warning("refused to send outside Mattermost's origin method=%s url=%.200s", method, url)
            raise _HttpError(0, FOREIGN_URL, "not Mattermost's origin", "", method, path, not_sent=True)
        headers = {"Authorization": f"Bearer {token}"} if token is not None else None
        try:
            response = self.session.request(method, url, json=body, data=form, headers=headers,
                                            timeout=self.request_timeout, allow_redirects=False)
        except requests.Timeout as exc:
            raise _HttpError(0, TIMEOUT, f"no answer within {self.request_timeout}s: {exc}", "", method,
                             path, not_sent=isinstance(exc, requests.ConnectTimeout)) from exc
        except requests.ConnectionError as exc:
            raise _HttpError(0, CONNECTION_ERROR, str(exc), "", method, path, not_sent=_never_sent(exc)) from exc
        if response.status_code >= 400:
            raise _error_from_response(response, method, path)
        if response.headers.get("Content-Type", "").startswith("application/json"):
            return response.json()
        return response.text

    def close(self) -> None:
        self.session.close()


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return ("", "", 0)
    return scheme, (parts.hostname or "").lower(), port


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when opening the connection failed (refused, DNS, connect timeout), so no byte was sent.

    A reset or a dropped keep-alive connection after sending is NOT in this set: the server may have acted.
    requests wraps urllib3's MaxRetryError, whose `reason` is the NewConnectionError we look for.
    """
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)):
            return True
        for nxt in (getattr(cur, "reason", None), cur.__cause__, cur.__context__, *cur.args):
            if isinstance(nxt, BaseException):
                stack.append(nxt)
    return False


def _error_from_response(response: requests.Response, method: str, path: str) -> MattermostError:
    status = response.status_code
    request_id = response.headers.get("X-Request-ID", "")
    try:
        body = response.json()
    except ValueError:
        body = None
    retry_after = _parse_retry_after(response.headers.get("Retry-After"))
    if isinstance(body, dict) and "id" in body:
        return _HttpError(status, str(body.get("id") or ""), str(body.get("message") or ""),
                          str(body.get("request_id") or request_id), method, path, retry_after=retry_after)
    error_id = RATE_LIMITED if status == 429 else BAD_RESPONSE
    return _HttpError(status, error_id, response.text[:200], request_id, method, path,
                      retry_after=retry_after)


def _split_url(url: str) -> dict[str, Any]:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"Mattermost url must be http(s)://host[:port][/path], got {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"scheme": parts.scheme, "url": parts.hostname, "port": port,
            "basepath": parts.path.rstrip("/") + "/api/v4"}


class MattermostGateway:
    """`bot.models.Gateway` over Mattermost's REST API v4.

    Retries: 429 waits `Retry-After` (else backoff); 5xx, timeouts and connection errors back off
    exponentially with jitter, `retry.attempts` tries in all; other 4xx never retry. Non-idempotent POSTs
    (create post/channel/command/category, ephemeral, dialog open) are retried only when the request surely
    did not reach the server (429, or the connection could not be opened): a duplicate post or channel is
    worse than an error the caller can report.
    """

    def __init__(self, url: str, token: str, *, timeout: float = 10.0, connect_timeout: float = 5.0,
                 retry: RetryPolicy | None = None, max_workers: int = 8, verify: bool = True,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 random: Callable[[], float] = _random.random, metrics: ProcessMetrics | None = None) -> None:
        options = {**_split_url(url), "token": token, "verify": verify,
                   "request_timeout": (connect_timeout, timeout), "pool_size": max_workers}
        self.url = url
        self.driver = Driver(options, client_cls=_PooledClient)
        self.driver.client.token = token
        self.retry = retry or RetryPolicy()
        self.calls = 0
        # Each attempt's latency and failures, by the gateway method that made it (`/metrics`).
        self.metrics = metrics or ProcessMetrics()
        self._sleep = sleep
        self._random = random
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="mattermost")
        self._closed = False

    # -- plumbing ----------------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any, idempotent: bool = True) -> T:
        """Run one driver call in the pool, retrying as the class docstring says."""
        loop = asyncio.get_running_loop()
        # The metrics' `method` label: the gateway method calling (create_post, get_categories...), which
        # names the operation even where the driver call is a bare client.get/post/absolute.
        operation = sys._getframe(1).f_code.co_name
        attempt = 0
        while True:
            self.calls += 1
            started = time.perf_counter()
            try:
                result = await loop.run_in_executor(self._executor, functools.partial(fn, *args))
            except MattermostError as err:
                self.metrics.mattermost_call(operation, err.status, time.perf_counter() - started)
                attempt += 1
                delay = self._retry_delay(err, attempt, idempotent)
                if delay is None or attempt >= self.retry.attempts:
                    log.warning("mattermost call failed method=%s path=%s status=%s error_id=%s "
                                "request_id=%s attempts=%d", err.method, err.path, err.status,
                                err.error_id, err.request_id, attempt)
                    raise
                log.info("mattermost retry method=%s path=%s status=%s error_id=%s attempt=%d delay=%.2f",
                         err.method, err.path, err.status, err.error_id, attempt, delay)
                await self._sleep(delay)
            else:
                self.metrics.mattermost_call(operation, 200, time.perf_counter() - started)
                return result

    def _retry_delay(self, err: MattermostError, attempt: int, idempotent: bool) -> float | None:
        """Seconds to wait before the next attempt, or None when this error must not be retried."""
        backoff = self.retry.backoff(attempt - 1, self._random())
        if err.status == 429:
            # The rate limiter rejects before any handler runs, so even a POST is safe to repeat.
            retry_after = err.retry_after if isinstance(err, _HttpError) else None
            if retry_after is None:
                return backoff
            return retry_after if retry_after <= self.retry.retry_after_max else None
        not_sent = isinstance(err, _HttpError) and err.not_sent
        if err.status == 0:
            return backoff if (idempotent or not_sent) else None
        if err.status >= 500 and idempotent:
            return backoff
        return None

    # -- users and teams -----------------------------------------------------------------------------

    async def me(self) -> MMUser:
        return MMUser.from_json(await self._call(self.driver.users.get_user, "me"))

    async def get_user(self, user_id: str) -> MMUser:
        return MMUser.from_json(await self._call(self.driver.users.get_user, user_id))

    async def get_users_by_ids(self, user_ids: list[str]) -> list[MMUser]:
        if not user_ids:  # the server answers 400 to an empty list
            return []
        data = await self._call(self.driver.users.get_users_by_ids, list(user_ids))
        return [MMUser.from_json(u) for u in data]

    async def get_users_by_usernames(self, usernames: list[str]) -> list[MMUser]:
        if not usernames:
            return []
        data = await self._call(self.driver.users.get_users_by_usernames, [u.lower() for u in usernames])
        return [MMUser.from_json(u) for u in data]

    async def get_user_by_email(self, email: str) -> MMUser | None:
        """The user with this email, or None when there is none. `GET /users/email/{email}` (api4/user.go
        getUserByEmail): 404 when no account has it; 403 when the server hides emails from the bot
        (PrivacySettings.ShowEmailAddress off and the bot not a system admin), raised as MattermostError."""
        try:
            return MMUser.from_json(await self._call(self.driver.users.get_user_by_email, email))
        except MattermostError as err:
            if err.status == 404:
                return None
            raise

    # -- groups ------------------------------------------------------------------------------------

    async def user_group_names(self, user_id: str) -> list[str]:
        """The names of the groups `user_id` is in. `GET /groups?filter_has_member=` (api4/group.go
        getGroups) rather than `GET /users/{id}/groups`: the latter needs manage_system unless asking about
        yourself and the licence's LDAPGroups feature even for custom groups (getGroupsByUserId), while this
        needs only a licence with custom groups. 501 without a licence; not retried (idempotent=False: a
        5xx here is an answer, not a hiccup, and 501 is what an unlicensed server always says)."""
        names: list[str] = []
        page = 0
        while True:
            data = await self._call(self.driver.client.get, "/groups", None, {
                "filter_has_member": user_id, "page": page, "per_page": 200}, idempotent=False)
            names.extend(g["name"] for g in data or [] if g.get("name"))
            if len(data or []) < 200:
                return names
            page += 1

    async def group_names(self, query: str) -> list[str]:
        """The names of the groups whose name or display name contains `query` (`GET /groups?q=`)."""
        data = await self._call(self.driver.client.get, "/groups", None, {"q": query, "per_page": 200},
                                idempotent=False)
        return [g["name"] for g in data or [] if g.get("name")]

    async def my_teams(self) -> list[MMTeam]:
        return [MMTeam.from_json(t) for t in await self._call(self.driver.teams.get_user_teams, "me")]

    async def get_team(self, team_id: str) -> MMTeam:
        return MMTeam.from_json(await self._call(self.driver.teams.get_team, team_id))

    async def get_team_by_name(self, name: str) -> MMTeam:
        return MMTeam.from_json(await self._call(self.driver.teams.get_team_by_name, name))

    # -- slash commands ------------------------------------------------------------------------------

    async def list_commands(self, team_id: str) -> list[MMCommand]:
        # custom_only=true: without it custom commands come back with token/url blanked.
        data = await self._call(self.driver.commands.list_commands_for_team,
                                {"team_id": team_id, "custom_only": "true"})
        return [MMCommand.from_json(c) for c in data]

    async def create_command(self, team_id: str, trigger: str, url: str, *, display_name: str = "",
                             description: str = "", auto_complete_desc: str = "",
                             auto_complete_hint: str = "", username: str = "",
                             icon_url: str = "") -> MMCommand:
        body = {"team_id": team_id, "trigger": trigger, "url": url, "method": "P",
                "display_name": display_name, "description": description, "auto_complete": True,
                "auto_complete_desc": auto_complete_desc, "auto_complete_hint": auto_complete_hint,
                "username": username, "icon_url": icon_url}
        return MMCommand.from_json(await self._call(self.driver.commands.create_command, body,
                                                    idempotent=False))

    async def update_command(self, command: MMCommand) -> MMCommand:
        body = {"id": command.id, "team_id": command.team_id, "trigger": command.trigger,
                "url": command.url, "method": command.method, "token": command.token,
                "creator_id": command.creator_id, "display_name": command.display_name,
                "description": command.description, "auto_complete": command.auto_complete,
                "auto_complete_desc": command.auto_complete_desc,
                "auto_complete_hint": command.auto_complete_hint,
                "username": command.username, "icon_url": command.icon_url}
        # Not driver.commands.update_command: 7.3.2 builds "/commands" + id with no slash between.
        return MMCommand.from_json(await self._call(self.driver.client.put, f"/commands/{command.id}", body))

    # -- channels ------------------------------------------------------------------------------------

    async def create_channel(self, team_id: str, name: str, display_name: str, *, private: bool,
                             purpose: str = "", header: str = "") -> MMChannel:
        body = {"team_id": team_id, "name": name, "display_name": display_name,
                "type": "P" if private else "O", "purpose": purpose, "header": header}
        # Not retried on 5xx: a retry after a lost answer would fail with save_channel.exists.
        return MMChannel.from_json(await self._call(self.driver.channels.create_channel, body,
                                                    idempotent=False))

    async def get_channel(self, channel_id: str) -> MMChannel:
        return MMChannel.from_json(await self._call(self.driver.channels.get_channel, channel_id))

    async def get_channel_by_name(self, team_id: str, name: str) -> MMChannel:
        return MMChannel.from_json(await self._call(self.driver.channels.get_channel_by_name, team_id, name))

    async def add_channel_member(self, channel_id: str, user_id: str) -> None:
        # Idempotent on the server (an existing member gets 201 and no event), so safe to retry.
        await self._call(self.driver.channels.add_user, channel_id, {"user_id": user_id})

    async def get_channel_member_ids(self, channel_id: str) -> list[str]:
        per_page = 200  # the route's maximum
        ids: list[str] = []
        page = 0
        while True:
            data = await self._call(self.driver.channels.get_channel_members, channel_id,
                                    {"page": page, "per_page": per_page})
            ids.extend(m["user_id"] for m in data)
            if len(data) < per_page:
                return ids
            page += 1

    async def is_channel_member(self, channel_id: str, user_id: str) -> bool:
        """Whether `user_id` is in the channel (GET channels/{id}/members/{user_id}: 404 when not). A channel
        the bot may not read answers 403 or 404 for the channel itself: that is raised, not False."""
        try:
            await self._call(self.driver.channels.get_channel_member, channel_id, user_id)
        except MattermostError as err:
            if err.status == 404 and err.error_id == NOT_A_MEMBER:
                return False
            raise
        return True

    async def set_channel_admin(self, channel_id: str, user_id: str) -> None:
        await self._call(self.driver.channels.update_scheme_derived_roles_of_channel_member,
                         channel_id, user_id, {"scheme_admin": True, "scheme_user": True})

    async def direct_channel(self, user_a: str, user_b: str) -> MMChannel:
        # The server returns the existing DM on repeat, so this POST is idempotent.
        return MMChannel.from_json(await self._call(self.driver.channels.create_direct_message_channel,
                                                    [user_a, user_b]))

    async def archive_channel(self, channel_id: str) -> None:
        await self._call(self.driver.channels.delete_channel, channel_id)

    async def restore_channel(self, channel_id: str) -> None:
        await self._call(self.driver.channels.restore_channel, channel_id)

    # -- posts ---------------------------------------------------------------------------------------

    async def create_post(self, channel_id: str, message: str, *, props: dict[str, Any] | None = None,
                          root_id: str = "", file_ids: list[str] | None = None) -> MMPost:
        body: dict[str, Any] = {"channel_id": channel_id, "message": message}
        if root_id:
            body["root_id"] = root_id
        if props:
            body["props"] = props
        if file_ids:
            body["file_ids"] = list(file_ids)
        return MMPost.from_json(await self._call(self.driver.posts.create_post, body, idempotent=False))

    async def upload_file(self, channel_id: str, filename: str, content: bytes,
                          content_type: str = "application/octet-stream") -> str:
        """Upload one file to a channel (multipart POST /api/v4/files); its id, to attach with create_post.
        Not retried on 5xx: a second upload would leave a second, orphaned file."""
        files = {"files": (filename, content, content_type)}
        data = await self._call(self.driver.files.upload_file, channel_id, files, idempotent=False)
        infos = data.get("file_infos") if isinstance(data, dict) else None
        if not infos or not isinstance(infos[0], dict) or not infos[0].get("id"):
            raise MattermostError(201, BAD_RESPONSE, "the upload answer names no file", "", "POST", "/files")
        return str(infos[0]["id"])

    async def update_post(self, post_id: str, message: str | None, props: dict[str, Any] | None) -> MMPost:
        # PATCH, not PUT: PUT replaces props wholesale, so props=None would wipe the buttons. message=None
        # leaves it out: past ServiceSettings.PostEditTimeLimit a patch that names `message` at all is
        # refused (api4/post.go postPatchChecks), one that changes only props goes through.
        body: dict[str, Any] = {} if message is None else {"message": message}
        if props is not None:
            body["props"] = props
        return MMPost.from_json(await self._call(self.driver.posts.patch_post, post_id, body))

    async def pin_post(self, post_id: str) -> None:
        """Pin a post to its channel: `POST /posts/{post_id}/pin` (api4/post.go pinPost ->
        saveIsPinnedPost: read permission on the channel, then a patch of is_pinned; 200 {"status":"OK"}).
        Pinning twice is harmless."""
        await self._call(self.driver.posts.pin_post_to_channel, post_id)

    async def delete_post(self, post_id: str) -> None:
        # A post already deleted (or never there) answers 403 like a refusal (api4/post.go deletePost
        # looks the post up and answers a permission error when it cannot).
        await self._call(self.driver.posts.delete_post, post_id)

    async def get_post(self, post_id: str) -> MMPost:
        return MMPost.from_json(await self._call(self.driver.posts.get_post, post_id))

    async def get_channel_posts(self, channel_id: str, per_page: int = 60, page: int = 0) -> list[MMPost]:
        # A PostList: `order` newest first, `posts` by id (api4/post.go getPostsForChannel).
        data = await self._call(self.driver.posts.get_posts_for_channel, channel_id,
                                {"page": max(0, page), "per_page": max(1, min(200, per_page))})
        posts = data.get("posts") or {}
        return [MMPost.from_json(posts[pid]) for pid in data.get("order") or [] if pid in posts]

    async def send_ephemeral(self, user_id: str, channel_id: str, message: str, *,
                             props: dict[str, Any] | None = None, root_id: str = "") -> None:
        post: dict[str, Any] = {"channel_id": channel_id, "message": message}
        if props:
            post["props"] = props
        if root_id:  # shown in that thread
            post["root_id"] = root_id
        await self._call(self.driver.posts.create_ephemeral_post, {"user_id": user_id, "post": post},
                         idempotent=False)

    async def open_dialog(self, trigger_id: str, url: str, dialog: dict[str, Any]) -> None:
        # Not retried on 5xx: a second open would show the dialog twice; trigger ids also expire fast.
        await self._call(self.driver.integration_actions.open_dialog,
                         {"trigger_id": trigger_id, "url": url, "dialog": dialog}, idempotent=False)

    async def respond(self, response_url: str, text: str) -> None:
        # Only Mattermost's own command hooks, answered at Mattermost's origin with no Authorization: a
        # request naming any other URL is refused and logged (it would have been a way to the token).
        hook = _HOOK_PATH.search(urlsplit(response_url).path)
        if _origin(response_url) not in self.driver.client.origins or hook is None:
            log.warning("refused a response_url that is not a Mattermost command hook url=%.200s", response_url)
            raise MattermostError(0, FOREIGN_URL, "not a Mattermost command hook", "", "POST", "response_url")
        # Each use counts against the hook's 5 uses, and a repeat would show the text twice: no 5xx retry.
        await self._call(self.driver.client.absolute, "POST", response_url,
                         command_response(text), idempotent=False)

    async def client_config(self) -> dict[str, str]:
        """The client config (`?format=old`: a flat map of strings; no session needed). Its SiteURL is
        Mattermost's public name: remembered as Mattermost's origin too (response URLs point there)."""
        base = self.driver.client.url
        config = await self._call(self.driver.client.absolute, "GET", f"{base}/config/client?format=old")
        if not isinstance(config, dict):
            raise MattermostError(0, BAD_RESPONSE, "the client config is not a JSON object", "", "GET",
                                  "/api/v4/config/client")
        values = {str(k): str(v) for k, v in config.items()}
        site = values.get("SiteURL", "")
        if site.startswith(("http://", "https://")):
            self.driver.client.origins.add(_origin(site))
        return values

    async def whoami(self, token: str) -> tuple[MMUser, list[str]]:
        base = self.driver.client.url
        user = await self._call(self.driver.client.absolute, "GET", f"{base}/users/me", None, token)
        teams = await self._call(self.driver.client.absolute, "GET", f"{base}/users/me/teams", None, token)
        return MMUser.from_json(user), [t["id"] for t in teams]

    async def user_team_ids(self, user_id: str) -> list[str]:
        return [t["id"] for t in await self._call(self.driver.client.get, f"/users/{user_id}/teams")]

    # -- OAuth 2.0 (the web view's sign-in; api4/oauth.go, web/oauth.go) ---------------------------------

    def _site(self, path: str) -> str:
        # The OAuth endpoints live at the site root, beside /api/v4 (web/oauth.go InitOAuth).
        return str(self.driver.client.url).removesuffix("/api/v4") + path

    async def register_oauth_app(self, *, name: str, description: str, homepage: str, callback_url: str,
                                 trusted: bool) -> tuple[str, str]:
        body = {"name": name, "description": description, "homepage": homepage,
                "callback_urls": [callback_url], "is_trusted": trusted}
        data = await self._call(self.driver.client.post, "/oauth/apps", body, idempotent=False)
        return str(data["id"]), str(data["client_secret"])

    async def oauth_app_exists(self, client_id: str) -> bool:
        try:
            await self._call(self.driver.client.get, f"/oauth/apps/{client_id}/info")
        except MattermostError as err:
            if err.status == 404:
                return False
            raise
        return True

    async def oauth_apps(self) -> list[dict[str, Any]]:
        """The OAuth apps the bot may see (`GET /oauth/apps`, manage_oauth): `id`, `name`, `callback_urls`."""
        data = await self._call(self.driver.client.get, "/oauth/apps", None, {"per_page": 200})
        return [a for a in data or [] if isinstance(a, dict)]

    async def oauth_token(self, fields: dict[str, str]) -> OAuthTokens:
        # A code is single-use: never send it twice (no 5xx retry), and no bot token goes with it.
        data = await self._call(self.driver.client.absolute, "POST", self._site("/oauth/access_token"), None,
                                None, dict(fields), idempotent=False)
        if not isinstance(data, dict):
            raise MattermostError(0, BAD_RESPONSE, "the token endpoint did not answer JSON", "", "POST",
                                  "/oauth/access_token")
        return OAuthTokens.from_json(data)

    async def oauth_deauthorize(self, token: str, client_id: str) -> None:
        await self._call(self.driver.client.absolute, "POST", self._site("/oauth/deauthorize"),
                         {"client_id": client_id}, token)

    # -- as a person (their own token, from the web view's sign-in) ------------------------------------

    async def execute_command(self, token: str, channel_id: str, team_id: str, command: str,
                              root_id: str = "") -> MMCommandResponse:
        # The person's token rides on this one request (`absolute`: Mattermost's origin only, no redirect
        # followed, no session-wide header, no cookie kept), is never logged, and never meets the bot's.
        # Not retried on 5xx or a timeout: the command may have run already (a 429 is refused before any
        # handler runs, so that alone may be repeated).
        if not token:
            raise ValueError("execute_command needs the person's own token")
        body: dict[str, str] = {"channel_id": channel_id, "team_id": team_id, "command": command}
        if root_id:
            body["root_id"] = root_id
        data = await self._call(self.driver.client.absolute, "POST", f"{self.driver.client.url}/commands/execute",
                                body, token, idempotent=False)
        return MMCommandResponse.from_json(data)

    # -- sidebar categories --------------------------------------------------------------------------

    def _categories_path(self, user_id: str, team_id: str) -> str:
        return f"/users/{user_id}/teams/{team_id}/channels/categories"

    async def get_categories(self, user_id: str, team_id: str) -> list[MMCategory]:
        data = await self._call(self.driver.client.get, self._categories_path(user_id, team_id))
        by_id = {c["id"]: MMCategory.from_json(c) for c in data.get("categories") or []}
        order = [cid for cid in data.get("order") or [] if cid in by_id]
        return [by_id[cid] for cid in order] + [c for cid, c in by_id.items() if cid not in order]

    async def create_category(self, user_id: str, team_id: str, display_name: str,
                              channel_ids: list[str]) -> MMCategory:
        path = self._categories_path(user_id, team_id)
        body = {"user_id": user_id, "team_id": team_id, "display_name": display_name,
                "channel_ids": list(channel_ids)}
        try:
            data = await self._call(self.driver.client.post, path, body, idempotent=False)
        except MattermostError as err:
            if err.status != 404:
                raise
            # The server 404s a create while the user has no categories yet; a GET makes the defaults.
            await self.get_categories(user_id, team_id)
            data = await self._call(self.driver.client.post, path, body, idempotent=False)
        return MMCategory.from_json(data)

    async def update_category(self, category: MMCategory) -> MMCategory:
        path = f"{self._categories_path(category.user_id, category.team_id)}/{category.id}"
        return MMCategory.from_json(await self._call(self.driver.client.put, path, category.to_json()))

    async def update_categories(self, user_id: str, team_id: str,
                                categories: list[MMCategory]) -> list[MMCategory]:
        # One PUT, one transaction on the server: the only way to move a channel between categories, since
        # an update rewrites the rows of the categories it names and of no other.
        body = [c.to_json() for c in categories]
        data = await self._call(self.driver.client.put, self._categories_path(user_id, team_id), body)
        return [MMCategory.from_json(c) for c in data or []]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.driver.client.close()
