"""The layout's arrows, checked on every `make test` (docs/architecture.md draws them):

    bot.domain  <-  storage  <-  bot (runtime core)  <-  handlers  <-  commands  <-  bot.app, bot.__main__

A module may import its own layer and the layers to its left, never one to its right: the core never
names a feature, handlers never call into commands, storage knows nothing of the runtime. Besides:
- only storage/ imports SQLAlchemy, SQLModel or Alembic, and only storage/ has functions that take a
  database session (a first parameter named `session`);
- only bot/mattermost.py imports mattermostdriver, and only the core imports aiohttp;
- nothing in the product imports the sandbox, the vendor stand-ins (standins/) or the tests.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("bot", "commands", "handlers", "storage")
COMPOSITION_ROOT = {"bot.app", "bot.__main__"}
# Left to right: a module may import only its own rank or lower.
RANKS = {"bot.domain": 0, "storage": 1, "bot": 2, "handlers": 3, "commands": 4, "root": 5}
SQL_LIBRARIES = ("sqlalchemy", "sqlmodel", "alembic", "psycopg")


def layer(module: str) -> str:
    if module in COMPOSITION_ROOT:
        return "root"
    if module == "bot.domain" or module.startswith("bot.domain."):
        return "bot.domain"
    return module.split(".")[0]


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # Alembic's own scripts: storage, by definition
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found.append((name, path))
    return found


def imports_of(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


MODULES = modules()


def test_the_layout_is_found() -> None:
    names = {name for name, _ in MODULES}
    assert {"bot.app", "bot.server", "bot.posts", "storage.runs", "handlers.items", "commands.lifecycle"} <= names


@pytest.mark.parametrize(("name", "path"), MODULES, ids=[name for name, _ in MODULES])
def test_imports_run_one_way(name: str, path: Path) -> None:
    mine = layer(name)
    wrong = []
    for line, target in imports_of(path):
        top = target.split(".")[0]
        if top in ("sandbox", "standins", "tests"):
            wrong.append(f"line {line}: imports {target} (the product never imports the sandbox, stand-ins or tests)")
        elif top in PRODUCT and RANKS[layer(target)] > RANKS[mine]:
            wrong.append(f"line {line}: {mine} imports {target} ({layer(target)}), which sits above it")
        elif top in SQL_LIBRARIES and mine != "storage":
            wrong.append(f"line {line}: imports {target}; SQL lives in storage/")
        elif top == "mattermostdriver" and name != "bot.mattermost":
            wrong.append(f"line {line}: imports mattermostdriver; only the gateway (bot/mattermost.py) may")
        elif top == "aiohttp" and mine not in ("bot", "root"):
            wrong.append(f"line {line}: imports aiohttp; features see HTTP only through the core")
    assert not wrong, f"{name}:\n" + "\n".join(wrong)


@pytest.mark.parametrize(("name", "path"), [(n, p) for n, p in MODULES if layer(n) != "storage"],
                         ids=[n for n, _ in MODULES if layer(n) != "storage"])
def test_only_storage_takes_a_session(name: str, path: Path) -> None:
    takers = [f"line {node.lineno}: {getattr(node, 'name', 'lambda')}"
              for node in ast.walk(ast.parse(path.read_text(), str(path)))
              if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
              and node.args.args and node.args.args[0].arg in ("session", "s")]
    assert not takers, f"{name} has functions that take a database session (move them to storage/):\n" + \
        "\n".join(takers)


def test_the_checker_catches_a_wrong_arrow(tmp_path: Path) -> None:
    """The rules above are not vacuous: an upward import is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from commands.items import item_check\nfrom sqlmodel import select\n")
    assert [t for _, t in imports_of(bad)] == ["commands.items", "sqlmodel"]
    assert RANKS[layer("commands.items")] > RANKS[layer("handlers.items")]
    assert RANKS[layer("handlers.items")] > RANKS[layer("bot.server")]
    assert RANKS[layer("bot.server")] > RANKS[layer("storage.runs")] > RANKS[layer("bot.domain.permissions")]
