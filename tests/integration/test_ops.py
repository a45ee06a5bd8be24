"""Running it for real: sd_notify and the watchdog, the control API and its token, metrics, and
secrets never leaking into logs, responses or the journal."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.harness import BTC, Harness, follower
from tests.integration.test_restarts import free_port, get_json, spawn, wait_for, write_config

TOKEN = "tok-" + "7f3a9c1e" * 6


def request(url: str, *, method: str = "GET", token: str | None = None, body: Any = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback test API
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def start(
    h: Harness, tmp: Path, extra_env: dict[str, str] | None = None, **overrides: Any
) -> tuple[Any, int, Path]:
    h.build_config([follower("f0", {"mode": "multiplier", "multiplier": "0.1"}),
                    follower("f1", {"mode": "multiplier", "multiplier": "0.1"})], **overrides)  # fmt: skip
    h.config["api"] = {"enabled": True, "port": 0, "token": {"env": "COPYBOT_API_TOKEN"}}
    h.env["COPYBOT_API_TOKEN"] = TOKEN
    port = free_port()
    config = tmp / "copybot.yaml"
    write_config(h, config, port)
    data = yaml.safe_load(config.read_text())
    data["api"] = {"enabled": True, "port": port, "token": {"env": "COPYBOT_API_TOKEN"}}
    data["logging"] = {"level": "debug", "json": True}
    config.write_text(yaml.safe_dump(data))
    log = tmp / "daemon.log"
    proc = await spawn(config, {**h.env, **(extra_env or {})}, log)
    return proc, port, log


async def test_control_api_token_and_metrics(harness: Harness, tmp_path: Path) -> None:
    h = harness
    proc, port, log = await start(h, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_for(lambda: get_json(f"{base}/readyz")[0] == 200, 30, "ready")
        assert request(f"{base}/control/halt", method="POST", body={})[0] == 401
        assert request(f"{base}/control/halt", method="POST", token="wrong", body={})[0] == 401
        # Bad bodies are refused with what is wrong, and change nothing.
        for bad in ({"follower": "f1", "folower": "f1"}, {"follower": 7}, ["f1"]):
            code, body = request(f"{base}/control/halt", method="POST", token=TOKEN, body=bad)
            assert code == 400, (bad, body)
        assert get_json(f"{base}/status")[1]["followers"]["f1"]["state"] == "ACTIVE"
        code, body = request(f"{base}/control/halt", method="POST", token=TOKEN, body={"follower": "f1"})
        assert code == 200, body
        assert get_json(f"{base}/status")[1]["followers"]["f1"]["state"] == "HALTED"
        await h.trade(BTC, "buy", "0.05")
        await asyncio.sleep(1.0)
        code, text = request(f"{base}/metrics")
        assert code == 200
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert "copybot_copy_lag_seconds" in families
        assert "copybot_orders" in families
        samples = [s for s in families["copybot_denials"].samples if s.name == "copybot_denials_total"]
        assert any(s.labels["reason"] == "halted" for s in samples)  # the code, not the text
        assert (
            request(f"{base}/control/resume", method="POST", token=TOKEN, body={"follower": "f1"})[0] == 200
        )
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0


async def test_notify_socket_ready_status_and_watchdog_stops_when_stream_silent(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.setblocking(False)
    env = {"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1000000"}
    proc, port, log = await start(h, tmp_path, env, feed={"keepalive_s": 1, "stale_after_s": 2})
    messages: list[tuple[float, str]] = []

    def drain() -> None:
        while True:
            try:
                messages.append((time.monotonic(), sock.recv(4096).decode()))
            except BlockingIOError:
                return

    try:
        await wait_for(lambda: get_json(f"http://127.0.0.1:{port}/readyz")[0] == 200, 30, "ready")
        await asyncio.sleep(2.0)
        drain()
        text = "\n".join(m for _, m in messages)
        assert "READY=1" in text
        assert "STATUS=" in text
        assert "WATCHDOG=1" in text
        # Hold the lead stream silent, and keep new sessions from coming up meanwhile.
        await h.fault(api_key=h.keys["lead"][0], path="/fapi/v1/listenKey", http_status=503, count=100_000)
        await h.fault(api_key=h.keys["lead"][0], stall_ws=60)
        await asyncio.sleep(3.5)  # past stale_after_s
        drain()
        messages.clear()
        await asyncio.sleep(2.0)
        drain()
        assert not [m for _, m in messages if "WATCHDOG=1" in m], "no watchdog ping while the stream is stale"
        assert get_json(f"http://127.0.0.1:{port}/readyz")[0] == 503
        async with h.http.delete(f"{h.sim.rest_url}/_sim/faults"):  # type: ignore[union-attr]
            pass
        await wait_for(lambda: get_json(f"http://127.0.0.1:{port}/readyz")[0] == 200, 30, "fresh again")
        messages.clear()
        await asyncio.sleep(1.5)
        drain()
        assert [m for _, m in messages if "WATCHDOG=1" in m], "pings resume once the stream is fresh"
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        drain()
        sock.close()
    assert any("STOPPING=1" in m for _, m in messages)


async def test_secrets_never_reach_logs_responses_or_journal(harness: Harness, tmp_path: Path) -> None:
    h = harness
    proc, port, log = await start(h, tmp_path)
    base = f"http://127.0.0.1:{port}"
    responses: list[str] = []
    try:
        await wait_for(lambda: get_json(f"{base}/readyz")[0] == 200, 30, "ready")
        async with h.http.post(f"{h.sim.rest_url}/_sim/accounts/{h.keys['f1'][0]}/revoke"):  # type: ignore[union-attr]
            pass
        await h.trade(BTC, "buy", "0.05")
        await asyncio.sleep(1.5)
        for path in ("/status", "/metrics", "/healthz", "/readyz"):
            responses.append(request(base + path)[1])
        responses.append(request(f"{base}/control/halt", method="POST", token="not-" + TOKEN, body={})[1])
        responses.append(request(f"{base}/control/nope", method="POST", token=TOKEN, body={})[1])
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    status = json.loads(responses[0])
    assert status["followers"]["f1"]["state"] == "HALTED"  # the error path was exercised
    secrets = [TOKEN] + [v for pair in h.keys.values() for v in pair]
    logs = log.read_text()
    assert "follower_disabled" in logs
    with sqlite3.connect(h.config["journal"]["path"]) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        dump = "\n".join(str(row) for t in tables for row in db.execute(f"select * from {t}"))  # noqa: S608
    for secret in secrets:
        assert secret not in logs
        assert secret not in dump
        for body in responses:
            assert secret not in body
