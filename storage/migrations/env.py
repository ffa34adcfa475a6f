"""Alembic's entry point, for storage.db.migrate() (which hands us its connection) and for the CLI."""
from __future__ import annotations

import os
from collections.abc import Callable
from logging.config import fileConfig
from typing import Any, Literal, TypedDict

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import storage.models  # noqa: F401  (puts the tables on SQLModel.metadata)
from storage.db import DEFAULT_URL, make_engine

config = context.config
target_metadata = SQLModel.metadata

if config.config_file_name is not None:  # run from the command line with storage/alembic.ini
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    return os.environ.get("BOT_STORAGE_URL") or config.get_main_option("sqlalchemy.url") or DEFAULT_URL


def _render_item(kind: str, obj: object, _autogen_context: object) -> str | Literal[False]:
    # Autogenerate would write sqlmodel's AutoString (and need sqlmodel imported); it is a VARCHAR.
    if kind == "type" and isinstance(obj, AutoString):
        return f"sa.String({obj.length})" if obj.length else "sa.String()"
    return False


class _Options(TypedDict):
    """The keyword arguments both modes give context.configure()."""

    target_metadata: MetaData
    compare_type: bool
    render_item: Callable[[str, Any, AutogenContext], str | Literal[False]]
    render_as_batch: bool


def _options(dialect_name: str) -> _Options:
    # SQLite can't ALTER most things in place; batch mode rebuilds the table instead.
    return {"target_metadata": target_metadata, "compare_type": True, "render_item": _render_item,
            "render_as_batch": dialect_name == "sqlite"}


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **_options(connection.dialect.name))
    # Inside migrate()'s transaction this begins nothing: migrate() commits or rolls back.
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """`alembic upgrade --sql`: print the SQL instead of running it."""
    url = _url()
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"},
                      **_options(url.split(":", 1)[0].split("+", 1)[0]))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url(), pool_size=1)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
