"""The bot's HTTP server: what Mattermost calls (slash command, buttons, dialogs) and the REST API.

Each route verifies the caller, turns the request into a typed object, dispatches it, and turns the
reply into Mattermost's JSON. Handlers never see aiohttp.
- Slash commands carry the command's token (form field and `Authorization: Token`); it must be one
  of the tokens of the commands this bot registered.
- Buttons and dialogs carry no auth header (Mattermost sends none to external URLs), so the signed
  reference in their context/state is the proof; a forged or unsigned one gets 403 and changes nothing.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import Any

from aiohttp import web

from bot import metrics as prometheus
from bot import posts
from bot.actions import MAX_STATE, ForgedAction
from bot.context import Context
from bot.domain.permissions import Viewer
from bot.models import MattermostError, MMUser, command_response
from bot.notify import follow_up
from bot.proof import Proofs, Unproven
from bot.router import (
    Click,
    DialogErrors,
    DialogSubmission,
    Dispatcher,
    Ephemeral,
    HttpHandler,
    HttpJson,
    HttpReply,
    HttpRequest,
    HttpText,
    NoReply,
    OpenDialog,
    Reply,
    SlashCommand,
    UpdatePost,
    split_args,
)
from storage import metrics as metric_rows
from storage.db import StorageError

log = logging.getLogger(__name__)

# Mattermost reads at most 1 MiB of an integration's answer; bodies we accept are bounded likewise.
MAX_BODY = 1024 * 1024
# What Mattermost sends to buttons and dialogs is at most three levels deep (the body, `context` or
# `submission`, the signed reference's field list); anything far deeper was not sent by Mattermost.
MAX_DEPTH = 16
# The fields of Mattermost's PostActionIntegrationRequest and SubmitDialogRequest and their JSON types.
# Another type is refused with 400 rather than turned into text ("['a']"); null counts as absent.
_BODY_TYPES: dict[str, type] = {
    **dict.fromkeys(("user_id", "user_name", "channel_id", "channel_name", "team_id", "team_name", "post_id",
                     "trigger_id", "type", "data_source", "url", "callback_id", "state"), str),
    "context": dict, "submission": dict, "cancelled": bool,
}


class CommandTokens:
    """Tokens of the /playbook commands, each valid only for the team it was issued for.

    Mattermost sends a command's token with every request of that command, and a team admin can read
    their team's token: a token proves the team, never the user (the trigger id does that, bot/proof.py).
    Tokens configured by hand without a team (`command_tokens = ["..."]`, the old form) are accepted only
    for teams the bot is in that have no token of their own; `"team-name:token"` binds one to its team.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}  # team_id -> token
        self._unbound: list[str] = []

    def set(self, team_id: str, token: str) -> None:
        self._tokens[team_id] = token

    def add_unbound(self, token: str) -> None:
        self._unbound.append(token)

    def valid(self, token: str, team_id: str, known_teams: Collection[str] = ()) -> bool:
        if not token or not team_id:
            return False
        mine = self._tokens.get(team_id)
        if mine is not None:
            return hmac.compare_digest(token, mine)
        return team_id in known_teams and any(hmac.compare_digest(token, t) for t in self._unbound)

    @property
    def unbound(self) -> int:
        return len(self._unbound)

    def __len__(self) -> int:
        return len(self._tokens) + len(self._unbound)


class ViewerCache:
    """Who a REST API caller is (their own Mattermost token), remembered for a minute."""

    def __init__(self, ttl_s: float = 60.0) -> None:
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, MMUser, frozenset[str]]] = {}

    def get(self, token: str) -> tuple[MMUser, frozenset[str]] | None:
        hit = self._cache.get(token)
        if hit and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1], hit[2]
        return None

    def put(self, token: str, user: MMUser, team_ids: frozenset[str]) -> None:
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (time.monotonic(), user, team_ids)


class RefusedTokens:
    """Tokens Mattermost refused, remembered briefly, and how many refusals each caller address had in the
    last minute: random tokens must not each cost a Mattermost call (the API answers 429 past the limit)."""

    def __init__(self, ttl_s: float = 60.0, per_address: int = 10) -> None:
        self.ttl_s = ttl_s
        self.per_address = per_address
        self._tokens: dict[str, float] = {}  # sha256 of the token -> when refused
        self._addresses: dict[str, list[float]] = {}
        self._warned: dict[str, float] = {}

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def refused(self, token: str) -> bool:
        at = self._tokens.get(self._key(token))
        return at is not None and time.monotonic() - at < self.ttl_s

    def over_limit(self, address: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self._addresses.get(address, []) if now - t < self.ttl_s]
        self._addresses[address] = recent
        return len(recent) >= self.per_address

    def first_over(self, address: str) -> bool:
        """True once per address and minute: say so in the log once, not once per request."""
        now = time.monotonic()
        if now - self._warned.get(address, float("-inf")) < self.ttl_s:
            return False
        if len(self._warned) > 10_000:
            self._warned.clear()
        self._warned[address] = now
        return True

    def note(self, token: str, address: str) -> None:
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        if len(self._addresses) > 10_000:
            self._addresses.clear()
        now = time.monotonic()
        self._tokens[self._key(token)] = now
        self._addresses.setdefault(address, []).append(now)


def command_json(reply: Reply) -> dict[str, Any]:
    if isinstance(reply, Ephemeral):
        return command_response(reply.text, reply.attachments)
    return {}


def action_json(reply: Reply) -> dict[str, Any]:
    # skip_slack_parsing: the ephemeral text reaches the person as written, not with Slack's `<a|b>`
    # rewritten (app/integration_action.go DoPostActionWithCookie: ParseSlackLinksToMarkdown unless set).
    if isinstance(reply, UpdatePost):
        # `update` replaces the whole post: always resend the message, or Mattermost blanks it.
        body: dict[str, Any] = {"update": {"message": reply.message, "props": reply.props}}
        if reply.ephemeral_text:
            body["ephemeral_text"] = reply.ephemeral_text
            body["skip_slack_parsing"] = True
        return body
    if isinstance(reply, Ephemeral):
        return {"ephemeral_text": reply.text, "skip_slack_parsing": True}
    return {}


def dialog_json(reply: Reply) -> dict[str, Any]:
    if isinstance(reply, DialogErrors):
        body: dict[str, Any] = {}
        if reply.errors:
            body["errors"] = reply.errors
        if reply.error:
            body["error"] = reply.error
        return body
    return {}


class BotServer:
    def __init__(self, ctx: Context, dispatcher: Dispatcher, tokens: CommandTokens,
                 health: Callable[[], dict[str, bool]], proofs: Proofs,
                 report: Callable[[], Awaitable[tuple[dict[str, bool], list[str]]]]) -> None:
        self.ctx = ctx
        self.dispatcher = dispatcher
        self.tokens = tokens
        self.health = health
        self.proofs = proofs
        self.report = report
        self.viewers = ViewerCache()
        self.refused = RefusedTokens()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/mattermost/command", self.slash_command)
        app.router.add_post("/mattermost/action", self.action)
        app.router.add_post("/mattermost/dialog", self.dialog)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/api/v0/openapi.json", self.openapi)  # the API's description: no sign-in
        for (method, path), handler in sorted(self.dispatcher.router.http_routes.items()):
            public = (method, path) in self.dispatcher.router.public_http
            app.router.add_route(method, path, self._public(handler) if public else self._api(handler))
        return app

    # -- Mattermost -> bot -------------------------------------------------------------------------
    async def slash_command(self, request: web.Request) -> web.Response:
        form = await _form_body(request)
        header = request.headers.get("Authorization", "")
        token = header[6:].strip() if header.lower().startswith("token ") else str(form.get("token", ""))
        team_id, user_id = str(form.get("team_id", "")), str(form.get("user_id", ""))
        if not self.tokens.valid(token, team_id, self.ctx.teams):
            log.warning("refused a slash command: not this team's /playbook token team=%.40s remote=%s",
                        team_id, request.remote)
            return web.json_response(
                command_response("This request did not come from a registered /playbook command."), status=401)
        try:
            await self.proofs.trigger(str(form.get("trigger_id", "")), user_id)
        except Unproven as err:
            log.warning("refused a slash command: %s user=%.40s team=%.40s remote=%s", err, user_id, team_id,
                        request.remote)
            return web.json_response(command_response(self.ctx.render("errors/unproven.md.j2")), status=401)
        # The user is proven; the name the request gives is not: take Mattermost's (cached briefly).
        user = await self.ctx.users.get(user_id)
        text = str(form.get("text", ""))
        cmd = SlashCommand(
            user_id=user_id, user_name=user.username if user is not None else "",
            channel_id=str(form.get("channel_id", "")), channel_name=str(form.get("channel_name", "")),
            team_id=str(form.get("team_id", "")), team_domain=str(form.get("team_domain", "")),
            command=str(form.get("command", "")), text=text, trigger_id=str(form.get("trigger_id", "")),
            response_url=str(form.get("response_url", "")), args=split_args(text),
        )
        self.ctx.metrics.request("command")
        reply = await self.dispatcher.command(cmd, self.ctx)
        if isinstance(reply, OpenDialog):
            self._open_dialog(cmd.trigger_id, reply, cmd.user_id, cmd.channel_id, cmd.response_url)
            return web.json_response({})
        return web.json_response(command_json(reply))

    async def action(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        if body is None:
            return web.json_response({"error": "The request body is not JSON."}, status=400)
        try:
            ref = self.ctx.signer.unpack(body.get("context"))
        except ForgedAction as exc:
            log.warning("refused an unsigned or forged click reason=%s user=%.40s", exc, body.get("user_id"))
            return web.json_response({"error": "This button was not made by this bot."}, status=403)
        user_id = str(body.get("user_id", ""))
        try:
            await self.proofs.trigger(str(body.get("trigger_id", "")), user_id)
        except Unproven as err:
            log.warning("refused a click: %s user=%.40s remote=%s", err, user_id, request.remote)
            return web.json_response({"error": self.ctx.render("errors/unproven.md.j2")}, status=403)
        context = body.get("context") or {}
        click = Click(user_id=str(body.get("user_id", "")), user_name=str(body.get("user_name", "")),
                      channel_id=str(body.get("channel_id", "")), team_id=str(body.get("team_id", "")),
                      post_id=str(body.get("post_id", "")), trigger_id=str(body.get("trigger_id", "")),
                      ref=ref, selected_option=str(context.get("selected_option", "")))
        self.ctx.metrics.request("click")
        reply = await self.dispatcher.click(click, self.ctx)
        if isinstance(reply, OpenDialog):
            self._open_dialog(click.trigger_id, reply, click.user_id, click.channel_id)
            return web.json_response({})
        if not (isinstance(reply, UpdatePost) and reply.refresh is not None):
            return web.json_response(action_json(reply))
        response: web.StreamResponse | None = None

        async def send(answer: Reply) -> None:
            nonlocal response
            response = web.json_response(action_json(answer))
            await response.prepare(request)
            await response.write_eof()

        # Without a WebSocket no post_edited can come: do not hold the next click up for nothing.
        await posts.answer_click(self.ctx, click.post_id, reply, send,
                                 wait_applied=self.health().get("mattermost_websocket", True))
        assert response is not None
        return response

    async def dialog(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if body is None:
            return web.json_response({"error": "The request body is not JSON."}, status=400)
        try:
            state = self.ctx.signer.unpack_state(body.get("state"))
        except ForgedAction as exc:
            log.warning("refused a forged dialog reason=%s user=%.40s", exc, body.get("user_id"))
            return web.json_response({"error": "This form was not made by this bot."}, status=403)
        # Mattermost sets `user_id` to whoever submits; the state says whom the form was opened for.
        if body.get("user_id") != state.user_id:
            log.warning("refused a dialog submitted by someone it was not opened for user=%.40s for=%s",
                        body.get("user_id"), state.user_id)
            return web.json_response({"error": "This form was opened for someone else."}, status=403)
        cancelled = body.get("cancelled") is True
        now = self.ctx.clock.now_ms()
        if not cancelled and now > state.expires_at:
            return web.json_response(dialog_json(DialogErrors(error=self.ctx.render("errors/dialog_expired.md.j2"))))
        nonce = f"d:{state.nonce}"
        if not cancelled and not await self.proofs.spend(nonce, "dialog", now):
            log.warning("refused a dialog submitted twice user=%s kind=%s", state.user_id, state.ref.kind)
            return web.json_response(dialog_json(DialogErrors(error=self.ctx.render("errors/dialog_used.md.j2"))))
        submission = body.get("submission") or {}
        sub = DialogSubmission(user_id=state.user_id, channel_id=state.channel_id, team_id=state.team_id,
                               callback_id=str(body.get("callback_id", "")), ref=state.ref,
                               submission=submission if isinstance(submission, dict) else {},
                               cancelled=cancelled)
        self.ctx.metrics.request("dialog")
        reply = await self.dispatcher.dialog(sub, self.ctx)
        if isinstance(reply, DialogErrors) and not cancelled:
            await self.proofs.unspend(nonce)  # the form stays open to be corrected and sent again
        return web.json_response(dialog_json(reply))

    def _open_dialog(self, trigger_id: str, reply: OpenDialog, user_id: str, channel_id: str,
                     response_url: str = "") -> None:
        """Opening a dialog is a Mattermost call: do it right after answering, not before."""
        ctx = self.ctx
        follow_up(ctx, ctx.gateway.open_dialog(trigger_id, reply.url or ctx.dialog_url, reply.dialog),
                  name="open-dialog", user_id=user_id, channel_id=channel_id, response_url=response_url,
                  failure=lambda: ctx.render("errors/dialog_failed.md.j2"))

    # -- health and REST API -----------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        checks, problems = await self.report()
        ok = all(checks.values())
        return web.json_response({"ok": ok, "checks": checks, "problems": problems}, status=200 if ok else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus text format for operators (bot/metrics.py), not a page for people: no sign-in. It
        answers this machine, and anyone with `[metrics] token` as a bearer token; else 401 or 403."""
        refusal = metrics_refusal(request, self.ctx.settings.metrics.token)
        if refusal is not None:
            status, text = refusal
            log.warning("refused a /metrics scrape status=%d remote=%s", status, request.remote)
            headers = {"WWW-Authenticate": 'Bearer realm="metrics"'} if status == 401 else None
            return web.Response(status=status, text=text, headers=headers)
        try:
            snapshot: metric_rows.Snapshot | None = await asyncio.wait_for(
                self.ctx.db.run(metric_rows.snapshot, self.ctx.clock.now_ms(), readonly=True), METRICS_DB_S)
        except (StorageError, asyncio.TimeoutError) as err:
            log.warning("/metrics: the database did not answer: %s", err or "timeout")
            snapshot = None  # the process's own counters still go out, with playbooks_database_up 0
        return web.Response(body=prometheus.exposition(self.ctx.metrics, snapshot),
                            headers={"Content-Type": prometheus.CONTENT_TYPE})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=OPENAPI_PATH.read_bytes(), content_type="application/json")

    def _api(self, handler: HttpHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def route(request: web.Request) -> web.Response:
            header = request.headers.get("Authorization", "")
            if not header.lower().startswith("bearer ") or not header[7:].strip():
                return web.json_response({"error": "Send your Mattermost token as `Authorization: Bearer <token>`."},
                                         status=401)
            token = header[7:].strip()
            if not token.isascii() or not token.isprintable():  # no Mattermost token is; never sent on
                return web.json_response({"error": "Mattermost does not accept this token."}, status=401)
            address = request.remote or ""
            who = self.viewers.get(token)
            if who is None:
                if self.refused.refused(token):
                    return web.json_response({"error": "Mattermost does not accept this token."}, status=401)
                if self.refused.over_limit(address):
                    if self.refused.first_over(address):
                        log.warning("API: too many refused tokens, answering 429 for a minute remote=%s", address)
                    return web.json_response({"error": "Too many requests with tokens Mattermost refused; wait a "
                                                       "minute."}, status=429, headers={"Retry-After": "60"})
                try:
                    user, team_ids = await self.ctx.gateway.whoami(token)
                except MattermostError as err:
                    if err.status == 401:
                        self.refused.note(token, address)
                        return web.json_response({"error": "Mattermost does not accept this token."}, status=401)
                    return web.json_response({"error": f"Mattermost did not answer ({err.status})."}, status=502)
                who = (user, frozenset(team_ids))
                self.viewers.put(token, *who)
            raw = await request.read() if request.method in ("POST", "PUT", "PATCH") else b""
            headers = {k.lower(): v for k, v in request.headers.items()}
            try:
                groups = await self.ctx.viewer_groups(who[0].id)
                hidden = self.ctx.playbooks_hidden_from(Viewer(who[0].id, who[0].is_admin, who[1],
                                                               username=who[0].username, groups=groups))
                reply = await handler(HttpRequest(who[0], who[1], dict(request.query), dict(request.match_info),
                                                  hidden, raw, headers, groups), self.ctx)
            except StorageError:
                log.exception("API: the database failed path=%s", request.path)
                return database_unavailable()
            return http_response(reply)

        return route


    def _public(self, handler: HttpHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        """A route that proves its caller itself (a vendor's webhook): the raw body as sent (a signature is
        over its bytes), at most MAX_BODY (413 beyond), the headers with lower-case names."""
        async def route(request: web.Request) -> web.Response:
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return web.json_response({"error": f"The body is larger than {MAX_BODY} bytes."}, status=413)
            headers = {k.lower(): v for k, v in request.headers.items()}
            anonymous = MMUser(id="", username="")
            try:
                reply = await handler(HttpRequest(anonymous, frozenset(), dict(request.query), dict(request.match_info),
                                                  body=raw, headers=headers), self.ctx)
            except StorageError:
                log.exception("hook: the database failed path=%s", request.path)
                return database_unavailable()
            return http_response(reply)

        return route


def database_unavailable() -> web.Response:
    """503 with Retry-After when the database fails under an API or hook request: the caller tries again."""
    return web.json_response({"error": "The bot's database is not answering just now; try again shortly."},
                             status=503, headers={"Retry-After": "5"})


def http_response(reply: HttpReply) -> web.Response:
    """An HTTP handler's answer as aiohttp sends it (the API's routes and the public hooks alike)."""
    if isinstance(reply, HttpText):
        extra = {"Content-Disposition": f'attachment; filename="{reply.filename}"'} if reply.filename else {}
        return web.Response(text=reply.text, status=reply.status, content_type=reply.content_type,
                            charset="utf-8", headers=extra)
    if isinstance(reply, HttpJson):
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)
    status, body = reply
    return web.json_response(body, status=status)


# The OpenAPI 3.1 description of /api/v0 (the runs and playbooks routes), served as it is.
OPENAPI_PATH = Path(__file__).resolve().parent / "openapi.json"
METRICS_DB_S = 5.0  # a scrape waits this long for the database's counts


def metrics_refusal(request: web.Request, token: str) -> tuple[int, str] | None:
    """None when `request` may read /metrics, else (status, why in words).

    Loopback counts only when no proxy forwarded the request: behind a reverse proxy on the same machine
    every request arrives from 127.0.0.1, and the proxy's headers are what tell it came from elsewhere."""
    header = request.headers.get("Authorization", "")
    sent = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if token and sent:
        if hmac.compare_digest(sent.encode(), token.encode()):
            return None
        return 401, "The bearer token is not this bot's [metrics] token.\n"
    forwarded = any(h in request.headers for h in ("Forwarded", "X-Forwarded-For", "X-Real-IP"))
    if _loopback(request.remote) and not forwarded:
        return None
    if token:
        return 401, "Send the bot's [metrics] token as `Authorization: Bearer <token>` to read /metrics.\n"
    return 403, ("/metrics answers only requests from this machine. To scrape it from elsewhere, set "
                 "[metrics] token (BOT_METRICS_TOKEN) and send it as `Authorization: Bearer <token>`.\n")


def _loopback(remote: str | None) -> bool:
    try:
        address = ipaddress.ip_address((remote or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


async def _form_body(request: web.Request) -> dict[str, str]:
    """A slash command's form fields as text. Mattermost sends them URL-encoded: a multipart body (files,
    a parser of its own) is answered 415, a body that is not UTF-8 or a field that is not text 400."""
    if request.content_type == "multipart/form-data":
        raise _bad_request("Send the form URL-encoded, as Mattermost does.", command=True,
                           status=web.HTTPUnsupportedMediaType)
    try:
        form = await request.post()
    except (ValueError, UnicodeDecodeError):
        raise _bad_request("The request body is not a UTF-8 form.", command=True) from None
    fields: dict[str, str] = {}
    for key, value in form.items():
        if not isinstance(value, str):
            raise _bad_request(f"The form field {key[:40]!r} must be text.", command=True)
        fields.setdefault(key, value)
    return fields


async def _json_body(request: web.Request) -> dict[str, Any] | None:
    """A button's or a dialog's JSON body; None when it is not a JSON object. A body nested too deeply,
    or whose fields have the wrong JSON type, is answered 400 here, naming the problem."""
    try:
        body = await request.json(loads=json.loads)
    except RecursionError:
        raise _bad_request("The request body is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    if _depth(body) > MAX_DEPTH:
        raise _bad_request("The request body is nested too deeply.")
    body = {key: value for key, value in body.items() if value is not None}
    for key, kind in _BODY_TYPES.items():
        if key in body and type(body[key]) is not kind:  # not isinstance: True is not a str, 1 not a bool
            raise _bad_request(f"`{key}` must be a JSON {_JSON_NAMES[kind]}.")
    selected = body.get("context", {}).get("selected_option")
    if selected is not None and not isinstance(selected, str):
        raise _bad_request("`context.selected_option` must be a JSON string.")
    state = body.get("state")
    if state is not None:
        if len(state) > MAX_STATE:
            raise _bad_request("`state` is too long.")
        try:  # the signer parses it again; only a parse that cannot finish is refused here
            json.loads(state)
        except RecursionError:
            raise _bad_request("`state` is nested too deeply.") from None
        except ValueError:
            pass
    return body


_JSON_NAMES = {str: "string", dict: "object", bool: "boolean"}


def _depth(value: Any) -> int:
    """How deeply `value` nests lists and objects (without recursion, stopping past MAX_DEPTH)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _bad_request(text: str, command: bool = False,
                 status: type[web.HTTPClientError] = web.HTTPBadRequest) -> web.HTTPClientError:
    """A 4xx (400 unless told) with a JSON body: for a slash command in the ephemeral shape Mattermost
    shows, else `error`."""
    body = command_response(text) if command else {"error": text}
    return status(text=json.dumps(body), content_type="application/json")


__all__ = ["BotServer", "CommandTokens", "NoReply"]
