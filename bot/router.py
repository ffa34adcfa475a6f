"""Requests, replies and the dispatcher.

Feature modules make their own `Router`, register handlers explicitly, and are included into one root
router. Dispatch is first-match; a duplicate registration raises. Handlers take (request, ctx) and
return a reply; bot/server.py turns replies into Mattermost's JSON. A `UserError` raised anywhere in a
handler becomes an ephemeral reply with its text, so a wrong input always explains itself.
"""
from __future__ import annotations

import inspect
import logging
import shlex
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from bot.actions import ActionRef

log = logging.getLogger(__name__)


class UserError(Exception):
    """A problem the person can fix; its text is shown to them as is (already rendered)."""


# -- requests -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SlashCommand:
    user_id: str
    user_name: str
    channel_id: str
    channel_name: str
    team_id: str
    team_domain: str
    command: str
    text: str
    trigger_id: str = ""
    response_url: str = ""
    args: tuple[str, ...] = ()

    @property
    def subcommand(self) -> str:
        return self.args[0].lower() if self.args else ""

    @property
    def rest(self) -> tuple[str, ...]:
        return self.args[1:]


@dataclass(frozen=True)
class Click:
    user_id: str
    user_name: str
    channel_id: str
    team_id: str
    post_id: str
    trigger_id: str
    ref: ActionRef
    selected_option: str = ""


@dataclass(frozen=True)
class DialogSubmission:
    user_id: str
    channel_id: str
    team_id: str
    callback_id: str
    ref: ActionRef
    submission: dict[str, Any]
    cancelled: bool = False


# -- replies --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ephemeral:
    text: str
    attachments: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class NoReply:
    pass


@dataclass(frozen=True)
class UpdatePost:
    message: str
    props: dict[str, Any]
    ephemeral_text: str = ""
    # Renders the post again from the rows at the moment the answer is sent (bot/server.py), so an
    # answer that waited its turn carries every change committed while it waited.
    refresh: Callable[[], Awaitable["UpdatePost"]] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class OpenDialog:
    dialog: dict[str, Any]
    url: str = ""


@dataclass(frozen=True)
class DialogErrors:
    errors: dict[str, str] = field(default_factory=dict)
    error: str = ""


Reply = Ephemeral | NoReply | UpdatePost | OpenDialog | DialogErrors


def split_args(text: str) -> tuple[str, ...]:
    """Shell-like splitting that forgives an unclosed quote (the quote then counts as a character)."""
    try:
        return tuple(shlex.split(text))
    except ValueError:
        return tuple(text.split())


# -- routing --------------------------------------------------------------------------------------

CommandHandler = Callable[[SlashCommand, Any], Awaitable[Reply]]
ClickHandler = Callable[[Click, Any], Awaitable[Reply]]
DialogHandler = Callable[[DialogSubmission, Any], Awaitable[Reply]]


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: CommandHandler
    usage: str
    help: str
    hidden: bool = False


class Router:
    def __init__(self, name: str = "") -> None:
        self.name = name
        self.commands: dict[str, CommandSpec] = {}
        self.clicks: dict[type[ActionRef], ClickHandler] = {}
        self.dialogs: dict[type[ActionRef], DialogHandler] = {}

    def command(self, name: str, usage: str = "", hidden: bool = False):
        """Register `/playbook <name>`; the handler's docstring's first line is its help text."""

        def register(fn: CommandHandler) -> CommandHandler:
            if name in self.commands:
                raise ValueError(f"subcommand {name!r} is registered twice")
            doc = inspect.getdoc(fn) or ""
            self.commands[name] = CommandSpec(name, fn, usage, doc.splitlines()[0] if doc else "", hidden)
            return fn

        return register

    def click(self, kind: type[ActionRef]):
        def register(fn: ClickHandler) -> ClickHandler:
            if kind in self.clicks:
                raise ValueError(f"button kind {kind.kind!r} has two handlers")
            self.clicks[kind] = fn
            return fn

        return register

    def dialog(self, kind: type[ActionRef]):
        def register(fn: DialogHandler) -> DialogHandler:
            if kind in self.dialogs:
                raise ValueError(f"dialog kind {kind.kind!r} has two handlers")
            self.dialogs[kind] = fn
            return fn

        return register

    def include(self, other: "Router") -> None:
        for table, theirs in ((self.commands, other.commands), (self.clicks, other.clicks),
                              (self.dialogs, other.dialogs)):
            for key, value in theirs.items():
                if key in table:
                    raise ValueError(f"{key!r} from router {other.name!r} is already registered")
                table[key] = value  # type: ignore[index]


class Dispatcher:
    """The root router plus error mapping: UserError -> ephemeral text; anything else is logged."""

    def __init__(self, router: Router, help_reply: Callable[[SlashCommand, Any, Router], Reply]) -> None:
        self.router = router
        self._help = help_reply

    async def command(self, cmd: SlashCommand, ctx: Any) -> Reply:
        spec = self.router.commands.get(cmd.subcommand)
        if spec is None:
            return self._help(cmd, ctx, self.router)
        return await self._guard(spec.handler, cmd, ctx, f"command={spec.name}")

    async def click(self, click: Click, ctx: Any) -> Reply:
        handler = self.router.clicks.get(type(click.ref))
        if handler is None:
            return Ephemeral(ctx.renderer.render("errors/unknown_button.md.j2"))
        return await self._guard(handler, click, ctx, f"click={click.ref.kind}")

    async def dialog(self, sub: DialogSubmission, ctx: Any) -> Reply:
        handler = self.router.dialogs.get(type(sub.ref))
        if handler is None:
            return DialogErrors(error=ctx.renderer.render("errors/unknown_dialog.md.j2"))
        return await self._guard(handler, sub, ctx, f"dialog={sub.ref.kind}")

    async def _guard(self, handler: Callable[..., Awaitable[Reply]], request: Any, ctx: Any,
                     what: str) -> Reply:
        try:
            return await handler(request, ctx)
        except UserError as err:
            if isinstance(request, DialogSubmission):
                return DialogErrors(error=str(err))
            return Ephemeral(str(err))
        except Exception:
            log.exception("handler failed %s user=%s", what, getattr(request, "user_id", ""))
            text = ctx.renderer.render("errors/internal.md.j2")
            if isinstance(request, DialogSubmission):
                return DialogErrors(error=text)
            return Ephemeral(text)
