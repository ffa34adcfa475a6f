"""Message texts from jinja2 templates in templates/ (`area/name.md.j2`).

StrictUndefined: a missing variable is a bug, not an empty string. User-supplied text goes through
`md` (escapes Markdown and defuses @all/@channel/@here so a checklist title cannot ping a channel).
"""
from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")
# Mattermost notifies a whole channel for these; a zero-width space after @ keeps the text readable
# while no longer matching the mention.
_CHANNEL_MENTION = re.compile(r"@(all|channel|here)\b", re.IGNORECASE)


def escape_md(value: Any) -> str:
    text = "" if value is None else str(value)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _CHANNEL_MENTION.sub("@\u200b\\1", text)
    return text.replace("\n", " ")


def defuse_mentions(value: Any) -> str:
    """For multi-line user text shown as Markdown (summaries, updates): keep formatting, drop @channel."""
    return _CHANNEL_MENTION.sub("@\u200b\\1", "" if value is None else str(value))


def seconds_for_people(value: Any) -> str:
    """A number of seconds as people say it ("15 minutes", "1h 30m"), for templates."""
    from bot.domain.durations import format_duration

    try:
        return format_duration(timedelta(seconds=int(value)))
    except (TypeError, ValueError):
        return ""


def table_cell(value: Any) -> str:
    """Someone's Markdown kept as written inside one table cell: one line, no column break, @channel
    defused (the formatting of a status update's first line reads as formatting, not as `**`)."""
    text = " ".join(defuse_mentions(value).split())
    return text.replace("|", "\\|")


def fmt_time(ms: int | None, tz: str = "") -> str:
    """One format for every moment shown: `2026-12-01 21:29 UTC`, or in the viewer's time zone (an IANA
    name, as Mattermost keeps it per user) labelled with its abbreviation, `2026-12-01 22:29 CET`.
    Posts many people read are in UTC; a reply to one person may use theirs."""
    if ms is None:
        return ""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    zone = _zone(tz)
    if zone is None:
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    local = moment.astimezone(zone)
    label = local.strftime("%Z")
    if not label or label[0] in "+-":  # zones without an abbreviation (e.g. Asia/Kolkata has IST; some have none)
        label = tz
    return local.strftime("%Y-%m-%d %H:%M ") + label


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo | None:
    if not name or name.upper() == "UTC":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


class Renderer:
    def __init__(self, folder: Path = TEMPLATES) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(folder)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            # Templates do not change while the bot runs: no stat() of the file on every render, which
            # would be file I/O on the event loop.
            auto_reload=False,
        )
        self.env.filters["md"] = escape_md
        self.env.filters["defuse"] = defuse_mentions
        self.env.filters["time"] = fmt_time
        self.env.filters["seconds"] = seconds_for_people
        self.env.filters["cell"] = table_cell

        # Pages of the web view (`web/*.html.j2`): HTML-escaped by default, the same filters and
        # folder, so a page and a message say a thing the same way.
        self.html = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(folder)),
            undefined=jinja2.StrictUndefined,
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.html.filters.update(self.env.filters)
        self.html.filters["duration_ms"] = duration_ms

    def render(self, template: str, /, **values: Any) -> str:
        return self.env.get_template(template).render(**values).strip()

    def render_html(self, template: str, /, **values: Any) -> str:
        return self.html.get_template(template).render(**values)


def duration_ms(value: Any) -> str:
    """A span of milliseconds as people say it ("2h 5m"); empty for none."""
    if value is None:
        return ""
    try:
        return seconds_for_people(int(value) // 1000)
    except (TypeError, ValueError):
        return ""
