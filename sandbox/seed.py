"""The system admin every sandbox has, and the `--demo` data."""
from __future__ import annotations

from sandbox.state import State


def bootstrap(state: State, admin_token: str | None) -> str:
    """Create `sysadmin` with a personal access token (random when None); return the token."""
    import secrets

    from sandbox.ids import new_id
    from sandbox.state import Token, User

    token = admin_token or secrets.token_hex(13)
    user = User(id=new_id(), username="sysadmin", email="sysadmin@sandbox.local", password="sysadmin",
                roles="system_user system_admin")
    state.users[user.id] = user
    state.tokens[token] = Token(id=new_id(), token=token, user_id=user.id, description="sandbox admin")
    return token


def add_demo(state: State) -> dict:
    """Team `demo`, users alice, bob, carol (password `demo`) and a bot account with a token."""
    raise NotImplementedError
