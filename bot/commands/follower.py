"""`copybot follower add | set | pause | resume | remove | changes`: change the followers of a running
daemon through its HTTP API (bot/service/membership_routes.py), as `copybot halt` does for states.

    copybot follower add --file carol.yaml          # one followers[] entry of the config, as YAML
    copybot follower set carol risk.max_position_notional=5000 follows.alice.sizing.multiplier=0.5
    copybot follower pause carol --reason "owner asked"
    copybot follower remove carol --on-leave follow_exits
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import urllib.error
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from bot.commands.control import _request, _token

HELP = "Add, change, pause, resume or remove a follower of a running daemon (see docs/config.md)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default="http://127.0.0.1:8787", help="the daemon's API base URL")
    parser.add_argument(
        "--token-file",
        default=None,
        help="file holding the API token (default: $COPYBOT_API_TOKEN, or $CREDENTIALS_DIRECTORY/api-token)",
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="admit a follower (its key is checked first)")
    add.add_argument("--file", required=True, help="YAML file with one followers[] entry")
    change = sub.add_parser("set", help="change a follower's sizing, caps or join/leave policies")
    change.add_argument("follower")
    example = "e.g. risk.max_order_notional=500 or follows.<lead>.sizing.multiplier=2"
    change.add_argument("changes", nargs="+", metavar="KEY=VALUE", help=example)
    for name, text in (("pause", "reduce-only: exits are still copied"), ("resume", "copy entries again")):
        p = sub.add_parser(name, help=text)
        p.add_argument("follower")
        p.add_argument("--reason", default=None)
    remove = sub.add_parser("remove", help="stop copying to a follower")
    remove.add_argument("follower")
    remove.add_argument("--on-leave", choices=("close", "keep", "follow_exits"), default=None,
                        help="default: the policy its follows agree on, else keep")  # fmt: skip
    changes = sub.add_parser("changes", help="the journal of membership changes")
    changes.add_argument("follower", nargs="?", default=None)


def parse_changes(pairs: list[str]) -> dict[str, Any]:
    """["risk.max_order_notional=500", ...] -> {"risk": {"max_order_notional": 500}}; values are
    read as YAML scalars (integers, true/false, null, strings; decimals as their text)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{pair!r}: expected KEY=VALUE")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{key}: {part} is both a value and a section")
        value = yaml.safe_load(raw) if raw else None
        # Money stays exact: a decimal goes as its text (the config reads it as Decimal).
        node[leaf] = raw.strip() if isinstance(value, float) else value
    return out


def run(args: argparse.Namespace) -> int:
    base = args.api.rstrip("/")
    actor = getpass.getuser()
    try:
        if args.action == "changes":
            query = f"?follower={urllib.parse.quote(args.follower)}" if args.follower else ""
            code, body = _request(f"{base}/followers/changes{query}")
        else:
            method, path, payload = _call(args, actor)
            code, body = _request(f"{base}{path}", method=method, body=payload, token=_token(args))
    except (ValueError, OSError, yaml.YAMLError) as exc:
        if isinstance(exc, urllib.error.URLError | ConnectionError):
            print(f"copybot: cannot reach the daemon at {base}: {exc}", file=sys.stderr)
        else:
            print(f"copybot: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2))
    return 0 if code == 200 else 1


def _call(args: argparse.Namespace, actor: str) -> tuple[str, str, dict[str, Any]]:
    fid = urllib.parse.quote(getattr(args, "follower", "") or "", safe="")
    if args.action == "add":
        block = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
        if (
            isinstance(block, dict)
            and isinstance(block.get("followers"), list)
            and len(block["followers"]) == 1
        ):
            block = block["followers"][0]  # a file with one `followers:` entry is fine too
        return "POST", "/followers", {"follower": block, "actor": actor}
    if args.action == "set":
        return "PATCH", f"/followers/{fid}", {"changes": parse_changes(args.changes), "actor": actor}
    if args.action in ("pause", "resume"):
        return "POST", f"/followers/{fid}/{args.action}", {"reason": args.reason, "actor": actor}
    return "DELETE", f"/followers/{fid}", {"on_leave": args.on_leave, "actor": actor}
