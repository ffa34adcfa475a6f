"""Composition root: the only place that wires real parts (or, in tests, doubles) together.

Start-up: reach Mattermost as the bot, open and migrate the database, load the playbooks, register
(or re-point) `/playbook` on every team the bot is in, start the HTTP server, the WebSocket listener
and the reminder scheduler.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.actions import Signer
from bot.clock import Clock
from bot.context import Context
from bot.models import Gateway, MattermostError, MMCommand, MMTeam, WsEvent
from bot.rendering import Renderer
from bot.router import Dispatcher, Router
from bot.server import BotServer, CommandTokens

log = logging.getLogger(__name__)

TRIGGER = "playbook"
AUTOCOMPLETE_HINT = "[command]"
AUTOCOMPLETE_DESC = "Run playbooks: start runs, work checklists, post status updates. Try /playbook help."


def build_router() -> Router:
    from commands import help as help_cmds
    from commands import run as run_cmds
    from handlers import clicks, dialogs

    root = Router("root")
    for module in (help_cmds, run_cmds, clicks, dialogs):
        root.include(module.router)
    for name in ("commands.items", "commands.runs", "commands.people", "handlers.updates",
                 "commands.settings"):
        try:
            module = __import__(name, fromlist=["router"])
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        root.include(module.router)
    return root


@dataclass
class CommandStatus:
    registered: dict[str, str] = field(default_factory=dict)  # team name -> command id
    problems: list[str] = field(default_factory=list)


async def register_commands(gateway: Gateway, teams: list[MMTeam], url: str, tokens: CommandTokens,
                            autocomplete_hint: str = AUTOCOMPLETE_HINT) -> CommandStatus:
    """Create `/playbook` in each team, or re-point an existing one at this bot's URL."""
    status = CommandStatus()
    for team in teams:
        try:
            existing = [c for c in await gateway.list_commands(team.id) if c.trigger == TRIGGER]
            command: MMCommand
            if existing:
                command = existing[0]
                if (command.url != url or not command.auto_complete
                        or command.auto_complete_hint != autocomplete_hint):
                    from dataclasses import replace

                    command = await gateway.update_command(replace(
                        command, url=url, method="P", auto_complete=True, auto_complete_hint=autocomplete_hint,
                        auto_complete_desc=AUTOCOMPLETE_DESC))
            else:
                command = await gateway.create_command(
                    team.id, TRIGGER, url, display_name="Playbooks", description="Run playbooks",
                    auto_complete_desc=AUTOCOMPLETE_DESC, auto_complete_hint=autocomplete_hint)
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


class BotApp:
    """The running bot. `await start()`, then `await stop()`; tests pass doubles to the constructor."""

    def __init__(self, settings: Any, *, gateway: Gateway | None = None, clock: Clock | None = None,
                 database: Any = None, listener_factory: Any = None) -> None:
        self.settings = settings
        self.clock = clock or clock_for(settings)
        self._gateway = gateway
        self._database = database
        self._listener_factory = listener_factory
        self.tokens = CommandTokens()
        self.router = build_router()
        self.ctx: Context | None = None
        self.listener: Any = None
        self.scheduler: Any = None
        self.digests: Any = None  # handlers.digests.DigestService
        self.command_status = CommandStatus()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._ws_task: asyncio.Task[Any] | None = None

    async def start(self) -> "BotApp":
        from bot.mattermost import MattermostGateway, RetryPolicy
        from bot.playbooks import load_playbooks
        from storage.db import Database, make_engine, migrate

        s = self.settings
        gateway = self._gateway or MattermostGateway(
            s.mattermost.url, s.mattermost.token, timeout=s.mattermost.timeout,
            retry=RetryPolicy(attempts=s.mattermost.retries + 1), verify=s.mattermost.verify_tls)
        me = await gateway.me()
        teams = await gateway.my_teams()

        database = self._database
        if database is None:
            engine = make_engine(s.storage.url)
            await asyncio.get_running_loop().run_in_executor(None, migrate, engine)
            database = Database(engine)
        playbooks, errors = load_playbooks(s.playbooks.dir)
        for err in errors:
            log.error("playbook not loaded: %s", err)

        public_url = s.server.public_url
        self.ctx = Context(gateway=gateway, db=database, clock=self.clock, renderer=Renderer(),
                           signer=Signer(s.signing_key), playbooks=playbooks, settings=s, bot_user=me,
                           public_url=public_url.rstrip("/"), teams={t.id: t for t in teams},
                           playbook_errors=list(errors))
        self.ctx.router = self.router
        dispatcher = Dispatcher(self.router, _help_reply)
        server = BotServer(self.ctx, dispatcher, self.tokens, self.health)
        self._runner = web.AppRunner(server.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, s.server.host, s.server.port)
        await site.start()
        # With port 0 (tests) the public URL is only known once bound.
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{s.server.host}:{port}"
        if s.server.port == 0:
            self.ctx.public_url = self.url

        self._wire_features()
        for n, token in enumerate(s.mattermost.command_tokens):
            self.tokens.set(f"configured-{n}", token)  # commands an admin created by hand
        self.command_status = await register_commands(gateway, teams, f"{self.ctx.public_url}/mattermost/command",
                                                      self.tokens)
        for problem in self.command_status.problems:
            log.error("slash command not registered: %s", problem)
        if self.scheduler is not None:
            await self.scheduler.start()
        if self.digests is not None:
            await self.digests.start()
        self._start_listener()
        log.info("bot started url=%s public_url=%s teams=%d playbooks=%d", self.url, self.ctx.public_url,
                 len(teams), len(playbooks))
        return self

    def _wire_features(self) -> None:
        """Optional features (reminders, webhooks) plug into the context here."""
        assert self.ctx is not None
        try:
            from handlers.reminders import ReminderService
        except ModuleNotFoundError as exc:
            if exc.name != "handlers.reminders":
                raise
            return
        self.scheduler = ReminderService(self.ctx)
        self.ctx.reminders = self.scheduler
        from bot.outbound import HttpPoster
        from handlers.webhooks import Webhooks

        self.ctx.hooks = Webhooks(self.ctx, HttpPoster())
        from handlers.digests import DigestService

        self.digests = DigestService(self.ctx)

    def _start_listener(self) -> None:
        assert self.ctx is not None
        if self._listener_factory is False:
            return
        from bot.websocket import WebSocketListener

        factory = self._listener_factory or WebSocketListener
        self.listener = factory(self.settings.mattermost.url, self.settings.mattermost.token,
                                self._on_event, on_resync=self._on_resync)
        self._ws_task = asyncio.create_task(self.listener.run(), name="websocket")

    async def _on_event(self, event: WsEvent) -> None:
        from handlers.events import handle_event

        assert self.ctx is not None
        await handle_event(self.ctx, event, self)

    async def _on_resync(self) -> None:
        """A fresh WebSocket session may have missed events: re-read teams and re-check commands."""
        assert self.ctx is not None
        teams = await self.ctx.gateway.my_teams()
        new = [t for t in teams if t.id not in self.ctx.teams]
        self.ctx.teams = {t.id: t for t in teams}
        if new:
            status = await register_commands(self.ctx.gateway, new, f"{self.ctx.public_url}/mattermost/command",
                                             self.tokens)
            self.command_status.registered.update(status.registered)
            self.command_status.problems.extend(status.problems)

    def health(self) -> dict[str, bool]:
        return {
            "http": True,
            "mattermost_websocket": bool(self.listener is None or getattr(self.listener, "connected", False)),
            "slash_command": len(self.tokens) > 0,
            "scheduler": bool(self.scheduler is None or getattr(self.scheduler, "running", True)),
        }

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
        if self._ws_task is not None:
            self._ws_task.cancel()
            await asyncio.gather(self._ws_task, return_exceptions=True)
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.digests is not None:
            await self.digests.stop()
        if self.ctx is not None and self.ctx.hooks is not None:
            await self.ctx.hooks.close()  # gives up pending retries, so stopping never waits a backoff
        if self.ctx is not None:
            await self.ctx.tasks.drain()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.ctx is not None:
            await self.ctx.gateway.close()
            close = getattr(self.ctx.db, "close", None)
            if close is not None:
                result = close()
                if asyncio.iscoroutine(result):
                    await result


def clock_for(settings: Any) -> Clock:
    """The real clock, or (test-only, `[testing] clock_file`) one read from a file a test moves."""
    clock_file = getattr(getattr(settings, "testing", None), "clock_file", None)
    if clock_file is not None:
        from bot.clock import FileClock

        log.warning("test-only clock: now is read from %s", clock_file)
        return FileClock(clock_file)
    return Clock()


def _help_reply(cmd: Any, ctx: Any, root: Router) -> Any:
    from commands.help import help_reply

    return help_reply(cmd, ctx, root)
