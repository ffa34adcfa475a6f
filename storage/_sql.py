"""Typing helpers shared by the storage modules; nothing here changes what is executed."""
from __future__ import annotations

from typing import Any, cast

from sqlalchemy.engine import CursorResult, Result


def rowcount(result: Result[Any]) -> int:
    """Rows matched by the UPDATE or DELETE that produced `result`.

    sqlmodel's Session.execute is typed to return a plain Result, but for a DML statement SQLAlchemy
    returns a CursorResult, which carries `rowcount`; the cast only says so."""
    return cast(CursorResult[Any], result).rowcount
