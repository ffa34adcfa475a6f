"""Jira Cloud REST API v3 (Atlassian's OpenAPI `swagger-v3.v3.json`, version 1001.0.0-SNAPSHOT; see
docs/integrations.md): create an issue with an ADF description and labels, find one by label (the enhanced
JQL search `POST /rest/api/3/search/jql`: the old `/rest/api/3/search` is deprecated and being removed),
comment, transition by name, and `GET /rest/api/3/myself` for `python -m bot check`.

Auth: basic with email + API token against the site, or an OAuth 2.0 (3LO) access token against
`https://api.atlassian.com/ex/jira/{cloud_id}`. Jira has no idempotency key: the caller dedups with a label.
"""
from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.integrations import CheckResult, IntegrationError, JiraIssue
from bot.integrations.http import DEFAULT_TIMEOUT_S, NOT_SENT, WRONG_SHAPE, Now, VendorHttp, generic_hint

SERVICE = "Jira"
OAUTH_API = "https://api.atlassian.com/ex/jira"
SUMMARY_MAX = 255  # Jira refuses a longer summary ("Summary must be less than 255 characters")
_URL = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)\]]")


def to_adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format document: blank lines separate paragraphs, single line
    breaks become hardBreak nodes, and http(s) URLs become links."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()) if p.strip()]
    content: list[dict[str, Any]] = []
    for paragraph in paragraphs:
        nodes: list[dict[str, Any]] = []
        for n, line in enumerate(paragraph.split("\n")):
            if n:
                nodes.append({"type": "hardBreak"})
            nodes += _text_nodes(line)
        content.append({"type": "paragraph", "content": nodes})
    return {"type": "doc", "version": 1, "content": content}


def _text_nodes(line: str) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    at = 0
    for match in _URL.finditer(line):
        if match.start() > at:
            nodes.append({"type": "text", "text": line[at:match.start()]})
        url = match.group(0)
        nodes.append({"type": "text", "text": url, "marks": [{"type": "link", "attrs": {"href": url}}]})
        at = match.end()
    if at < len(line):
        nodes.append({"type": "text", "text": line[at:]})
    return nodes


def _message(data: Any) -> str:
    """ErrorCollection: {"errorMessages": [...], "errors": {"field": "message"}}."""
    parts = [str(m) for m in data.get("errorMessages") or []]
    parts += [f"{field}: {msg}" for field, msg in (data.get("errors") or {}).items()]
    if not parts and data.get("message"):
        parts.append(str(data["message"]))
    return "; ".join(parts)


def _hint(status: int, data: Any) -> str:
    if status == 401:
        return ("Jira refused the credentials: check email and api_token in [jira] (an API token from "
                "id.atlassian.com/manage-profile/security/api-tokens), or access_token and cloud_id for OAuth")
    if status == 403:
        return ("the Jira account may not do this: it needs Browse projects, Create issues, Add comments and "
                "Transition issues in the project (OAuth: scopes read:jira-work and write:jira-work)")
    if status == 404:
        return "the issue or project was not found, or the Jira account may not see it: check the key"
    if status == 400:
        return ("Jira refused the fields: check the action's project key, issue_type and labels (no spaces) "
                "against the project's create screen")
    return generic_hint(SERVICE, "jira", status, keys="email and api_token", not_found="")


class JiraClient:
    def __init__(self, *, url: str, email: str = "", api_token: str = "", cloud_id: str = "",
                 access_token: str = "", api_base: str = "", timeout_s: float = DEFAULT_TIMEOUT_S,
                 now: Now = time.time) -> None:
        self.site = url.rstrip("/")
        if access_token:
            self.base = (api_base or f"{OAUTH_API}/{cloud_id}").rstrip("/")
            self._headers = {"Authorization": f"Bearer {access_token}"}
        else:
            self.base = (api_base or self.site).rstrip("/")
            self._headers = {"Authorization": aiohttp.encode_basic_auth(email, api_token)}
        self._headers["Accept"] = "application/json"
        self.http = VendorHttp(SERVICE, vendor_message=_message, hint=_hint, timeout_s=timeout_s, now=now)

    async def close(self) -> None:
        await self.http.close()

    async def _call(self, method: str, path: str, body: Any = None,
                    params: list[tuple[str, str]] | None = None) -> Any:
        answer = await self.http.call(method, f"{self.base}/rest/api/3{path}", headers=self._headers,
                                      json_body=body, params=params)
        return answer.data

    def browse_url(self, key: str) -> str:
        return f"{self.site}/browse/{key}"

    def _issue(self, data: Any, what: str) -> JiraIssue:
        if not isinstance(data, dict) or not data.get("key") or not data.get("id"):
            raise IntegrationError(SERVICE, f"{what}: the answer has no issue id and key ({str(data)[:120]})",
                                   status=WRONG_SHAPE,
                                   hint="check that [jira] url is your Jira Cloud site")
        return JiraIssue(id=str(data["id"]), key=str(data["key"]), url=self.browse_url(str(data["key"])))

    async def create_issue(self, *, project: str, issue_type: str, summary: str, description: str,
                           labels: list[str]) -> JiraIssue:
        one_line = " ".join(summary.split()) or "Playbook run"
        if len(one_line) > SUMMARY_MAX:
            one_line = one_line[: SUMMARY_MAX - 1] + "…"
        fields: dict[str, Any] = {"project": {"key": project}, "issuetype": {"name": issue_type or "Task"},
                                  "summary": one_line, "labels": list(labels)}
        if description.strip():
            fields["description"] = to_adf(description)
        data = await self._call("POST", "/issue", {"fields": fields})
        return self._issue(data, "create issue")

    async def find_by_label(self, label: str) -> JiraIssue | None:
        jql = f'labels = "{_jql_quote(label)}" ORDER BY created ASC'
        data = await self._call("POST", "/search/jql", {"jql": jql, "fields": ["summary"], "maxResults": 1})
        issues = data.get("issues") if isinstance(data, dict) else None
        if not isinstance(issues, list):
            raise IntegrationError(SERVICE, "search: the answer has no issues list", status=WRONG_SHAPE,
                                   hint="check that [jira] url is your Jira Cloud site")
        return self._issue(issues[0], "search") if issues else None

    async def comment(self, issue_key: str, text: str) -> None:
        if not text.strip():
            raise IntegrationError(SERVICE, f"comment on {issue_key}: the text is empty", status=NOT_SENT,
                                   hint="give the action a text, or use it on status updates")
        await self._call("POST", f"/issue/{quote(issue_key, safe='')}/comment", {"body": to_adf(text)})

    async def transition(self, issue_key: str, to: str) -> None:
        path = f"/issue/{quote(issue_key, safe='')}/transitions"
        data = await self._call("GET", path)
        options = data.get("transitions") if isinstance(data, dict) else None
        if not isinstance(options, list):
            raise IntegrationError(SERVICE, f"transitions of {issue_key}: the answer has no transitions list",
                                   status=WRONG_SHAPE)
        wanted = to.strip().casefold()
        chosen = next((t for t in options if str(t.get("name", "")).casefold() == wanted), None) or \
            next((t for t in options if str((t.get("to") or {}).get("name", "")).casefold() == wanted), None)
        if chosen is None:
            available = ", ".join(f'"{t.get("name")}" (to {(t.get("to") or {}).get("name", "?")})'
                                  for t in options) or "none"
            raise IntegrationError(SERVICE, f'{issue_key} has no transition or target status "{to}" from its '
                                   f"current status; available: {available}", status=NOT_SENT,
                                   hint='set the action\'s `to` to one of the available names')
        await self._call("POST", path, {"transition": {"id": str(chosen.get("id"))}})

    async def check(self) -> CheckResult:
        try:
            me = await self._call("GET", "/myself")
        except IntegrationError as err:
            return CheckResult(SERVICE, False, f"{self.site}: {err.message}" + (f"; {err.hint}" if err.hint else ""))
        me = me if isinstance(me, dict) else {}
        who = me.get("emailAddress") or me.get("displayName") or me.get("accountId") or "an account without a name"
        return CheckResult(SERVICE, True, f"{self.site}: signed in as {who}")


def _jql_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
