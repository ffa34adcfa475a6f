"""What several sandbox test modules set up the same way: a team `eng` with alice, bob and carol (each
with a token) and one channel of alice's that bob is in."""
from __future__ import annotations

from typing import Any

from sandbox import ops


def make_world(sandbox: Any, *, channel: str = "incidents", display_name: str = "Incidents",
               private: bool = False) -> dict[str, Any]:
    st, hub = sandbox.state, sandbox.hub
    admin = st.user_by_username("sysadmin")
    team = ops.create_team(st, hub, name="eng", display_name="Eng", creator=admin)
    w: dict[str, Any] = {"team": team, "admin": admin}
    for name in ("alice", "bob", "carol"):
        user = ops.create_user(st, hub, username=name, email=f"{name}@example.com")
        ops.add_team_member(st, hub, team, user)
        w[name], w[name + "_token"] = user, ops.create_token(st, user.id)
    w["channel"] = ops.create_channel(st, hub, team=team, creator=w["alice"], name=channel,
                                      display_name=display_name, type="P" if private else "O")
    ops.add_channel_member(st, hub, w["channel"], w["bob"], w["alice"])
    return w
