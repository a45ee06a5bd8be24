"""`copybot status | halt | reduce-only | resume`: talk to a running daemon's HTTP API."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

HELP = "Show a running daemon's status, or halt / reduce-only / resume it (globally or one follower)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default="http://127.0.0.1:8787", help="the daemon's API base URL")
    parser.add_argument("--follower", default=None, help="act on one follower instead of globally")
    parser.add_argument("--reason", default=None, help="recorded with the state change")
    parser.add_argument(
        "--token-file",
        default=None,
        help="file holding the API token (default: $COPYBOT_API_TOKEN, or $CREDENTIALS_DIRECTORY/api-token)",
    )
    parser.add_argument("--json", action="store_true", help="raw JSON output (status)")


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        return Path(args.token_file).read_text(encoding="utf-8").strip()
    if os.environ.get("COPYBOT_API_TOKEN"):
        return os.environ["COPYBOT_API_TOKEN"]
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / "api-token").exists():
        return (Path(creds) / "api-token").read_text(encoding="utf-8").strip()
    return None


def _request(url: str, *, method: str = "GET", body: dict[str, object] | None = None,
             token: str | None = None) -> tuple[int, dict[str, object]]:  # fmt: skip
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - operator-given API URL
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _print_status(status: dict[str, object]) -> None:
    state, ready, kill = status.get("state"), status.get("ready"), status.get("kill_switch")
    print(f"global: {state}  ready: {ready}  kill switch: {kill}")
    leads = status.get("leads") or {}
    assert isinstance(leads, dict)
    for lead_id, lead in leads.items():
        stream = lead["stream"]
        print(f"lead {lead_id}: stream live={stream['live']} age={stream['age_s']}s "
              f"reconnects={stream['reconnects']} positions={lead['positions']}")  # fmt: skip
    followers = status.get("followers") or {}
    assert isinstance(followers, dict)
    for fid, f in followers.items():
        off = [s for s, p in f["positions"].items() if not p["match"]]
        reason = f" ({f['reason']})" if f["reason"] else ""
        print(f"follower {fid}: {f['state']} equity={f['equity']} orders={f['orders_sent']} "
              f"queue={f['queue']} off-target={off or 'none'}{reason}")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    base = args.api.rstrip("/")
    try:
        if args.command == "status":
            code, body = _request(f"{base}/status")
            if args.json:
                print(json.dumps(body, indent=2))
            else:
                _print_status(body)
            return 0 if code == 200 else 1
        payload = {"follower": args.follower, "reason": args.reason}
        code, body = _request(
            f"{base}/control/{args.command}", method="POST", body=payload, token=_token(args)
        )
    except (urllib.error.URLError, OSError) as exc:
        print(f"copybot: cannot reach the daemon at {base}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(body))
    return 0 if code == 200 else 1
