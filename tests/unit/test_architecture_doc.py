"""docs/architecture.md's table of where each subcommand, button, dialog, event and HTTP route lives
matches what the routers register, so a newcomer's one hop from a name to its code stays right."""
from __future__ import annotations

import re
from pathlib import Path

from bot.app import build_router

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def documented() -> dict[tuple[str, str], str]:
    """(kind, name) -> module path, from the table rows."""
    out: dict[tuple[str, str], str] = {}
    for line in DOC.read_text().splitlines():
        match = re.fullmatch(r"\| (.+) \| `([a-z/_]+\.py)` \|", line.strip())
        if not match:
            continue
        what, module = match.groups()
        for part in what.split(";"):
            part = part.strip()
            kind = "command" if part.startswith("`/playbook") else part.split()[0].rstrip("s")
            if kind in ("HTTP", "page"):
                for method, path in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (\S+)`", part):
                    out[(kind.lower(), f"{method} {path}")] = module
                continue
            for name in re.findall(r"`([^`]+)`", part):
                out[(kind, name.removeprefix("/playbook "))] = module
    return out


def registered() -> dict[tuple[str, str], str]:
    root = build_router()

    def path_of(fn: object) -> str:
        return getattr(fn, "__module__", "").replace(".", "/") + ".py"

    out = {("command", name): path_of(spec.handler) for name, spec in root.commands.items()}
    out |= {("button", kind.kind): path_of(fn) for kind, fn in root.clicks.items()}
    out |= {("dialog", kind.kind): path_of(fn) for kind, fn in root.dialogs.items()}
    out |= {("event", name): path_of(fns[0]) for name, fns in root.events.items()}
    out |= {("http", f"{method} {path}"): path_of(fn) for (method, path), fn in root.http_routes.items()}
    out |= {("page", f"{method} {path}"): path_of(fn) for (method, path), fn in root.pages.items()}
    return out


def test_the_table_names_every_registration_and_its_module() -> None:
    doc, code = documented(), registered()
    assert len(code) > 30
    assert doc == code
