"""What commands and handlers see of the world: one object, wired in bot/app.py (or by tests)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from bot.actions import ActionRef, Signer
from bot.clock import Clock
from bot.config import Settings
from bot.domain.permissions import Viewer, may_see_playbook
from bot.integrations import Integrations
from bot.metrics import ProcessMetrics
from bot.models import Gateway, MattermostError, MMTeam, MMUser
from bot.notify import DirectChannels
from bot.playbooks import Playbook, PlaybookError
from bot.playbooks.library import PlaybookLibrary, RunRef
from bot.posts import EditWatch
from bot.rendering import Renderer
from bot.router import Router
from bot.signin import SignIn
from bot.tasks import Batcher, KeyedLocks, Tasks
from storage.db import Database

log = logging.getLogger(__name__)

# How long an opened dialog stays good: writing a status update or a retrospective can take a while.
DIALOG_LIFETIME_MS = 60 * 60_000


class UserDirectory:
    """Usernames and roles by id, cached briefly: rendering a checklist must not cost a call per item."""

    def __init__(self, gateway: Gateway, ttl_s: float = 300.0) -> None:
        self.gateway = gateway
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, MMUser]] = {}

    def remember(self, user: MMUser) -> None:
        self._cache[user.id] = (time.monotonic(), user)

    async def get_many(self, user_ids: list[str]) -> dict[str, MMUser]:
        now = time.monotonic()
        found: dict[str, MMUser] = {}
        missing = []
        for uid in dict.fromkeys(u for u in user_ids if u):
            hit = self._cache.get(uid)
            if hit and now - hit[0] < self.ttl_s:
                found[uid] = hit[1]
            else:
                missing.append(uid)
        if missing:
            for user in await self.gateway.get_users_by_ids(missing):
                self.remember(user)
                found[user.id] = user
        return found

    async def get(self, user_id: str) -> MMUser | None:
        return (await self.get_many([user_id])).get(user_id)

    async def names(self, user_ids: list[str]) -> dict[str, str]:
        return {uid: u.username for uid, u in (await self.get_many(user_ids)).items()}

    async def by_username(self, usernames: list[str]) -> dict[str, MMUser]:
        wanted = [u.lstrip("@").lower() for u in usernames if u]
        if not wanted:
            return {}
        users = await self.gateway.get_users_by_usernames(list(dict.fromkeys(wanted)))
        for user in users:
            self.remember(user)
        return {u.username: u for u in users}


# Error ids with which Mattermost says its groups are not available to the bot: no licence at all (501
# api.license_error, api4/api.go requireLicense), a licence without custom groups or the feature switched
# off (api4/group.go licensedAndConfiguredForGroupBySource).
GROUPS_UNAVAILABLE = frozenset({"api.license_error", "api.custom_groups.license_error",
                                "api.custom_groups.feature_disabled", "api.ldap_groups.license_error"})


def groups_unavailable(err: MattermostError) -> bool:
    return err.status == 501 or err.error_id in GROUPS_UNAVAILABLE


class GroupDirectory:
    """The Mattermost groups each person is in (names, lower-case), cached briefly like UserDirectory.

    Where the server has no groups for the bot (no licence, custom groups off) everyone is in none: said
    once in the log, and kept in `unavailable` for `python -m bot check`. Another failure counts as no
    groups for this one question (access is never granted on a guess) and is not cached."""

    def __init__(self, gateway: Gateway, ttl_s: float = 60.0) -> None:
        self.gateway = gateway
        self.ttl_s = ttl_s
        self.unavailable = ""  # the server's reason, once it said groups are unavailable
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._unavailable_at = 0.0

    async def of(self, user_id: str) -> frozenset[str]:
        now = time.monotonic()
        if self.unavailable and now - self._unavailable_at < self.ttl_s:
            return frozenset()
        hit = self._cache.get(user_id)
        if hit and now - hit[0] < self.ttl_s:
            return hit[1]
        try:
            names = frozenset(n.lower() for n in await self.gateway.user_group_names(user_id))
        except MattermostError as err:
            if groups_unavailable(err):
                if not self.unavailable:
                    log.warning("Mattermost groups are unavailable (%s %s): playbook [access] groups grant "
                                "nothing; everyone counts as in no group", err.status, err.error_id)
                self.unavailable = f"{err.status} {err.error_id}"
                self._unavailable_at = now
                return frozenset()
            log.warning("could not read the groups of user=%s: %s", user_id, err)
            return frozenset()
        if self.unavailable:
            log.info("Mattermost groups are available again")
            self.unavailable = ""
        self._cache[user_id] = (now, names)
        return names


class ReminderHub(Protocol):
    """The reminder service as features see it (handlers/reminders.py registers it at start-up)."""

    def changed(self, due_ms: int | None) -> None: ...

    async def run_started(self, run_id: str) -> None: ...

    async def answered(self, run_id: str, kind: str, outcome: str, actor_id: str = "") -> None: ...


class Job(Protocol):
    """A feature's scheduled work (reminders, digests): health reads `running`; shutdown calls `stop`."""

    @property
    def running(self) -> bool: ...

    async def stop(self) -> None: ...


class StartableJob(Job, Protocol):
    async def start(self) -> None: ...


class EventHooks(Protocol):
    """Outgoing webhooks as features see them (handlers/webhooks.py registers them at start-up)."""

    async def emit(self, event: str, run_id: str, *, actor_id: str = "",
                   payload: dict[str, Any] | None = None) -> None: ...


@dataclass
class Context:
    gateway: Gateway
    db: Database  # `await db.run(fn, *args)` runs fn(session, *args) off the loop, in a transaction
    clock: Clock
    renderer: Renderer
    signer: Signer
    playbooks: dict[str, Playbook]  # the current versions that may start runs (kept up to date by `library`)
    settings: Settings
    bot_user: MMUser
    public_url: str
    router: Router
    tasks: Tasks = field(default_factory=Tasks)
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    edits: EditWatch = field(default_factory=EditWatch)
    batches: dict[str, Batcher[Any, Any]] = field(default_factory=dict)  # group commits by name
    teams: dict[str, MMTeam] = field(default_factory=dict)
    users: UserDirectory = field(init=False)
    groups: GroupDirectory = field(init=False)
    dms: DirectChannels = field(init=False)
    # Wired at start-up by the features that provide them (their routers' on_startup); None until then,
    # and in a bot built without them, so every caller checks.
    reminders: ReminderHub | None = None
    hooks: EventHooks | None = None
    # More listeners to run events (handlers/actions.py: the playbooks' [[actions]]); features call
    # `ctx.emit`, which tells the outgoing webhooks (`hooks`) and each of these.
    run_events: list[EventHooks] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)
    sign_in: SignIn | None = None  # the web view's sign-in, chosen once the server is bound (bot/signin.py)
    playbook_errors: list[PlaybookError] = field(default_factory=list)
    # The playbooks in the database and the folder (bot/playbooks/library.py); None in a bare test context.
    library: PlaybookLibrary | None = None
    metrics: ProcessMetrics = field(default_factory=ProcessMetrics)  # this process's counters (/metrics)
    # Clients of Jira, Zoom, PagerDuty, Opsgenie as configured (bot/integrations); all None by default.
    integrations: Integrations = field(default_factory=Integrations)

    def __post_init__(self) -> None:
        self.users = UserDirectory(self.gateway)
        self.groups = GroupDirectory(self.gateway)
        self.dms = DirectChannels(self.gateway, self.bot_user.id)

    @property
    def action_url(self) -> str:
        return f"{self.public_url}/mattermost/action"

    @property
    def dialog_url(self) -> str:
        return f"{self.public_url}/mattermost/dialog"

    @property
    def mattermost_url(self) -> str:
        """The Mattermost site as people open it (permalinks, channel links)."""
        return self.settings.mattermost.url.rstrip("/")

    def dialog_state(self, ref: ActionRef, user_id: str, channel_id: str, team_id: str) -> str:
        """A dialog's signed state for `user_id` only, accepted once within DIALOG_LIFETIME_MS."""
        return self.signer.pack_state(ref, user_id=user_id, channel_id=channel_id, team_id=team_id,
                                      expires_at=self.clock.now_ms() + DIALOG_LIFETIME_MS)

    async def emit(self, event: str, run_id: str, *, actor_id: str = "",
                   payload: dict[str, Any] | None = None) -> None:
        """A run event (run_started, item_checked, status_updated, run_finished, ...) for every listener:
        the outgoing webhooks and the playbook actions. Each returns at once (their work is follow-ups)."""
        for listener in ([self.hooks] if self.hooks is not None else []) + list(self.run_events):
            try:
                await listener.emit(event, run_id, actor_id=actor_id, payload=payload)
            except Exception:  # noqa: BLE001 - one listener's fault never stops the run or the others
                log.exception("run event listener failed event=%s run=%s", event, run_id)

    def render(self, template: str, /, **values: Any) -> str:
        return self.renderer.render(template, **values)

    def render_html(self, template: str, /, **values: Any) -> str:
        """A web view page (`web/*.html.j2`), HTML-escaped."""
        return self.renderer.render_html(template, **values)

    def adopt_playbooks(self, library: PlaybookLibrary) -> None:
        """Take the library's current playbooks and problems (it calls this whenever they change)."""
        self.playbooks = dict(library.current)
        self.playbook_errors = list(library.errors)

    async def run_playbook(self, run: RunRef) -> Playbook | None:
        """The playbook version `run` started from: what everything about a running run reads (texts,
        templates, webhooks, retrospective), never the live file. Runs older than versions, and a context
        without a library, get the current playbook."""
        if run.playbook_version_id and self.library is not None:
            found = await self.library.version(run.playbook_version_id)
            if found is not None:
                return found
        playbook = self.playbooks.get(run.playbook_id)
        if playbook is None and self.library is not None:
            playbook = await self.library.stored_current(run.playbook_id)  # archived or its file removed
        return playbook

    def playbooks_hidden_from(self, viewer: Viewer) -> frozenset[str]:
        """Ids of the current playbooks `viewer` may not see (private ones they are not in): their runs
        show to them only where they take part or read the run's channel (bot.domain.permissions)."""
        if viewer.is_admin:
            return frozenset()
        return frozenset(p.id for p in self.playbooks.values() if not may_see_playbook(viewer, p))

    def with_hidden_playbooks(self, viewer: Viewer) -> Viewer:
        """`viewer` with `hidden_playbooks` filled in from the current playbooks."""
        return replace(viewer, hidden_playbooks=self.playbooks_hidden_from(viewer))

    async def viewer_groups(self, user_id: str) -> frozenset[str]:
        """The groups `user_id` is in, for the playbooks' `[access] groups`; asked of Mattermost only while
        some current playbook names a group."""
        if not any(p.access.groups for p in self.playbooks.values()):
            return frozenset()
        return await self.groups.of(user_id)

    async def is_admin(self, user_id: str) -> bool:
        user = await self.users.get(user_id)
        return bool(user and user.is_admin)


__all__ = ["Context", "EventHooks", "GroupDirectory", "Job", "MattermostError", "ReminderHub", "UserDirectory",
           "groups_unavailable"]
