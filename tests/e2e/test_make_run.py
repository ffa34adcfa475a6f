"""`make run` without a Mattermost URL: sandbox and bot in two processes, one line to open, clean Ctrl-C."""
from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import sys
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]


async def test_make_run_without_url_starts_sandbox_and_bot_and_stops_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(f'[mattermost]\nurl = ""\n[server]\nlisten = "127.0.0.1:0"\n'
                      f'[playbooks]\ndir = "{ROOT / "playbooks"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / "run.py"), "--config", str(config), "--sandbox-port", "0",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line.startswith("Open http://127.0.0.1:"), line
        assert "alice (password demo)" in line and "/playbook run" in line
        url = line.split()[1]
        fire = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert fire.startswith("Fire an alert at the bot: "), fire
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/") as resp:
                assert resp.status == 200
                assert "Mattermost sandbox" in await resp.text()
            async with session.post(url + "/api/v4/users/login",
                                    json={"login_id": "alice", "password": "demo"}) as resp:
                assert resp.status == 200
                token = resp.headers["Token"]
            # The bot registered /playbook: it is connected and was made an admin that may do so.
            async with session.get(url + "/api/v4/users/me/teams",
                                   headers={"Authorization": f"Bearer {token}"}) as resp:
                team_id = (await resp.json())[0]["id"]
            async with session.get(url + f"/api/v4/teams/{team_id}/commands/autocomplete",
                                   headers={"Authorization": f"Bearer {token}"}) as resp:
                assert [c["trigger"] for c in await resp.json()] == ["playbook"]
            # The dashboard is registered as a trusted OAuth app whose homepage is the bot: the web
            # client's header links to it ("Playbooks").
            async with session.get(url + "/sandbox/webclient/apps",
                                   headers={"Authorization": f"Bearer {token}"}) as resp:
                links = await resp.json()
            assert [a["name"] for a in links] == ["Playbooks"]
            homepage = links[0]["homepage"]
            assert homepage.endswith("/runs"), homepage  # the bot's runs list
            async with session.get(homepage.removesuffix("/runs") + "/healthz") as resp:
                assert resp.status == 200  # the homepage is the bot's own address
            async with session.get(homepage, allow_redirects=False) as resp:
                assert resp.status == 302 and resp.headers["Location"] == "/login?next=%2Fruns"
            await _alert_opens_issue_and_meeting(session, url, token, fire)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to the launcher
        code = await asyncio.wait_for(proc.wait(), 30)
        rest = (await proc.stdout.read()).decode()
        err = (await proc.stderr.read()).decode()
        assert code == 0, err
        assert "Traceback" not in err + rest, err + rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _alert_opens_issue_and_meeting(session: aiohttp.ClientSession, url: str, token: str, fire: str) -> None:
    """The demo as printed: the send_alert.py line fires an Alertmanager alert, whose run (alice owns it:
    demo/actions/outage-tools.toml) gets a Jira issue and a Zoom meeting from the stand-ins, each link posted
    in its channel, and bob (on call in the PagerDuty stand-in) invited. Seen on alice's WebSocket."""
    seen: list[str] = []
    ws_url = url.replace("http", "ws", 1) + "/api/v4/websocket"
    async with session.ws_connect(ws_url, headers={"Authorization": f"Bearer {token}"}) as ws:
        hello = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
        assert hello["event"] == "hello"
        command = shlex.split(fire.removeprefix("Fire an alert at the bot: "))
        sender = await asyncio.create_subprocess_exec(*command, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                      stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(sender.communicate(), 30)
        assert sender.returncode == 0, (out + err).decode()

        async def until_links() -> None:
            while not (any("/browse/OPS-" in m for m in seen) and any("/j/" in m for m in seen)
                       and any("@bob" in m for m in seen)):
                msg = await ws.receive()
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                event = json.loads(msg.data)
                if event.get("event") == "posted":
                    seen.append(json.loads(event["data"]["post"])["message"])

        await asyncio.wait_for(until_links(), 30)
