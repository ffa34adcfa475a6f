"""`python -m bot run|check [--config bot.toml]`, `import-playbook FILE`, `export-playbook ID`."""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlparse

from bot.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from bot.app import BotApp
    from bot.models import Gateway, MMTeam
    from bot.playbooks import Playbook


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one clear line, exit status 2 (contracts.md)
        print(f"python -m bot: {message} (try: python -m bot run|check [--config bot.toml], import-playbook FILE "
              "[--id ID], export-playbook ID [--format toml|plugin-json] [--version N])", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m bot")
    parser.add_argument("command", choices=["run", "check", "import-playbook", "export-playbook"])
    parser.add_argument("target", nargs="?", default=None,
                        help="import-playbook: the plugin's JSON file; export-playbook: the playbook id")
    parser.add_argument("--config", default=None, help="the config file (default: bot.toml, when it exists)")
    parser.add_argument("--id", default="", help="import-playbook: the new playbook's id (default: from its title)")
    parser.add_argument("--format", default="toml", choices=["toml", "plugin-json"], help="export-playbook")
    parser.add_argument("--version", default=None, type=int, help="export-playbook: a version number")
    args = parser.parse_args(argv)
    if args.command in ("import-playbook", "export-playbook") and not args.target:
        what = "FILE" if args.command == "import-playbook" else "ID"
        parser.error(f"{args.command} needs {what}")
    if args.command not in ("import-playbook", "export-playbook") and args.target is not None:
        parser.error(f"unexpected argument {args.target!r}")
    # A file named on the command line must exist: with BOT_* variables set, a mistyped name would
    # otherwise quietly run on the environment alone. Unnamed, ./bot.toml is optional (containers
    # configure the bot through the environment).
    if args.config is not None and not Path(args.config).is_file():
        print(f"config error: {args.config}: file not found (--config names a file that is not there)",
              file=sys.stderr)
        return 2
    args.config = args.config or "bot.toml"
    try:
        settings = load_settings(args.config)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    # `check` prints a report on stdout; only warnings and errors are logged (to stderr) beside it.
    level = settings.logging.level if args.command == "run" else max(logging.WARNING,
                                                                     logging.getLevelName(settings.logging.level))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "export-playbook":  # reads the database only
        return asyncio.run(_export_playbook(settings, args.target, args.format, args.version))
    if not settings.mattermost.url:
        print(f"config error: {args.config}: [mattermost] url is empty; set it (or BOT_MATTERMOST_URL), "
              "or use `make run` to try the bot against the local sandbox", file=sys.stderr)
        return 2
    if not settings.mattermost.token:
        print(f"config error: {args.config}: [mattermost] token is empty; set BOT_MATTERMOST_TOKEN to the "
              "bot account's access token", file=sys.stderr)
        return 2
    if args.command == "run":
        return asyncio.run(_run(settings))
    if args.command == "import-playbook":
        return asyncio.run(_import_playbook(settings, Path(args.target), args.id))
    return asyncio.run(_check(settings))


async def _import_playbook(settings: Settings, path: Path, wanted_id: str) -> int:
    """Import a plugin JSON export: names looked up in Mattermost, validated, saved as a new playbook."""
    from bot.clock import Clock
    from bot.mattermost import MattermostGateway
    from bot.models import MattermostError
    from bot.playbooks import PlaybookInvalid
    from bot.playbooks.importer import check_file_name_ok, prepare_import, save_import
    from storage import playbooks as store
    from storage.db import open_database

    try:
        raw = await asyncio.to_thread(path.read_bytes)
    except OSError as err:
        print(f"{path}: cannot read the file ({err.strerror or err})", file=sys.stderr)
        return 2
    if wanted_id:
        try:
            check_file_name_ok(wanted_id)
        except PlaybookInvalid as exc:
            print(f"--id {wanted_id}: {exc.errors[0].problem}", file=sys.stderr)
            return 2
    gateway = MattermostGateway(settings.mattermost.url, settings.mattermost.token, timeout=10.0)
    try:
        try:
            await gateway.me()
        except MattermostError as err:
            print(f"Mattermost {settings.mattermost.url}: {err.status or 'unreachable'} {err.error_id}: cannot "
                  "look up the export's users and channels", file=sys.stderr)
            return 1
        prepared = await prepare_import(raw, gateway)
    finally:
        await gateway.close()
    if prepared.problems:
        for problem in prepared.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return 2
    try:
        db = await asyncio.to_thread(open_database, settings.storage.url)
    except Exception as err:  # noqa: BLE001 - any failure to open the database is one line
        print(f"storage {settings.storage.url}: cannot open the database ({err})", file=sys.stderr)
        return 1
    try:
        version = await save_import(db, prepared, Clock().now_ms(), playbook_id=wanted_id,
                                    note=f"imported from {path.name}")
    except store.PlaybookExists:
        print(f"--id {wanted_id}: a playbook with this id exists; choose another", file=sys.stderr)
        return 2
    finally:
        await db.close()
    print(f"imported {path} as playbook {version.playbook_id} (version {version.number})")
    for source, target in prepared.report.mapped:
        print(f"  mapped    {source} -> {target}")
    for source, why in prepared.report.unmapped:
        print(f"  not used  {source}: {why}")
    return 0


async def _export_playbook(settings: Settings, playbook_id: str, fmt: str, number: int | None) -> int:
    """Print a playbook's current (or a given) version as TOML or as the plugin's JSON."""
    import json

    from bot.playbooks.export import NotTomlable, to_plugin_json, to_toml
    from storage.db import StorageUnavailable
    from storage.playbooks import read_version

    try:
        version = read_version(settings.storage.url, playbook_id, number)
    except StorageUnavailable as err:
        print(f"storage {settings.storage.url}: cannot open the database ({err})", file=sys.stderr)
        return 1
    if version is None:
        what = f"version {number} of playbook {playbook_id}" if number is not None else f"playbook {playbook_id}"
        print(f"{what}: not found in {settings.storage.url}", file=sys.stderr)
        return 2
    if fmt == "toml":
        try:
            sys.stdout.write(to_toml(version.data))
        except NotTomlable as err:
            print(f"playbook {playbook_id}: {err}", file=sys.stderr)
            return 1
    else:
        print(json.dumps(to_plugin_json(version.data), indent=2, ensure_ascii=False))
    return 0


async def _run(settings: Settings) -> int:
    from bot.app import BotApp, StartupError
    from bot.models import MattermostError

    app = BotApp(settings)
    try:
        await app.start()
    except MattermostError as err:
        print(f"cannot start: Mattermost at {settings.mattermost.url} answered {err.status} {err.error_id}: "
              f"{err.message}", file=sys.stderr)
        await _close_quietly(app)
        return 1
    except StartupError as err:
        print(f"cannot start: {err}", file=sys.stderr)
        await _close_quietly(app)
        return 2
    ctx = app.ctx
    assert ctx is not None  # start() returned, so the context exists (and is never replaced)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # SIGUSR1: post the reminders due now and print how many. The wake-up is set on the wall clock, so a
    # test that moved a `[testing] clock_file` nudges the bot with this; the printed line tells it the
    # round (and every round before it) is done. Harmless in production: a round finds nothing new.
    loop.add_signal_handler(signal.SIGUSR1, lambda: ctx.tasks.spawn(_due_now(app), name="sigusr1"))
    print(f"bot listening on {app.url}; Mattermost reaches it at {ctx.public_url}", flush=True)
    await stop.wait()
    await app.stop()
    return 0


async def _due_now(app: BotApp) -> None:
    posted = await app.scheduler.run_due() if app.scheduler is not None else 0
    print(f"reminders due now: {posted} posted", flush=True)


async def _close_quietly(app: BotApp) -> None:
    try:
        await app.stop()
    except Exception:  # noqa: BLE001 - best effort on a failed start
        logging.getLogger(__name__).debug("stop after failed start", exc_info=True)


def _is_private(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host in ("localhost",):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback


async def _check(settings: Settings) -> int:
    """Config, playbooks, Mattermost reachability and the bot's permissions; 0 only when all is well."""
    from bot.mattermost import MattermostGateway
    from bot.models import MattermostError
    from bot.playbooks import load_playbooks

    ok = True

    def line(good: bool, text: str) -> None:
        nonlocal ok
        ok = ok and good
        print(f"[{'ok' if good else 'FAIL'}] {text}")

    line(True, f"config {settings.source or '(environment only: no bot.toml)'}")
    playbooks, errors = load_playbooks(settings.playbooks.dir)
    broken = len({err.path for err in errors if err.path.suffix == ".toml"})
    line(not errors, f"playbooks: {len(playbooks)} loaded from {settings.playbooks.dir}"
         + (f", {broken} broken ({len(errors)} problem{'s' if len(errors) != 1 else ''})" if broken else "")
         + ("" if broken or not errors else f": {errors[0].problem}"))
    for err in errors:
        print(f"       {err}")
    for good, text in _playbook_versions(settings):
        line(good, text)
    for text in _failing_webhooks(settings):
        line(False, text)
    for good, text in await _integration_lines(settings):
        line(good, text)
    for text in _skipped_schedules(settings):
        print(f"[note] {text}")
    for text in _alerts_report(settings, list(playbooks.values())):
        print(text)
    for text in await _unreachable_http_actions(settings, list(playbooks.values())):
        line(False, text)
    gateway = MattermostGateway(settings.mattermost.url, settings.mattermost.token, timeout=10.0)
    try:
        me = await gateway.me()
    except MattermostError as err:
        line(False, f"Mattermost {settings.mattermost.url}: {err.status or 'unreachable'} {err.error_id}")
        await gateway.close()
        return 1
    line(True, f"Mattermost {settings.mattermost.url}: signed in as @{me.username}"
         + (" (bot account)" if me.is_bot else " (not a bot account: a bot account is recommended)"))
    try:
        from bot.proof import KEY_FIELD, load_key

        load_key((await gateway.client_config()).get(KEY_FIELD, ""))
        line(True, "request proof: Mattermost publishes its signing key; every command and click is verified")
    except (MattermostError, ValueError) as err:
        line(False, f"request proof: cannot read Mattermost's signing key ({err}); the bot will not start")
    unbound = [t for t in settings.mattermost.command_tokens if ":" not in t]
    if unbound:
        print(f"[note] {len(unbound)} command token(s) without a team: write each as \"team-name:token\" so it "
              "counts only in its team")
    roles = set(me.roles.split())
    admin = "system_admin" in roles
    teams = await gateway.my_teams()
    line(bool(teams), f"teams: {', '.join(t.name for t in teams) or 'none: add the bot to a team'}")
    for good, text in await _playbook_references(gateway, list(playbooks.values()), teams):
        line(good, text)
    for team in teams:
        try:
            await gateway.list_commands(team.id)
            line(True, f"team {team.name}: may register /playbook")
        except MattermostError as err:
            line(False, f"team {team.name}: may not manage slash commands ({err.error_id}); make the bot a "
                        "team admin or system admin")
    line(admin, "edit_other_users (files run channels in members' sidebar categories): "
         + ("granted" if admin else "missing; runs still start, without sidebar categories"))
    line(admin, "create_post_ephemeral (private replies without a slash command): "
         + ("granted" if admin else "missing; the bot falls back to direct messages"))
    print(f"[note] web view sign-in: {await _sign_in_report(gateway, settings)}")
    if _is_private(settings.server.public_url) and not _is_private(settings.mattermost.url):
        print(f"[note] public_url {settings.server.public_url} is a private address: Mattermost must list its "
              "host in ServiceSettings.AllowedUntrustedInternalConnections to call it")
    await gateway.close()
    return 0 if ok else 1


async def _groups_named(gateway: Gateway, playbooks: list[Playbook]) -> tuple[set[str] | None, str]:
    """(the groups named in `[access] groups` that exist, or None when they could not be looked up; a
    line to show when Mattermost has no groups for the bot: then they grant nothing)."""
    from bot.context import groups_unavailable
    from bot.models import MattermostError

    wanted = sorted({g for pb in playbooks for g in pb.access.groups})
    found: set[str] = set()
    for name in wanted:
        try:
            names = await gateway.group_names(name)
        except MattermostError as err:
            if groups_unavailable(err):
                return None, (f"playbook groups ({', '.join(wanted)}): Mattermost has no groups for the bot "
                              f"({err.status} {err.error_id}: custom groups need a Professional or Enterprise "
                              "licence and ServiceSettings.EnableCustomGroups); until then they grant nothing")
            return None, f"playbook groups: cannot look them up ({err.status} {err.error_id})"
        if name in {n.lower() for n in names}:
            found.add(name)
    return found, ""


async def _playbook_references(gateway: Gateway, playbooks: list[Playbook], teams: list[MMTeam]
                               ) -> list[tuple[bool, str]]:
    """Whether everyone and everything each playbook names is there for the bot: owner, members and
    assignees as active users; the team; each broadcast channel in every team the playbook runs in
    (a private channel the bot is not in is not found, as it would not be at run start)."""
    from bot.models import MattermostError

    out: list[tuple[bool, str]] = []
    wanted = sorted({name.lower() for pb in playbooks for name in pb.usernames()})
    try:
        found = {u.username.lower(): u for u in await gateway.get_users_by_usernames(wanted)}
    except MattermostError as err:
        return [(False, f"playbook users: cannot look them up ({err.status} {err.error_id})")]
    groups_found, groups_note = await _groups_named(gateway, playbooks)
    if groups_note:
        out.append((False, groups_note))
    by_name = {t.name: t for t in teams}
    for pb in playbooks:
        where = f"playbook {pb.id} ({pb.path.name if pb.path else pb.id})"
        problems: list[str] = []
        if groups_found is not None:
            problems += [f"access group {g}: no such Mattermost group" for g in pb.access.groups
                         if g not in groups_found]
        roles = [("owner", pb.owner)] if pb.owner else []
        roles += [("member", m) for m in pb.members]
        roles += [(f"assignee of \"{item.title}\"", item.assignee.username) for c in pb.checklists
                  for item in c.items if item.assignee is not None and item.assignee.kind == "user"]
        for role, name in roles:
            user = found.get(name.lower())
            if user is None or user.delete_at:
                problems.append(f"{role} @{name}: {'deactivated' if user else 'no such user'}")
        if pb.team and pb.team not in by_name:
            problems.append(f"team {pb.team}: the bot is not a member, so the playbook cannot run anywhere")
        run_teams = [by_name[pb.team]] if pb.team in by_name else ([] if pb.team else teams)
        named = [("run channel", pb.channel)] if pb.existing_channel and pb.channel else []
        for kind, channel in named + [("broadcast channel", c) for c in pb.broadcast_channels]:
            for team in run_teams:
                try:
                    await gateway.get_channel_by_name(team.id, channel)
                except MattermostError as err:
                    problems.append(f"{kind} {channel} in team {team.name}: "
                                    + ("not found, or private without the bot in it" if err.status in (403, 404)
                                       else f"{err.status} {err.error_id}"))
        if problems:
            out += [(False, f"{where}: {p}") for p in problems]
        else:
            out.append((True, f"{where}: every user and channel it names is there"))
    return out


async def _sign_in_report(gateway: Gateway, settings: Settings) -> str:
    """How people will sign in to the web view (bot/signin.py prepare), found without writing anything."""
    from bot.models import MattermostError

    callback = f"{settings.server.public_url.rstrip('/')}/oauth/callback"
    if settings.web.client_id:
        try:
            known = await gateway.oauth_app_exists(settings.web.client_id)
        except MattermostError as err:
            return f"configured OAuth app {settings.web.client_id}; Mattermost answered {err.status} {err.error_id}"
        return (f"with Mattermost, the configured OAuth app {settings.web.client_id}" if known else
                f"the configured OAuth app {settings.web.client_id} is unknown to Mattermost: fix [web] client_id")
    try:
        apps = await gateway.oauth_apps()
    except MattermostError as err:
        if err.status == 501:
            return ("one-time links from /playbook dashboard: Mattermost's OAuth 2.0 service provider is off "
                    "(System Console > Integrations > Integration Management)")
        return (f"one-time links from /playbook dashboard: the bot may not register an OAuth app ({err.error_id}); "
                "make it a system admin or set [web] client_id and client_secret")
    mine = [a for a in apps if callback in (a.get("callback_urls") or [])]
    if mine:
        return f"with Mattermost, the OAuth app {mine[0].get('id')} the bot registered (callback {callback})"
    if not settings.web.register:
        return "one-time links from /playbook dashboard ([web] register = false and no client_id)"
    return f"with Mattermost: the bot registers its OAuth app at start-up (callback {callback})"


def _playbook_versions(settings: Settings) -> list[tuple[bool, str]]:
    """Each stored playbook's current version, and what the bot will do with the folder's files (it reads
    the database and the files; it writes neither)."""
    from bot.playbooks import PlaybookInvalid
    from bot.playbooks.loader import parse_playbook_file
    from storage.db import StorageUnavailable
    from storage.playbooks import content_hash, read_playbooks

    try:
        entries = read_playbooks(settings.storage.url)
    except StorageUnavailable as err:
        return [(False, f"playbook versions: cannot open the database ({err})")]
    if entries is None:
        return [(True, "playbook versions: none stored yet; each valid file becomes version 1 at start-up")]
    on_disk: dict[str, str] = {}
    directory = settings.playbooks.dir
    for path in sorted(directory.glob("*.toml")) if directory.is_dir() else []:
        try:
            data, playbook = parse_playbook_file(path, path.read_bytes())
        except (OSError, PlaybookInvalid):
            continue
        on_disk[playbook.id] = content_hash(data)
    out: list[tuple[bool, str]] = []
    for entry in entries:
        record, version = entry.record, entry.version
        where = f"playbook {record.id}"
        if version is None:
            out.append((False, f"{where}: no valid version yet" + (f": {record.error.splitlines()[0]}"
                                                                    if record.error else "")))
            continue
        origin = (f"from {version.source_path}" + (f" (commit {version.source_commit[:12]})"
                                                   if version.source_commit else "")
                  if version.source == "file" else f"{version.source}")
        state = " (archived)" if record.archived else " (its file was removed: no new runs)" if record.missing \
            else ""
        out.append((True, f"{where}: version {version.number}, {origin}{state}"))
        if record.error:
            out.append((False, f"{where}: its file is broken; version {version.number} stays current until it is "
                               f"fixed: {record.error.splitlines()[0]}"))
        elif record.file_managed and record.id in on_disk and on_disk[record.id] != version.content_hash:
            out.append((True, f"{where}: the file changed; it becomes version {version.number + 1} when the bot "
                              "next looks"))
    return out


async def _integration_lines(settings: Settings) -> list[tuple[bool, str]]:
    """One line per configured vendor ([jira], [zoom], [pagerduty], [opsgenie]): who the bot signs in as, or
    what failed and how to fix it."""
    from bot.integrations.build import build_integrations, check_integrations, close_integrations

    integrations = build_integrations(settings)
    try:
        return [(r.ok, f"{r.service}: {r.detail}") for r in await check_integrations(integrations)]
    finally:
        await close_integrations(integrations)


def _failing_webhooks(settings: Settings) -> list[str]:
    """Outgoing webhook URLs whose last delivery failed (recorded by handlers.webhooks)."""
    from bot.clock import iso
    from storage.db import StorageUnavailable
    from storage.webhooks import read_failing_webhooks

    try:
        rows = read_failing_webhooks(settings.storage.url)
    except StorageUnavailable as err:
        return [f"storage {settings.storage.url}: {err}"]
    return [f"webhook {r.url}: last {r.last_event} at {iso(r.last_at)} failed ({r.error}); "
            f"{r.failures} failed deliver{'y' if r.failures == 1 else 'ies'} in a row" for r in rows]


def _skipped_schedules(settings: Settings) -> list[str]:
    """Occurrences of playbooks' [schedule] that started no run in the last 7 days, and why
    (recorded by handlers.schedules)."""
    import time

    from bot.clock import iso
    from storage.db import StorageUnavailable
    from storage.schedules import read_skipped

    try:
        rows = read_skipped(settings.storage.url, int(time.time() * 1000) - 7 * 86_400_000)
    except StorageUnavailable as err:
        return [f"storage {settings.storage.url}: {err}"]
    return [f"schedule of playbook {r.playbook_id}: the run due at {iso(r.occurrence_at)} was skipped: {r.reason}"
            for r in rows]


def _alerts_report(settings: Settings, playbooks: list[Playbook]) -> list[str]:
    """Which alert sources are set up and routed, and the deliveries of the last day no route matched or
    whose route could not start a run (handlers/alerts.py answers those 200 "no route" / "unusable" so the
    vendor does not retry them forever, nor drop them unseen)."""
    import time

    from bot.clock import iso
    from bot.integrations.alert_hooks import SOURCES, configured
    from storage.alerts import read_unrouted
    from storage.db import StorageUnavailable

    out = []
    for source in SOURCES:
        routes = sum(1 for pb in playbooks for route in pb.alerts if route.source == source)
        if configured(source, settings.alerts) or routes:
            state = "credentials set" if configured(source, settings.alerts) else \
                "NO credentials in [alerts]: every delivery is refused"
            out.append(f"[note] alerts from {source}: {state}; {routes} route{'s' if routes != 1 else ''} in playbooks")
    try:
        rows = read_unrouted(settings.storage.url, int(time.time() * 1000) - 86_400_000)
    except StorageUnavailable:
        return out  # said by the webhooks line already
    for row in rows:
        if row.outcome == "unusable":
            out.append(f"[note] alert from {row.source} at {iso(row.received_at)} started no run: {row.title[:80]!r}: "
                       f"{str(row.details.get('unusable', ''))[:300]}")
            continue
        out.append(f"[note] alert from {row.source} at {iso(row.received_at)} matched no [[alerts]] route: "
                   f"{row.title[:80]!r} labels {json.dumps(row.details.get('labels', {}))[:200]}")
    return out


async def _unreachable_http_actions(settings: Settings, playbooks: list[Playbook]) -> list[str]:
    """The playbooks' http actions whose host is, or resolves only to, an internal address that [http_actions]
    allow_internal does not open (bot/outbound.py): each would fail at its first event. A name that does not
    resolve here is left to the action's own failure, which says so."""
    import asyncio
    import ipaddress
    import socket
    from urllib.parse import urlsplit

    from bot.outbound import AddressPolicy

    policy = AddressPolicy(settings.http_actions.allow_internal)
    loop = asyncio.get_running_loop()
    out = []
    for pb in playbooks:
        for index, spec in enumerate(pb.actions, start=1):
            if spec.kind != "http":
                continue
            host = urlsplit(str(spec.get("url") or "")).hostname or ""
            if not host or policy.host_allowed(host):
                continue
            try:
                ipaddress.ip_address(host.split("%", 1)[0])
                addresses = [host]
            except ValueError:
                try:
                    found = await asyncio.wait_for(loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), 5)
                except (OSError, asyncio.TimeoutError):
                    continue
                addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
            if addresses and not any(policy.ip_allowed(a) for a in addresses):
                out.append(f"playbook {pb.id}: actions[{index}] (http) goes to {policy.refusal(host, addresses[0])}; "
                           f"add \"{host}\" or its network to [http_actions] allow_internal if it is meant to")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
