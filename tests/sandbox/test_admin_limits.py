"""Admin config (GET /config, PUT /config/patch, Sandbox(config=)) and the two limits it sets:
ServiceSettings.PostEditTimeLimit on post edits and TeamSettings.MaxChannelsPerTeam on channel creation."""
from __future__ import annotations

from sandbox import ops
from sandbox.config import FAKE_SETTING
from sandbox.server import Sandbox
from tests.sandbox.test_rest_scenario import setup_world


async def test_config_is_for_system_admins_and_masks_secrets(api) -> None:
    world = await setup_world(api)
    status, cfg, _ = await api.get("/config")
    assert status == 200
    assert cfg["ServiceSettings"]["PostEditTimeLimit"] == -1
    assert cfg["ServiceSettings"]["OutgoingIntegrationRequestsTimeout"] == 30
    assert cfg["ServiceSettings"]["SiteURL"].startswith("http://")
    assert cfg["TeamSettings"]["MaxChannelsPerTeam"] == 2000
    assert cfg["ServiceSettings"]["EnableOAuthServiceProvider"] is True  # SetDefaults: NewPointer(true)
    assert cfg["SqlSettings"]["DataSource"] == FAKE_SETTING
    status, body, _ = await world["bot"].get("/config")
    assert (status, body["id"]) == (403, "api.context.permissions.app_error")
    status, body, _ = await world["bot"].put("/config/patch", {"TeamSettings": {"MaxChannelsPerTeam": 1}})
    assert (status, body["id"]) == (403, "api.context.permissions.app_error")
    status, cfg, _ = await api.get("/config")
    assert cfg["TeamSettings"]["MaxChannelsPerTeam"] == 2000


async def test_patch_applies_only_the_given_fields(api, sandbox) -> None:
    status, cfg, _ = await api.put("/config/patch", {"ServiceSettings": {"PostEditTimeLimit": 300,
                                                                         "SiteURL": "https://chat.example.com/"}})
    assert status == 200
    assert cfg["ServiceSettings"]["PostEditTimeLimit"] == 300
    assert cfg["ServiceSettings"]["SiteURL"] == "https://chat.example.com"
    assert cfg["ServiceSettings"]["OutgoingIntegrationRequestsTimeout"] == 30
    assert cfg["SqlSettings"]["DataSource"] == FAKE_SETTING
    assert sandbox.state.config["PostEditTimeLimit"] == 300
    status, client, _ = await api.get("/config/client?format=old")
    assert client["PostEditTimeLimit"] == "300" and client["SiteURL"] == "https://chat.example.com"
    status, cfg, _ = await api.put("/config/patch", {"ServiceSettings": {"EnableOAuthServiceProvider": False}})
    assert status == 200 and cfg["ServiceSettings"]["EnableOAuthServiceProvider"] is False
    assert sandbox.state.config["EnableOAuthServiceProvider"] is False
    status, client, _ = await api.get("/config/client?format=old")
    assert client["EnableOAuthServiceProvider"] == "false"
    status, body, _ = await api.put("/config/patch", {"TeamSettings": {"MaxChannelsPerTeam": 0}})
    assert (status, body["id"]) == (400, "model.config.is_valid.max_channels.app_error")
    status, body, _ = await api.put("/config/patch", {"ServiceSettings": {"SiteURL": ""}})
    assert (status, body["id"]) == (400, "api.config.update_config.clear_siteurl.app_error")


async def test_config_at_start() -> None:
    async with Sandbox(config={"ServiceSettings": {"PostEditTimeLimit": 5, "OutgoingIntegrationRequestsTimeout": 2},
                               "TeamSettings": {"MaxChannelsPerTeam": 7}}) as sb:
        assert sb.state.config["PostEditTimeLimit"] == 5
        assert sb.state.config["OutgoingIntegrationRequestsTimeout"] == 2
        assert sb.state.config["MaxChannelsPerTeam"] == 7
    try:
        Sandbox(config={"TeamSettings": {"MaxChanelsPerTeam": 7}})
    except ValueError as err:
        assert "MaxChanelsPerTeam" in str(err)
    else:
        raise AssertionError("an unknown setting must be refused")


async def test_edit_time_limit_refuses_message_changes_only(api, sandbox) -> None:
    world = await setup_world(api)
    bot = world["bot"]
    status, channel, _ = await bot.post("/channels", {"team_id": world["team"]["id"], "name": "ops",
                                                      "display_name": "Ops", "type": "O"})
    status, post, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "v1"})
    assert status == 201
    await api.put("/config/patch", {"ServiceSettings": {"PostEditTimeLimit": 60}})
    start = sandbox.hub.clock()
    sandbox.set_clock(lambda: start + 30)
    status, edited, _ = await bot.put(f"/posts/{post['id']}/patch", {"message": "v2"})
    assert status == 200 and edited["message"] == "v2"
    sandbox.set_clock(lambda: start + 61)
    limited = (400, "api.post.update_post.permissions_time_limit.app_error")
    status, body, _ = await bot.put(f"/posts/{post['id']}/patch", {"message": "v3"})
    assert (status, body["id"]) == limited
    # patchPost refuses any patch that carries a message, even the same one (postPatchChecks: message != nil).
    status, body, _ = await bot.put(f"/posts/{post['id']}/patch", {"message": "v2"})
    assert (status, body["id"]) == limited
    status, body, _ = await bot.put(f"/posts/{post['id']}", {"id": post["id"], "message": "v3"})
    assert (status, body["id"]) == limited
    # A system admin is no exception (no role check around the limit in api4/post.go).
    status, body, _ = await api.put(f"/posts/{post['id']}/patch", {"message": "v3"})
    assert (status, body["id"]) == limited
    # Props only: allowed, by patch (no message) and by update (the same message).
    props = {"attachments": [{"text": "status: done"}]}
    status, edited, _ = await bot.put(f"/posts/{post['id']}/patch", {"props": props})
    assert status == 200 and edited["props"]["attachments"][0]["text"] == "status: done"
    status, edited, _ = await bot.put(f"/posts/{post['id']}", {"id": post["id"], "message": "v2",
                                                                "props": {"x": "1"}})
    assert status == 200 and edited["message"] == "v2" and edited["props"]["x"] == "1"
    await api.put("/config/patch", {"ServiceSettings": {"PostEditTimeLimit": -1}})
    status, edited, _ = await bot.put(f"/posts/{post['id']}/patch", {"message": "v4"})
    assert status == 200 and edited["message"] == "v4"


async def test_channel_limit_counts_archived_channels(api, sandbox) -> None:
    world = await setup_world(api)
    bot, team = world["bot"], world["team"]
    existing = sum(1 for c in sandbox.state.channels.values() if c.team_id == team["id"])
    await api.put("/config/patch", {"TeamSettings": {"MaxChannelsPerTeam": existing + 2}})
    ids = []
    for n in range(2):
        status, channel, _ = await bot.post("/channels", {"team_id": team["id"], "name": f"c{n}",
                                                          "display_name": f"C{n}", "type": "O"})
        assert status == 201, channel
        ids.append(channel["id"])
    status, _, _ = await bot.delete(f"/channels/{ids[0]}")
    assert status == 200
    status, body, _ = await bot.post("/channels", {"team_id": team["id"], "name": "c2",
                                                   "display_name": "C2", "type": "P"})
    assert (status, body["id"]) == (400, "api.channel.create_channel.max_channel_limit.app_error")
    assert sandbox.state.channel_by_name(team["id"], "c2", include_deleted=True) is None
    await api.put("/config/patch", {"TeamSettings": {"MaxChannelsPerTeam": existing + 3}})
    status, _, _ = await bot.post("/channels", {"team_id": team["id"], "name": "c2",
                                                "display_name": "C2", "type": "P"})
    assert status == 201


def test_ops_create_channel_is_limited_too(sandbox) -> None:
    st, hub = sandbox.state, sandbox.hub
    admin = st.user_by_username("sysadmin")
    team = ops.create_team(st, hub, name="tiny", display_name="Tiny", creator=admin)
    st.config["MaxChannelsPerTeam"] = sum(1 for c in st.channels.values() if c.team_id == team.id)
    try:
        ops.create_channel(st, hub, team=team, creator=admin, name="x", display_name="X")
    except Exception as err:
        assert getattr(err, "id", "") == "api.channel.create_channel.max_channel_limit.app_error"
    else:
        raise AssertionError("over the limit")
