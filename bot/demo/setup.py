"""The demo's accounts and config: one lead and N followers with different sizing modes and caps on
the embedded local exchange. Keys are random per run and reach the config through an environment
mapping, exactly as a real deployment passes them (never inline)."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

LEAD_BALANCE = Decimal(100_000)

# The local exchange's personalities (`SimExchange(venues=...)`) and the ccxt client of each.
VENUE_EXCHANGES = {"binance": "binanceusdm", "bybit": "bybit"}

# (sizing, balance, risk overrides): cycled when there are more followers than rows.
FOLLOWER_PROFILES: list[tuple[dict[str, Any], Decimal, dict[str, Any]]] = [
    ({"mode": "equity_ratio"}, Decimal(20_000), {"slippage_bps": None}),
    ({"mode": "multiplier", "multiplier": "0.15"}, Decimal(15_000), {"slippage_bps": 50}),
    ({"mode": "allocation", "allocation": 25_000}, Decimal(40_000), {"slippage_bps": None,
                                                                      "max_position_notional": 800,
                                                                      "symbols_deny": ["THIN/USDT:USDT"]}),
    ({"mode": "fixed_notional", "notional": 800}, Decimal(8_000), {"slippage_bps": None}),
]  # fmt: skip


def demo_accounts(followers: int, venues: tuple[str, ...] = ("binance",)) -> list[dict[str, Any]]:
    """Accounts to create on the local exchange: the lead first, on the first venue; followers take
    the venues in turn."""
    accounts = [{"id": "lead", "balance": LEAD_BALANCE, "venue": venues[0]}]
    for i in range(followers):
        _, balance, _ = FOLLOWER_PROFILES[i % len(FOLLOWER_PROFILES)]
        accounts.append({"id": f"f{i + 1}", "balance": balance, "venue": venues[i % len(venues)]})
    for account in accounts:
        account["api_key"] = secrets.token_hex(32)
        account["secret"] = secrets.token_hex(32)
    return accounts


def demo_config(
    accounts: list[dict[str, Any]], journal_path: str, urls: dict[str, dict[str, str]] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The config dict and the environment its credentials are read from. Without `urls` one venue,
    `local`, whose hosts the daemon is given; with them (several venues) one venue per
    personality, named after it, with its hosts."""
    env: dict[str, str] = {}
    for account in accounts:
        name = account["id"].upper()
        env[f"DEMO_{name}_KEY"] = account["api_key"]
        env[f"DEMO_{name}_SECRET"] = account["secret"]

    def creds(account_id: str) -> dict[str, str]:
        name = account_id.upper()
        return {"api_key_env": f"DEMO_{name}_KEY", "secret_env": f"DEMO_{name}_SECRET"}

    profiles = FOLLOWER_PROFILES
    followers = [
        follower_block(profiles[i % len(profiles)], account, account["venue"] if urls else "local", "lead")
        for i, account in enumerate(accounts[1:])
    ]
    if urls:
        venues = {v: {"exchange": VENUE_EXCHANGES[v], "mode": "sim", "rest_url": u["rest"], "ws_url": u["ws"]}
                  for v, u in urls.items()}  # fmt: skip
    else:
        venues = {"local": {"exchange": VENUE_EXCHANGES[accounts[0]["venue"]], "mode": "sim"}}
    lead_venue = accounts[0]["venue"] if urls else "local"
    config = {
        "venues": venues,
        "leads": [{"id": "lead", "venue": lead_venue, "credentials": creds("lead"),
                   "symbols": ["BTC/USDT:USDT", "ETH/USDT:USDT", "THIN/USDT:USDT"]}],
        "followers": followers,
        "feed": {"keepalive_s": 5, "stale_after_s": 20},
        "reconcile": {"mode": "correct", "interval_s": 10},
        "executor": {"balance_refresh_s": 5},
        "journal": {"path": journal_path},
        "api": {"enabled": True, "port": 0},
        "logging": {"level": "warning"},
    }  # fmt: skip
    return config, env


# The follower that joins mid-run (bot/demo/churn.py): sized on its equity, market orders, so that
# what it copies of the lead's open positions fits every book the scripted lead trades.
JOINER_PROFILE: tuple[dict[str, Any], Decimal, dict[str, Any]] = (
    {"mode": "equity_ratio"}, Decimal(12_000), {"slippage_bps": None}
)  # fmt: skip


def follower_block(
    profile: tuple[dict[str, Any], Decimal, dict[str, Any]], account: dict[str, Any], venue: str, lead: str
) -> dict[str, Any]:
    """The followers[] entry of a demo follower with this profile, on `venue`."""
    sizing, _, risk = profile
    name = account["id"].upper()
    return {
        "id": account["id"],
        "venue": venue,
        "credentials": {"api_key_env": f"DEMO_{name}_KEY", "secret_env": f"DEMO_{name}_SECRET"},
        "leverage": 10,
        "risk": {
            "max_order_notional": 20_000,
            "max_position_notional": 10_000,
            "max_total_exposure": 30_000,
            "max_leverage": 5,
            **risk,
        },
        "follows": [{"lead": lead, "sizing": sizing}],
    }


def joiner_account(fid: str, venue: str) -> dict[str, Any]:
    """The account of the follower that joins mid-run (bot/demo/churn.py)."""
    return {"id": fid, "balance": JOINER_PROFILE[1], "venue": venue, "api_key": secrets.token_hex(32),
            "secret": secrets.token_hex(32)}  # fmt: skip


def config_from_file(path: str, journal_path: str, *, follower_balance: Decimal = Decimal(20_000)) -> tuple[
    dict[str, Any], dict[str, str], list[dict[str, Any]]
]:  # fmt: skip
    """A config file's leads and followers on the embedded exchange: an account with fresh keys for
    each, exported under the environment variable names the file gives, and the journal moved to
    `journal_path`. The first lead is the one the scripted trader drives."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    env: dict[str, str] = {}
    accounts: list[dict[str, Any]] = []
    for role, rows in (("lead", data.get("leads", [])), ("follower", data.get("followers", []))):
        for row in rows:
            creds = row.get("credentials", {})
            account = {
                "id": row["id"],
                "balance": LEAD_BALANCE if role == "lead" else follower_balance,
                "api_key": secrets.token_hex(32),
                "secret": secrets.token_hex(32),
            }
            if "api_key_env" not in creds or "secret_env" not in creds:
                raise ValueError(f"{path}: {role} {row['id']}: the demo needs api_key_env and secret_env")
            env[creds["api_key_env"]], env[creds["secret_env"]] = account["api_key"], account["secret"]
            accounts.append(account)
    data["journal"] = {"path": journal_path}
    data["api"] = {**data.get("api", {}), "port": 0}
    data.pop("kill_switch_file", None)
    return data, env, accounts
