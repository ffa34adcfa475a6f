"""Keyword triggers: a person's post in a watched channel that says one of a playbook's `[keywords]` is
offered a run of it, with a button that starts the run (the plugin's "prompt to run a playbook").

Who is offered what:
- Only people's posts: never the bot's own, nor another bot's (a bot that repeats an alert would be
  offered runs nobody asked for), nor a webhook's (`from_webhook`: its author is whoever made the hook),
  nor system messages, nor posts outside a team (DMs, group messages).
- Only in the channels the playbook's `[keywords] channels` names (URL names) in a team the playbook
  belongs to, and only to someone who may run the playbook (bot.domain.permissions.may_run_playbook):
  a private playbook is never offered to anyone outside it.
- At most once per thread and playbook: a row (storage.models.KeywordOffer, unique on the thread's root
  post and the playbook) is written before the offer is sent, so of several bot processes that all see
  the `posted` event, one offers. A second matching post in the thread offers nothing, dismissed or not.

How: to the poster only, as an ephemeral post in the thread, where the bot may post ephemerals (Mattermost
requires the `create_post_ephemeral` permission for POST /api/v4/posts/ephemeral: api4/post.go
createEphemeralPost checks `SessionHasPermissionTo(..., model.PermissionCreatePostEphemeral)`, which only
system admins hold by default). Refused (403), the offer is a reply in the post's thread, seen by the
channel; for a private playbook, whose title must not show to the channel, it is a direct message instead.

The buttons ("Run it", "No thanks") are signed (bot/actions.py) and, as every click, proven to come from
Mattermost for the person it names (bot/server.py). Anyone who may run the playbook may use them (a thread
reply is seen by the whole channel, and a teammate on call should be able to start it); the run is
started by whoever clicks (its creator, and its owner unless the playbook names one), in the post's team,
named after the post's first line, as the start dialog would with one click less: the person who wrote
"checkout is down" wants the channel now, and can rename the run later. A click moves the offer from
"offered" to "starting" by a compare-and-set, so two clicks never start two runs; the offer post (a
reply or DM) then says who started which run, with a link to its channel. An ephemeral offer cannot be
edited through the REST API (it is not stored), so there the clicker is answered privately instead, and
a later click on the same ephemeral is refused from the row.

The bot sees a channel's posts only as a member of it (Mattermost sends `posted` to members). So at
start-up and whenever the playbooks change, it joins each watched PUBLIC channel it is not in yet (anyone
in the team could join one; adding itself to a channel twice is a no-op on the server, so no membership
read is needed). A watched channel that does not exist yet (or could not be joined) is looked for again
every RETRY_S: Mattermost tells only its creator that a channel was made (server/channels/app/channel.go,
CreateChannelWithUser publishes `channel_created` to the creator's user id), so the bot cannot wait to be
told. It never adds itself to a private channel: a person in it must invite it; until
then the log says, once per channel, that its keywords are not watched there.
"""
from __future__ import annotations

import functools
import logging
from typing import Any

from bot.actions import DismissKeyword, StartFromKeyword, button
from bot.context import Context
from bot.domain.keywords import Matcher, matcher, run_name_from
from bot.domain.permissions import may_run_playbook
from bot.models import MattermostError, MMPost, WsEvent
from bot.notify import follow_up
from bot.playbooks import Keywords, Playbook
from bot.router import Click, Ephemeral, Reply, Router, UserError
from bot.scheduler import Wakeup
from handlers.announce import permalink
from handlers.playbook_access import viewer_for
from handlers.properties import _post_of
from handlers.runs import RunPlan, execute_run, in_team, prepare_run
from storage import keywords as store
from storage import runs
from storage.ids import new_id
from storage.models import KeywordOffer

log = logging.getLogger(__name__)

router = Router("keywords")

RETRY_S = 60.0  # how often the watched channels not found (or not joined) yet are looked for again
MATCHED_MAX = 100  # characters of what matched kept on the offer (a pattern may match a long text)


@functools.lru_cache(maxsize=256)
def _matcher(keywords: Keywords) -> Matcher:
    return matcher(keywords.words, keywords.patterns)


def watching(ctx: Context, team_id: str, channel_name: str) -> list[Playbook]:
    """The playbooks of a team whose enabled keywords watch the channel."""
    return [p for p in in_team(ctx, team_id)
            if p.keywords is not None and p.keywords.enabled and channel_name in p.keywords.channels]


def _buttons(ctx: Context, offer_id: str) -> dict[str, Any]:
    url = ctx.action_url
    return {"attachments": [{"actions": [
        button(ctx.signer, "kwstart", "Run it", StartFromKeyword(offer_id), url, "primary"),
        button(ctx.signer, "kwdismiss", "No thanks", DismissKeyword(offer_id), url),
    ]}]}


class ChannelWatch:
    """Joins the watched public channels (see the module's docstring); remembers what it did per process.
    A job: started with the bot, it looks again every RETRY_S while a watched channel is still missing."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.done: set[tuple[str, str]] = set()  # (team id, channel name) joined, or private and reported
        self.failed: set[tuple[str, str]] = set()  # not found or not joined yet (reported once)
        self.wakeup = Wakeup(ctx.clock, self._retry, poll_s=RETRY_S)

    @property
    def running(self) -> bool:
        return self.wakeup.running

    async def start(self) -> None:
        self.wakeup.start()
        self.wakeup.wake_at(None)
        self.ctx.tasks.spawn(self.join_watched(), name="keywords:join")
        if self.ctx.library is not None:
            self.ctx.library.listeners.append(self._changed)

    async def stop(self) -> None:
        self.wakeup.stop()
        if self.ctx.library is not None and self._changed in self.ctx.library.listeners:
            self.ctx.library.listeners.remove(self._changed)

    def _changed(self, _library: object) -> None:  # called on the loop, by PlaybookLibrary.check_now
        self.ctx.tasks.spawn(self.join_watched(), name="keywords:join")

    async def _retry(self) -> None:
        self.wakeup.wake_at(None)  # the next look, RETRY_S from now
        if self.failed:
            self.ctx.tasks.spawn(self.join_watched(), name="keywords:join")

    async def join_watched(self) -> None:
        wanted = {(team_id, name) for team_id in self.ctx.teams for p in in_team(self.ctx, team_id)
                  if p.keywords is not None and p.keywords.enabled for name in p.keywords.channels}
        self.failed &= wanted  # a channel no playbook watches any more is not looked for again
        for team_id, name in sorted(wanted - self.done):
            team = self.ctx.teams.get(team_id)
            try:
                channel = await self.ctx.gateway.get_channel_by_name(team_id, name)
                if channel.type != "O":
                    log.warning("keywords: ~%s in team %s is private; invite the bot to it to watch it", name,
                                team.name if team else team_id)
                else:
                    await self.ctx.gateway.add_channel_member(channel.id, self.ctx.bot_user.id)
                    log.info("keywords: watching ~%s in team %s", name, team.name if team else team_id)
            except MattermostError as err:
                # No such channel (yet), or a failure that may pass: tried again when the playbooks next
                # change and at the next start; said once.
                if (team_id, name) not in self.failed:
                    log.warning("keywords: cannot watch ~%s in team %s yet (%s %s)", name,
                                team.name if team else team_id, err.status, err.error_id)
                self.failed.add((team_id, name))
                continue
            self.done.add((team_id, name))
            self.failed.discard((team_id, name))


router.job("keywords-watch", ChannelWatch)


@router.event("posted")
async def posted(event: WsEvent, ctx: Context) -> None:
    """Offer a run of each watching playbook whose keywords the post says (see the module's docstring)."""
    post = _post_of(event)
    if post is None or post.user_id == ctx.bot_user.id or not post.message or post.type:
        return
    if post.props.get("from_webhook") == "true" or post.props.get("from_bot") == "true":
        return
    team_id = str(event.data.get("team_id") or "")
    channel_name = str(event.data.get("channel_name") or "")
    if not team_id or not channel_name:
        return
    candidates = watching(ctx, team_id, channel_name)
    if not candidates:
        return
    author = await ctx.users.get(post.user_id)
    if author is None or author.is_bot:
        return
    viewer = await viewer_for(ctx, post.user_id, (team_id,))
    root = post.root_id or post.id
    for playbook in candidates:
        assert playbook.keywords is not None
        matched = _matcher(playbook.keywords).search(post.message)
        if not matched or not may_run_playbook(viewer, playbook):
            continue
        now = ctx.clock.now_ms()
        offer = KeywordOffer(id=new_id(), root_post_id=root, playbook_id=playbook.id, team_id=team_id,
                             channel_id=post.channel_id, post_id=post.id, user_id=post.user_id,
                             matched=matched[:MATCHED_MAX], name=run_name_from(post.message) or playbook.title,
                             created_at=now, updated_at=now)
        if not await ctx.db.run(store.claim, offer):
            continue  # this thread was offered this playbook already
        log.info("keyword offer playbook=%s post=%s", playbook.id, post.id)
        await _send(ctx, offer, playbook, root)


async def _send(ctx: Context, offer: KeywordOffer, playbook: Playbook, root: str) -> None:
    text = ctx.render("keywords/offer.md.j2", matched=offer.matched, playbook=playbook.title, name=offer.name)
    props = _buttons(ctx, offer.id)
    mode, offer_post_id = "ephemeral", ""
    try:
        await ctx.gateway.send_ephemeral(offer.user_id, offer.channel_id, text, props=props, root_id=root)
    except MattermostError as err:
        if err.status not in (401, 403):
            log.warning("keyword offer failed status=%s id=%s", err.status, err.error_id)
            return
        try:
            if playbook.access.public:
                sent: MMPost = await ctx.gateway.create_post(offer.channel_id, text, props=props, root_id=root)
                mode = "thread"
            else:  # a private playbook's title is not for the whole channel
                sent = await ctx.gateway.create_post(await ctx.dms.channel_id(offer.user_id), text, props=props)
                mode = "direct"
        except MattermostError as again:
            log.warning("keyword offer failed status=%s id=%s", again.status, again.error_id)
            return
        offer_post_id = sent.id
    await ctx.db.run(store.sent, offer.id, mode, offer_post_id, ctx.clock.now_ms())


async def _offer_and_playbook(ctx: Context, offer_id: str, user_id: str) -> tuple[KeywordOffer, Playbook]:
    """The offer and its current playbook, when `user_id` may run it; a UserError saying why not."""
    offer = await ctx.db.run(store.get, offer_id, readonly=True)
    playbook = ctx.playbooks.get(offer.playbook_id) if offer is not None else None
    if offer is None or playbook is None or playbook.keywords is None or playbook not in in_team(ctx, offer.team_id):
        raise UserError(ctx.render("keywords/offer_gone.md.j2"))
    if not store.takeable(offer, ctx.clock.now_ms()):
        raise UserError(await _taken(ctx, offer))
    if not may_run_playbook(await viewer_for(ctx, user_id, (offer.team_id,)), playbook):
        raise UserError(ctx.render("keywords/may_not_run.md.j2", playbook=playbook.title))
    return offer, playbook


async def _taken(ctx: Context, offer: KeywordOffer) -> str:
    by = await ctx.users.get(offer.acted_by) if offer.acted_by else None
    channel = ""
    run = await ctx.db.run(runs.get_run, offer.run_id, readonly=True) if offer.run_id else None
    if run is not None and run.channel_id:
        try:
            channel = (await ctx.gateway.get_channel(run.channel_id)).name
        except MattermostError:
            channel = ""  # the answer goes without the link
    return ctx.render("keywords/offer_taken.md.j2", state=offer.state, by=by.username if by else "someone",
                      channel=channel)


@router.click(StartFromKeyword)
async def start_clicked(click: Click, ctx: Context) -> Reply:
    ref = click.ref
    assert isinstance(ref, StartFromKeyword)
    offer, playbook = await _offer_and_playbook(ctx, ref.offer_id, click.user_id)
    author = await ctx.users.get(offer.user_id)
    summary = ctx.render("keywords/summary.md.j2", link=permalink(ctx, offer.team_id, offer.post_id),
                         author=author.username if author else "someone", matched=offer.matched).strip()
    # Everything that can refuse without Mattermost is checked before the offer is taken: a refusal (a
    # required property without a default) leaves it offered, and says how to start the run instead.
    plan = prepare_run(ctx, playbook, offer.name, summary, click.user_id, offer.team_id, offer.channel_id)
    taken_at = ctx.clock.now_ms()
    if not await ctx.db.run(store.take, offer.id, click.user_id, taken_at):
        again = await ctx.db.run(store.get, offer.id, readonly=True)
        raise UserError(await _taken(ctx, again) if again is not None else ctx.render("keywords/offer_gone.md.j2"))
    starting = _start(ctx, offer, plan, click.user_id, taken_at, click.user_name or click.user_id)
    follow_up(ctx, starting, name=f"keyword-start:{offer.id}",
              user_id=click.user_id, channel_id=click.channel_id,
              failure=lambda: ctx.render("run/start_failed.md.j2", name=plan.name,
                                         reason=ctx.render("errors/internal.md.j2")))
    return Ephemeral(ctx.render("keywords/starting.md.j2", name=plan.name, playbook=playbook.title))


async def _show(ctx: Context, offer: KeywordOffer, status: str | None) -> None:
    """What became of the offer, shown under its message (which never changes: past the server's
    PostEditTimeLimit a patch that names `message` is refused, api4/post.go postPatchChecks, one that
    changes only props goes through). `status` None: the buttons again."""
    props = {"attachments": [{"text": status}]} if status is not None else _buttons(ctx, offer.id)
    await ctx.gateway.update_post(offer.offer_post_id, None, props)


async def _start(ctx: Context, offer: KeywordOffer, plan: RunPlan, user_id: str, taken_at: int, by: str) -> None:
    """Start the run, then show on the offer post (a reply or DM) who started which run. The start row and
    the offer's move to "started" are written in one transaction (store.start_recorder): once written, the
    start service carries that run to its end whatever becomes of this task, and the offer is never
    offered again; until then, a failure or a cancellation gives the offer back (store.release), and a
    crash leaves it "starting" until store.STALE_MS passes, when a click may take it again."""
    title = plan.playbook.title
    if offer.offer_post_id:
        await _show(ctx, offer, ctx.render("keywords/offer_starting.md.j2", by=by, name=plan.name, playbook=title))
    try:
        outcome = await execute_run(ctx, plan, insert=store.start_recorder(offer.id, user_id, taken_at))
    except BaseException:
        # Nothing changes if the start was recorded (the offer is "started" then).
        await ctx.db.run(store.release, offer.id, user_id, taken_at, ctx.clock.now_ms())
        raise
    if outcome.error or not outcome.run_id:
        # Refused before anything was recorded (the starter was told why), or the take was taken over
        # once stale: the offer stands again, unless another take holds it now.
        if await ctx.db.run(store.release, offer.id, user_id, taken_at, ctx.clock.now_ms()) and offer.offer_post_id:
            await _show(ctx, offer, None)
        return
    if offer.offer_post_id:
        channel = outcome.channel.name if outcome.channel is not None else ""
        await _show(ctx, offer, ctx.render("keywords/offer_started.md.j2", by=by, name=plan.name, playbook=title,
                                           channel=channel))


@router.click(DismissKeyword)
async def dismiss_clicked(click: Click, ctx: Context) -> Reply:
    ref = click.ref
    assert isinstance(ref, DismissKeyword)
    offer, playbook = await _offer_and_playbook(ctx, ref.offer_id, click.user_id)
    if not await ctx.db.run(store.dismiss, offer.id, click.user_id, ctx.clock.now_ms()):
        again = await ctx.db.run(store.get, offer.id, readonly=True)
        raise UserError(await _taken(ctx, again) if again is not None else ctx.render("keywords/offer_gone.md.j2"))
    if offer.offer_post_id:
        text = ctx.render("keywords/offer_dismissed.md.j2", by=click.user_name or click.user_id,
                          playbook=playbook.title)
        follow_up(ctx, _show(ctx, offer, text), name=f"keyword-dismiss:{offer.id}", user_id=click.user_id,
                  channel_id=click.channel_id)
    return Ephemeral(ctx.render("keywords/dismissed.md.j2", playbook=playbook.title))
