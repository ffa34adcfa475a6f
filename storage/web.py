"""The web view's sign-in rows: sessions, one-time grants (OAuth states, sign-in links) and the OAuth app.

Secrets are never stored as such: a session and a grant are keyed by the SHA-256 of the secret the
browser holds, and tokens arrive here already encrypted (bot/web.py). Each helper takes a Session and
runs inside the caller's transaction (Database.run).
"""
from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage._sql import rowcount
from storage.models import OAuthClient, SignInGrant, WebSession

CLIENT_ROW = "mattermost"


def add_session(session: Session, row: WebSession) -> None:
    session.add(row)


def get_session(session: Session, key: str, now: int) -> WebSession | None:
    """The live session with this key; None when there is none or it ran out."""
    row = session.get(WebSession, key)
    if row is None or row.expires_at <= now:
        return None
    return row


def person_session(session: Session, user_id: str, now: int) -> WebSession | None:
    """The person's newest live session signed in with Mattermost (one holding their OAuth tokens): what
    lets the bot act as them (an item's command). A session from a one-time link holds no token."""
    return session.exec(select(WebSession).where(
        WebSession.user_id == user_id, col(WebSession.expires_at) > now, col(WebSession.access_token) != "")
        .order_by(col(WebSession.created_at).desc(), col(WebSession.id)).limit(1)).first()


def update_tokens(session: Session, key: str, access_token: str, refresh_token: str, expires_at: int,
                  replacing: str | None = None) -> bool:
    """Keep a session's new tokens. `replacing`: only if its refresh token is still this (sealed) one, so
    of two refreshes of one session the later answer never overwrites the earlier; True when written."""
    query = update(WebSession).where(col(WebSession.id) == key)
    if replacing is not None:
        query = query.where(col(WebSession.refresh_token) == replacing)
    result = session.execute(query.values(access_token=access_token, refresh_token=refresh_token,
                                          token_expires_at=expires_at).execution_options(synchronize_session=False))
    return rowcount(result) == 1


def end_unless_refreshed(session: Session, key: str, refresh_token: str, now: int) -> WebSession | None:
    """Mattermost refused the (sealed) `refresh_token`: end the session if it still holds that one. If
    another refresh of the session replaced it meanwhile (Mattermost rotates refresh tokens, so the later
    of two concurrent refreshes is refused), the session stays: its row, with the winner's tokens."""
    result = session.execute(delete(WebSession).where(col(WebSession.id) == key,
                                                      col(WebSession.refresh_token) == refresh_token)
                             .execution_options(synchronize_session=False))
    if rowcount(result) == 1:
        return None
    return get_session(session, key, now)


def end_session(session: Session, key: str) -> WebSession | None:
    """Delete the session; the row as it was (to revoke its tokens), None if it was gone already."""
    row = session.get(WebSession, key)
    if row is not None:
        session.delete(row)
    return row


def add_grant(session: Session, row: SignInGrant, now: int) -> None:
    # Grants live minutes: clear out the spent-by-time ones as new ones come, so the table stays small.
    session.execute(delete(SignInGrant).where(col(SignInGrant.expires_at) <= now)
                    .execution_options(synchronize_session=False))
    session.add(row)


def peek_grant(session: Session, key: str, kind: str, now: int) -> SignInGrant | None:
    """The grant when it exists, is of `kind` and has not run out; spends nothing."""
    row = session.get(SignInGrant, key)
    return row if row is not None and row.kind == kind and row.expires_at > now else None


def spend_grant(session: Session, key: str, kind: str, now: int) -> SignInGrant | None:
    """Take the grant once: the row when it existed, was of `kind` and had not run out; None otherwise.
    The DELETE decides, so two requests racing with the same secret cannot both win."""
    row = session.get(SignInGrant, key)
    if row is None:
        return None
    if rowcount(session.execute(delete(SignInGrant).where(col(SignInGrant.id) == key)
                                .execution_options(synchronize_session=False))) != 1:
        return None
    if row.kind != kind or row.expires_at <= now:
        return None
    return row


def get_client(session: Session) -> OAuthClient | None:
    return session.get(OAuthClient, CLIENT_ROW)


def save_client(session: Session, row: OAuthClient) -> OAuthClient:
    """Keep `row` as the bot's OAuth app unless another bot process saved one first; the one kept."""
    existing = session.get(OAuthClient, CLIENT_ROW)
    if existing is not None:
        return existing
    row.id = CLIENT_ROW
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        kept = session.get(OAuthClient, CLIENT_ROW, populate_existing=True)
        assert kept is not None
        return kept
    return row


def forget_client(session: Session) -> None:
    session.execute(delete(OAuthClient).where(col(OAuthClient.id) == CLIENT_ROW)
                    .execution_options(synchronize_session=False))
