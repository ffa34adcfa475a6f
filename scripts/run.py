"""`make run`: the bot against the configured Mattermost, or, with no url, against the local sandbox.

    python scripts/run.py [--config bot.toml] [--sandbox-port 8065]

With `[mattermost] url` (or BOT_MATTERMOST_URL) set, this is exactly `python -m bot run`. Without one it
starts two processes and stops both on Ctrl-C:
1. `python -m sandbox --demo` on 127.0.0.1:8065 (or a free port), with an admin token made up here;
2. `python -m bot run`, pointed at it with BOT_* variables: a fresh token of the demo bot, which is made
   a system admin first (it registers /playbook and files run channels into members' sidebar categories),
   the example playbooks of bot.toml, a throwaway SQLite database (the sandbox forgets everything on exit,
   so stored runs would point at channels that no longer exist), and its own free port if 8081 is taken.
Then it waits for the bot's /healthz and prints the one line a newcomer needs.
It also starts the vendor stand-ins (`python -m standins`: Jira, Zoom, PagerDuty, Opsgenie on free ports)
and points the bot at each one whose section ([jira], [zoom], [pagerduty], [opsgenie]) bot.toml leaves
empty, with BOT_* variables. When Jira, Zoom and PagerDuty are all the stand-ins, it adds the playbook of
demo/actions/ (a run that opens a Jira issue and a Zoom meeting and invites the person on call; an
Alertmanager alert starts one too) to the bot's playbooks (`--no-demo-actions`: not), and, unless bot.toml
sets [alerts], gives Alertmanager deliveries a made-up bearer token and prints the scripts/send_alert.py
line that fires one.
Before the bot starts, it registers the bot's web view with the sandbox as a trusted OAuth 2.0 app named
"Playbooks" (homepage: the bot's dashboard, callback: DASHBOARD_CALLBACK_PATH on the bot), as a system
admin would in System Console > Integrations > OAuth 2.0 Applications; the sandbox's web client shows
every trusted app as a link in its header, so the dashboard is one click away (docs/sandbox.md).

This launcher only talks to both over HTTP; the bot never imports the sandbox.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.config import ConfigError, load_settings  # noqa: E402 (needs the project root on sys.path)

SANDBOX_PORT = 8065
# The bot's web view as an OAuth app of the sandbox (register_dashboard_app); the bot must serve both paths.
DASHBOARD_APP_NAME = "Playbooks"
DASHBOARD_PATH = "/runs"
DASHBOARD_CALLBACK_PATH = "/oauth/callback"
STARTUP_TIMEOUT_S = 60.0
DEMO_ACTIONS = ROOT / "demo" / "actions"


class LaunchError(Exception):
    """One line for the person at the terminal."""


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


async def http(method: str, url: str, token: str = "", body: Any = None) -> tuple[int, Any]:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.request(method, url, json=body, headers=headers) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text) if text else None
            except ValueError:
                return resp.status, text


class Demo:
    """The two child processes. Each runs in its own session, so the terminal's Ctrl-C reaches only
    this launcher, which then stops the bot first (it may still be talking to the sandbox) and then
    the sandbox, each with SIGTERM, which both handle as a clean shutdown."""

    def __init__(self, config: str, settings: Any, sandbox_port: int = SANDBOX_PORT,
                 demo_actions: bool = True) -> None:
        self.config = config
        self.demo_actions = demo_actions
        self.alert_token = ""  # the bearer token Alertmanager deliveries need, when made up here
        self.standins: asyncio.subprocess.Process | None = None
        self.vendor_env: dict[str, str] = {}
        self.settings = settings
        self.sandbox_port = sandbox_port
        self.sandbox: asyncio.subprocess.Process | None = None
        self.bot: asyncio.subprocess.Process | None = None
        self.workdir = tempfile.TemporaryDirectory(prefix="playbooks-demo-")

    async def start_sandbox(self) -> tuple[str, str]:
        host = "127.0.0.1"
        port = self.sandbox_port if self.sandbox_port and port_free(host, self.sandbox_port) else 0
        admin_token = secrets.token_hex(13)
        self.sandbox = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sandbox", "--demo", "--host", host, "--port", str(port),
            "--admin-token", admin_token,
            # The bot listens on loopback: list it, as an operator would in AllowedUntrustedInternalConnections.
            "--allow-internal", "127.0.0.1 localhost", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            start_new_session=True)
        assert self.sandbox.stdout is not None
        prefix = "Mattermost sandbox listening on "
        while True:
            line = (await self.sandbox.stdout.readline()).decode()
            if not line:
                raise LaunchError("the sandbox stopped while starting; see its message above")
            if line.startswith(prefix):
                url = line[len(prefix):].strip()
                break
        # The rest of its output is not needed; keep draining it so the pipe never fills up.
        asyncio.get_running_loop().create_task(self._drain(self.sandbox.stdout))
        return url, admin_token

    async def start_standins(self) -> dict[str, str]:
        """The vendor stand-ins; returns the BOT_* variables for the services bot.toml does not configure
        (a configured one keeps its real service: BOT_* would override the file)."""
        self.standins = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "standins", "--host", "127.0.0.1", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            start_new_session=True)
        assert self.standins.stdout is not None
        prefix = "Stand-ins listening: "
        while True:
            line = (await self.standins.stdout.readline()).decode()
            if not line:
                raise LaunchError("the vendor stand-ins stopped while starting; see their message above")
            if line.startswith(prefix):
                info = json.loads(line[len(prefix):])
                break
        asyncio.get_running_loop().create_task(self._drain(self.standins.stdout))
        configured = {name for name in ("jira", "zoom", "pagerduty", "opsgenie")
                      if getattr(self.settings, name).configured}
        self.vendor_env = {k: v for k, v in info["env"].items() if k.split("_")[1].lower() not in configured}
        return self.vendor_env

    def playbooks_dir(self) -> str:
        """The configured playbooks folder, or a copy of it with demo/actions/ added (when the tools it
        reaches are all the stand-ins: the demo must never open issues in a real Jira)."""
        source = Path(self.settings.playbooks.dir)
        standins = {k.split("_")[1].lower() for k in self.vendor_env}
        if not self.demo_actions or not {"jira", "zoom", "pagerduty"} <= standins:
            return str(source)
        target = Path(self.workdir.name) / "playbooks"
        target.mkdir(exist_ok=True)
        for folder in (source, DEMO_ACTIONS):
            for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
                (target / path.name).write_bytes(path.read_bytes())
        return str(target)

    @staticmethod
    async def _drain(stream: asyncio.StreamReader) -> None:
        while await stream.readline():
            pass

    async def prepare_bot_account(self, url: str, admin_token: str) -> str:
        """Make the demo bot a system admin and give it a fresh token; returns the token."""
        api = f"{url}/api/v4"
        status, bot = await http("GET", f"{api}/users/username/playbooks", admin_token)
        if status != 200:
            raise LaunchError(f"the sandbox has no demo bot account ({status})")
        status, body = await http("PUT", f"{api}/users/{bot['id']}/roles", admin_token,
                                  {"roles": "system_user system_admin"})
        if status != 200:
            raise LaunchError(f"could not make the demo bot a system admin ({status}: {body})")
        status, token = await http("POST", f"{api}/users/{bot['id']}/tokens", admin_token,
                                   {"description": "make run"})
        if status != 200:
            raise LaunchError(f"could not create a token for the demo bot ({status}: {body})")
        return token["token"]

    def bot_address(self) -> tuple[str, int, str]:
        """Where the bot will listen: (host, port, public url); its own port if free, else any."""
        server = self.settings.server
        host = server.host if server.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        port = server.port if server.port and port_free(server.host, server.port) else free_port(host)
        return host, port, f"http://{host}:{port}"

    async def register_dashboard_app(self, url: str, admin_token: str, public_url: str) -> dict[str, Any]:
        """The bot's web view as a trusted OAuth 2.0 app (POST /api/v4/oauth/apps as the system admin):
        people sign in to it with their Mattermost account without a consent page, and the sandbox's web
        client links to its homepage by name. Returns the app, with its client id (`id`) and secret."""
        status, app = await http("POST", f"{url}/api/v4/oauth/apps", admin_token, {
            "name": DASHBOARD_APP_NAME, "description": "Playbook runs, checklists and timelines",
            "homepage": public_url + DASHBOARD_PATH, "callback_urls": [public_url + DASHBOARD_CALLBACK_PATH],
            "is_trusted": True})
        if status != 201:
            raise LaunchError(f"could not register the dashboard as an OAuth app ({status}: {app})")
        return app

    async def start_bot(self, url: str, token: str, address: tuple[str, int, str] | None = None,
                        app: dict[str, Any] | None = None) -> str:
        host, port, public_url = address or self.bot_address()
        # The app an admin registered for the web view: the bot signs people in with it ([web] client_id).
        web = {"BOT_WEB_CLIENT_ID": app["id"], "BOT_WEB_CLIENT_SECRET": app["client_secret"]} if app else {}
        alerts = {}
        if not any(getattr(self.settings.alerts, f) for f in ("alertmanager_token", "alertmanager_username")):
            self.alert_token = secrets.token_hex(16)
            alerts = {"BOT_ALERTS_ALERTMANAGER_TOKEN": self.alert_token}
        env = {**os.environ, **web, **self.vendor_env, **alerts,
               "BOT_MATTERMOST_URL": url, "BOT_MATTERMOST_TOKEN": token,
               "BOT_SERVER_LISTEN": f"{host}:{port}", "BOT_SERVER_PUBLIC_URL": public_url,
               "BOT_STORAGE_URL": f"sqlite:///{self.workdir.name}/demo.db",
               "BOT_PLAYBOOKS_DIR": self.playbooks_dir()}
        # The bot logs warnings and errors; the chatter of a normal start would bury the one line.
        env.setdefault("BOT_LOGGING_LEVEL", "WARNING")
        self.bot = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", self.config, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.DEVNULL, start_new_session=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT_S
        while loop.time() < deadline:
            if self.bot.returncode is not None:
                raise LaunchError("the bot stopped while starting; see its message above")
            try:
                status, _ = await http("GET", f"{public_url}/healthz")
            except OSError:
                status = 0
            except Exception:  # noqa: BLE001 - aiohttp's connection errors while it binds
                status = 0
            if status == 200:
                return public_url
            await asyncio.sleep(0.2)
        raise LaunchError(f"the bot did not become healthy within {STARTUP_TIMEOUT_S:.0f}s ({public_url}/healthz)")

    async def wait(self) -> str:
        """Until one child exits; returns which."""
        assert self.sandbox is not None and self.bot is not None
        done, _ = await asyncio.wait([asyncio.ensure_future(self.sandbox.wait()),
                                      asyncio.ensure_future(self.bot.wait())],
                                     return_when=asyncio.FIRST_COMPLETED)
        return "the sandbox" if self.sandbox.returncode is not None else "the bot"

    async def stop(self) -> None:
        for proc in (self.bot, self.sandbox, self.standins):
            if proc is None or proc.returncode is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        self.workdir.cleanup()


async def demo(config: str, settings: Any, sandbox_port: int = SANDBOX_PORT, demo_actions: bool = True) -> int:
    launcher = Demo(config, settings, sandbox_port, demo_actions)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopper = asyncio.ensure_future(stop.wait())

    async def until_stopped(coro: Any) -> Any:
        task = asyncio.ensure_future(coro)
        done, _ = await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
        if task not in done:
            task.cancel()
            raise KeyboardInterrupt
        return task.result()

    code = 0
    try:
        url, admin_token = await until_stopped(launcher.start_sandbox())
        token = await until_stopped(launcher.prepare_bot_account(url, admin_token))
        await until_stopped(launcher.start_standins())
        address = launcher.bot_address()
        app = await until_stopped(launcher.register_dashboard_app(url, admin_token, address[2]))
        bot_url = await until_stopped(launcher.start_bot(url, token, address, app))
        print(f"Open {url} and sign in as alice (password demo), then type /playbook run "
              f"in a channel. Ctrl-C stops.", flush=True)
        if launcher.alert_token:
            print(f"Fire an alert at the bot: {sys.executable} scripts/send_alert.py {bot_url} alertmanager "
                  f"--name HighLatency --token {launcher.alert_token}", flush=True)
        which = await until_stopped(launcher.wait())
        print(f"make run: {which} stopped unexpectedly; stopping the rest.", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
    except LaunchError as err:
        print(f"make run: {err}", file=sys.stderr)
        code = 1
    finally:
        stopper.cancel()
        await launcher.stop()
    return code


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="make run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="bot.toml")
    parser.add_argument("--sandbox-port", type=int, default=SANDBOX_PORT,
                        help="where the sandbox listens when it is used (0: any free port; taken: any free port)")
    parser.add_argument("--no-demo-actions", dest="demo_actions", action="store_false",
                        help="leave out the playbook of demo/actions/ (Jira, Zoom, on-call actions and an alert "
                             "route, against the stand-ins)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    if settings.mattermost.url:
        # A real server: the bot alone, as `python -m bot run` (same process, same signals).
        os.execv(sys.executable, [sys.executable, "-m", "bot", "run", "--config", args.config])
    return asyncio.run(demo(args.config, settings, args.sandbox_port, args.demo_actions))


if __name__ == "__main__":
    sys.exit(main())
