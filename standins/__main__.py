"""`python -m standins [--host 127.0.0.1] [--port-file F]`: Jira, Zoom, PagerDuty and Opsgenie stand-ins, each
on a free port, seeded for the demo (the on-call person is a sandbox demo user, sandbox/seed.py).

It prints one line `Stand-ins listening: <json>` and (with --port-file) writes the same JSON to F:
{"urls": {service: base URL}, "env": {BOT_* variable: value}}: the variables point a bot at the stand-ins
(scripts/run.py passes them to the bot in `make run`). SIGINT/SIGTERM stop it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from standins.jira import JiraStandIn
from standins.opsgenie import OpsgenieStandIn
from standins.pagerduty import PagerDutyStandIn
from standins.zoom import ZoomStandIn

ONCALL_EMAIL = "bob@sandbox.local"  # sandbox/seed.py DEMO_USERS: bob
ZOOM_HOST = "meetings@example.com"
ROUTING_KEY = "d3m0" * 8  # 32 characters, as an Events v2 integration key
ESCALATION_POLICY = "PDEMOEP"
PD_SCHEDULE = "PDEMOSC"
OG_SCHEDULE = "ops-oncall"


def seeded() -> tuple[JiraStandIn, ZoomStandIn, PagerDutyStandIn, OpsgenieStandIn]:
    jira = JiraStandIn(email="playbooks@example.com", api_token="demo-jira-token", projects={"OPS": ["Task",
                                                                                                     "Incident"]})
    zoom = ZoomStandIn(account_id="demo-account", client_id="demo-client", client_secret="demo-secret",
                       users=[ZOOM_HOST])
    pagerduty = PagerDutyStandIn(api_tokens={"demo-pd-token": "PUSER01"}, routing_keys=[ROUTING_KEY])
    pagerduty.put_on_call(ONCALL_EMAIL, escalation_policy=ESCALATION_POLICY, schedule=PD_SCHEDULE)
    opsgenie = OpsgenieStandIn(api_keys={"demo-og-key": True}, teams=["ops"])
    opsgenie.add_schedule(OG_SCHEDULE, [ONCALL_EMAIL])
    return jira, zoom, pagerduty, opsgenie


def bot_env(urls: dict[str, str]) -> dict[str, str]:
    return {
        "BOT_JIRA_URL": urls["jira"], "BOT_JIRA_EMAIL": "playbooks@example.com",
        "BOT_JIRA_API_TOKEN": "demo-jira-token",
        "BOT_ZOOM_ACCOUNT_ID": "demo-account", "BOT_ZOOM_CLIENT_ID": "demo-client",
        "BOT_ZOOM_CLIENT_SECRET": "demo-secret", "BOT_ZOOM_HOST": ZOOM_HOST,
        "BOT_ZOOM_API_URL": urls["zoom"] + "/v2", "BOT_ZOOM_OAUTH_URL": urls["zoom"] + "/oauth/token",
        "BOT_PAGERDUTY_API_TOKEN": "demo-pd-token", "BOT_PAGERDUTY_API_URL": urls["pagerduty"],
        "BOT_PAGERDUTY_EVENTS_URL": urls["pagerduty"] + "/v2/enqueue",
        "BOT_PAGERDUTY_ROUTING_KEYS": f"default={ROUTING_KEY}",
        "BOT_OPSGENIE_API_KEY": "demo-og-key", "BOT_OPSGENIE_API_URL": urls["opsgenie"],
    }


async def serve(host: str, port_file: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    names = ("jira", "zoom", "pagerduty", "opsgenie")
    async with AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(standin.serve(host))
                for name, standin in zip(names, seeded(), strict=True)}
        info: dict[str, Any] = {"urls": urls, "env": bot_env(urls)}
        if port_file is not None:
            await asyncio.to_thread(port_file.write_text, json.dumps(info))
        print(f"Stand-ins listening: {json.dumps(info)}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m standins", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port-file", type=Path, default=None, help="write the URLs and BOT_* variables here")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
