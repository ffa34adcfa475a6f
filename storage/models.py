"""The database tables. Rows are the truth: everything that must survive a restart lives here.

Times are integer milliseconds since the epoch in UTC (as Mattermost's), which behave the same on
SQLite and PostgreSQL. Ids are 26-character Mattermost-style ids made by storage.ids.new_id.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_team_status", "team_id", "status"), Index("ix_runs_channel", "channel_id"))

    id: str = Field(primary_key=True, max_length=26)
    seq: int = 0
    name: str = Field(max_length=1024)
    summary: str = ""
    playbook_id: str = Field(max_length=128)
    playbook_title: str = ""
    # The playbook version the run started from (storage.playbooks); None for runs started before versions
    # existed (migration 0022), which fall back to the playbook's current version.
    playbook_version_id: Optional[str] = Field(default=None, max_length=26)
    team_id: str = Field(max_length=26)
    channel_id: str = Field(default="", max_length=26)
    private: bool = True  # the run channel's type; public runs are visible to their whole team
    owner_id: str = Field(max_length=26)
    creator_id: str = Field(max_length=26)
    # starting (being set up: storage.starts, seen by nobody) | in_progress | finished | failed (a start
    # that was rolled back: its channel archived, seen by nobody)
    status: str = Field(default="in_progress", max_length=16)
    created_at: int = Field(sa_type=BigInteger)
    finished_at: Optional[int] = Field(default=None, sa_type=BigInteger)
    overview_post_id: str = ""
    # Broadcast channel id -> root post id of the run's thread there.
    broadcast_threads: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    status_updates_enabled: bool = False
    reminder_interval_s: int = 0  # 0 = no status-update reminders
    retrospective_enabled: bool = False
    retrospective_text: str = ""
    retrospective_status: str = ""  # "" | published | cancelled
    retrospective_reminder_s: int = 0
    participants_may_finish: bool = False
    archive_on_finish: bool = False  # the playbook's archive_channel_on_finish when the run started
    channel_archived: bool = False  # the bot archived the channel (a restore brings it back)
    # Started in a channel it did not create (channel_mode = "existing"): never archived, never filed in a
    # sidebar category, possibly shared with other runs.
    existing_channel: bool = False
    # The playbook's retrospective metrics as the run started with them (bot.domain.metrics.MetricSpec
    # as_dict): the retrospective asks for these even after the playbook file changes.
    metric_defs: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    # The playbook's [[properties]] as the run started with them (bot.domain.conditions.PropertySpec
    # as_dict), and the run's values: name -> a string, or a list of strings for a multiselect.
    property_defs: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    properties: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # Who is comparing the run's posts with its rows now (handlers/reconcile.py), and until when: one
    # bot process at a time mends (and reposts) a run's posts; a crashed holder's claim runs out.
    sweep_holder: str = Field(default="", max_length=64)
    sweep_until: Optional[int] = Field(default=None, sa_type=BigInteger)

class RunStart(SQLModel, table=True):
    """A run being started: its plan, each step's result as it completes, and who is carrying it out.

    Written before anything is created in Mattermost, so a process that dies halfway leaves a row
    another process (or the restarted one) resumes: handlers/runs.py runs the steps, storage/starts.py
    records them. `lease_owner`/`lease_until` say who is working on it; every record is conditional on
    still holding the lease, so two processes never both carry one start forward. The run row itself
    (runs, status "starting") is written by the first step and becomes visible once the start is
    complete; a start that cannot be completed is rolled back (its channel archived, the run "failed").
    """

    __tablename__ = "run_starts"
    __table_args__ = (Index("ix_run_starts_state", "state"),)

    run_id: str = Field(primary_key=True, max_length=26)
    # starting | rolling_back (a step failed for good: undo, then tell) | done | failed
    state: str = Field(default="starting", max_length=16)
    created_at: int = Field(sa_type=BigInteger)
    finished_at: Optional[int] = Field(default=None, sa_type=BigInteger)
    # The plan: what was asked, enough for any process to carry it out.
    playbook_id: str = Field(max_length=128)
    playbook_version_id: Optional[str] = Field(default=None, max_length=26)  # the version chosen at the start
    name: str = Field(max_length=1024)
    summary: str = ""
    creator_id: str = Field(max_length=26)
    team_id: str = Field(max_length=26)
    origin_channel_id: str = Field(default="", max_length=26)
    response_url: str = ""
    properties: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # the values asked at start
    owner_id: str = Field(default="", max_length=26)  # named by the start (API, alert, schedule); "" = playbook's
    member_ids: list[str] = Field(default_factory=list, sa_type=JSON)  # added to the playbook's members
    origin: str = ""  # what started it when not a person in chat ("alert from Alertmanager: …"); timeline
    # Step results, each recorded as the step completes.
    prepared: bool = False  # the run row, its checklists and items are written
    display_name: str = ""
    channel_name: str = Field(default="", max_length=64)  # chosen and recorded before the create call
    names_tried: int = 0  # channel names found taken by someone else
    channel_id: str = Field(default="", max_length=26)
    # The channel existed before the start (channel_mode = "existing"): recorded with the plan, so it is
    # never created, and a rollback removes the start's posts from it instead of archiving it.
    existing_channel: bool = False
    owner_added: bool = False  # the starter and the owner are in the channel
    members_wanted: list[str] = Field(default_factory=list, sa_type=JSON)  # the playbook's other members
    members_added: list[str] = Field(default_factory=list, sa_type=JSON)
    members_done: bool = False  # every wanted member added or reported
    admin_done: bool = False
    filed: bool = False  # sidebar categories
    # Posts the start made, by part: overview, checklist:<id>, welcome, problems (also on runs/checklists).
    posts: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    broadcasts_done: bool = False
    problems: list[str] = Field(default_factory=list, sa_type=JSON)  # rendered lines for the channel
    completed: bool = False  # the run is in progress, its reminder armed
    told: bool = False  # the starter heard how it went
    reason: str = ""  # why it was rolled back, as told to the starter
    # Retries of the step that failed last, and who holds the start now.
    step: str = Field(default="", max_length=64)
    attempts: int = 0
    next_attempt_at: int = Field(default=0, sa_type=BigInteger)
    lease_owner: str = Field(default="", max_length=128)
    lease_until: int = Field(default=0, sa_type=BigInteger)


class Checklist(SQLModel, table=True):
    __tablename__ = "checklists"
    __table_args__ = (UniqueConstraint("run_id", "position"),)

    id: str = Field(primary_key=True, max_length=26)
    run_id: str = Field(foreign_key="runs.id", index=True, max_length=26, ondelete="CASCADE")
    position: int
    title: str
    post_id: str = ""  # the interactive message showing this checklist

class ChecklistItem(SQLModel, table=True):
    __tablename__ = "checklist_items"
    __table_args__ = (Index("ix_items_checklist_position", "checklist_id", "position"),
                      Index("ix_items_assignee_state", "assignee_id", "state"),
                      # The items left skipped in the runs someone may see, by title (insights), from the index.
                      Index("ix_items_state_run_title", "state", "run_id", "title"))

    id: str = Field(primary_key=True, max_length=26)
    run_id: str = Field(foreign_key="runs.id", index=True, max_length=26, ondelete="CASCADE")
    checklist_id: str = Field(foreign_key="checklists.id", max_length=26, ondelete="CASCADE")
    position: int
    title: str
    description: str = ""
    state: str = Field(default="open", max_length=16)  # open | in_progress | closed | skipped
    assignee_id: str = Field(default="", max_length=26)
    due_at: Optional[int] = Field(default=None, sa_type=BigInteger)
    # When the due time's notice (overdue mark, the assignee's DM) was claimed; cleared when due_at moves.
    due_noticed_at: Optional[int] = Field(default=None, sa_type=BigInteger)
    # When the heads-up before the due time (storage.items.SOON_MS) was claimed; cleared with due_noticed_at.
    due_soon_noticed_at: Optional[int] = Field(default=None, sa_type=BigInteger)
    command: str = ""
    updated_at: int = Field(default=0, sa_type=BigInteger)
    updated_by: str = ""
    # The playbook's `when` (bot.domain.conditions); {} = always shown. `hidden` is its verdict on the run's
    # properties, kept in step with them in the transaction that changes them (storage.properties), so
    # every query leaves hidden items out with a plain WHERE: they are in no post, count, list or digest.
    condition: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    hidden: bool = False
    # The playbook's auto_check ({"keywords": [...], "users": [...]}, {} = none) and when it fired (once).
    auto_check: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    auto_checked_at: Optional[int] = Field(default=None, sa_type=BigInteger)

class RunMetric(SQLModel, table=True):
    """A retrospective metric's published value (bot.domain.metrics): ms for durations, cents for currency,
    the number for integers. Publishing the retrospective again replaces the run's values."""

    __tablename__ = "run_metrics"

    run_id: str = Field(foreign_key="runs.id", primary_key=True, max_length=26, ondelete="CASCADE")
    position: int = Field(primary_key=True)  # the metric's index in runs.metric_defs
    title: str = Field(max_length=64)
    type: str = Field(max_length=16)  # duration | currency | integer
    value: int = Field(sa_type=BigInteger)
    published_at: int = Field(sa_type=BigInteger)

class Participant(SQLModel, table=True):
    __tablename__ = "participants"
    # "The runs this person takes part in" (every non-admin visibility check) without a table scan.
    __table_args__ = (Index("ix_participants_user", "user_id"),)

    run_id: str = Field(foreign_key="runs.id", primary_key=True, max_length=26, ondelete="CASCADE")
    user_id: str = Field(primary_key=True, max_length=26)
    joined_at: int = Field(sa_type=BigInteger)

class Follower(SQLModel, table=True):
    __tablename__ = "followers"

    run_id: str = Field(foreign_key="runs.id", primary_key=True, max_length=26, ondelete="CASCADE")
    user_id: str = Field(primary_key=True, max_length=26)

class TimelineEvent(SQLModel, table=True):
    __tablename__ = "timeline_events"
    # ix_timeline_type_run: one type's events across runs (the insights page's items added by hand);
    # ix_timeline_type_at: the last day's events of some types (the actions' sweep, storage/actions.py).
    __table_args__ = (Index("ix_timeline_run_at", "run_id", "at"), Index("ix_timeline_type_run", "type", "run_id"),
                      Index("ix_timeline_type_at", "type", "at"))

    id: str = Field(primary_key=True, max_length=26)
    run_id: str = Field(foreign_key="runs.id", max_length=26, ondelete="CASCADE")
    type: str = Field(max_length=64)
    at: int = Field(sa_type=BigInteger)
    actor_id: str = ""
    summary: str = ""
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)

class RunFacts(SQLModel, table=True):
    """One run's timeline folded, for the insights page (storage/run_facts.py keeps it in step with every
    timeline event written, in the same transaction; migration 0022 built it for the runs before it)."""

    __tablename__ = "run_facts"

    run_id: str = Field(foreign_key="runs.id", primary_key=True, max_length=26, ondelete="CASCADE")
    started_at: int | None = Field(default=None, sa_type=BigInteger)  # the first run_started
    finished_at: int | None = Field(default=None, sa_type=BigInteger)  # the last run_finished
    first_update_at: int | None = Field(default=None, sa_type=BigInteger)  # status_updated, first and last
    last_update_at: int | None = Field(default=None, sa_type=BigInteger)
    # The first action (an item change, update, assignment or command with an actor) and who took it, and
    # the first action by anyone else: whichever user id is the bot's, the first person's action is one
    # of the two (storage/run_facts.py first_action).
    first_action_at: int | None = Field(default=None, sa_type=BigInteger)
    first_action_by: str = Field(default="", max_length=64)
    other_action_at: int | None = Field(default=None, sa_type=BigInteger)
    retro_published_at: int | None = Field(default=None, sa_type=BigInteger)  # the first one
    retro_cancelled: int = 0  # retrospective_cancelled events
    reminders_sent: int = 0  # reminder_sent events
    # Each status update's distance (ms) from the step before it (the run's start or the previous update),
    # in timeline order: the page counts those within the run's current reminder interval.
    update_gaps: list[int] = Field(default_factory=list, sa_type=JSON)


class StatusUpdate(SQLModel, table=True):
    __tablename__ = "status_updates"
    __table_args__ = (Index("ix_status_updates_run_at", "run_id", "at"),)

    id: str = Field(primary_key=True, max_length=26)
    run_id: str = Field(foreign_key="runs.id", max_length=26, ondelete="CASCADE")
    at: int = Field(sa_type=BigInteger)
    author_id: str
    message: str

class Reminder(SQLModel, table=True):
    """One pending wake-up per (run, kind). `due_at` moves: to a short lease while a claimed reminder is
    being posted, then to the next one (storage.reminders: claim_due, mark_sent).

    A job claims a reminder with a conditional UPDATE (due_at unchanged), so a job that runs twice, or
    in two bot processes at once, posts once; a claimer that dies before posting loses only its lease.
    `post_ids` are its posts still showing buttons, edited when the reminder is answered.
    """

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("run_id", "kind"), Index("ix_reminders_due", "due_at"))

    id: str = Field(primary_key=True, max_length=26)
    run_id: str = Field(foreign_key="runs.id", max_length=26, ondelete="CASCADE")
    kind: str = Field(max_length=32)  # status_update | retrospective
    due_at: Optional[int] = Field(default=None, sa_type=BigInteger)  # None = off
    interval_s: int = 0
    last_sent_at: Optional[int] = Field(default=None, sa_type=BigInteger)
    sent_count: int = 0
    # Reminder posts still showing buttons (the repeats since the last answer), edited once answered.
    post_ids: list[str] = Field(default_factory=list, sa_type=JSON)

class RunCounter(SQLModel, table=True):
    """The `{seq}` of channel-name templates: one counter per team and playbook."""

    __tablename__ = "run_counters"

    team_id: str = Field(primary_key=True, max_length=26)
    playbook_id: str = Field(primary_key=True, max_length=128)
    value: int = 0

class WebhookStatus(SQLModel, table=True):
    """The last delivery of each outgoing webhook URL, so `python -m bot check` can show failing ones."""

    __tablename__ = "webhook_status"

    url: str = Field(primary_key=True, max_length=2048)
    last_event: str = Field(default="", max_length=64)
    last_at: int = Field(default=0, sa_type=BigInteger)
    ok: bool = True
    failures: int = 0  # consecutive failed deliveries (each after all its retries)
    error: str = ""

class UserSettings(SQLModel, table=True):
    """A person's own settings (`/playbook settings`) and the day their last digest went out.

    `last_digest_day` (days since 0001-01-01, date.toordinal) is the digest's claim: a round sets it to
    today with a conditional UPDATE before sending, so each person gets one digest a day however many
    rounds or bot processes run. A row is created the first time someone changes a setting or is due.
    """

    __tablename__ = "user_settings"

    user_id: str = Field(primary_key=True, max_length=26)
    daily_digest: bool = True
    weekly_digest: bool = True
    last_digest_day: int = 0
    notify_assigned: bool = True  # a DM when someone gives you an item
    notify_owner: bool = True  # a DM when you are made a run's owner
    notify_due: bool = True  # a DM when an item of yours falls due


class UsedProof(SQLModel, table=True):
    """A one-time proof already spent: a Mattermost trigger id (its client id) or a dialog state's nonce.

    Rows are the truth here too: several bot processes on one database refuse the same replay, and a
    restart forgets nothing. Rows older than any proof could still be accepted are deleted as new ones come.
    """

    __tablename__ = "used_proofs"

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)  # "trigger" or "dialog"
    at: int = Field(sa_type=BigInteger, index=True)  # when the proof was made (ms): the clean-up key


class Heartbeat(SQLModel, table=True):
    """Each bot process writes its row when asked for its health: a database that cannot be written shows."""

    __tablename__ = "bot_heartbeats"

    process_id: str = Field(primary_key=True, max_length=64)
    at: int = Field(sa_type=BigInteger)


class WebSession(SQLModel, table=True):
    """A person signed in to the web view. The browser holds a random secret in an HttpOnly cookie; the row
    is keyed by its SHA-256, so the table leaks no usable cookie. The person's Mattermost OAuth tokens are
    kept encrypted (bot/web.py), refreshed before they run out and revoked at sign-out."""

    __tablename__ = "web_sessions"

    id: str = Field(primary_key=True, max_length=64)  # sha256 hex of the cookie's secret
    user_id: str = Field(max_length=26, index=True)
    csrf: str = Field(max_length=64)  # the token every form of this session carries
    created_at: int = Field(sa_type=BigInteger)
    expires_at: int = Field(sa_type=BigInteger, index=True)
    access_token: str = ""  # encrypted; "" for a session made from a one-time sign-in link
    refresh_token: str = ""  # encrypted
    token_expires_at: int = Field(default=0, sa_type=BigInteger)


class SignInGrant(SQLModel, table=True):
    """A one-time proof that lets a browser start a session: an OAuth `state` (kind "oauth", bound to the
    browser by a cookie, remembering where to go after) or a sign-in link from `/playbook dashboard`
    (kind "link", bound to the person who typed it). Spent by deleting the row, so it counts once."""

    __tablename__ = "sign_in_grants"

    id: str = Field(primary_key=True, max_length=64)  # sha256 hex of the secret
    kind: str = Field(max_length=16)
    user_id: str = Field(default="", max_length=26)
    next_path: str = Field(default="", max_length=2048)
    expires_at: int = Field(sa_type=BigInteger, index=True)


class OAuthClient(SQLModel, table=True):
    """The OAuth 2.0 app the bot signs people in with, once registered in Mattermost: every bot process on
    the database uses the same one. The secret is encrypted like the people's tokens."""

    __tablename__ = "oauth_clients"

    id: str = Field(primary_key=True, max_length=32)  # "mattermost": one row
    client_id: str = Field(max_length=26)
    client_secret: str  # encrypted
    callback_url: str = Field(max_length=2048)
    created_at: int = Field(sa_type=BigInteger)


class PlaybookRecord(SQLModel, table=True):
    """A playbook: which of its versions is current, and its state. storage/playbooks.py has the rules.

    `file_managed`: its versions come from `[playbooks] dir/<id>.toml` (read-only elsewhere); `path` is
    that file; `error` the file's problems when its last edit is broken (the last good version stays
    current); `missing` when the file was removed (kept, but no new runs). `updated_at` grows with every
    change to the row (also across processes: max + 1), so `max(updated_at)` tells a bot process cheaply
    that it must read the playbooks again.
    """

    __tablename__ = "playbooks"

    id: str = Field(primary_key=True, max_length=128)
    current_version_id: Optional[str] = Field(default=None, max_length=26)  # None: no valid version yet
    archived: bool = False
    file_managed: bool = False
    path: str = ""
    error: str = ""
    missing: bool = False
    created_at: int = Field(sa_type=BigInteger)
    updated_at: int = Field(sa_type=BigInteger, index=True)


class PlaybookVersion(SQLModel, table=True):
    """One saved state of a playbook: never changed once written. `data` is the playbook file's dict (what
    tomllib gives; bot.playbooks.parse_playbook makes it a Playbook); `content_hash` its canonical SHA-256,
    so a save of what is already current makes no new version. `number` counts from 1 per playbook."""

    __tablename__ = "playbook_versions"
    __table_args__ = (UniqueConstraint("playbook_id", "number"),)

    id: str = Field(primary_key=True, max_length=26)
    playbook_id: str = Field(foreign_key="playbooks.id", max_length=128, ondelete="CASCADE")
    number: int
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    content_hash: str = Field(max_length=64)
    source: str = Field(max_length=16)  # file | editor | import | improve | duplicate
    source_path: str = ""
    source_commit: str = Field(default="", max_length=64)  # the file's git commit, when in a checkout
    author_id: str = Field(default="", max_length=26)
    note: str = ""
    created_at: int = Field(sa_type=BigInteger)


class ScheduleOccurrence(SQLModel, table=True):
    """One occurrence of a playbook's `[schedule]`, recorded once: the process whose INSERT wins starts the
    run (written in the same transaction as the run's start row), or records why it was skipped. Rows are
    the truth: a restart, a second bot process or a repeated wake-up finds the row and starts nothing."""

    __tablename__ = "schedule_occurrences"
    __table_args__ = (Index("ix_schedule_occurrences_recorded_at", "recorded_at"),)

    playbook_id: str = Field(primary_key=True, max_length=128)
    occurrence_at: int = Field(primary_key=True, sa_type=BigInteger)  # the cron's time, epoch ms UTC
    state: str = Field(max_length=16)  # started | skipped
    run_id: str = Field(default="", max_length=26)  # the run started ("" when skipped)
    reason: str = ""  # why it was skipped, in words
    recorded_at: int = Field(sa_type=BigInteger)


class IdempotencyKey(SQLModel, table=True):
    """An API request sent with an `Idempotency-Key` header (handlers/idempotency.py): the key, whose it is
    and which route it was for, a hash of what was sent, and the answer once there is one.

    Inserting the row claims the key: the primary key makes the first insert win, so two bot processes
    given the same request carry it out once. `status` 0 means still being answered; rows older than a
    day are purged (the keys are kept 24 hours).
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    caller_id: str = Field(primary_key=True, max_length=26)
    route: str = Field(primary_key=True, max_length=255)  # "POST /api/v0/runs/<id>/finish", as requested
    key: str = Field(primary_key=True, max_length=255)
    body_hash: str = Field(max_length=64)
    created_at: int = Field(sa_type=BigInteger)
    status: int = 0  # 0: in flight
    answer: Optional[dict[str, Any]] = Field(default=None, sa_type=JSON)


# run_facts follows timeline_events through a flush hook on every Session; registering it here means any
# code that can write a TimelineEvent has it.
import storage.run_facts  # noqa: E402,F401


class KeywordOffer(SQLModel, table=True):
    """A playbook's run offered in a thread because a post there said one of its keywords
    (handlers/keywords.py). At most one per thread and playbook: the unique key is what makes several bot
    processes, each seeing the same `posted` event, offer it once. The row is written before the offer is
    sent; a click moves `state` from "offered" to "starting" by a compare-and-set, so two clicks (or two
    processes) never start two runs."""

    __tablename__ = "keyword_offers"
    __table_args__ = (UniqueConstraint("root_post_id", "playbook_id"),)

    id: str = Field(primary_key=True, max_length=26)
    root_post_id: str = Field(max_length=26)  # the thread
    playbook_id: str = Field(max_length=128)
    team_id: str = Field(max_length=26)
    channel_id: str = Field(max_length=26)
    post_id: str = Field(max_length=26)  # the post that matched
    user_id: str = Field(max_length=26)  # its author, to whom the run was offered
    matched: str = ""  # what matched (a word as written in the post, or a pattern's match)
    name: str = ""  # the run's name, from the post's first line
    # How the offer reached them: "" (not sent yet), "ephemeral", "thread" (a reply), "direct" (a DM)
    mode: str = Field(default="", max_length=16)
    offer_post_id: str = Field(default="", max_length=26)  # the reply or DM post (an ephemeral has none)
    state: str = Field(default="offered", max_length=16)  # offered | starting | started | dismissed
    acted_by: str = Field(default="", max_length=26)  # who started or dismissed it
    run_id: str = Field(default="", max_length=26)
    created_at: int = Field(sa_type=BigInteger)
    updated_at: int = Field(sa_type=BigInteger)


class RunAction(SQLModel, table=True):
    """One playbook action ([[actions]]) for one run event: written before any call to the tool outside
    Mattermost, so a crash, a restart or a second bot process never acts twice nor forgets to act
    (handlers/actions.py carries it out, storage/actions.py records it).

    (run_id, action_index, event_key) is unique: the same event (the run's start, an item's check, a
    status update by its id, a finish by its time) acts once whoever notices it. `lease_owner`/`lease_until`
    say who is working on it, as for run starts. `in_flight` is set (committed) just before a call that
    creates something (a Jira issue, a Zoom meeting) and cleared with its answer: found set by the next
    attempt, the outcome of the earlier call is uncertain (no answer, a crash mid-call)."""

    __tablename__ = "run_actions"
    __table_args__ = (UniqueConstraint("run_id", "action_index", "event_key"),
                      Index("ix_run_actions_state", "state", "next_attempt_at"))

    id: str = Field(primary_key=True, max_length=26)
    run_id: str = Field(max_length=26, index=True)
    action_index: int  # position in the run's playbook version's [[actions]], from 1
    event_key: str = Field(max_length=64)  # "start", an item id, a status update id, "finish:<ms>"
    event: str = Field(max_length=32)  # run_started | item_checked | status_updated | run_finished
    kind: str = Field(max_length=64)
    state: str = Field(default="pending", max_length=16)  # pending | running | done | failed
    attempts: int = 0
    next_attempt_at: int = Field(default=0, sa_type=BigInteger)
    lease_owner: str = Field(default="", max_length=128)
    lease_until: int = Field(default=0, sa_type=BigInteger)
    in_flight: bool = False
    created_at: int = Field(sa_type=BigInteger)
    updated_at: int = Field(default=0, sa_type=BigInteger)
    actor_id: str = Field(default="", max_length=26)  # who caused the event ("" = the bot)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # the event: item title, update text
    result: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # what the tool answered
    error: str = ""
    hint: str = ""


class RunLink(SQLModel, table=True):
    """A link an action made for a run (its Jira issue, its Zoom meeting), kept on the run: shown by
    /playbook info, the API, the web page and the report; jira.comment/transition find the issue here."""

    __tablename__ = "run_links"

    action_id: str = Field(primary_key=True, max_length=26)  # one link per action row
    run_id: str = Field(max_length=26, index=True)
    kind: str = Field(max_length=16)  # "jira" | "zoom"
    label: str = Field(default="", max_length=255)  # "OPS-24", "Zoom meeting"
    key: str = Field(default="", max_length=255)  # the issue key / meeting id the tool knows it by
    url: str = ""
    at: int = Field(sa_type=BigInteger)


class AlertDelivery(SQLModel, table=True):
    """One alert delivery taken in (`POST /hooks/alerts/<source>`, handlers/alerts.py), kept so a repeat is
    recognised: (source, dedup) is unique, so of several bot processes receiving the same delivery one
    records it and acts; the others answer "duplicate". `dedup` is a digest of the source's repeat key
    (Alertmanager/Grafana groupKey + status + alerts' startsAt, PagerDuty X-Webhook-Id, Opsgenie alertId +
    action). `post_state` "pending" is an outbox: the alert's details are still to be posted in the run's
    channel (by whichever process claims it, `post_holder` until `post_until`), then "done".
    """

    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("source", "dedup", name="uq_alert_deliveries_source_dedup"),
                      Index("ix_alert_deliveries_post_state", "post_state"),
                      Index("ix_alert_deliveries_received_at", "received_at"))

    id: str = Field(primary_key=True, max_length=26)
    source: str = Field(max_length=16)
    dedup: str = Field(max_length=64)
    group_hash: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # firing | resolved | update
    title: str = ""
    received_at: int = Field(sa_type=BigInteger)
    # started (a run started by it) | posted (to an open run) | no_route | no_run (nothing open to post to)
    # | unusable (its route cannot start a run; why in details["unusable"], dedup made unique)
    outcome: str = Field(max_length=16)
    playbook_id: str = Field(default="", max_length=128)
    run_id: str = Field(default="", max_length=26)
    finish: bool = False  # a resolution whose route says finish_on_resolve
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # bot.integrations.alert_hooks values
    post_state: str = Field(default="none", max_length=16)  # none | pending | done
    post_holder: str = Field(default="", max_length=64)
    post_until: int = Field(default=0, sa_type=BigInteger)


class AlertGroup(SQLModel, table=True):
    """An alert group (groupKey, PagerDuty incident, Opsgenie alert) and the run it started. `open_hash` is
    the group's digest while that run may still take its alerts, NULL once it is over: unique per source, so
    two processes never both start a run for one open group (NULLs never collide)."""

    __tablename__ = "alert_groups"
    __table_args__ = (UniqueConstraint("source", "open_hash", name="uq_alert_groups_source_open"),
                      Index("ix_alert_groups_run", "run_id"))

    id: str = Field(primary_key=True, max_length=26)
    source: str = Field(max_length=16)
    group_hash: str = Field(max_length=64)
    open_hash: Optional[str] = Field(default=None, max_length=64)
    run_id: str = Field(max_length=26)
    opened_at: int = Field(sa_type=BigInteger)
