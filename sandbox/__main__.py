"""`python -m sandbox`: run the Mattermost stand-in until Ctrl-C or SIGTERM.

    python -m sandbox [--host 127.0.0.1] [--port 8065] [--admin-token TOKEN] [--site-url URL] [--demo] [--license SKU]
                      [--config FILE.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from urllib.parse import urlparse

from sandbox.server import Sandbox


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One clear line and exit status 2 (contracts.md), instead of argparse's usage block.
        print(f"python -m sandbox: {message}", file=sys.stderr)
        raise SystemExit(2)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {value!r}")
    return port


def _url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise argparse.ArgumentTypeError(f"expected an http(s) URL such as http://localhost:8065, got {value!r}")
    return value.rstrip("/")


def _token(value: str) -> str:
    if not value or not value.isalnum():
        raise argparse.ArgumentTypeError("expected a non-empty token of letters and digits")
    return value


def _config_file(value: str) -> dict:
    """A config.json-shaped file: {"TeamSettings": {"MaxChannelsPerTeam": 5}, ...} (sandbox/config.py)."""
    from sandbox.config import parse

    try:
        with open(value, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as err:
        raise argparse.ArgumentTypeError(f"cannot read {value}: {err.strerror or err}") from None
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{value} is not JSON: {err}") from None
    try:
        parse(data, strict=True)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{value}: {err}") from None
    except Exception:  # AppError: not an object
        raise argparse.ArgumentTypeError(f"{value}: expected a JSON object of settings sections") from None
    return data


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _Parser(prog="python -m sandbox", description="A local stand-in for a Mattermost server.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8065, help="port to bind, 0 for any (default 8065)")
    parser.add_argument("--admin-token", type=_token, default=None,
                        help="personal access token of `sysadmin` (random and printed when omitted)")
    parser.add_argument("--site-url", type=_url, default=None, help="ServiceSettings.SiteURL")
    parser.add_argument("--allow-internal", default="", metavar="HOSTS",
                        help="ServiceSettings.AllowedUntrustedInternalConnections: private hosts/IPs/CIDRs "
                             "integrations may be called on, e.g. 127.0.0.1 (default: none, as a real server)")
    parser.add_argument("--config", type=_config_file, default=None, metavar="FILE.json",
                        help="admin settings in config.json form, e.g. "
                             '{"ServiceSettings": {"PostEditTimeLimit": 300}}; wins over --site-url')
    parser.add_argument("--demo", action="store_true",
                        help="add team `demo`, users alice/bob/carol (password demo) and a bot account")
    parser.add_argument("--license", choices=("none", "professional", "enterprise"), default=None,
                        help="the server's licence (custom user groups need professional or enterprise); "
                             "default none, or professional with --demo")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    from sandbox.seed import add_demo

    sandbox = Sandbox(host=args.host, port=args.port, admin_token=args.admin_token, site_url=args.site_url or "",
                      allow_internal=args.allow_internal, config=args.config,
                      license=args.license or ("professional" if args.demo else None))
    demo = add_demo(sandbox.state) if args.demo else None
    try:
        await sandbox.start()
    except OSError as err:
        print(f"python -m sandbox: cannot listen on {args.host}:{args.port}: {err.strerror or err}",
              file=sys.stderr)
        raise SystemExit(2) from None
    print(f"Mattermost sandbox listening on {sandbox.url}", flush=True)
    if args.admin_token is None:
        print(f"Admin: sysadmin, token {sandbox.admin_token}", flush=True)
    if demo is not None:
        print(f"Demo: team demo; users alice, bob, carol (password demo); "
              f"bot playbooks, token {demo['bot_token']}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sandbox.stop()
        print("Sandbox stopped.", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
