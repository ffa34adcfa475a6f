"""The frozen definitions a playbook file turns into, with the format's defaults and limits."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Mapping

from bot.domain.conditions import PropertySpec
from bot.domain.metrics import MetricSpec
from bot.domain.permissions import PlaybookAccess

DEFAULT_CHANNEL_NAME = "{name}"
DEFAULT_CATEGORY = "Playbook runs"
DEFAULT_STATUS_INTERVAL = timedelta(days=1)
DEFAULT_RETROSPECTIVE_TEMPLATE = (
    "### Summary\n\n### Impact\n\n### Contributing factors\n\n### What was done\n\n"
    "### What did we learn?\n\n### Follow-up tasks\n\n### Timeline highlights\n"
)

# Limits, and where they come from.
CATEGORY_MAX_BYTES = 22  # Mattermost sidebar category names (playbooks-reference.md §8)
WEBHOOKS_MAX = 64  # per list, as the plugin allows
TITLE_MAX = 1024  # a run name's limit; titles also become channel and run names
ITEM_DESCRIPTION_MAX = 4000  # the item dialog's limit
TEXT_MAX = 16000  # texts become posts; Mattermost posts hold 16383 runes
COMMAND_MAX = 4000
ID_MAX = 64
FILE_MAX_BYTES = 1 << 20
REMINDER_MIN = timedelta(minutes=1)  # anything shorter would flood the channel
PROPERTIES_MAX = 20  # the plugin's limit of property fields per playbook
PROPERTY_OPTION_MAX = 128  # the plugin's option name limit
PROPERTY_TITLE_MAX = 24  # a dialog field's label (DialogElementDisplayNameMaxLength)
PROPERTY_TEXT_MAX = 150  # a dialog text field (DialogElementTextMaxLength)
KEYWORDS_MAX = 20
SUMMARY_MAX = 3000
ALERT_NAME_DEFAULT = "{{ alert.title }}"
ALERT_ROUTES_MAX = 50  # a run's summary is the start dialog's textarea (Mattermost's limit for one)


@dataclass(frozen=True)
class Assignee:
    """Who an item goes to at run start: the run's owner, its creator, or one user."""
    kind: Literal["owner", "creator", "user"]
    username: str = ""  # only for kind "user", lower-case, without "@"


@dataclass(frozen=True)
class ItemSpec:
    title: str
    description: str = ""
    assignee: Assignee | None = None
    due: timedelta | None = None  # after the run starts
    command: str = ""  # slash command, may contain $vars
    # Shown only while this holds on the run's properties (bot.domain.conditions); None = always.
    when: Mapping[str, Any] | None = field(default=None, hash=False)
    auto_check: AutoCheck | None = None


@dataclass(frozen=True)
class AutoCheck:
    """A post in the run's channel containing one of `keywords` (whole words, any case), by one of `users`
    (usernames; empty = anyone but the bot), checks the item: the plugin's task action."""
    keywords: tuple[str, ...]
    users: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, list[str]]:
        return {"keywords": list(self.keywords), "users": list(self.users)}


@dataclass(frozen=True)
class Keywords:
    """`[keywords]`: a person's post in one of `channels` (URL names in the run's team) that says one of
    `words` (whole words or phrases, any case) or matches one of `patterns` (regular expressions, any case,
    bounded by bot.domain.keywords.pattern_problem) is offered a run of the playbook (handlers/keywords.py)."""
    words: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    enabled: bool = True


@dataclass(frozen=True)
class ChecklistSpec:
    title: str
    items: tuple[ItemSpec, ...] = ()


@dataclass(frozen=True)
class StatusUpdates:
    enabled: bool = False  # on when the file has a [status_updates] table, unless enabled = false
    interval: timedelta = DEFAULT_STATUS_INTERVAL  # first reminder after start, then after each update
    template: str = ""


@dataclass(frozen=True)
class Retrospective:
    enabled: bool = False  # on when the file has a [retrospective] table, unless enabled = false
    template: str = DEFAULT_RETROSPECTIVE_TEMPLATE
    remind: bool = True  # false with reminder = "off"
    reminder_interval: timedelta | None = None  # repeat interval; None = remind once at finish


@dataclass(frozen=True)
class Webhooks:
    on_start: tuple[str, ...] = ()
    on_status_update: tuple[str, ...] = ()
    on_finish: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schedule:
    """`[schedule]`: runs started by the clock (handlers/schedules.py, bot/domain/schedules.py)."""
    cron: str  # five crontab fields, e.g. "0 9 * * MON"
    timezone: str = "UTC"  # IANA name the cron expression is read in
    name: str = "{{ playbook }} {{ date }}"  # the run's name: a sandboxed jinja template of the occurrence
    owner: str = ""  # username: owns each run and counts as the one who started it
    members: tuple[str, ...] = ()  # usernames invited besides the playbook's members
    enabled: bool = True


@dataclass(frozen=True)
class ActionSpec:
    """One `[[actions]]` block: what the bot does in a tool outside Mattermost on a run event
    (handlers/actions.py carries it out; docs/actions.md). `params` holds the kind's own keys, validated:
    strings, booleans, tuples of strings, and tables as tuples of (key, value) pairs."""
    on: str  # run_started | item_checked | status_updated | run_finished
    kind: str  # jira.create_issue, zoom.create_meeting, http, ... (bot.playbooks.actions.ACTION_KINDS)
    item: str = ""  # only for on = "item_checked": the item's title ("" = any item)
    params: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        for name, value in self.params:
            if name == key:
                return value
        return default


@dataclass(frozen=True)
class AlertRoute:
    """A `[[alerts]]` route: which alerts of which source start (or reach) a run of this playbook
    (handlers/alerts.py; docs/alerts.md). `match` holds the source's keys (bot.integrations.alert_hooks
    MATCH_KEYS), already checked; `name` is a sandboxed jinja template over `alert`."""
    source: str
    match: Mapping[str, Any] = field(default_factory=dict, hash=False)
    name: str = ALERT_NAME_DEFAULT
    owner: str | None = None  # username; None = the playbook's owner (one of the two is required)
    members: tuple[str, ...] = ()
    finish_on_resolve: bool = False


@dataclass(frozen=True)
class Playbook:
    id: str
    title: str
    description: str = ""
    team: str | None = None  # team URL name; None = every team the bot belongs to
    private_channel: bool = True
    # Where a run happens: "create" opens a channel per run (channel_name, private_channel, category);
    # "existing" posts into `channel` (a channel URL name in the run's team), or, when `channel` is "",
    # the channel the run was started from. Several runs may share such a channel.
    channel_mode: Literal["create", "existing"] = "create"
    channel: str = ""
    channel_name: str = DEFAULT_CHANNEL_NAME  # display-name template, see bot.domain.naming
    category: str = DEFAULT_CATEGORY  # "" = leave the channel where Mattermost puts it
    owner: str | None = None  # username; None = whoever starts the run
    members: tuple[str, ...] = ()
    broadcast_channels: tuple[str, ...] = ()  # channel URL names in the run's team
    welcome: str = ""
    summary: str = ""  # a run's summary when its starter gives none (the plugin's run summary template)
    # Archive the run's channel once the run is finished and its retrospective published or cancelled.
    archive_channel_on_finish: bool = False
    status_updates: StatusUpdates = StatusUpdates()
    retrospective: Retrospective = Retrospective()
    webhooks: Webhooks = Webhooks()
    checklists: tuple[ChecklistSpec, ...] = ()
    # Retrospective metrics ([[metrics]], at most bot.domain.metrics.METRICS_MAX), asked in the retro dialog.
    metrics: tuple[MetricSpec, ...] = ()
    # Run properties ([[properties]]): asked when a run starts, settable later, read by items' `when`.
    properties: tuple[PropertySpec, ...] = ()
    # Who may see, run and edit it, and who may finish its runs ([access]; bot.domain.permissions).
    access: PlaybookAccess = PlaybookAccess()
    # Keyword triggers ([keywords]): None without the table.
    keywords: Keywords | None = None
    # Runs started on a schedule ([schedule]); None = only people, the API and alerts start runs.
    schedule: Schedule | None = None

    # Actions on run events ([[actions]]): Jira, Zoom, on-call, pages, HTTP (handlers/actions.py).
    actions: tuple[ActionSpec, ...] = ()
    # Alert routes ([[alerts]], handlers/alerts.py): in file order; the first matching one wins.
    alerts: tuple[AlertRoute, ...] = ()
    path: Path | None = field(default=None, compare=False)
    # Which stored version this is (storage.playbooks; bot.playbooks.library): "" / 0 for one read
    # straight from a file and never stored.
    version_id: str = field(default="", compare=False)
    version: int = field(default=0, compare=False)

    @property
    def existing_channel(self) -> bool:
        """Whether runs go into a channel that already exists instead of one created for them."""
        return self.channel_mode == "existing"

    @property
    def channel_type(self) -> Literal["O", "P"]:
        """Mattermost's channel type for run channels: "P" private, "O" public."""
        return "P" if self.private_channel else "O"

    def usernames(self) -> set[str]:
        """Every username the playbook names (owner, members, item assignees), for `bot check`."""
        names = set(self.members) | set(self.access.members) | set(self.access.admins)
        for route in self.alerts:
            names.update(route.members)
            if route.owner:
                names.add(route.owner)
        if self.owner:
            names.add(self.owner)
        if self.schedule is not None:
            names.update((self.schedule.owner, *self.schedule.members))
        for checklist in self.checklists:
            for item in checklist.items:
                if item.assignee and item.assignee.kind == "user":
                    names.add(item.assignee.username)
                if item.auto_check:
                    names.update(item.auto_check.users)
        return names
