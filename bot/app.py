"""Composition root: the only place that wires real parts (or, in tests, doubles) together.

Start-up: reach Mattermost as the bot, open and migrate the database, load the playbooks, register
(or re-point) `/playbook` on every team the bot is in, start the HTTP server, the WebSocket listener
and the reminder scheduler.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

import commands.dashboard
import commands.export
import commands.help
import commands.housekeeping
import commands.items
import commands.lifecycle
import commands.people
import commands.playbooks
import commands.properties
import commands.run
import commands.runs
import commands.settings
import commands.timeline
import handlers.actions
import handlers.alerts
import handlers.api
import handlers.digests
import handlers.due
import handlers.events
import handlers.finish
import handlers.housekeeping
import handlers.idempotency
import handlers.item_commands
import handlers.items
import handlers.keywords
import handlers.playbooks_api
import handlers.properties
import handlers.reconcile
import handlers.reminders
import handlers.reports
import handlers.retro
import handlers.runs
import handlers.runs_api
import handlers.schedules
import handlers.status
import handlers.web
import handlers.web_insights
import handlers.web_playbook_import
import handlers.web_playbooks
import handlers.web_runs
import handlers.webhooks
from bot import signin
from bot.actions import Signer
from bot.clock import Clock, FileClock
from bot.config import Settings
from bot.context import Context
from bot.integrations import Integrations
from bot.integrations.build import build_integrations, close_integrations
from bot.mattermost import MattermostGateway, RetryPolicy
from bot.metrics import ProcessMetrics
from bot.models import Gateway, MattermostError, MMCommand, MMTeam, WsEvent
from bot.playbooks.library import PlaybookLibrary
from bot.proof import Proofs
from bot.rendering import Renderer
from bot.router import TRIGGER, Dispatcher, Reply, Router, SlashCommand
from bot.server import BotServer, CommandTokens
from bot.tasks import Tasks
from bot.web import WebServer
from bot.websocket import WebSocketListener
from storage import health as heartbeat
from storage.db import Database, StorageError, describe, open_database

log = logging.getLogger(__name__)

AUTOCOMPLETE_HINT = "[command]"
AUTOCOMPLETE_DESC = "Run playbooks: start runs, work checklists, post status updates. Try /playbook help."


def build_router() -> Router:
    """Every feature, included explicitly: a feature module that is missing or fails to import stops
    the bot at start-up with that error, instead of quietly leaving a smaller bot."""
    root = Router("root")
    for feature in (
        commands.help.router, commands.run.router, commands.runs.router, commands.items.router,
        commands.people.router, commands.lifecycle.router, commands.timeline.router, commands.settings.router,
        commands.housekeeping.router, commands.dashboard.router, commands.playbooks.router,
        handlers.housekeeping.router,
        handlers.runs.router, handlers.items.router, handlers.status.router, handlers.finish.router,
        handlers.retro.router, handlers.events.router, handlers.api.router, handlers.web.router,
        commands.export.router, handlers.reports.router,
        handlers.web_insights.router,
        handlers.web_runs.router,
        handlers.web_playbooks.router,
        handlers.web_playbook_import.router,
        commands.properties.router, handlers.properties.router,
        handlers.playbooks_api.router,
        handlers.keywords.router,
        handlers.item_commands.router,
        handlers.runs_api.router, handlers.idempotency.router,
        # Scheduled work and outgoing webhooks start after everything above is registered.
        handlers.reminders.router, handlers.due.router, handlers.digests.router, handlers.webhooks.router,
        handlers.actions.router,
        handlers.reconcile.router,
        handlers.schedules.router,  # scheduled runs ([schedule] in playbooks)
        handlers.alerts.router,  # POST /hooks/alerts/{source}; its outbox job after the start service
    ):
        root.include(feature)
    return root


@dataclass
class CommandStatus:
    registered: dict[str, str] = field(default_factory=dict)  # team name -> command id
    problems: list[str] = field(default_factory=list)


async def register_commands(gateway: Gateway, teams: list[MMTeam], url: str, tokens: CommandTokens,
                            autocomplete_hint: str = AUTOCOMPLETE_HINT, username: str = "",
                            icon_url: str = "") -> CommandStatus:
    """Create `/playbook` in each team, or re-point an existing one at this bot's URL.

    `username`/`icon_url` (the bot's): Mattermost shows a command's replies as from whoever typed the
    command, with a BOT tag, unless the command names a username and icon and the server allows
    overrides (app/command.go HandleCommandResponsePost: override_username / override_icon_url under
    EnablePostUsernameOverride / EnablePostIconOverride); then they read as from the bot."""
    status = CommandStatus()
    for team in teams:
        try:
            existing = [c for c in await gateway.list_commands(team.id) if c.trigger == TRIGGER]
            command: MMCommand
            if existing:
                command = existing[0]
                if (command.url != url or not command.auto_complete
                        or command.auto_complete_hint != autocomplete_hint
                        or (command.username, command.icon_url) != (username, icon_url)):
                    command = await gateway.update_command(replace(
                        command, url=url, method="P", auto_complete=True, auto_complete_hint=autocomplete_hint,
                        auto_complete_desc=AUTOCOMPLETE_DESC, username=username, icon_url=icon_url))
            else:
                command = await gateway.create_command(
                    team.id, TRIGGER, url, display_name="Playbooks", description="Run playbooks",
                    auto_complete_desc=AUTOCOMPLETE_DESC, auto_complete_hint=autocomplete_hint,
                    username=username, icon_url=icon_url)
            tokens.set(team.id, command.token)
            status.registered[team.name] = command.id
        except MattermostError as err:
            if err.status in (403, 404):
                status.problems.append(
                    f"team {team.name}: the bot may not manage slash commands ({err.error_id}). Make the bot "
                    f"account a team admin of {team.name} or a system admin (System Console > Users > the bot > "
                    f"Manage roles), or create the command by hand: Integrations > Slash Commands > Add, trigger "
                    f"`{TRIGGER}`, request URL {url}, method POST, then give the bot its token with "
                    f"[mattermost] command_tokens (or BOT_MATTERMOST_COMMAND_TOKENS) and restart it."
                )
            elif err.status == 501:
                status.problems.append("slash commands are disabled on this server "
                                       "(System Console > Integrations > Enable Custom Slash Commands).")
            else:
                status.problems.append(f"team {team.name}: registering /{TRIGGER} failed: {err}")
    return status


PROBE_S = 3.0  # the health check waits this long for the database and for Mattermost
MATTERMOST_PROBE_S = 10.0  # and asks Mattermost at most this often (a load balancer may poll every second)


PLAYBOOK_POLL_S = 2.0


class StartupError(Exception):
    """The bot cannot run safely as configured; the text says what to change."""


# What makes the WebSocket listener: (Mattermost URL, token, on_event, on_resync) -> a listener.
ListenerFactory = Callable[..., Any]


class BotApp:
    """The running bot. `await start()`, then `await stop()`; tests pass doubles to the constructor
    (a fake gateway, a database, `listener_factory=False` for no WebSocket) and get the real core."""

    def __init__(self, settings: Settings, *, gateway: Gateway | None = None, clock: Clock | None = None,
                 database: Database | None = None, listener_factory: ListenerFactory | bool | None = None,
                 integrations: Integrations | None = None) -> None:
        self.settings = settings
        self._integrations = integrations  # tests may pass doubles; otherwise built from [jira], [zoom]...
        self.clock = clock or clock_for(settings)
        self._gateway = gateway
        self._database = database
        self._listener_factory = listener_factory
        self.tokens = CommandTokens()
        self.tasks = Tasks()  # the follow-ups of the context, shared with request verification (its group commit)
        self.router = build_router()
        self.dispatcher = Dispatcher(self.router, help_reply)
        self._ctx: Context | None = None
        self.listener: Any = None  # bot.websocket.WebSocketListener or a test's stand-in
        self.command_status = CommandStatus()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._ws_task: asyncio.Task[Any] | None = None
        self.process_id = secrets.token_hex(8)  # this process's heartbeat row
        self.playbook_poll_s = PLAYBOOK_POLL_S  # how often the playbooks folder and table are looked at
        self._mattermost_ok_at = float("-inf")
        # This process's counters for /metrics (its own registry): the gateway's calls, webhooks, requests.
        self.metrics = gateway.metrics if isinstance(gateway, MattermostGateway) else ProcessMetrics()

    @property
    def ctx(self) -> Context:
        """The context every feature sees; exists once `start()` has reached Mattermost."""
        if self._ctx is None:
            raise RuntimeError("the bot has not started")
        return self._ctx

    @property
    def scheduler(self) -> handlers.reminders.ReminderService | None:
        """The reminder service (tests and `SIGUSR1` run its rounds by hand)."""
        job = self._ctx.jobs.get("reminders") if self._ctx is not None else None
        return job if isinstance(job, handlers.reminders.ReminderService) else None

    @property
    def digests(self) -> handlers.digests.DigestService | None:
        job = self._ctx.jobs.get("digests") if self._ctx is not None else None
        return job if isinstance(job, handlers.digests.DigestService) else None

    async def start(self) -> BotApp:
        s = self.settings
        gateway = self._gateway or MattermostGateway(
            s.mattermost.url, s.mattermost.token, timeout=s.mattermost.timeout,
            retry=RetryPolicy(attempts=s.mattermost.retries + 1), verify=s.mattermost.verify_tls,
            metrics=self.metrics)
        me = await gateway.me()
        teams = await gateway.my_teams()

        database = self._database
        if database is None:
            try:
                database = await asyncio.get_running_loop().run_in_executor(None, open_database, s.storage.url)
            except StorageError as failure:
                raise StartupError(f"cannot open the database {s.storage.url}: {describe(failure)}") from None
        # The playbook files become versions in the database; the current versions are what runs start from.
        library = PlaybookLibrary(database, self.clock, s.playbooks.dir, interval_s=self.playbook_poll_s)
        try:
            await library.check_now()
        except StorageError as failure:
            raise StartupError(f"cannot read the playbooks from the database: {describe(failure)}") from None
        playbooks, errors = dict(library.current), list(library.errors)

        proofs = Proofs(gateway, database, self.tasks)
        try:
            await proofs.load_key()  # also learns Mattermost's SiteURL, where command hooks point
        except ValueError as err:
            raise StartupError(f"cannot verify that requests come from Mattermost: {err}") from None
        ctx = self._ctx = Context(
            gateway=gateway, db=database, clock=self.clock, renderer=Renderer(), signer=Signer(s.signing_key),
            playbooks=playbooks, settings=s, bot_user=me, public_url=s.server.public_url.rstrip("/"),
            router=self.router, teams={t.id: t for t in teams}, playbook_errors=list(errors),
            tasks=self.tasks, metrics=self.metrics, library=library,
            integrations=self._integrations or build_integrations(s, now=lambda: self.clock.now_ms() / 1000))
        library.listeners.append(ctx.adopt_playbooks)
        server = BotServer(ctx, self.dispatcher, self.tokens, self.health, proofs, self.report)
        http = server.app()
        WebServer(ctx, self.dispatcher).add_routes(http)
        self._runner = web.AppRunner(http, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, s.server.host, s.server.port)
        await site.start()
        # With port 0 (tests) the public URL is only known once bound.
        port = _bound_port(site) or s.server.port
        self.url = f"http://{s.server.host}:{port}"
        if s.server.port == 0 and (not ctx.public_url or urlsplit(ctx.public_url).port == 0):
            ctx.public_url = self.url  # (a public URL of its own, such as a proxy's, is kept)

        ctx.sign_in = await signin.prepare(ctx)
        by_name = {t.name: t.id for t in teams}
        for entry in s.mattermost.command_tokens:  # commands an admin created by hand
            team_name, _, token = entry.rpartition(":")
            if not team_name:
                self.tokens.add_unbound(token)
            elif team_name in by_name:
                self.tokens.set(by_name[team_name], token)
            else:
                log.error("command_tokens names team %s, which the bot is not in; that token is ignored", team_name)
        if self.tokens.unbound:
            log.warning("%d command token(s) without a team: accepted in any team that has no /playbook of its "
                        "own; write them as \"team-name:token\" to bind each to its team", self.tokens.unbound)
        self.command_status = await register_commands(gateway, teams, f"{ctx.public_url}/mattermost/command",
                                                      self.tokens, **self._command_identity())
        for problem in self.command_status.problems:
            log.error("slash command not registered: %s", problem)
        for hook in self.router.startup:  # each feature starts its own jobs (reminders, digests, webhooks)
            await hook(ctx)
        ctx.jobs["playbooks"] = library  # watches the folder and the database for playbook changes
        await library.start()
        self._start_listener()
        log.info("bot started url=%s public_url=%s teams=%d playbooks=%d", self.url, ctx.public_url,
                 len(teams), len(playbooks))
        return self

    def _command_identity(self) -> dict[str, str]:
        """The name and picture the command's replies carry: the bot's own (its profile image URL)."""
        me = self.ctx.bot_user
        base = self.settings.mattermost.url.rstrip("/")
        return {"username": me.username, "icon_url": f"{base}/api/v4/users/{me.id}/image"}

    def _start_listener(self) -> None:
        if self._listener_factory is False:
            return
        factory = self._listener_factory if callable(self._listener_factory) else WebSocketListener
        self.listener = factory(self.settings.mattermost.url, self.settings.mattermost.token,
                                self.on_event, on_resync=self.resync)
        self._ws_task = asyncio.create_task(self.listener.run(), name="websocket")

    async def on_event(self, event: WsEvent) -> None:
        """A WebSocket event: the bot joining a team is the core's; everything else goes to the features
        that registered for it."""
        ctx = self.ctx
        if event.event == "added_to_team" and event.data.get("user_id") == ctx.bot_user.id:
            await self.resync()
        for handler in self.router.events.get(event.event, []):
            await handler(event, ctx)

    async def resync(self) -> None:
        """A fresh WebSocket session may have missed events: re-read teams and re-check commands."""
        ctx = self.ctx
        teams = await ctx.gateway.my_teams()
        new = [t for t in teams if t.id not in ctx.teams]
        ctx.teams = {t.id: t for t in teams}
        if new:
            status = await register_commands(ctx.gateway, new, f"{ctx.public_url}/mattermost/command",
                                             self.tokens, **self._command_identity())
            self.command_status.registered.update(status.registered)
            self.command_status.problems.extend(status.problems)
        for hook in self.router.resync:  # features re-read what events would have told them
            await hook(ctx)

    async def report(self) -> tuple[dict[str, bool], list[str]]:
        """The health check: what `health()` knows, plus a write to the database and a call to Mattermost
        (at most every few seconds); problems say what failed, in words."""
        checks = self.health()
        problems = [f"{name}: not ready" for name, good in checks.items() if not good]
        ctx = self._ctx
        if ctx is None:
            return {**checks, "database": False, "mattermost": False}, ["the bot has not started"]
        try:
            await asyncio.wait_for(ctx.db.run(heartbeat.beat, self.process_id, ctx.clock.now_ms()), PROBE_S)
            checks["database"] = True
        except (StorageError, asyncio.TimeoutError) as err:
            checks["database"] = False
            problems.append(f"database: {describe(err) if isinstance(err, StorageError) else 'no answer'}")
        now = asyncio.get_running_loop().time()
        if now - self._mattermost_ok_at > MATTERMOST_PROBE_S:
            try:
                await asyncio.wait_for(ctx.gateway.me(), PROBE_S)
                self._mattermost_ok_at = now
            except (MattermostError, asyncio.TimeoutError) as err:
                checks["mattermost"] = False
                problems.append(f"mattermost: {err if isinstance(err, MattermostError) else 'no answer'}")
        checks.setdefault("mattermost", True)
        return checks, problems

    def health(self) -> dict[str, bool]:
        jobs = self._ctx.jobs.values() if self._ctx is not None else []
        return {
            "http": True,
            "mattermost_websocket": bool(self.listener is None or getattr(self.listener, "connected", False)),
            "slash_command": len(self.tokens) > 0,
            "scheduler": all(job.running for job in jobs),
        }

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
        if self._ws_task is not None:
            self._ws_task.cancel()
            await asyncio.gather(self._ws_task, return_exceptions=True)
        ctx = self._ctx
        if ctx is not None:
            if ctx.library is not None:
                await ctx.library.stop()
            for hook in reversed(self.router.shutdown):
                await hook(ctx)
            await ctx.tasks.drain()
        if self._runner is not None:
            await self._runner.cleanup()
        if ctx is not None:
            await close_integrations(ctx.integrations)
            await ctx.gateway.close()
            await ctx.db.close()


def _bound_port(site: web.TCPSite) -> int:
    """The port the OS gave a site bound to port 0 (aiohttp keeps the asyncio server untyped)."""
    server: Any = site._server
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else 0


def clock_for(settings: Settings) -> Clock:
    """The real clock, or (test-only, `[testing] clock_file`) one read from a file a test moves."""
    clock_file = settings.testing.clock_file
    if clock_file is not None:
        log.warning("test-only clock: now is read from %s", clock_file)
        return FileClock(clock_file)
    return Clock()


def help_reply(cmd: SlashCommand, ctx: Context, root: Router) -> Reply:
    return commands.help.help_reply(cmd, ctx, root)
