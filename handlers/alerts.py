"""Alerts start runs: `POST /hooks/alerts/{source}` for Alertmanager, Grafana, PagerDuty and Opsgenie.

A delivery is checked (the source's own authentication, bot.integrations.alert_hooks), read, and routed by
the playbooks' `[[alerts]]` routes (the first matching one, playbooks by id, routes in file order). Then,
before the vendor gets its 2xx, everything it decides is in rows (storage/alerts.py):
- a firing alert whose group has no open run: the delivery, its group and the run start are written in one
  transaction (StartService.begin), and the start is carried after the answer; a crash after the answer is
  resumed by the start service;
- anything for a group whose run is open (a repeat firing with new alerts, a resolution, an update): the
  delivery, pointing at that run;
- a delivery matching no route: recorded as "no route" (answered 200 so the vendor does not retry it
  forever; logged, and listed by `python -m bot check`);
- a firing delivery whose route cannot start a run (owner deactivated, a bot or not in the team, team
  unknown, existing channel unusable): recorded as "unusable" with the reason, answered 200 likewise.
A repeat (same source and repeat key) is answered 200 "duplicate" and changes nothing, in any process: the
(source, dedup) pair is unique. The alert's details are posted in the run's channel from an outbox row
(`post_state` pending), by whichever process claims it, after the run is complete; a resolution whose route
says `finish_on_resolve` finishes the run after its post.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import socket
from typing import Any

from jinja2 import TemplateError

from bot.context import Context
from bot.domain.templating import SafeEnvironment
from bot.integrations.alert_hooks import (
    SOURCES,
    VENDOR,
    Delivery,
    Ignored,
    Malformed,
    Refused,
    matches,
    parse,
    verify,
)
from bot.models import MattermostError
from bot.playbooks import AlertRoute, Playbook
from bot.router import HttpRequest, Router, UserError
from bot.scheduler import Wakeup
from handlers.finish import finish_run
from handlers.runs import JOB as STARTS_JOB
from handlers.runs import (
    MAX_RUN_NAME,
    RunPlan,
    StartService,
    existing_channel_unattended,
    prepare_run,
    unfit_person,
)
from storage import alerts
from storage.ids import new_id
from storage.models import AlertDelivery, AlertGroup, RunStart

log = logging.getLogger(__name__)

router = Router("alerts")

JOB = "alert-posts"
POST_LEASE_MS = 30_000
RETRY_MS = 5_000  # a post waiting for its run's start, or after Mattermost failed, is tried again then
POLL_S = 15.0
POST_MAX = 15_000  # runes; Mattermost posts hold 16383
_NAMES = SafeEnvironment(autoescape=False)


class Unusable(Exception):
    """The route matched but cannot start a run (its owner is not a usable user, its team is unknown, its
    existing channel cannot be used): recorded as "unusable" and answered 200 (take)."""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def first_route(ctx: Context, delivery: Delivery) -> tuple[Playbook, AlertRoute] | None:
    """The first route matching the delivery: playbooks in id order, each one's routes in file order."""
    for pid in sorted(ctx.playbooks):
        playbook = ctx.playbooks[pid]
        for route in playbook.alerts:
            if route.source == delivery.source and matches(route.match, delivery):
                return playbook, route
    return None


def run_name(route: AlertRoute, delivery: Delivery) -> str:
    """The route's `name` template over the alert (sandboxed jinja); the alert's title when it fails."""
    try:
        name = _NAMES.from_string(route.name).render(alert=delivery.template_values()).strip()
    except TemplateError as err:
        log.warning("alert route name template failed: %s; using the alert's title", err)
        name = ""
    return (name or delivery.title)[:MAX_RUN_NAME]


async def plan_for(ctx: Context, playbook: Playbook, route: AlertRoute, delivery: Delivery) -> RunPlan:
    """The run the route starts, checked as far as can be before anything is made (the team, the owner, an
    existing channel: as execute_run does); Unusable saying why not. MattermostError when Mattermost does
    not answer (the vendor is asked to send it again)."""
    team_id = next((tid for tid, team in ctx.teams.items() if team.name == playbook.team), "")
    if not team_id:
        raise Unusable(ctx.render("alerts/unusable_team.md.j2", playbook=playbook.title, team=playbook.team))
    owner_name = route.owner or playbook.owner or ""
    users = await ctx.users.by_username([owner_name, *route.members])
    owner = users.get(owner_name)
    why = "deactivated" if owner is None else await unfit_person(ctx, owner, team_id)
    if owner is None or why:
        raise Unusable(ctx.render("alerts/unusable_owner.md.j2", playbook=playbook.title, owner=owner_name,
                                  why=why, team=playbook.team))
    try:
        plan = prepare_run(ctx, playbook, run_name(route, delivery), "", owner.id, team_id, "")
    except UserError as err:
        raise Unusable(str(err)) from None
    plan.owner_id = owner.id
    for name in route.members:
        member = users.get(name)
        why = "deactivated" if member is None else await unfit_person(ctx, member, team_id)
        if member is None or why:
            log.warning("alert route of playbook %s: member @%s cannot take part (%s); the run starts without them",
                        playbook.id, name, why)
        elif member.id not in plan.member_ids:
            plan.member_ids.append(member.id)
    plan.origin = f"alert from {VENDOR[delivery.source]}: {delivery.title}"[:512]
    if playbook.existing_channel:  # as execute_run: found and checked before anything is recorded
        reason = await existing_channel_unattended(ctx, plan)
        if reason:
            raise Unusable(ctx.render("alerts/unusable_channel.md.j2", playbook=playbook.title, reason=reason))
    return plan


def _row(delivery: Delivery, dedup: str, group_hash: str, now: int, outcome: str, *, playbook_id: str = "",
         run_id: str = "", finish: bool = False, post: bool = False) -> AlertDelivery:
    return AlertDelivery(id=new_id(), source=delivery.source, dedup=dedup, group_hash=group_hash, kind=delivery.kind,
                         title=delivery.title[:1024], received_at=now, outcome=outcome, playbook_id=playbook_id,
                         run_id=run_id, finish=finish, details=delivery.template_values(),
                         post_state="pending" if post else "none")


def _starts(ctx: Context) -> StartService:
    job = ctx.jobs.get(STARTS_JOB)
    return job if isinstance(job, StartService) else StartService(ctx)


@router.http("POST", "/hooks/alerts/{source}", public=True)
async def receive(request: HttpRequest, ctx: Context) -> tuple[int, dict[str, Any]]:
    source = request.params.get("source", "")
    if source not in SOURCES:
        return 404, {"error": f"Unknown alert source {source[:40]!r}; the bot takes {', '.join(SOURCES)}."}
    try:
        verify(source, ctx.settings.alerts, request.headers, request.body, ctx.clock.now_ms() / 1000)
    except Refused as refused:
        log.warning("refused an alert delivery source=%s status=%d reason=%s", source, refused.status, refused.text)
        return refused.status, {"error": refused.text}
    try:
        delivery = parse(source, request.body, request.headers)
    except Malformed as bad:
        log.warning("refused a malformed alert delivery source=%s reason=%s", source, bad)
        return 400, {"error": str(bad)}
    except Ignored as ignored:
        log.info("took an alert delivery that starts nothing source=%s: %s", source, ignored)
        return 200, {"result": "ignored", "reason": str(ignored)}
    try:
        return await take(ctx, delivery)
    except MattermostError as err:  # looking up the owner: worth the vendor's retry
        log.warning("alert delivery: Mattermost did not answer source=%s status=%s", source, err.status)
        return 503, {"error": f"Mattermost did not answer ({err.status}); send it again."}


async def take(ctx: Context, delivery: Delivery, again: bool = True) -> tuple[int, dict[str, Any]]:
    """Record what the delivery means and answer; the slow part follows in tracked tasks. `again`: when
    another process wrote the same delivery or opened the same group at the same moment, look once more
    (it is then a duplicate, or goes to that run)."""
    source = delivery.source
    dedup, group_hash = digest(delivery.dedup), digest(delivery.group)
    recorded, running = await ctx.db.run(alerts.peek, source, dedup, group_hash)
    if recorded:
        return 200, {"result": "duplicate"}
    found = first_route(ctx, delivery)
    now = ctx.clock.now_ms()
    if running is None and delivery.kind == "firing" and found is not None:
        playbook, route = found
        try:
            plan = await plan_for(ctx, playbook, route, delivery)
        except Unusable as err:
            return await _unusable(ctx, delivery, dedup, group_hash, now, playbook, str(err))
        row = _row(delivery, dedup, group_hash, now, "started", playbook_id=playbook.id, post=True)
        group = AlertGroup(id=new_id(), source=source, group_hash=group_hash, run_id="", opened_at=now)
        service = _starts(ctx)
        try:
            start = await service.begin(plan, alerts.start_recorder(row, group))
        except alerts.Duplicate:
            return 200, {"result": "duplicate"}
        except alerts.Raced:
            if not again:
                raise
            return await take(ctx, delivery, again=False)
        except alerts.GroupOpen as open_group:
            running = open_group.run_id  # another delivery of the group got there first: post to its run
        else:
            assert start is not None  # start_recorder records or raises; it never declines
            log.info("alert starts a run source=%s playbook=%s run=%s title=%.80s", source, playbook.id,
                     start.run_id, delivery.title)
            ctx.tasks.spawn(_carry(ctx, service, start, row.id), name="alert-start")
            return 202, {"result": "started", "run_id": start.run_id}
    if running is not None:
        finish = delivery.kind == "resolved" and found is not None and found[1].finish_on_resolve
        row = _row(delivery, dedup, group_hash, now, "posted", playbook_id=found[0].id if found else "",
                   run_id=running, finish=finish, post=True)
    else:
        row = _row(delivery, dedup, group_hash, now, "no_route" if found is None else "no_run",
                   playbook_id=found[0].id if found else "")
    try:
        await ctx.db.run(alerts.record, row)
    except alerts.Duplicate:
        return 200, {"result": "duplicate"}
    if running is not None:
        ctx.tasks.spawn(post_details(ctx, row.id), name="alert-post")
        return 202, {"result": "posted", "run_id": running}
    if found is None:
        log.warning("alert matched no [[alerts]] route source=%s title=%.80s labels=%s", source, delivery.title,
                    delivery.labels)
        return 200, {"result": "no route"}
    return 200, {"result": "no open run"}


async def _unusable(ctx: Context, delivery: Delivery, dedup: str, group_hash: str, now: int, playbook: Playbook,
                    reason: str) -> tuple[int, dict[str, Any]]:
    """A route matched but cannot start a run: recorded with the reason (listed by `python -m bot check`) and
    answered 200, as "no route" is: Alertmanager and Grafana drop a delivery answered 4xx for good. Its
    repeat key is made unique, so the vendor's next repeat, after the route is mended, starts the run."""
    row = _row(delivery, dedup, group_hash, now, "unusable", playbook_id=playbook.id)
    row.dedup = digest(f"{dedup}|unusable|{row.id}")
    row.details = {**row.details, "unusable": reason[:1000]}
    await ctx.db.run(alerts.record, row)
    log.warning("an alert route cannot start a run source=%s playbook=%s title=%.80s: %s", delivery.source,
                playbook.id, delivery.title, reason)
    return 200, {"result": "unusable", "error": reason}


async def _carry(ctx: Context, service: StartService, start: RunStart, delivery_id: str) -> None:
    """Carry the start, then post its alert and whatever else reached the run while it was starting."""
    await service.carry(start, fresh=True)
    await post_details(ctx, delivery_id)
    for other in await ctx.db.run(alerts.pending_for_run, start.run_id, readonly=True):
        await post_details(ctx, other)


_HOLDER = f"{socket.gethostname()}|{os.getpid()}|{secrets.token_hex(6)}"[:64]


async def post_details(ctx: Context, delivery_id: str) -> None:
    """Post a delivery's details in its run's channel once (claimed in its row), then finish the run when
    its route says so. A run still starting, or a failing Mattermost, leaves it pending for later."""
    now = ctx.clock.now_ms()
    row = await ctx.db.run(alerts.claim_post, delivery_id, _HOLDER, now, POST_LEASE_MS)
    if row is None:
        return
    status, channel_id = await ctx.db.run(alerts.run_status, row.run_id, readonly=True)
    if status == "starting":
        await ctx.db.run(alerts.settle_post, row.id, _HOLDER, "pending", now + RETRY_MS)
        _wake(ctx, now + RETRY_MS)
        return
    if status not in ("in_progress", "finished") or not channel_id:
        await ctx.db.run(alerts.settle_post, row.id, _HOLDER, "done")
        return
    text = ctx.render("alerts/details.md.j2", alert=row.details, outcome=row.outcome, finish=row.finish)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()  # the template's sections, one blank line apart
    if len(text) > POST_MAX:  # labels and annotations are the sender's: keep within a post's limit
        text = text[:POST_MAX] + "\n…"
    try:
        await ctx.gateway.create_post(channel_id, text, props={"playbooks_alert": row.id})
    except MattermostError as err:
        log.warning("posting an alert in its run's channel failed run=%s status=%s; trying again later",
                    row.run_id, err.status)
        await ctx.db.run(alerts.settle_post, row.id, _HOLDER, "pending", now + RETRY_MS)
        _wake(ctx, now + RETRY_MS)
        return
    if row.finish and status == "in_progress":  # before the row is done: a crash here finishes it next time
        await finish_run(ctx, row.run_id, ctx.bot_user.id)
    await ctx.db.run(alerts.settle_post, row.id, _HOLDER, "done")


def _wake(ctx: Context, due: int) -> None:
    job = ctx.jobs.get(JOB)
    if isinstance(job, AlertPosts):
        job.wakeup.wake_at(due, replace=False)


class AlertPosts:
    """Posts left pending (a crash after the answer, a run still starting elsewhere, a failing Mattermost):
    looked for at start-up, at each due time and every POLL_S."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.wakeup = Wakeup(ctx.clock, self._on_wake, poll_s=POLL_S)

    @property
    def running(self) -> bool:
        return self.wakeup.running

    async def start(self) -> None:
        self.wakeup.start()
        self.ctx.tasks.spawn(self.run_due(), name="alert-posts")

    async def stop(self) -> None:
        self.wakeup.stop()

    async def _on_wake(self) -> None:
        self.ctx.tasks.spawn(self.run_due(), name="alert-posts")

    async def run_due(self) -> int:
        rows = await self.ctx.db.run(alerts.pending_posts, self.ctx.clock.now_ms(), readonly=True)
        for row in rows:
            await post_details(self.ctx, row.id)
        return len(rows)


router.job(JOB, AlertPosts)
