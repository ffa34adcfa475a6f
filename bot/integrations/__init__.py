"""Clients of the tools outside Mattermost that playbook actions reach (Jira, Zoom, PagerDuty, Opsgenie).

This module is the contract between the clients (one module each in this package, real clients of each
vendor's documented REST API, with credentials from bot.toml / BOT_* only) and the features that use them
(handlers/actions.py: actions on run events; `python -m bot check`). Features see only these protocols and
dataclasses; bot/app.py builds the configured clients into `ctx.integrations`. A service that is not
configured is None there, and an action that needs it fails with a message that says which settings to add.

Every client method raises IntegrationError for anything but success: no answer, a vendor's 4xx/5xx, an
answer of the wrong shape. Its `message` says what failed in the vendor's words where it gave some; its
`hint` says how to fix it (a wrong key, a missing permission, a project that does not exist).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class IntegrationError(Exception):
    def __init__(self, service: str, message: str, *, status: int = 0, hint: str = "",
                 retry_after_s: float | None = None, sent: bool = True) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service  # "Jira", "Zoom", "PagerDuty", "Opsgenie", or the host of an HTTP action
        self.message = message
        self.status = status  # the HTTP status; 0 = no answer (refused, timed out, bad URL)
        self.hint = hint
        self.retry_after_s = retry_after_s  # from Retry-After (or the vendor's equivalent), seconds
        # False: the request surely never reached the vendor (no connection opened, no name resolved, or
        # a step before it failed): whatever it would have made was not made, so it may be tried again.
        self.sent = sent

    @property
    def retryable(self) -> bool:
        """Worth another attempt later: no answer, 408, 429 or a 5xx. Any other 4xx is final."""
        return self.status == 0 or self.status >= 500 or self.status in (408, 429)


@dataclass(frozen=True)
class CheckResult:
    """One line of `python -m bot check` for a configured service."""
    service: str
    ok: bool
    detail: str  # "signed in as ops-bot@example.com", or what failed and how to fix it


@dataclass(frozen=True)
class JiraIssue:
    id: str
    key: str  # "OPS-24"
    url: str  # the browse link people open: <site>/browse/<key>


@dataclass(frozen=True)
class ZoomMeeting:
    id: str
    join_url: str


class JiraApi(Protocol):
    async def create_issue(self, *, project: str, issue_type: str, summary: str, description: str,
                           labels: list[str]) -> JiraIssue: ...

    async def find_by_label(self, label: str) -> JiraIssue | None: ...  # JQL search; the first match

    async def comment(self, issue_key: str, text: str) -> None: ...

    async def transition(self, issue_key: str, to: str) -> None: ...  # transition or target status name

    async def check(self) -> CheckResult: ...


class ZoomApi(Protocol):
    async def create_meeting(self, *, topic: str, agenda: str, host: str) -> ZoomMeeting: ...  # host: email

    async def check(self) -> CheckResult: ...


class PagerDutyApi(Protocol):
    async def oncall_emails(self, *, escalation_policy_ids: list[str], schedule_ids: list[str]) -> list[str]: ...

    # Events v2. `routing`: a NAME in [pagerduty] routing_keys (the key itself is a credential, never in a
    # playbook); the client resolves it and raises IntegrationError (with a hint) for an unknown name.
    async def trigger(self, *, routing: str, dedup_key: str, summary: str, source: str, severity: str,
                      link: str) -> None: ...

    async def resolve(self, *, routing: str, dedup_key: str) -> None: ...

    async def check(self) -> CheckResult: ...


class OpsgenieApi(Protocol):
    async def oncall_emails(self, *, schedule: str) -> list[str]: ...  # schedule id or name

    async def create_alert(self, *, message: str, alias: str, description: str, priority: str,
                           responders: list[str]) -> None: ...  # responders: team names

    async def close_alert(self, *, alias: str) -> None: ...

    async def check(self) -> CheckResult: ...


@dataclass
class Integrations:
    """The configured clients (None: not configured); built by bot/app.py from the settings."""
    jira: JiraApi | None = None
    zoom: ZoomApi | None = None
    pagerduty: PagerDutyApi | None = None
    opsgenie: OpsgenieApi | None = None
    closers: list[object] = field(default_factory=list)  # objects with `async close()`, closed at shutdown
