"""Run properties: asked for when a run starts (dialog fields, `--property name=value`), changed later
(`/playbook set`, commands/properties.py), each change on the timeline (`property_changed`) and the run's
checklist posts showing and hiding the items whose `when` depends on it; and items that check themselves
when a post in the run's channel says one of their keywords (the plugin's task actions).

Mattermost's dialogs before v11 have no multiple-choice element (model.DialogElement gained `multiselect`
later, and older servers drop it), so a multiselect is a text field of options separated by commas,
checked against the playbook's options like the command's value.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Sequence

from bot.context import Context
from bot.domain.conditions import PropertyValueError, matching_keyword, parse_value, shown
from bot.models import MMPost, WsEvent
from bot.playbooks import Playbook
from bot.router import FieldError, Router
from handlers.announce import permalink
from handlers.fields import DIALOG_TEXT_MAX, Fields
from handlers.views import refresh_checklist_later, schedule_overview_refresh
from storage import properties as store
from storage.properties import PropertyChange

log = logging.getLogger(__name__)

router = Router("properties")

HELP_MAX = 150  # DialogElementHelpTextMaxLength
LABEL_MAX = 24  # DialogElementDisplayNameMaxLength


def field_name(playbook_id: str, name: str) -> str:
    """A property's element in the start dialog: one per playbook offered, as the dialog cannot change its
    fields when another playbook is chosen."""
    return f"property:{playbook_id}:{name}"


def _help(text: str) -> str:
    return text if len(text) <= HELP_MAX else text[:HELP_MAX - 1] + "…"


def dialog_elements(ctx: Context, playbooks: Sequence[Playbook]) -> list[dict[str, Any]]:
    """The start dialog's fields for the properties of each playbook offered. With one playbook a required
    property is a required field; with several, each field says its playbook and the choice is checked on
    submit (only the chosen playbook's fields count)."""
    several = len(playbooks) > 1
    out: list[dict[str, Any]] = []
    for pb in playbooks:
        for spec in pb.properties:
            element: dict[str, Any] = {"display_name": spec.title[:LABEL_MAX], "name": field_name(pb.id, spec.name),
                                       "optional": several or not spec.required}
            default = spec.default_value()
            for_pb = ctx.render("properties/dialog_for.md.j2", playbook=pb.title).strip() if several else ""
            if spec.type == "select":
                element.update(type="select", options=[{"text": o[:DIALOG_TEXT_MAX], "value": o} for o in spec.options],
                               default=default if isinstance(default, str) else "")
                if for_pb:
                    element["help_text"] = _help(for_pb)
            elif spec.type == "multiselect":
                element.update(type="text", max_length=DIALOG_TEXT_MAX, default=shown(default)[:DIALOG_TEXT_MAX],
                               help_text=_help(ctx.render("properties/dialog_multiselect.md.j2", options=spec.options,
                                                          playbook=for_pb).strip()))
            else:
                element.update(type="text", max_length=DIALOG_TEXT_MAX, default=shown(default)[:DIALOG_TEXT_MAX])
                if for_pb:
                    element["help_text"] = _help(for_pb)
            out.append(element)
    return out


def dialog_values(ctx: Context, fields: Fields, playbook: Playbook, several: bool) -> dict[str, Any]:
    """The chosen playbook's property values from a start dialog; a wrong one is an error on its field."""
    values: dict[str, Any] = {}
    for spec in playbook.properties:
        name = field_name(playbook.id, spec.name)
        raw = fields.choice(name) if spec.type == "select" else fields.text(name, DIALOG_TEXT_MAX)
        if not raw:
            continue
        try:
            value = parse_value(spec, raw)
        except PropertyValueError as exc:
            fields.error(name, ctx.render("properties/bad_value.md.j2", title=spec.title, problem=str(exc)))
            continue
        if value is not None:
            values[spec.name] = value
    return values


def start_values(ctx: Context, playbook: Playbook, given: dict[str, Any]) -> dict[str, Any]:
    """The values a run starts with: those given, the playbook's defaults for the others; a required
    property without either is a FieldError on its dialog field (as text to a command)."""
    values: dict[str, Any] = {}
    for spec in playbook.properties:
        value = given.get(spec.name)
        if value is None:
            value = spec.default_value()
        if value is None:
            if spec.required:
                raise FieldError(field_name(playbook.id, spec.name),
                                 ctx.render("properties/required.md.j2", spec=spec))
            continue
        values[spec.name] = value
    return values


def parse_command_properties(ctx: Context, playbook: Playbook, pairs: Sequence[str]) -> dict[str, Any]:
    """`name=value` words of `--property`; a UserError names what is wrong."""
    specs = {p.name: p for p in playbook.properties}
    values: dict[str, Any] = {}
    for pair in pairs:
        name, eq, raw = pair.partition("=")
        spec = specs.get(name.strip().lower())
        if not eq or spec is None:
            raise FieldError("", ctx.render("properties/unknown.md.j2", query=pair, specs=playbook.properties,
                                            playbook=playbook.title))
        try:
            value = parse_value(spec, raw)
        except PropertyValueError as exc:
            raise FieldError("", ctx.render("properties/bad_value.md.j2", title=spec.title,
                                            problem=str(exc))) from exc
        if value is not None:
            values[spec.name] = value
    return values


async def change_property(ctx: Context, run_id: str, name: str, value: Any, actor_id: str) -> PropertyChange | None:
    """Set one property (None: clear it), on the timeline, and re-render what it shows or hides."""
    async with ctx.locks(run_id):  # the values are one JSON column: one change at a time per run
        change = await ctx.db.run(store.set_property, run_id, name, value, actor_id, ctx.clock.now_ms())
    if change is None or not change.changed:
        return change
    for checklist_id in change.checklist_ids:
        refresh_checklist_later(ctx, run_id, checklist_id)
    schedule_overview_refresh(ctx, run_id)
    return change


# --- items that check themselves ------------------------------------------------------------------

def _post_of(event: WsEvent) -> MMPost | None:
    raw = event.data.get("post")
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        return MMPost.from_json(data) if isinstance(data, dict) else None
    except (TypeError, ValueError, KeyError):
        return None


@router.event("posted")
async def posted(event: WsEvent, ctx: Context) -> None:
    """A post in a run's channel that says an open item's keyword checks it, as its Check button would,
    once per item; never the bot's own posts, nor system messages, nor someone the item does not name."""
    post = _post_of(event)
    if post is None or post.user_id == ctx.bot_user.id or not post.message or post.type:
        return
    candidates = await ctx.db.run(store.auto_check_candidates, post.channel_id, readonly=True)
    if not candidates:
        return
    author = await ctx.users.get(post.user_id)
    if author is None or author.is_bot:
        return
    for run, item in candidates:
        keyword = matching_keyword(item.auto_check, post.message, author.username)
        if keyword is None:
            continue
        link = permalink(ctx, run.team_id, post.id)
        checked = await ctx.db.run(store.auto_check, run.id, item.id, post.user_id, post.id, link,
                                   keyword, ctx.clock.now_ms())
        if checked is not None:
            log.info("item checked by a post run=%s item=%s post=%s", run.id, item.id, post.id)
            await ctx.emit("item_checked", run.id, actor_id=post.user_id,
                           payload={"item_id": item.id, "title": item.title})
            refresh_checklist_later(ctx, run.id, item.checklist_id)
