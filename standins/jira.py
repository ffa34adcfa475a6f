"""Jira Cloud REST API v3 stand-in (Atlassian OpenAPI swagger-v3.v3.json, 1001.0.0-SNAPSHOT; docs/standins.md).

Issues (create, get), the enhanced JQL search (`/rest/api/3/search/jql`, a subset of JQL: `labels = "x"`,
`project = X`, joined by AND, `ORDER BY created ASC|DESC`), comments (ADF only), transitions with ids that
differ per project workflow, `myself`. Basic auth (email:api_token) on the site, or a Bearer token under
`/ex/jira/{cloud_id}` as api.atlassian.com serves OAuth apps. Errors are ErrorCollection bodies.
"""
from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from standins.common import Fault, StandIn, json_body, json_response

# status -> the transitions from it: (name, target status); ids come from the project's workflow.
WORKFLOW = {
    "To Do": [("Start progress", "In Progress"), ("Done", "Done")],
    "In Progress": [("Stop progress", "To Do"), ("Done", "Done")],
    "Done": [("Reopen", "To Do")],
}
CATEGORY = {"To Do": "new", "In Progress": "indeterminate", "Done": "done"}


def errors(messages: list[str] | None = None, fields: dict[str, str] | None = None, status: int = 400
           ) -> web.Response:
    return json_response({"errorMessages": messages or [], "errors": fields or {}}, status)


def is_adf(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("type") == "doc" and doc.get("version") == 1 and \
        isinstance(doc.get("content"), list)


def adf_text(doc: Any) -> str:
    """The text of an ADF document (paragraphs joined by blank lines, hardBreaks as newlines)."""
    out: list[str] = []
    for block in doc.get("content", []):
        parts = []
        for node in block.get("content", []):
            parts.append("\n" if node.get("type") == "hardBreak" else node.get("text", ""))
        out.append("".join(parts))
    return "\n\n".join(out)


@dataclass
class Issue:
    id: str
    key: str
    project: str
    summary: str
    issue_type: str
    labels: list[str]
    description: Any
    created: str
    status: str = "To Do"
    comments: list[dict[str, Any]] = field(default_factory=list)


class JiraStandIn(StandIn):
    name = "Jira"

    def __init__(self, *, email: str = "ops-bot@example.com", api_token: str = "jira-token",
                 cloud_id: str = "cloud-1", access_token: str = "jira-oauth-token",
                 projects: dict[str, list[str]] | None = None) -> None:
        super().__init__()
        self.email, self.api_token = email, api_token
        self.cloud_id, self.access_token = cloud_id, access_token
        self.projects = projects or {"OPS": ["Task", "Bug", "Incident"], "DEMO": ["Task"]}
        # A workflow per project: its own transition ids, as real Jira gives each workflow its own.
        self.transition_ids = {p: 11 + 10 * n for n, p in enumerate(self.projects)}
        self.issues: dict[str, Issue] = {}
        self._next_id = 10000
        self._counters: dict[str, int] = {}
        self.account_id = "5b10ac8d82e05b22cc7d4ef5"

    def routes(self, app: web.Application) -> None:
        for prefix in ("", "/ex/jira/{cloud_id}"):
            base = prefix + "/rest/api/3"
            app.router.add_get(base + "/myself", self.myself)
            app.router.add_post(base + "/issue", self.create_issue)
            app.router.add_get(base + "/issue/{key}", self.get_issue)
            app.router.add_post(base + "/issue/{key}/comment", self.add_comment)
            app.router.add_get(base + "/issue/{key}/transitions", self.get_transitions)
            app.router.add_post(base + "/issue/{key}/transitions", self.do_transition)
            app.router.add_route("*", base + "/search/jql", self.search)
            app.router.add_route("*", base + "/search", self.old_search)

    def fault_reply(self, fault: Fault) -> web.Response:
        headers: dict[str, str] = {}
        if fault.status in (429, 503):
            reset = datetime.now(timezone.utc) + timedelta(seconds=float(fault.retry_after or 0))
            headers = {"Retry-After": fault.retry_after, "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
                       "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"), "X-RateLimit-NearLimit": "true",
                       "RateLimit-Reason": "jira-burst-based"}
        texts = {401: "Client must be authenticated to access this resource.",
                 403: "You do not have permission to create issues in this project.",
                 404: "Issue does not exist or you do not have permission to see it.",
                 429: "Rate limit exceeded.", 500: "Internal server error."}
        body = fault.body if fault.body is not None else \
            {"errorMessages": [texts.get(fault.status, f"Error {fault.status}")], "errors": {}}
        return json_response(body, fault.status, headers)

    # --- auth ---------------------------------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if "cloud_id" in request.match_info:
            return request.match_info["cloud_id"] == self.cloud_id and header == f"Bearer {self.access_token}"
        expected = base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()
        return header == f"Basic {expected}"

    def _site(self, request: web.Request) -> str:
        return self.url or f"{request.scheme}://{request.host}"

    def _unauthorized(self) -> web.Response:
        return errors(["Client must be authenticated to access this resource."], status=401)

    def _issue_json(self, request: web.Request, issue: Issue) -> dict[str, Any]:
        return {"id": issue.id, "key": issue.key, "self": f"{self._site(request)}/rest/api/3/issue/{issue.id}",
                "fields": {"summary": issue.summary, "labels": issue.labels, "description": issue.description,
                           "issuetype": {"name": issue.issue_type}, "project": {"key": issue.project},
                           "created": issue.created,
                           "status": {"name": issue.status,
                                      "statusCategory": {"key": CATEGORY.get(issue.status, "new")}}}}

    def _find(self, key: str) -> Issue | None:
        return self.issues.get(key.upper()) or next((i for i in self.issues.values() if i.id == key), None)

    # --- handlers -----------------------------------------------------------------------------------------
    async def myself(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        return json_response({"self": f"{self._site(request)}/rest/api/3/user?accountId={self.account_id}",
                              "accountId": self.account_id, "accountType": "atlassian",
                              "emailAddress": self.email, "displayName": "Ops Bot", "active": True,
                              "timeZone": "UTC", "locale": "en_US"})

    async def create_issue(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("fields"), dict):
            return errors(["No content to map to Object due to end of input"])
        f = body["fields"]
        problems: dict[str, str] = {}
        project = (f.get("project") or {}).get("key") or (f.get("project") or {}).get("id")
        if project not in self.projects:
            problems["project"] = "valid project is required"
        issue_type = (f.get("issuetype") or {}).get("name") or (f.get("issuetype") or {}).get("id")
        if project in self.projects and issue_type not in self.projects[project]:
            problems["issuetype"] = "The issue type selected is invalid."
        summary = f.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            problems["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255 or "\n" in summary:
            problems["summary"] = "Summary must be less than 255 characters." if len(summary) > 255 else \
                "The summary is invalid because it contains newline characters."
        if "description" in f and f["description"] is not None and not is_adf(f["description"]):
            problems["description"] = "Operation value must be an Atlassian Document (see the Atlassian " \
                                      "Document Format)"
        labels = f.get("labels") or []
        bad = [x for x in labels if not isinstance(x, str) or not x or re.search(r"\s", x) or len(x) > 255]
        if bad:
            problems["labels"] = f"The label '{bad[0]}' contains spaces which is invalid."
        if problems:
            return errors(fields=problems)
        self._next_id += 1
        self._counters[project] = self._counters.get(project, 0) + 1
        issue = Issue(id=str(self._next_id), key=f"{project}-{self._counters[project]}", project=project,
                      summary=summary, issue_type=issue_type, labels=list(labels), description=f.get("description"),
                      created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000")
        self.issues[issue.key] = issue
        return json_response({"id": issue.id, "key": issue.key,
                              "self": f"{self._site(request)}/rest/api/3/issue/{issue.id}"}, 201)

    def _issue_for(self, request: web.Request) -> Issue | web.Response:
        """The issue the path names, or the answer Jira gives: 401 unsigned, 404 unknown (or not visible)."""
        if not self._authorized(request):
            return self._unauthorized()
        issue = self._find(request.match_info["key"])
        if issue is None:
            return errors(["Issue does not exist or you do not have permission to see it."], status=404)
        return issue

    async def get_issue(self, request: web.Request) -> web.Response:
        issue = self._issue_for(request)
        if not isinstance(issue, Issue):
            return issue
        return json_response(self._issue_json(request, issue))

    async def add_comment(self, request: web.Request) -> web.Response:
        issue = self._issue_for(request)
        if not isinstance(issue, Issue):
            return issue
        body = await json_body(request)
        if not isinstance(body, dict) or not is_adf(body.get("body")):
            return errors(fields={"comment": "Comment body can not be empty!"} if not body or not body.get("body")
                          else {"comment": "Operation value must be an Atlassian Document"})
        if not adf_text(body["body"]).strip():
            return errors(fields={"comment": "Comment body can not be empty!"})
        comment = {"id": str(len(issue.comments) + 10000), "body": body["body"],
                   "author": {"accountId": self.account_id, "displayName": "Ops Bot"},
                   "created": datetime.now(timezone.utc).isoformat()}
        comment["self"] = f"{self._site(request)}/rest/api/3/issue/{issue.id}/comment/{comment['id']}"
        comment["updated"] = comment["created"]
        issue.comments.append(comment)
        return json_response(comment, 201)

    def _transitions(self, issue: Issue) -> list[dict[str, Any]]:
        base = self.transition_ids[issue.project]
        names = sorted({n for options in WORKFLOW.values() for n, _ in options})
        return [{"id": str(base + names.index(name)), "name": name, "hasScreen": False, "isAvailable": True,
                 "to": {"name": target, "statusCategory": {"key": CATEGORY[target]}}}
                for name, target in WORKFLOW.get(issue.status, [])]

    async def get_transitions(self, request: web.Request) -> web.Response:
        issue = self._issue_for(request)
        if not isinstance(issue, Issue):
            return issue
        return json_response({"expand": "transitions", "transitions": self._transitions(issue)})

    async def do_transition(self, request: web.Request) -> web.Response:
        issue = self._issue_for(request)
        if not isinstance(issue, Issue):
            return issue
        body = await json_body(request)
        wanted = str(((body or {}).get("transition") or {}).get("id", "")) if isinstance(body, dict) else ""
        chosen = next((t for t in self._transitions(issue) if t["id"] == wanted), None)
        if chosen is None:
            return errors([f"Transition id '{wanted}' is not valid for this issue."])
        issue.status = chosen["to"]["name"]
        return web.Response(status=204)

    async def search(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        if request.method == "POST":
            body = await json_body(request)
            if not isinstance(body, dict):
                return errors(["No content to map to Object due to end of input"])
        elif request.method == "GET":
            body = dict(request.query)
        else:
            return web.Response(status=405)
        jql = str(body.get("jql", ""))
        try:
            matcher, newest_first = parse_jql(jql)
        except ValueError as err:
            return errors([f"Error in the JQL Query: {err}"])
        try:
            limit = max(1, min(5000, int(body.get("maxResults", 50))))
            start = int(body.get("nextPageToken") or 0)
        except (TypeError, ValueError):
            return errors(["The value for maxResults or nextPageToken is invalid."])
        found = sorted((i for i in self.issues.values() if matcher(i)), key=lambda i: int(i.id),
                       reverse=newest_first)
        page = found[start:start + limit]
        out: dict[str, Any] = {"issues": [self._issue_json(request, i) for i in page],
                               "isLast": start + limit >= len(found)}
        if not out["isLast"]:
            out["nextPageToken"] = str(start + limit)
        return json_response(out)

    async def old_search(self, request: web.Request) -> web.Response:
        return errors(["The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
                       "A full migration guideline is available at "
                       "https://developer.atlassian.com/changelog/#CHANGE-2046"], status=410)


_CLAUSE = re.compile(r'\s*(labels|project)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_-]+))\s*', re.IGNORECASE)


def parse_jql(jql: str) -> tuple[Any, bool]:
    """The JQL subset: clauses `labels = "x"` / `project = X` joined by AND, optional ORDER BY created."""
    text = jql.strip()
    newest_first = False
    order = re.search(r"\s*ORDER\s+BY\s+created(?:\s+(ASC|DESC))?\s*$", text, re.IGNORECASE)
    if order:
        newest_first = (order.group(1) or "ASC").upper() == "DESC"
        text = text[: order.start()]
    if not text:
        raise ValueError("unbounded JQL queries are not allowed here; add a restriction")
    clauses: list[tuple[str, str]] = []
    for part in re.split(r"\s+AND\s+", text, flags=re.IGNORECASE):
        m = _CLAUSE.fullmatch(part)
        if m is None:
            raise ValueError(f"the stand-in understands only labels = \"x\" and project = X, not {part.strip()!r}")
        value = m.group(2) if m.group(2) is not None else m.group(3)
        clauses.append((m.group(1).lower(), re.sub(r"\\(.)", r"\1", value)))

    def matches(issue: Issue) -> bool:
        return all(value in issue.labels if name == "labels" else issue.project == value.upper()
                   for name, value in clauses)
    return matches, newest_first


def new_token() -> str:
    return secrets.token_urlsafe(16)
