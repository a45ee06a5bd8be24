"""`copybot status | halt | reduce-only | resume`: talk to a running daemon's HTTP API.

`status` only reads (no token); the three control commands need the API token. The daemon answers
403 when it has no token configured (control disabled) and 401 for a missing or wrong one; both
become one line on stderr here."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.commands.common import CommandError
from bot.core.rounding import shown

DEFAULT_API = "http://127.0.0.1:8787"
_CREDENTIAL_FILE_HELP = (
    "file holding the API token (default: $COPYBOT_API_TOKEN, or $CREDENTIALS_DIRECTORY/api-token)"
)


def add_arguments_for(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api", default=DEFAULT_API, help=f"the daemon's API base URL (default {DEFAULT_API})"
    )
    if name == "status":
        parser.add_argument("--json", action="store_true", help="print the daemon's /status JSON as is")
        parser.add_argument("--follower", default=None,
                            help="show this follower's results: PnL, fees, funding, slippage")  # fmt: skip
        parser.add_argument("--token-file", default=None,
                            help=f"{_CREDENTIAL_FILE_HELP}; needed only beyond loopback")  # fmt: skip
        return
    parser.add_argument("--follower", default=None, help="act on this follower only (default: globally)")
    parser.add_argument("--reason", default=None, help="recorded with the state change and in the alert")
    parser.add_argument("--token-file", default=None, help=_CREDENTIAL_FILE_HELP)


def _optional_token(args: argparse.Namespace) -> str | None:
    """The token when one is given (reads beyond loopback need it), else None."""
    try:
        return _token(args)
    except CommandError:
        if args.token_file:
            raise  # named but unreadable: say so
        return None


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CommandError(f"cannot read the token file {args.token_file}: {exc.strerror}") from None
        if token:
            return token
        raise CommandError(f"the token file {args.token_file} is empty")
    if os.environ.get("COPYBOT_API_TOKEN"):
        return os.environ["COPYBOT_API_TOKEN"].strip()
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / "api-token").exists():
        return (Path(creds) / "api-token").read_text(encoding="utf-8").strip()
    raise CommandError(
        "no API token given: set COPYBOT_API_TOKEN or pass --token-file (the value of the daemon's api.token)"
    )


def _request(url: str, *, method: str = "GET", body: dict[str, object] | None = None,
             token: str | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - operator-given API URL
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"error": f"HTTP {exc.code}"}


def status_lines(status: dict[str, Any]) -> list[str]:
    """Plain lines (readable piped and at 80 columns); --json gives everything."""
    state, ready = status.get("state"), status.get("ready")
    kill = " (kill switch engaged)" if status.get("kill_switch") else ""
    reason = f": {status['state_reason']}" if status.get("state_reason") else ""
    lines = [f"global: {str(state).upper()}{kill}{reason}  ready: {ready}"]
    for lead_id, lead in (status.get("leads") or {}).items():
        stream = lead["stream"]
        live = "live" if stream["live"] else "DOWN"
        positions = ", ".join(f"{s} {q}" for s, q in (lead.get("positions") or {}).items()) or "flat"
        lines.append(f"lead {lead_id}: stream {live} (age {stream['age_s']} s, "
                     f"{stream['reconnects']} reconnects); {positions}")  # fmt: skip
    for fid, f in (status.get("followers") or {}).items():
        off = ", ".join(s for s, p in f["positions"].items() if not p["match"]) or "none"
        why = f" ({f['reason']})" if f["reason"] else ""
        lines.append(f"follower {fid}: {str(f['state']).upper()}{why} equity {shown(f['equity'])}, "
                     f"{f['orders_sent']} orders, queue {f['queue']}, off target: {off}")  # fmt: skip
    if status.get("cluster"):
        lines += cluster_lines(status["cluster"])
    return lines


def cluster_lines(view: dict[str, Any]) -> list[str]:
    """The cluster as Redis sees it (docs/cluster.md, "What to watch"): lease holders, stream
    backlogs, which shard serves how many partitions and followers, each shard's copy lag."""
    if "error" in view:
        return [f"cluster ({view.get('role')}): Redis did not answer: {view['error']}"]
    lines = [f"cluster: this process is {view['role']} {view['id']}; live shards: "
             f"{', '.join(view['shards']) or 'none'}"]  # fmt: skip
    for lead in view["leads"]:
        lease = lead["lease"]
        holder = f"{lease['holder']} (epoch {lease['epoch']})" if lease else "NOBODY"
        backlog = sum(g["lag"] or 0 for g in lead["groups"])
        pending = sum(g["pending"] for g in lead["groups"])
        state = lead.get("state")
        stored = (f"positions stored at entry {state['doc_seq']} of {state['seq']}" if state
                  else "no lead positions stored yet (no feed has held the lease)")  # fmt: skip
        lines.append(f"lead {lead['lead']}: feed lease {holder}; stream {lead['stream']['length']} "
                     f"entries, backlog {backlog}, unsettled {pending}; {stored}")  # fmt: skip
    for shard, line in sorted((view.get("shard_status") or {}).items()):
        if line is None:
            lines.append(f"shard {shard}: live, no status yet")
            continue
        lag = line.get("internal_lag_ms") or {}
        applied = ", ".join(f"{lead} {seq}" for lead, seq in sorted((line.get("lead_seq") or {}).items()))
        lines.append(f"shard {shard}: partitions {', '.join(line['partitions']) or 'none'}; "
                     f"{line['followers']} followers, {line['settling']} fills settling, "
                     f"lag p50 {_ms(lag.get('p50'))} p99 {_ms(lag.get('p99'))}; "
                     f"lead entries applied: {applied or '-'}")  # fmt: skip
    for lead, row in sorted((view.get("aum") or {}).items()):
        lines.append(f"lead {lead}: follower capital {Decimal(row['aum']):.2f} over {row['followers']} "
                     f"followers in the cluster")  # fmt: skip
    orphans = sorted(p for p, row in (view.get("partitions") or {}).items() if row["shard"] is None)
    if orphans:
        lines.append(f"partitions without a live shard: {', '.join(orphans)}")
    return lines


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} ms"


def run(args: argparse.Namespace) -> int:
    base = args.api.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise CommandError(f"--api {args.api}: expected an http:// or https:// URL, e.g. {DEFAULT_API}")
    try:
        if args.command == "status":
            code, body = _request(f"{base}/status", token=_optional_token(args))
            if code != 200:
                raise CommandError(f"{base}/status answered HTTP {code}: {body.get('error', body)}")
            follower = (body.get("followers") or {}).get(args.follower) if args.follower else None
            if args.follower and follower is None:
                raise CommandError(f"no follower {args.follower!r} in the daemon's status")
            if args.json:
                print(json.dumps(follower if follower is not None else body, indent=2))
            elif follower is not None:
                from bot.commands.pnl_table import pnl_lines  # only this view needs it

                print("\n".join(pnl_lines(args.follower, follower)))
            else:
                print("\n".join(status_lines(body)))
            return 0
        token = _token(args)
        payload = {"follower": args.follower, "reason": args.reason}
        code, body = _request(f"{base}/control/{args.command}", method="POST", body=payload, token=token)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(
            f"cannot reach the daemon at {base}: {reason} (is it running? see --api)"
        ) from None
    if code != 200:
        raise CommandError(str(body.get("error") or f"HTTP {code}"))
    subject = f"follower {body.get('follower')}" if body.get("follower") else "global"
    print(f"{subject}: {str(body.get('state')).upper()}")
    return 0
