"""Requests, replies and the dispatcher.

Feature modules make their own `Router`, register handlers explicitly, and are included into one root
router. Dispatch is first-match; a duplicate registration raises. Handlers take (request, ctx) and
return a reply; bot/server.py turns replies into Mattermost's JSON. A `UserError` raised anywhere in a
handler becomes an ephemeral reply with its text, so a wrong input always explains itself; a `FieldError`
raised by a dialog's handler is shown under its field.
"""
from __future__ import annotations

import inspect
import logging
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from bot.actions import ActionRef
from bot.domain.permissions import Viewer
from bot.models import MMUser, WsEvent

if TYPE_CHECKING:
    from bot.context import Context, StartableJob

log = logging.getLogger(__name__)

TRIGGER = "playbook"  # the bot's slash command, /playbook (registered by bot/app.py)

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R", "SlashCommand", "Click", "DialogSubmission")


class UserError(Exception):
    """A problem the person can fix; its text is shown to them as is (already rendered)."""


class FieldError(UserError):
    """A UserError about one field of a dialog: a dialog shows it under that field, a command as text."""

    def __init__(self, field: str, text: str) -> None:
        super().__init__(text)
        self.field = field


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


# shlex takes about 12 µs a character on the event loop (900 KB: 11 s). No command we take is near this
# long (a run name is at most 1024); a longer text is split on whitespace and its words refused later.
MAX_SHLEX = 4096


def split_args(text: str) -> tuple[str, ...]:
    """Shell-like splitting that forgives an unclosed quote (the quote then counts as a character)."""
    if len(text) > MAX_SHLEX:
        return tuple(text.split())
    try:
        return tuple(shlex.split(text))
    except ValueError:
        return tuple(text.split())


# -- routing --------------------------------------------------------------------------------------

CommandHandler = Callable[[SlashCommand, "Context"], Awaitable[Reply]]
ClickHandler = Callable[[Click, "Context"], Awaitable[Reply]]
DialogHandler = Callable[[DialogSubmission, "Context"], Awaitable[Reply]]
EventHandler = Callable[[WsEvent, "Context"], Awaitable[None]]
# A feature's start-up or shutdown step (start its scheduler, close its HTTP session).
Hook = Callable[["Context"], Awaitable[None]]


@dataclass(frozen=True)
class HttpRequest:
    """What an HTTP API handler sees of a request: who asks (proven by their own Mattermost token)."""

    user: MMUser
    team_ids: frozenset[str]
    query: dict[str, str]
    params: dict[str, str]
    hidden_playbooks: frozenset[str] = frozenset()  # Context.playbooks_hidden_from
    body: bytes = b""  # a POST's or PUT's body, as sent
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names (e.g. "idempotency-key")
    groups: frozenset[str] = frozenset()  # the Mattermost groups they are in (Context.viewer_groups)

    def viewer(self) -> Viewer:
        return Viewer(self.user.id, self.user.is_admin, self.team_ids, is_guest=self.user.is_guest,
                      username=self.user.username, groups=self.groups, hidden_playbooks=self.hidden_playbooks)


@dataclass(frozen=True)
class HttpText:
    """An API answer that is not JSON (a playbook exported as TOML)."""

    status: int
    text: str
    content_type: str
    filename: str = ""  # set: offered as a download with this name


@dataclass(frozen=True)
class HttpJson:
    """A JSON answer with headers of its own (an idempotent replay's `Idempotent-Replayed: true`)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


HttpReply = tuple[int, dict[str, Any]] | HttpText | HttpJson
HttpHandler = Callable[[HttpRequest, "Context"], Awaitable[HttpReply]]


# -- the web view ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class WebRequest:
    """What a web page handler sees of a request: who is signed in (a session made by signing in with
    Mattermost, bot/web.py), the query string, the path's parameters and, for a POST, the form. A POST
    reaches a handler only once its CSRF token and origin are checked."""

    user: MMUser
    team_ids: frozenset[str]
    query: dict[str, str]  # the first value of each key
    params: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)
    csrf: str = ""  # the session's token, for the forms a page renders
    path: str = ""  # the path and query string as requested (e.g. to come back to after a form)
    last_event_id: str = ""  # an event stream's `Last-Event-ID` (where a reconnecting browser left off)
    query_lists: dict[str, tuple[str, ...]] = field(default_factory=dict)  # every value of each key
    hidden_playbooks: frozenset[str] = frozenset()  # Context.playbooks_hidden_from
    groups: frozenset[str] = frozenset()  # the Mattermost groups they are in (Context.viewer_groups)
    files: dict[str, UploadedFile] = field(default_factory=dict)  # a POST's uploaded files (upload pages only)

    def viewer(self) -> Viewer:
        return Viewer(self.user.id, self.user.is_admin, self.team_ids, is_guest=self.user.is_guest,
                      username=self.user.username, groups=self.groups, hidden_playbooks=self.hidden_playbooks)


@dataclass(frozen=True)
class UploadedFile:
    """One file a form sent (multipart/form-data), read whole: only pages registered with upload=True get
    them, and bot/web.py caps their size (MAX_UPLOAD)."""

    filename: str
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Page:
    html: str
    status: int = 200


@dataclass(frozen=True)
class Redirect:
    location: str  # a path under the bot's public URL ("/runs/abc") or a full URL
    status: int = 303  # after a form: the browser follows with a GET


@dataclass(frozen=True)
class Download:
    body: bytes
    content_type: str
    filename: str = ""  # set: offered as a download under this name; empty: shown in the browser
    status: int = 200


@dataclass(frozen=True)
class ServerEvent:
    """One Server-Sent Event: `id` is the cursor a reconnecting browser sends back as Last-Event-ID."""

    data: str
    event: str = "message"
    id: str = ""


@dataclass(frozen=True)
class EventStream:
    """A stream of events the core writes as `text/event-stream` until the browser goes away."""

    events: Callable[[], AsyncIterator[ServerEvent]]


WebReply = Page | Redirect | Download | EventStream
WebHandler = Callable[[WebRequest, "Context"], Awaitable[WebReply]]


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: CommandHandler
    usage: str
    help: str
    hidden: bool = False


class Router:
    """One feature's registrations; included into the root router by the composition root (bot/app.py).

    Besides commands, clicks and dialogs, a feature registers its HTTP API routes and its start-up and
    shutdown steps here, so the core never names a feature (aiogram's routers work the same way)."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.commands: dict[str, CommandSpec] = {}
        self.clicks: dict[type[ActionRef], ClickHandler] = {}
        self.dialogs: dict[type[ActionRef], DialogHandler] = {}
        self.http_routes: dict[tuple[str, str], HttpHandler] = {}
        # HTTP routes that prove their caller themselves (vendors' webhooks: `POST /hooks/alerts/{source}`);
        # their HttpRequest has no Mattermost user (`user.id` is "").
        self.public_http: set[tuple[str, str]] = set()
        self.pages: dict[tuple[str, str], WebHandler] = {}
        self.uploads: set[tuple[str, str]] = set()  # pages whose POST may carry one uploaded file
        self.events: dict[str, list[EventHandler]] = {}
        self.startup: list[Hook] = []
        self.shutdown: list[Hook] = []
        self.resync: list[Hook] = []

    def command(self, name: str, usage: str = "", hidden: bool = False
                ) -> Callable[[CommandHandler], CommandHandler]:
        """Register `/playbook <name>`; the handler's docstring's first line is its help text."""

        def register(fn: CommandHandler) -> CommandHandler:
            if name in self.commands:
                raise ValueError(f"subcommand {name!r} is registered twice")
            doc = inspect.getdoc(fn) or ""
            self.commands[name] = CommandSpec(name, fn, usage, doc.splitlines()[0] if doc else "", hidden)
            return fn

        return register

    def click(self, kind: type[ActionRef]) -> Callable[[ClickHandler], ClickHandler]:
        def register(fn: ClickHandler) -> ClickHandler:
            if kind in self.clicks:
                raise ValueError(f"button kind {kind.kind!r} has two handlers")
            self.clicks[kind] = fn
            return fn

        return register

    def dialog(self, kind: type[ActionRef]) -> Callable[[DialogHandler], DialogHandler]:
        def register(fn: DialogHandler) -> DialogHandler:
            if kind in self.dialogs:
                raise ValueError(f"dialog kind {kind.kind!r} has two handlers")
            self.dialogs[kind] = fn
            return fn

        return register

    def http(self, method: str, path: str, *, public: bool = False) -> Callable[[HttpHandler], HttpHandler]:
        """Register an HTTP API route (`/api/v0/...`); bot/server.py proves the caller first (their
        Mattermost token). `public=True`: no Mattermost token; the handler checks the caller itself from
        `request.headers` and the raw `request.body` (a vendor's webhook signature)."""

        def register(fn: HttpHandler) -> HttpHandler:
            key = (method.upper(), path)
            if key in self.http_routes:
                raise ValueError(f"HTTP route {method} {path} has two handlers")
            self.http_routes[key] = fn
            if public:
                self.public_http.add(key)
            return fn

        return register

    def page(self, method: str, path: str, *, upload: bool = False) -> Callable[[WebHandler], WebHandler]:
        """Register a web view route (`/runs`...); bot/web.py signs the person in first and checks a
        POST's CSRF token. `upload=True`: the POST may carry one file (request.files), up to
        bot/web.py's MAX_UPLOAD instead of the small form limit; every other page takes text fields only."""

        def register(fn: WebHandler) -> WebHandler:
            key = (method.upper(), path)
            if key in self.pages:
                raise ValueError(f"page {method} {path} has two handlers")
            self.pages[key] = fn
            if upload:
                self.uploads.add(key)
            return fn

        return register

    def event(self, name: str) -> Callable[[EventHandler], EventHandler]:
        """Register for a WebSocket event (`post_edited`...); every handler of an event runs, in order."""

        def register(fn: EventHandler) -> EventHandler:
            self.events.setdefault(name, []).append(fn)
            return fn

        return register

    def on_startup(self, fn: Hook) -> Hook:
        """Run `fn(ctx)` once the bot is wired and serving, in the order features were included."""
        self.startup.append(fn)
        return fn

    def on_shutdown(self, fn: Hook) -> Hook:
        """Run `fn(ctx)` when the bot stops, in the reverse order of start-up."""
        self.shutdown.append(fn)
        return fn

    def on_resync(self, fn: Hook) -> Hook:
        """Run `fn(ctx)` after a WebSocket resync (a new session: events may have been missed)."""
        self.resync.append(fn)
        return fn

    def job(self, name: str, make: Callable[[Context], StartableJob]) -> None:
        """A feature's scheduled work: made and started at start-up (kept as `ctx.jobs[name]`, which
        health reads), stopped at shutdown."""

        async def start(ctx: Context) -> None:
            job = ctx.jobs[name] = make(ctx)
            await job.start()

        async def stop(ctx: Context) -> None:
            job = ctx.jobs.get(name)
            if job is not None:
                await job.stop()

        self.on_startup(start)
        self.on_shutdown(stop)

    def include(self, other: Router) -> None:
        _merge(self.commands, other.commands, other.name)
        _merge(self.clicks, other.clicks, other.name)
        _merge(self.dialogs, other.dialogs, other.name)
        _merge(self.http_routes, other.http_routes, other.name)
        self.public_http |= other.public_http
        _merge(self.pages, other.pages, other.name)
        self.uploads |= other.uploads
        for name, handlers in other.events.items():
            self.events.setdefault(name, []).extend(handlers)
        self.startup.extend(other.startup)
        self.shutdown.extend(other.shutdown)
        self.resync.extend(other.resync)


def _merge(table: dict[K, V], theirs: dict[K, V], name: str) -> None:
    for key, value in theirs.items():
        if key in table:
            raise ValueError(f"{key!r} from router {name!r} is already registered")
        table[key] = value


class Dispatcher:
    """The root router plus error mapping: UserError -> ephemeral text; anything else is logged."""

    def __init__(self, router: Router, help_reply: Callable[[SlashCommand, Context, Router], Reply]) -> None:
        self.router = router
        self._help = help_reply

    async def command(self, cmd: SlashCommand, ctx: Context) -> Reply:
        spec = self.router.commands.get(cmd.subcommand)
        if spec is None:
            return self._help(cmd, ctx, self.router)
        return await self._guard(spec.handler, cmd, ctx, f"command={spec.name}")

    async def click(self, click: Click, ctx: Context) -> Reply:
        handler = self.router.clicks.get(type(click.ref))
        if handler is None:
            return Ephemeral(ctx.renderer.render("errors/unknown_button.md.j2"))
        return await self._guard(handler, click, ctx, f"click={click.ref.kind}")

    async def dialog(self, sub: DialogSubmission, ctx: Context) -> Reply:
        handler = self.router.dialogs.get(type(sub.ref))
        if handler is None:
            return DialogErrors(error=ctx.renderer.render("errors/unknown_dialog.md.j2"))
        return await self._guard(handler, sub, ctx, f"dialog={sub.ref.kind}")

    async def _guard(self, handler: Callable[[R, Context], Awaitable[Reply]], request: R, ctx: Context,
                     what: str) -> Reply:
        try:
            return await handler(request, ctx)
        except UserError as err:
            if isinstance(request, DialogSubmission):
                if isinstance(err, FieldError):
                    return DialogErrors(errors={err.field: str(err)})
                return DialogErrors(error=str(err))
            return Ephemeral(str(err))
        except Exception:
            log.exception("handler failed %s user=%s", what, getattr(request, "user_id", ""))
            text = ctx.renderer.render("errors/internal.md.j2")
            if isinstance(request, DialogSubmission):
                return DialogErrors(error=text)
            return Ephemeral(text)
