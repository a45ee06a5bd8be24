"""sd_notify client against a real AF_UNIX datagram socket, as systemd would bind it."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.service.sdnotify import Notifier, WatchdogPinger, watchdog_interval_s


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    # A short directory: AF_UNIX paths are limited to 108 bytes and pytest's tmp_path can be longer.
    folder = tempfile.mkdtemp(prefix="sd", dir="/tmp")
    path = os.path.join(folder, "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(2)
    yield server, path
    server.close()
    os.unlink(path)
    os.rmdir(folder)


def receive_all(server: socket.socket) -> list[str]:
    server.setblocking(False)
    out = []
    try:
        while True:
            out.append(server.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        server.settimeout(2)
    return out


def test_ready_status_watchdog_stopping_reach_the_socket(notify_socket: tuple[socket.socket, str]) -> None:
    server, path = notify_socket
    n = Notifier(env={"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready(status="loading markets")
    assert server.recv(4096) == b"READY=1\nSTATUS=loading markets"
    assert n.status("copying 3 followers")
    assert server.recv(4096) == b"STATUS=copying 3 followers"
    assert n.watchdog()
    assert server.recv(4096) == b"WATCHDOG=1"
    assert n.stopping()
    assert server.recv(4096) == b"STOPPING=1"
    assert n.extend_timeout(2.5)
    assert server.recv(4096) == b"EXTEND_TIMEOUT_USEC=2500000"
    assert n.sent == 5
    n.close()


def test_newline_in_a_value_cannot_forge_another_field(notify_socket: tuple[socket.socket, str]) -> None:
    server, path = notify_socket
    n = Notifier(path)
    n.status("bad\nREADY=1")
    assert server.recv(4096) == b"STATUS=bad READY=1"
    n.close()


def test_abstract_socket_name() -> None:
    name = f"copybot-test-{uuid.uuid4().hex}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(b"\0" + name.encode())
    server.settimeout(2)
    try:
        n = Notifier(env={"NOTIFY_SOCKET": "@" + name})
        assert n.ready()
        assert server.recv(4096) == b"READY=1"
        n.close()
    finally:
        server.close()


def test_unset_socket_is_a_no_op() -> None:
    n = Notifier(env={})
    assert not n.enabled
    assert n.ready() is False
    assert n.watchdog() is False
    assert n.sent == 0
    assert n.failed == 0


def test_missing_socket_never_raises_and_logs_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert n.enabled
    for _ in range(5):
        assert n.watchdog() is False
    assert n.failed == 5
    out = capsys.readouterr()
    assert (out.out + out.err).count("send failed; further failures logged at debug") == 1
    n.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}, 2.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "x"}, None),
    ],
)
def test_watchdog_interval_from_environment(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval_s(env) == expected


def test_pinger_uses_half_the_watchdog_interval() -> None:
    pinger = WatchdogPinger(Notifier(env={}), env={"WATCHDOG_USEC": "30000000"})
    assert pinger.watchdog_enabled
    assert pinger.period_s == 15.0


def test_pinger_pings_only_while_healthy_and_reports_changes(
    notify_socket: tuple[socket.socket, str],
) -> None:
    server, path = notify_socket
    pinger = WatchdogPinger(Notifier(path), interval_s=1.0, healthy_status="ok", unhealthy_status="stale")
    health = iter([True, True, False, False, True])
    for _ in range(5):
        pinger.tick(lambda: next(health))
    assert receive_all(server) == [
        "WATCHDOG=1",
        "STATUS=ok",
        "WATCHDOG=1",
        "STATUS=stale",
        "WATCHDOG=1",
        "STATUS=ok",
    ]
    assert pinger.pings == 3


def test_pinger_treats_a_raising_health_check_as_unhealthy(notify_socket: tuple[socket.socket, str]) -> None:
    server, path = notify_socket
    pinger = WatchdogPinger(Notifier(path), interval_s=1.0, unhealthy_status="stale")

    def broken() -> bool:
        raise RuntimeError("feed registry gone")

    assert pinger.tick(broken) is False
    assert receive_all(server) == ["STATUS=stale"]


async def test_pinger_run_loop_sends_pings_until_cancelled(notify_socket: tuple[socket.socket, str]) -> None:
    server, path = notify_socket
    pinger = WatchdogPinger(Notifier(path), interval_s=0.01)
    task = asyncio.create_task(pinger.run(lambda: True))
    while pinger.pings < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    messages = receive_all(server)
    assert messages.count("WATCHDOG=1") >= 3
    assert sum(m.startswith("STATUS=") for m in messages) == 1


async def test_pinger_run_returns_at_once_without_a_socket() -> None:
    pinger = WatchdogPinger(Notifier(env={}), interval_s=0.01)
    await asyncio.wait_for(pinger.run(lambda: True), timeout=5)
    assert pinger.pings == 0
