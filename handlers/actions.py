"""Actions on run events: the playbooks' `[[actions]]` (docs/actions.md), carried out through the clients
in `ctx.integrations` (bot/integrations) and, for the "http" kind, the bot's own signed HTTP.

A run event (`ctx.emit`: run_started, item_checked, status_updated, run_finished) returns at once; in a
tracked follow-up the run's playbook VERSION's matching actions become rows (storage.models.RunAction),
written before any call and unique per (run, action, event), so an event noticed twice, by a job that
runs twice or by two bot processes, acts once. `ActionService` then claims each due row (a lease, as run
starts have) and carries it out, never in the way of the run:

- success: the row is done, an `action_succeeded` timeline event, a post in the run's channel (with the
  link: the Jira issue, the Zoom join URL, pinned where the bot may), the link kept on the run;
- a failure worth retrying (IntegrationError.retryable: no answer, 408, 429, 5xx) is tried again after
  the outgoing webhooks' backoff (1 s, 4 s, 16 s, 64 s; a longer Retry-After wins, up to 5 min), in any
  process; the channel hears of the first failure and that it will be retried;
- a final failure (any other 4xx, a service not configured, a template that fails, the retries spent):
  an `action_failed` timeline event and a post saying what failed and how to fix it. The run goes on.

Uncertain outcomes (no answer, or a process that died mid-call: `in_flight` found set): a Jira issue is
looked for by its label `playbooks-run-<run id>` before creating one again (at least JIRA_SEARCH_LAG_S
later, as Jira's search is eventually consistent), so a run never gets two; a
Zoom meeting or a Jira comment (no key to find them by) is not tried blindly again: the failure says the
earlier attempt may have worked and to check. A call that never left the bot (no connection, no token:
IntegrationError.sent false) made nothing and is retried like any other. PagerDuty and Opsgenie pages
are keyed per run (dedup_key, alias) and the http action carries the same `X-Playbooks-Delivery` on
every attempt, so those retry.

After a restart, `run_due()` at start-up (and at every wake-up or poll) picks up the rows left pending.
The rows of a run's start are written before the start counts as done; those of the later events are
written by a follow-up just after the event's own commit (and its posts), so a process that dies in
between, or a follow-up that fails first, would leave the event without its actions. The sweep
(`sweep()`, at start-up and every SWEEP_EVERY_S) closes that gap from the timeline, which records each
event in the event's own transaction: an item checked, a status update or a finish of the last day
(SWEEP_WINDOW_S), older than SWEEP_GRACE_S and without rows, gets its rows then.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from bot.context import Context
from bot.integrations import IntegrationError
from bot.models import MattermostError
from bot.outbound import AddressPolicy, HttpPoster, Sender
from bot.playbooks.actions import ActionTemplateError, render
from bot.playbooks.model import ActionSpec
from bot.router import Router
from handlers import notices, sidebar
from handlers.leased import LeasedRows
from handlers.views import schedule_overview_refresh
from handlers.webhooks import retry_delay_s, signed_headers
from storage import actions as store
from storage import people, runs
from storage.db import StorageError
from storage.ids import new_id
from storage.models import RunAction, RunLink
from storage.runs import RunView

log = logging.getLogger(__name__)

# Seconds before an uncertain Jira create is looked for by its label (docs/integrations.md: the search is
# eventually consistent).
JIRA_SEARCH_LAG_S = 30.0
# The sweep for run events left without their action rows (see the module doc).
SWEEP_EVERY_S = 300.0
SWEEP_WINDOW_S = 24 * 3600.0  # older events are not acted on late
SWEEP_GRACE_S = 60.0  # younger ones are still being recorded by the process that made them
SWEEP_CHUNK = 500  # runs per read of their events

router = Router("actions")

JOB = "actions"
EVENTS = ("run_started", "item_checked", "status_updated", "run_finished")
LEASE_MS = 120_000  # longer than any one call's timeout; a holder that dies frees its rows after this
POLL_S = 15.0
MAX_ATTEMPTS = 5  # the first try and the webhooks' four backoffs
NOT_CONFIGURED = {
    "Jira": "add [jira] url, email, api_token to bot.toml (or BOT_JIRA_URL, BOT_JIRA_EMAIL, BOT_JIRA_API_TOKEN)",
    "Zoom": "add [zoom] account_id, client_id, client_secret, host to bot.toml (or the BOT_ZOOM_* variables)",
    "PagerDuty": "add [pagerduty] api_token (and routing_keys for pages) to bot.toml (or BOT_PAGERDUTY_*)",
    "Opsgenie": "add [opsgenie] api_key to bot.toml (or BOT_OPSGENIE_API_KEY)",
}

# Calls with no key to find their result by: after no answer they are reported, not retried blindly.
UNKEYED = {"zoom.create_meeting": ("meeting", "the host's meetings in Zoom and post the join URL here"),
           "jira.comment": ("comment", "the run's Jira issue")}


class TemplateValues(SimpleNamespace):
    """`run` and `event` as the action templates see them (attributes only)."""


def http_actions_key(signing_key: bytes) -> bytes:
    """The key the http actions are signed with: derived from the bot's signing key, so a receiver of
    http actions (a URL a playbook editor chose) holds no key that signs the outgoing webhooks."""
    return hmac.new(signing_key, b"http-actions/v1", hashlib.sha256).digest()


def run_label(run_id: str) -> str:
    """The Jira label, PagerDuty dedup_key and Opsgenie alias of a run."""
    return f"playbooks-run-{run_id}"


class ActionFailed(Exception):
    """A failure of the bot's own making or finding (not configured, a template, nothing to comment on)."""

    def __init__(self, message: str, hint: str = "", *, retryable: bool = False,
                 retry_after_s: float | None = None, waiting: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.retryable = retryable
        self.retry_after_s = retry_after_s  # at least this long before the next attempt
        # Not a failure: waiting on another row that will settle (the run's Jira create); not announced, and
        # not bounded by MAX_ATTEMPTS, so a long retry of the create cannot make the waiter give up.
        self.waiting = waiting


@dataclass
class Done:
    summary: str  # one line: the timeline's words, and the post's
    result: dict[str, Any] = field(default_factory=dict)
    link: tuple[str, str, str, str] | None = None  # (kind, label, key, url)
    pin: bool = False
    detail: str = ""  # more for the channel post (who was invited, who was not found)


def event_key(event: str, view: RunView, payload: dict[str, Any]) -> str:
    """What makes one event one: the start, the item checked, the status update, the finish (by time)."""
    if event == "item_checked":
        return str(payload.get("item_id") or "")[:64]
    if event == "status_updated":
        return str(payload.get("update_id") or payload.get("at") or "")[:64]
    if event == "run_finished":  # the finish's own time (a restore since clears the run's)
        return f"finish:{payload.get('finished_at') or view.run.finished_at or 0}"
    return "start"


def matching(spec: ActionSpec, event: str, payload: dict[str, Any]) -> bool:
    if spec.on != event:
        return False
    return not spec.item or spec.item == payload.get("title")


class ActionService(LeasedRows[RunAction]):
    """Records and carries out the actions of run events; the rows are the truth (see the module doc).
    Claiming and waking up: handlers/leased.py."""

    job = "actions"
    what = "pending actions"
    live = staticmethod(store.live_actions)
    claim = staticmethod(store.claim)

    def __init__(self, ctx: Context, *, sender: Sender | None = None, lease_ms: int = LEASE_MS,
                 poll_s: float = POLL_S) -> None:
        super().__init__(ctx, lease_ms=lease_ms, poll_s=poll_s)
        # Playbook editors choose the http actions' URLs: only public addresses, and the internal ones
        # the admin allowed ([http_actions] allow_internal), as Mattermost's own integrations.
        self.sender: Sender = sender or HttpPoster(policy=AddressPolicy(ctx.settings.http_actions.allow_internal))
        self._swept_at: int | None = None

    @staticmethod
    def key(row: RunAction) -> str:
        return row.id

    async def start(self) -> None:
        self.wakeup.start()
        if self not in self.ctx.run_events:
            self.ctx.run_events.append(self)
        self.ctx.tasks.spawn(self.run_due(), name=self.job)  # what a previous process left, now

    async def stop(self) -> None:
        self.wakeup.stop()
        if self in self.ctx.run_events:
            self.ctx.run_events.remove(self)
        self.forget_holder()
        await self.sender.close()

    # -- events -> rows ---------------------------------------------------------------------------

    async def emit(self, event: str, run_id: str, *, actor_id: str = "",
                   payload: dict[str, Any] | None = None) -> None:
        if event not in EVENTS:
            return
        if event == "run_started":
            # A start is marked done only after its emit returns (handlers/runs.py _told): with the rows
            # written here, a crash right after cannot lose the start's actions, and a start resumed
            # after a crash before it emits again, the unique rows making that once.
            if await self.write_rows(event, run_id, actor_id, dict(payload or {})):
                self.ctx.tasks.spawn(self.run_due(), name=self.job)
            return
        self.ctx.tasks.spawn(self.record(event, run_id, actor_id, dict(payload or {})),
                             name=f"actions:{event}:{run_id}")

    async def record(self, event: str, run_id: str, actor_id: str, payload: dict[str, Any]) -> int:
        """Write a row for each of the run's playbook version's actions on `event` and carry out what is
        due; how many rows were new."""
        added = await self.write_rows(event, run_id, actor_id, payload)
        if added:
            await self.run_due()
        return added

    async def write_rows(self, event: str, run_id: str, actor_id: str, payload: dict[str, Any],
                         key: str | None = None) -> int:
        """Write a row for each of the run's playbook version's actions on `event`; how many were new.
        `key`: the event's key when known (the sweep's, from the timeline), else made from the event."""
        view = await self.ctx.db.run(runs.load_view, run_id, readonly=True)
        if view is None:
            return 0
        playbook = await self.ctx.run_playbook(view.run)
        if playbook is None or not playbook.actions:
            return 0
        key = key or event_key(event, view, payload)
        now = self.ctx.clock.now_ms()
        rows = [RunAction(id=new_id(), run_id=run_id, action_index=index, event_key=key, event=event,
                          kind=spec.kind, created_at=now, updated_at=now, actor_id=actor_id, payload=payload)
                for index, spec in enumerate(playbook.actions, start=1) if matching(spec, event, payload)]
        if not rows:
            return 0
        return len(await self.ctx.db.run(store.insert_actions, rows))

    async def run_due(self) -> int:
        if self._swept_at is None or self.ctx.clock.now_ms() - self._swept_at >= SWEEP_EVERY_S * 1000:
            await self.sweep()
        return await super().run_due()

    async def sweep(self) -> int:
        """Write the rows of the recent run events that have none (see the module doc); how many."""
        now = self.ctx.clock.now_ms()
        self._swept_at = now
        since, until = now - int(SWEEP_WINDOW_S * 1000), now - int(SWEEP_GRACE_S * 1000)
        library = self.ctx.library
        if library is None:
            return 0
        try:
            wanted: dict[str, set[str]] = {}
            for run_id, version_id in await self.ctx.db.run(store.runs_with_events, since, until, readonly=True):
                playbook = await library.version(version_id)
                events = {a.on for a in playbook.actions} - {"run_started"} if playbook is not None else set()
                if events:
                    wanted[run_id] = events
            run_ids, added = sorted(wanted), 0
            for start in range(0, len(run_ids), SWEEP_CHUNK):  # a bounded IN list per read
                chunk = run_ids[start:start + SWEEP_CHUNK]
                for ev in await self.ctx.db.run(store.unrecorded_events, chunk, since, until, readonly=True):
                    if ev.event in wanted[ev.run_id]:
                        added += await self.write_rows(ev.event, ev.run_id, ev.actor_id, ev.payload, key=ev.key)
        except Exception:  # noqa: BLE001 - the sweep is a safety net: run_due goes on, the next sweep tries again
            log.exception("the sweep for run events without their actions failed; it runs again later")
            return 0
        if added:
            log.warning("wrote %d action rows for run events that had none (a process stopped, or a follow-up "
                        "failed, between an event and its actions)", added)
        return added

    # -- rows -> calls ----------------------------------------------------------------------------

    async def carry(self, row: RunAction) -> None:
        try:
            await self._attempt(row)
        except Exception as err:  # noqa: BLE001 - the lease runs out and the row is taken up again
            log.exception("action failed unexpectedly action=%s run=%s attempt=%d", row.id, row.run_id,
                          row.attempts)
            if row.attempts >= MAX_ATTEMPTS:  # the same again and again: failed for good, not claimed forever
                await self._give_up(row, err)
        finally:
            self._active.discard(row.id)

    async def _give_up(self, row: RunAction, err: Exception) -> None:
        try:
            view = await self.ctx.db.run(runs.load_view, row.run_id, readonly=True)
            if view is not None:
                await self._fail(row, view, ActionFailed(
                    f"the bot failed unexpectedly on every attempt ({type(err).__name__}: {err})"[:500],
                    "the bot's log has the details; this is a fault in the bot, worth reporting"),
                    will_retry=False, attempts=row.attempts)
        except Exception:  # noqa: BLE001 - the database is away too: the lease runs out, tried again then
            log.exception("could not record the failure of action=%s run=%s", row.id, row.run_id)

    async def _attempt(self, row: RunAction) -> None:
        view = await self.ctx.db.run(runs.load_view, row.run_id, readonly=True)
        if view is None:
            return
        playbook = await self.ctx.run_playbook(view.run)
        spec = playbook.actions[row.action_index - 1] if playbook and 0 < row.action_index <= len(
            playbook.actions) else None
        if spec is None or spec.kind != row.kind:
            await self._fail(row, view, ActionFailed("the action is not in the run's playbook version any more"),
                             will_retry=False)
            return
        try:
            done = await Glue(self, row, view, spec).run()
        except IntegrationError as err:
            # No answer, or a 5xx that may come after the thing was made (an edge's 502/504, a 500 from a
            # server that failed after acting; 503 says it was not taken in): for a create with no key to
            # find it by, or a Jira create (found by its label later), the outcome is uncertain.
            unsure = (err.status == 0 and err.sent) or (err.status >= 500 and err.status != 503
                                         and row.kind in (*UNKEYED, "jira.create_issue"))
            if unsure and row.kind in UNKEYED:  # it may have been made; never twice
                what, where = UNKEYED[row.kind]
                await self._fail(row, view, ActionFailed(
                    f"{err.service}: {err.message}; no clear answer came, so the {what} may exist: it is not tried "
                    "again, so there are never two", f"check {where}"), will_retry=False)
                return
            await self._failed(row, view, spec, err.message if err.service in err.message else
                               f"{err.service}: {err.message}", err.hint, err.retryable,
                               err.retry_after_s, uncertain=unsure or bool(row.in_flight))
            return
        except ActionFailed as err:
            await self._failed(row, view, spec, err.message, err.hint, err.retryable, err.retry_after_s,
                               uncertain=bool(row.in_flight), waiting=err.waiting)
            return
        except (MattermostError, StorageError) as err:  # the bot's own side failed: worth another attempt
            log.warning("action attempt failed on the bot's side action=%s run=%s: %s", row.id, row.run_id, err)
            await self._failed(row, view, spec, f"the bot could not finish the action ({err})", "", True, None,
                               uncertain=bool(row.in_flight))
            return
        await self._succeed(row, view, done)

    async def _failed(self, row: RunAction, view: RunView, spec: ActionSpec, message: str, hint: str,
                      retryable: bool, retry_after_s: float | None, *, uncertain: bool,
                      waiting: bool = False) -> None:
        attempts = max(row.attempts, 1)
        delay = retry_delay_s(attempts, retry_after_s) if retryable and attempts < MAX_ATTEMPTS else None
        if waiting:  # on another row that settles for sure (done, or failed for good): no attempts to spend
            delay = retry_delay_s(min(attempts, MAX_ATTEMPTS - 1), retry_after_s)
        if delay is not None and uncertain and row.kind == "jira.create_issue":
            # Jira's issue search is eventually consistent (an issue made moments ago may not be found by
            # its label yet): the look before creating again waits for it.
            delay = max(delay, JIRA_SEARCH_LAG_S)
        if delay is None:
            await self._fail(row, view, ActionFailed(message, hint), will_retry=False, attempts=attempts)
            return
        now = self.ctx.clock.now_ms()
        due = now + int(delay * 1000)
        log.info("action failed, trying again later action=%s run=%s kind=%s attempt=%d delay_s=%.1f error=%s",
                 row.id, row.run_id, row.kind, attempts, delay, message)
        if not await self.ctx.db.run(store.retry_later, row.id, self.holder, now, due, message, hint, uncertain):
            return
        if attempts == 1 and not waiting:  # the channel hears of the first failure only, and that it is tried again
            await self._post(view, self.ctx.render("actions/failed.md.j2", kind=row.kind, index=row.action_index,
                                                   error=message, hint=hint, retry_in_s=delay, attempt=attempts))
        self.wakeup.wake_at(due, replace=False)

    async def _fail(self, row: RunAction, view: RunView, err: ActionFailed, *, will_retry: bool,
                    attempts: int = 0) -> None:
        summary = f"{row.kind} failed: {err.message}"
        ok = await self.ctx.db.run(store.settle, row.id, self.holder, self.ctx.clock.now_ms(), False, {},
                                   err.message, err.hint, summary, {"error": err.message, "hint": err.hint})
        if not ok:
            return
        log.warning("action failed for good action=%s run=%s kind=%s error=%s", row.id, row.run_id, row.kind,
                    err.message)
        await self._post(view, self.ctx.render("actions/failed.md.j2", kind=row.kind, index=row.action_index,
                                               error=err.message, hint=err.hint, retry_in_s=None,
                                               attempt=attempts or row.attempts))

    async def _succeed(self, row: RunAction, view: RunView, done: Done) -> None:
        now = self.ctx.clock.now_ms()
        link = None
        if done.link is not None:
            kind, label, key, url = done.link
            link = RunLink(action_id=row.id, run_id=row.run_id, kind=kind, label=label, key=key, url=url, at=now)
        details: dict[str, Any] = {"result": done.result}
        if link is not None:
            details["url"] = link.url
        if not await self.ctx.db.run(store.settle, row.id, self.holder, now, True, done.result, "", "",
                                     done.summary, details, link):
            return
        log.info("action done action=%s run=%s kind=%s", row.id, row.run_id, row.kind)
        post_id = await self._post(view, self.ctx.render("actions/succeeded.md.j2", kind=row.kind,
                                                         summary=done.summary, url=link.url if link else "",
                                                         label=link.label if link else "",
                                                         detail=done.detail))
        if done.pin and post_id:
            try:
                await self.ctx.gateway.pin_post(post_id)
            except MattermostError as err:  # the bot may not pin there: the post stays, unpinned
                log.info("could not pin the action's post post=%s status=%s", post_id, err.status)

    async def _post(self, view: RunView, text: str) -> str:
        if not view.run.channel_id:
            return ""
        try:
            return (await self.ctx.gateway.create_post(view.run.channel_id, text)).id
        except MattermostError as err:
            log.warning("could not post an action's outcome run=%s status=%s", view.run.id, err.status)
            return ""


class Glue:
    """One attempt of one action: the kind's call against the client protocols (bot/integrations)."""

    def __init__(self, service: ActionService, row: RunAction, view: RunView, spec: ActionSpec) -> None:
        self.service = service
        self.ctx = service.ctx
        self.row = row
        self.view = view
        self.spec = spec
        self.run_id = view.run.id
        self._values: dict[str, Any] | None = None

    async def run(self) -> Done:
        handler = getattr(self, "_" + self.row.kind.replace(".", "_"), None)
        if handler is None:
            raise ActionFailed(f"unknown kind {self.row.kind}")
        result: Done = await handler()
        return result

    # -- helpers ----------------------------------------------------------------------------------

    async def values(self) -> dict[str, Any]:
        if self._values is None:
            run = self.view.run
            names = await self.ctx.users.names([run.owner_id, self.row.actor_id])
            team = self.ctx.teams.get(run.team_id)
            payload = self.row.payload or {}
            # Objects, not dicts: `event.update` must be the update, not dict.update.
            self._values = {
                "run": TemplateValues(
                    id=run.id, name=run.name, summary=run.summary, owner=names.get(run.owner_id, ""),
                    playbook=run.playbook_title,
                    channel_url=f"{self.ctx.mattermost_url}/{team.name if team else run.team_id}/channels/"
                                f"{run.channel_id}",
                    details_url=f"{self.ctx.public_url}/runs/{run.id}", properties=dict(run.properties or {})),
                "event": TemplateValues(type=self.row.event, by=names.get(self.row.actor_id, ""),
                                        item=str(payload.get("title") or ""),
                                        update=str(payload.get("message") or "")),
            }
        return self._values

    async def text(self, key: str, default: str) -> str:
        source = self.spec.get(key)
        if not source:
            return default
        try:
            return render(source, await self.values()).strip()
        except ActionTemplateError as err:
            raise ActionFailed(f"the template actions[{self.row.action_index}].{key} failed: {err}",
                               "fix the template in the playbook; this run keeps the version it started "
                               "with, so the change applies to runs started after it") from None

    def client(self, service: str, found: Any) -> Any:
        if found is None:
            raise ActionFailed(f"{service} is not configured", f"not configured: {NOT_CONFIGURED[service]}")
        return found

    async def begin_call(self) -> None:
        if not await self.ctx.db.run(store.begin_call, self.row.id, self.service.holder, self.ctx.clock.now_ms(),
                                     self.service.lease_ms):
            raise ActionFailed("another bot process took this action over", retryable=False)

    async def jira_issue(self) -> RunLink:
        link, creating = await self.ctx.db.run(store.jira_issue_or_creating, self.run_id, readonly=True)
        if creating:
            raise ActionFailed("the run's Jira issue is still being created; this waits for it", retryable=True,
                               waiting=True)
        if link is None:
            raise ActionFailed("no Jira issue was created for this run, so there is none to "
                               f"{'comment on' if self.row.kind == 'jira.comment' else 'transition'}",
                               "add an action with kind = \"jira.create_issue\" and on = \"run_started\" to the "
                               "playbook, before this one")
        return link

    # -- Jira --------------------------------------------------------------------------------------

    async def _jira_create_issue(self) -> Done:
        jira = self.client("Jira", self.ctx.integrations.jira)
        existing, earlier = await self.ctx.db.run(store.jira_issue_or_creating, self.run_id, self.row,
                                                  readonly=True)
        if existing is not None:  # once per run, whichever action or event asked
            return Done(f"Jira issue {existing.label} is this run's already", {"key": existing.key},
                        link=None, detail="")
        if earlier:  # another create row of this run goes first; this one adopts its issue, or creates if it failed
            raise ActionFailed("another action is creating this run's Jira issue; this one waits for it",
                               retryable=True, waiting=True)
        label = run_label(self.run_id)
        if self.row.in_flight:  # an earlier attempt may have created it: look before creating again
            # ... but not before Jira's search can see it (a process that died mid-call frees its lease at
            # once, so this attempt may come seconds after that create).
            waited_ms = self.ctx.clock.now_ms() - self.row.updated_at
            if waited_ms < JIRA_SEARCH_LAG_S * 1000:
                raise ActionFailed("an earlier attempt to create the Jira issue may have worked; it is looked for "
                                   "by its label once Jira's search has caught up", retryable=True,
                                   retry_after_s=JIRA_SEARCH_LAG_S - waited_ms / 1000)
            found = await jira.find_by_label(label)
            if found is not None:
                return self._issue(found, recovered=True)
        run = self.view.run
        summary = await self.text("summary", run.name)
        description = await self.text("description", run.summary)
        labels = list(dict.fromkeys([*(self.spec.get("labels") or ()), label]))
        await self.begin_call()
        issue = await jira.create_issue(project=self.spec.get("project"), issue_type=self.spec.get("issue_type") or
                                        "Task", summary=summary[:255], description=description, labels=labels)
        return self._issue(issue, recovered=False)

    def _issue(self, issue: Any, *, recovered: bool) -> Done:
        return Done(f"Jira issue {issue.key} created", {"id": issue.id, "key": issue.key, "url": issue.url,
                                                       "found_by_label": recovered},
                    link=("jira", issue.key, issue.key, issue.url))

    async def _jira_comment(self) -> Done:
        jira = self.client("Jira", self.ctx.integrations.jira)
        issue = await self.jira_issue()
        default = str((self.row.payload or {}).get("message") or "") or self.view.run.summary or self.view.run.name
        text = await self.text("text", default)
        if self.row.in_flight:
            raise ActionFailed(f"an earlier attempt to comment on {issue.label} got no answer; the comment may "
                               "be there already, so it is not added again", f"check {issue.url}")
        await self.begin_call()
        await jira.comment(issue.key, text)
        return Done(f"commented on Jira issue {issue.label}", {"key": issue.key})

    async def _jira_transition(self) -> Done:
        jira = self.client("Jira", self.ctx.integrations.jira)
        issue = await self.jira_issue()
        to = str(self.spec.get("to"))
        await jira.transition(issue.key, to)
        return Done(f"Jira issue {issue.label} moved to {to}", {"key": issue.key, "to": to})

    # -- Zoom --------------------------------------------------------------------------------------

    async def _zoom_create_meeting(self) -> Done:
        zoom = self.client("Zoom", self.ctx.integrations.zoom)
        if self.row.in_flight:
            raise ActionFailed("an earlier attempt to create the Zoom meeting got no answer; Zoom has no key to "
                               "find it by, so it is not tried again (never two meetings)",
                               "check the host's meetings in Zoom and post the join URL in the channel")
        topic = await self.text("topic", self.view.run.name)
        await self.begin_call()
        meeting = await zoom.create_meeting(topic=topic[:200], agenda=self.view.run.summary,
                                            host=str(self.spec.get("host") or ""))
        return Done("Zoom meeting created", {"id": meeting.id, "join_url": meeting.join_url},
                    link=("zoom", "Zoom meeting", meeting.id, meeting.join_url), pin=True)

    # -- on call -----------------------------------------------------------------------------------

    async def _pagerduty_invite_oncall(self) -> Done:
        pd = self.client("PagerDuty", self.ctx.integrations.pagerduty)
        emails = await pd.oncall_emails(escalation_policy_ids=list(self.spec.get("escalation_policy") or ()),
                                        schedule_ids=list(self.spec.get("schedule") or ()))
        return await self.invite("PagerDuty", list(emails))

    async def _opsgenie_invite_oncall(self) -> Done:
        og = self.client("Opsgenie", self.ctx.integrations.opsgenie)
        emails = await og.oncall_emails(schedule=str(self.spec.get("schedule")))
        return await self.invite("Opsgenie", list(emails))

    async def invite(self, service: str, emails: list[str]) -> Done:
        """The people on call, by email, into the run (and the first one its owner, with make_owner)."""
        run = self.view.run
        invited: list[str] = []
        unknown: list[str] = []
        refused: list[str] = []
        first_id = ""
        for email in dict.fromkeys(e.strip().lower() for e in emails if e.strip()):
            try:
                user = await self.ctx.gateway.get_user_by_email(email)
            except MattermostError as err:
                if err.status in (0, 429) or err.status >= 500:
                    raise ActionFailed(f"Mattermost did not answer looking up {email}", retryable=True) from None
                user = None  # hidden from the bot (403): as good as unknown here
            if user is None or user.delete_at:
                unknown.append(email)
                continue
            self.ctx.users.remember(user)
            if run.channel_id:
                try:
                    await self.ctx.gateway.add_channel_member(run.channel_id, user.id)
                except MattermostError as err:
                    if err.status in (0, 429) or err.status >= 500:
                        raise ActionFailed("Mattermost did not answer adding people", retryable=True) from None
                    refused.append(user.username)
                    continue
            joined = await self.ctx.db.run(people.add_participant, run.id, user.id, self.ctx.bot_user.id,
                                           self.ctx.clock.now_ms(), f"@{user.username} (on call)")
            if joined:
                notices.welcome(self.ctx, run, user.id)
                sidebar.file_joiner(self.ctx, run, user.id)
            invited.append(user.username)
            first_id = first_id or user.id
        owner = ""
        if self.spec.get("make_owner") and first_id and first_id != run.owner_id:
            bot_id = self.ctx.bot_user.id
            names = await self.ctx.users.names([run.owner_id, first_id])
            owner = names.get(first_id, "")
            before, changed, moved = await self.ctx.db.run(
                people.set_owner, run.id, first_id, bot_id, self.ctx.clock.now_ms(),
                f"@{names.get(run.owner_id, run.owner_id)} to @{owner}", f"@{owner} (new owner, on call)")
            if changed:
                notices.made_owner(self.ctx, run, first_id, bot_id, before, moved, reply_channel_id="")
        schedule_overview_refresh(self.ctx, run.id)
        summary = (f"invited {len(invited)} on call from {service}" if invited else
                   f"nobody on call at {service} could be invited")
        detail = self.ctx.render("actions/invited.md.j2", invited=invited, unknown=unknown, refused=refused,
                                 owner=owner, service=service)
        return Done(summary, {"invited": invited, "unknown_emails": unknown, "refused": refused, "owner": owner},
                    detail=detail)

    # -- pages -------------------------------------------------------------------------------------

    async def _pagerduty_page(self) -> Done:
        pd = self.client("PagerDuty", self.ctx.integrations.pagerduty)
        values = await self.values()
        routing = str(self.spec.get("routing") or "default")
        summary = await self.text("summary", self.view.run.name)
        await pd.trigger(routing=routing, dedup_key=run_label(self.run_id), summary=summary[:1024],
                         source=urlsplit(self.ctx.mattermost_url).hostname or "playbooks",
                         severity=str(self.spec.get("severity") or "critical"), link=values["run"].channel_url)
        return Done(f"PagerDuty paged ({routing})", {"routing": routing, "dedup_key": run_label(self.run_id)})

    async def _pagerduty_resolve(self) -> Done:
        pd = self.client("PagerDuty", self.ctx.integrations.pagerduty)
        routing = str(self.spec.get("routing") or "default")
        await pd.resolve(routing=routing, dedup_key=run_label(self.run_id))
        return Done(f"PagerDuty page resolved ({routing})", {"routing": routing})

    async def _opsgenie_page(self) -> Done:
        og = self.client("Opsgenie", self.ctx.integrations.opsgenie)
        message = await self.text("message", self.view.run.name)
        await og.create_alert(message=message[:130], alias=run_label(self.run_id), description=self.view.run.summary,
                              priority=str(self.spec.get("priority") or "P3"),
                              responders=list(self.spec.get("responders") or ()))
        return Done("Opsgenie alert created", {"alias": run_label(self.run_id)})

    async def _opsgenie_close(self) -> Done:
        og = self.client("Opsgenie", self.ctx.integrations.opsgenie)
        await og.close_alert(alias=run_label(self.run_id))
        return Done("Opsgenie alert closed", {"alias": run_label(self.run_id)})

    # -- http --------------------------------------------------------------------------------------

    async def _http(self) -> Done:
        url = str(self.spec.get("url"))
        method = str(self.spec.get("method") or "POST")
        host = urlsplit(url).hostname or url
        raw = b""
        if self.spec.get("body"):
            text = await self.text("body", "")
            try:
                json.loads(text)
            except ValueError as err:
                raise ActionFailed(f"the body of actions[{self.row.action_index}] is not JSON once filled in "
                                   f"({err})", "fix the body template: values from run and event may need "
                                   "| tojson, e.g. {\"name\": {{ run.name | tojson }}}") from None
            raw = text.encode()
        configured = self.ctx.settings.http_actions.secrets
        extra: dict[str, str] = dict(self.spec.get("headers") or ())
        for header, name in self.spec.get("secret_headers") or ():
            if name not in configured:
                raise ActionFailed(f"the secret \"{name}\" for header {header} is not configured",
                                   f"add {name} = \"...\" under [http_actions] secrets in bot.toml (or "
                                   "BOT_HTTP_ACTIONS_SECRETS)")
            allowed = self.ctx.settings.http_actions.secret_hosts.get(name, ())
            if host.lower().rstrip(".") not in allowed:
                raise ActionFailed(f"the secret \"{name}\" for header {header} may not be sent to {host}",
                                   f"if {host} is meant to get it, add it under [http_actions] secret_hosts in "
                                   f"bot.toml: {name} = [\"{host}\"] (or BOT_HTTP_ACTIONS_SECRET_HOSTS)")
            extra[header] = configured[name]
        timestamp = str(self.ctx.clock.now_ms() // 1000)
        # Playbooks' X-Playbooks-* headers are refused when the file loads (bot/playbooks/actions.py), so the
        # signed headers below are the bot's own; signed with a key of their own (not the webhooks' key).
        headers = {**extra, **signed_headers(http_actions_key(self.ctx.settings.signing_key), self.row.event,
                                             self.row.id, timestamp, raw)}
        result = await self.service.sender.send(method, url, raw, headers)
        if result.forbidden:
            raise ActionFailed(result.error, f"if the bot is meant to reach {host}, add \"{host}\" (or its network, "
                               "e.g. \"10.0.0.0/8\") to [http_actions] allow_internal in bot.toml (or "
                               "BOT_HTTP_ACTIONS_ALLOW_INTERNAL)")
        if not result.ok:
            raise IntegrationError(host, result.error or f"HTTP {result.status}", status=result.status,
                                   retry_after_s=result.retry_after_s,
                                   hint="" if result.status == 0 or result.status >= 500 else
                                   "check the URL, the headers and the body the receiver expects")
        return Done(f"{method} {host}: HTTP {result.status}", {"status": result.status, "url": url})


def _service(ctx: Context) -> ActionService | None:
    job = ctx.jobs.get(JOB)
    return job if isinstance(job, ActionService) else None


router.job(JOB, ActionService)
