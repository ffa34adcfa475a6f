"""`[[actions]]` in a playbook: which keys each kind takes, their checks, and the action templates.

Templates are jinja2 in a sandboxed environment (bot/domain/templating.py: no attribute access to
internals, no imports, no huge powers, repeats or outputs), with two values: `run` (id, name, summary, owner, playbook,
channel_url, details_url, properties) and `event` (type, by, item, update). A template that does not
compile, or names anything else, is a problem at its key; one that fails while rendering (a property
that is not set, say) fails its action with the key and jinja's reason (handlers/actions.py).

Credentials never come from a playbook: an http action names a secret of `[http_actions] secrets` in
bot.toml by NAME (`secret_headers`), and a PagerDuty page names a routing key of `[pagerduty]
routing_keys` by NAME. A header that looks like a credential written into the file is refused.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.exceptions import TemplateError

from bot.domain.templating import SafeEnvironment
from bot.playbooks.fields import _kind, _Reader
from bot.playbooks.model import ActionSpec

EVENTS = ("run_started", "item_checked", "status_updated", "run_finished")
ACTIONS_MAX = 50
TEMPLATE_VALUES = frozenset({"run", "event"})
HTTP_METHODS = ("POST", "PUT", "PATCH", "DELETE", "GET")
SEVERITIES = ("critical", "error", "warning", "info")
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$")  # RFC 9110 token
# Header names that carry credentials: their values belong in bot.toml, named by secret_headers.
CREDENTIAL_HEADERS = re.compile(r"(authorization|token|secret|api[-_]?key|password|signature|cookie)",
                                re.IGNORECASE)
# A PagerDuty integration (routing) key is 32 characters: one written in a playbook is a credential.
ROUTING_KEY_RE = re.compile(r"^[0-9a-zA-Z]{32}$")

# kind -> (key -> what it is). Kinds: "text" a plain string, "template" a jinja2 template, "list" a list of
# strings, "ids" a string or a list of strings, "bool", "table" strings by name, "secret_table".
KINDS: dict[str, dict[str, str]] = {
    "jira.create_issue": {"project": "text", "issue_type": "text", "summary": "template",
                          "description": "template", "labels": "list"},
    "jira.comment": {"text": "template"},
    "jira.transition": {"to": "text"},
    "zoom.create_meeting": {"topic": "template", "host": "text"},
    "pagerduty.invite_oncall": {"escalation_policy": "ids", "schedule": "ids", "make_owner": "bool"},
    "opsgenie.invite_oncall": {"schedule": "text", "make_owner": "bool"},
    "pagerduty.page": {"routing": "text", "severity": "text", "summary": "template"},
    "pagerduty.resolve": {"routing": "text"},
    "opsgenie.page": {"responders": "list", "priority": "text", "message": "template"},
    "opsgenie.close": {},
    "http": {"method": "text", "url": "text", "headers": "table", "secret_headers": "secret_table",
             "body": "template"},
}
REQUIRED = {"jira.create_issue": ("project",), "jira.transition": ("to",), "opsgenie.invite_oncall": ("schedule",),
            "http": ("url",)}
_COMMON = ("on", "kind", "item")
_LABEL_RE = re.compile(r"^\S{1,255}$")  # Jira labels hold no spaces
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

ENV = SafeEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


class ActionTemplateError(Exception):
    """A template failed while rendering (str: jinja's reason)."""


def template_problem(source: str) -> str:
    """Why `source` cannot be an action template, or "" when it can."""
    try:
        parsed = ENV.parse(source)
    except TemplateSyntaxError as err:
        return f"is not a valid template: {err.message} (line {err.lineno})"
    unknown = sorted(meta.find_undeclared_variables(parsed) - TEMPLATE_VALUES)
    if unknown:
        return (f"uses {', '.join(unknown)}; a template may use only run (id, name, summary, owner, playbook, "
                f"channel_url, details_url, properties) and event (type, by, item, update)")
    return ""


def render(source: str, values: Mapping[str, Any]) -> str:
    """The template filled in; ActionTemplateError saying why not."""
    try:
        return ENV.from_string(source).render(**values)
    except TemplateError as err:  # SafeEnvironment's renders turn any failure into one (bot/domain/templating.py)
        raise ActionTemplateError(str(err) or type(err).__name__) from None
    except Exception as err:  # noqa: BLE001 - compiling can fail in ways jinja does not wrap
        raise ActionTemplateError(f"{type(err).__name__}: {err}") from None


def parse_actions(r: _Reader, data: Mapping[str, object], item_titles: set[str]) -> tuple[ActionSpec, ...]:
    """`[[actions]]` blocks, each problem reported at its key (`actions[2].project`)."""
    if "actions" not in data:
        return ()
    value = data["actions"]
    if isinstance(value, dict):
        r.error("actions", "expected [[actions]] blocks (double brackets: a list of tables), got [actions]")
        return ()
    if not isinstance(value, list):
        r.error("actions", f"expected [[actions]] blocks, got {_kind(value)}")
        return ()
    if len(value) > ACTIONS_MAX:
        r.error("actions", f"has {len(value)} actions; the limit is {ACTIONS_MAX}")
        return ()
    out = []
    for index, block in enumerate(value, start=1):
        path = f"actions[{index}]"
        if not isinstance(block, dict):
            r.error(path, f"expected an [[actions]] table, got {_kind(block)}")
            continue
        spec = _action(r, block, path, item_titles)
        if spec is not None:
            out.append(spec)
    return tuple(out)


def _action(r: _Reader, block: Mapping[str, object], path: str, item_titles: set[str]) -> ActionSpec | None:
    before = len(r.errors)
    on = r.text(block, "on", f"{path}.on", required=True, blank_ok=False)
    if on is not None and on not in EVENTS:
        r.error(f"{path}.on", f'expected one of {", ".join(chr(34) + e + chr(34) for e in EVENTS)}, got "{on}"')
    kind = r.text(block, "kind", f"{path}.kind", required=True, blank_ok=False)
    keys: dict[str, str] = {}
    if kind is not None:
        if kind not in KINDS:
            r.error(f"{path}.kind", f'unknown kind "{kind}"; expected one of {", ".join(KINDS)}')
            kind = None
        else:
            keys = KINDS[kind]
    if kind is not None:
        r.keys(block, _COMMON + tuple(keys), f"{path}.")
    item = ""
    if "item" in block:
        item = r.text(block, "item", f"{path}.item", blank_ok=False) or ""
        if on is not None and on != "item_checked":
            r.error(f"{path}.item", f'is only used with on = "item_checked"; this action runs on "{on}"')
        elif item and item_titles and item not in item_titles:
            r.error(f"{path}.item", f'no item of the playbook\'s checklists is titled "{item}"')
    params: list[tuple[str, Any]] = []
    for key in (k for k in REQUIRED.get(kind or "", ()) if k not in block):
        r.error(f"{path}.{key}", f'required for kind "{kind}"; add {key} = "..."')
    for key, what in keys.items():
        if key not in block:
            continue
        got = _param(r, block, key, what, f"{path}.{key}")
        if got is not None:
            params.append((key, got))
    if kind is not None and len(r.errors) == before:
        _kind_checks(r, kind, dict(params), path)
    if len(r.errors) != before or on is None or kind is None:
        return None
    return ActionSpec(on=on, kind=kind, item=item, params=tuple(params))


def _param(r: _Reader, block: Mapping[str, object], key: str, what: str, path: str) -> Any:
    if what in ("text", "template"):
        text = r.text(block, key, path, blank_ok=what == "template")
        if text is not None and what == "template":
            problem = template_problem(text)
            if problem:
                r.error(path, problem)
                return None
        return text
    if what == "bool":
        return r.boolean(block, key, path, False)
    if what == "ids" and isinstance(block.get(key), str):
        one = str(block[key]).strip()
        if not one:
            r.error(path, "must not be empty")
            return None
        return (one,)
    if what in ("list", "ids"):
        values = [v for _, v in r.string_list(block, key, path)]
        if any(not v for v in values):
            r.error(path, "holds an empty string")
            return None
        return tuple(values)
    table = block.get(key)
    if not isinstance(table, dict):
        r.error(path, f"expected a table of header = value, got {_kind(table)}")
        return None
    pairs = []
    for name, val in table.items():
        if not HEADER_NAME_RE.match(name):
            r.error(f"{path}.{name}", "is not a valid HTTP header name")
            continue
        if not isinstance(val, str):
            r.error(f"{path}.{name}", f"expected a string, got {_kind(val)}")
            continue
        if what == "secret_table" and not SECRET_NAME_RE.match(val):
            r.error(f"{path}.{name}", f'expected the name of a secret in bot.toml [http_actions] secrets (letters, '
                                      f'digits, ".", "-", "_"), got "{val}"; never the secret itself')
            continue
        if name.lower().startswith("x-playbooks-"):
            r.error(f"{path}.{name}", "is the bot's own (the X-Playbooks-* headers carry the event, delivery id, "
                                      "time and signature); use another header name")
            continue
        if what == "table" and CREDENTIAL_HEADERS.search(name):
            r.error(f"{path}.{name}", "looks like a credential; credentials never go in playbook files: put the "
                                      "value in bot.toml [http_actions] secrets and name it in secret_headers, "
                                      f'e.g. secret_headers = {{ {name} = "my-service" }}')
            continue
        pairs.append((name, val))
    return tuple(pairs)


def _kind_checks(r: _Reader, kind: str, params: dict[str, Any], path: str) -> None:
    if kind == "jira.create_issue":
        for n, label in enumerate(params.get("labels", ()), start=1):
            if not _LABEL_RE.match(label):
                r.error(f"{path}.labels[{n}]", f'"{label}" is not a Jira label (no spaces, at most 255 characters)')
    if kind == "zoom.create_meeting" and params.get("host") and not _EMAIL_RE.match(params["host"]):
        r.error(f"{path}.host", f'expected the meeting host\'s email address, got "{params["host"]}"')
    if kind == "pagerduty.invite_oncall" and not (params.get("escalation_policy") or params.get("schedule")):
        r.error(f"{path}.escalation_policy",
                "name an escalation_policy or a schedule (PagerDuty ids, e.g. \"PABC123\")")
    if kind in ("pagerduty.page", "pagerduty.resolve") and "routing" in params:
        if ROUTING_KEY_RE.match(params["routing"]):
            r.error(f"{path}.routing", "looks like a routing key itself; name it instead (a key of bot.toml "
                                       "[pagerduty] routing_keys, e.g. \"default\"): keys never go in playbook files")
    if kind == "pagerduty.page" and params.get("severity", "critical") not in SEVERITIES:
        r.error(f"{path}.severity", f'expected one of {", ".join(SEVERITIES)}, got "{params["severity"]}"')
    if kind == "opsgenie.page" and params.get("priority", "P3") not in PRIORITIES:
        r.error(f"{path}.priority", f'expected one of {", ".join(PRIORITIES)}, got "{params["priority"]}"')
    if kind == "http":
        method = params.get("method", "POST")
        if method not in HTTP_METHODS:
            r.error(f"{path}.method", f'expected one of {", ".join(HTTP_METHODS)}, got "{method}"')
        url = params.get("url", "")
        if not re.match(r"^https?://[^\s/]+\S*$", url) or "{{" in url:
            r.error(f"{path}.url", f'"{url}" is not an http(s) URL like "https://hooks.example.com/incident"')
