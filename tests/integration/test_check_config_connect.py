"""`copybot check-config --connect` against the local exchange, as a user runs it (a subprocess,
real ccxt): every account logs in and opens its user data stream; a wrong stream host is reported
before a trial instead of during it."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
from decimal import Decimal
from pathlib import Path

import yaml

from bot.sim.config import load_sim_config
from bot.sim.server import SimExchange
from tests.integration.harness import DEFAULT_RISK


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


async def _check(tmp_path: Path, sim: SimExchange, ws_url: str, **venue: str) -> tuple[int, str]:
    env = dict(os.environ)
    for account in ("lead", "f1"):
        key, secret = secrets.token_hex(16), secrets.token_hex(16)
        sim.create_account(key, secret, Decimal(10_000), name=account)
        env[f"K_{account.upper()}"], env[f"S_{account.upper()}"] = key, secret
    config = {
        "venues": {"local": {"exchange": "binanceusdm", "mode": "sim",
                             "rest_url": sim.rest_url, "ws_url": ws_url, **venue}},
        "leads": [{"id": "lead", "venue": "local",
                   "credentials": {"api_key_env": "K_LEAD", "secret_env": "S_LEAD"}}],
        "followers": [{"id": "f1", "venue": "local",
                       "credentials": {"api_key_env": "K_F1", "secret_env": "S_F1"}, "risk": DEFAULT_RISK,
                       "follows": [{"lead": "lead", "sizing": {"mode": "multiplier", "multiplier": "0.1"}}]}],
    }  # fmt: skip
    path = tmp_path / "copybot.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "check-config", "--config", str(path), "--connect",
        "--stream-seconds", "1", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_connect_opens_every_accounts_stream(tmp_path: Path) -> None:
    async with SimExchange(load_sim_config(tick_interval_s=0)) as sim:
        code, out = await _check(tmp_path, sim, sim.ws_url)
    assert code == 0, out
    assert out.count("ok (connected in") == 2, out


async def test_a_wrong_stream_host_fails_the_check(tmp_path: Path) -> None:
    async with SimExchange(load_sim_config(tick_interval_s=0)) as sim:
        code, out = await _check(tmp_path, sim, f"ws://127.0.0.1:{_closed_port()}")
    assert code == 1, out
    assert out.count("FAILED") == 2, out  # the stream column of both accounts; REST logged in fine
    assert out.count("ok") >= 2, out


async def test_connect_goes_out_from_the_venues_source_address(tmp_path: Path) -> None:
    """`venues.<name>.source_address` binds the check's REST calls and streams too, as the daemon's
    (tests/integration/test_source_address.py)."""
    async with SimExchange(load_sim_config(tick_interval_s=0)) as sim:
        code, out = await _check(tmp_path, sim, sim.ws_url, source_address="127.0.0.4")
        seen = sim.limits.snapshot()
    assert code == 0, out
    assert out.count("ok (connected in") == 2, out
    assert set(seen["addresses"]) == {"127.0.0.4"}, seen["addresses"]
    assert set(seen["wsAttempts"]) == {"127.0.0.4"}, seen["wsAttempts"]
