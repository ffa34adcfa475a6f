"""A client nobody here wrote, mattermostdriver 7.3.2, works against the sandbox.

The driver is synchronous (requests), so each call runs in a worker thread while the sandbox serves on
this test's event loop. It builds its URLs from scheme/url/port/basepath.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest
from mattermostdriver import Driver
from mattermostdriver.exceptions import NoAccessTokenProvided

from sandbox import Sandbox
from tests.conftest import Api

PASSWORD = "Sandbox-Passw0rd!"


def driver_for(sandbox: Sandbox, **options: Any) -> Driver:
    return Driver({
        "scheme": "http", "url": sandbox.host, "port": sandbox.port, "basepath": "/api/v4",
        "verify": False, "request_timeout": 10, **options,
    })


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def make_member(api: Api, username: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The admin creates a user with a password and a team, and puts the user in the team."""
    status, user, _ = await api.post("/users", {"email": f"{username}@example.com", "username": username,
                                                "password": PASSWORD})
    assert status == 201, user
    status, team, _ = await api.post("/teams", {"name": f"{username}-team", "display_name": "Driver team",
                                                "type": "O"})
    assert status == 201, team
    status, member, _ = await api.post(f"/teams/{team['id']}/members",
                                       {"team_id": team["id"], "user_id": user["id"]})
    assert status == 201, member
    return user, team


async def post_and_read_back(driver: Driver, team: dict[str, Any], name: str) -> None:
    channel = await call(driver.channels.create_channel, {
        "team_id": team["id"], "name": name, "display_name": name.title(), "type": "O"})
    assert channel["name"] == name and channel["team_id"] == team["id"]
    post = await call(driver.posts.create_post, {"channel_id": channel["id"], "message": f"hello from {name}"})
    assert post["channel_id"] == channel["id"] and post["user_id"] == driver.client.userid

    # Client.get only decodes a body whose Content-Type is exactly "application/json", as the real
    # server sends it (server/channels/web/handlers.go); anything else comes back as a raw Response.
    again = await call(driver.posts.get_post, post["id"])
    assert isinstance(again, dict), f"GET /posts/{{id}} Content-Type: {again.headers.get('Content-Type')!r}"
    assert again["id"] == post["id"] and again["message"] == f"hello from {name}"

    listing = await call(driver.posts.get_posts_for_channel, channel["id"])
    assert isinstance(listing, dict)
    assert post["id"] in listing["order"] and listing["posts"][post["id"]]["message"] == f"hello from {name}"


async def test_password_login_channel_post_and_read_back(sandbox: Sandbox, api: Api) -> None:
    user, team = await make_member(api, "dora")
    driver = driver_for(sandbox, login_id="dora", password=PASSWORD)
    me = await call(driver.login)
    assert me["id"] == user["id"] and me["username"] == "dora"
    assert driver.client.userid == user["id"] and driver.client.token  # the session token from the Token header
    await post_and_read_back(driver, team, "driver-password")
    await call(driver.logout)


async def test_personal_access_token_login(sandbox: Sandbox, api: Api) -> None:
    user, team = await make_member(api, "tokenuser")
    status, token, _ = await api.post(f"/users/{user['id']}/tokens", {"description": "mattermostdriver"})
    assert status == 200, token
    driver = driver_for(sandbox, token=token["token"])
    me = await call(driver.login)
    assert me["id"] == user["id"]
    await post_and_read_back(driver, team, "driver-token")


async def test_wrong_password_is_refused(sandbox: Sandbox, api: Api) -> None:
    await make_member(api, "eve")
    driver = driver_for(sandbox, login_id="eve", password="not-it")
    with pytest.raises(NoAccessTokenProvided):  # the driver's name for any 401
        await call(driver.login)
    assert driver.client.token == ""
    status, body, _ = await api.as_(None).post("/users/login", {"login_id": "eve", "password": "not-it"})
    assert status == 401 and body["id"] == "api.user.login.invalid_credentials_email_username"
