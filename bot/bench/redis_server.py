"""A real Debian redis-server on a free loopback port with a folder of its own, started and stopped
by its owner: the cluster tests (tests/cluster/conftest.py, one per test) and the benchmark's cluster
runs. No shared server, no fixed port. `.ci/run` installs the package."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bot.bench.processes import free_port

REDIS_SERVER = shutil.which("redis-server")
START_TIMEOUT_S = 15.0  # generous: a loaded 2-core machine
HOST = "127.0.0.1"


def ping(port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout_s) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process. `stop()` shuts it down politely, `kill()` with SIGKILL; `start()`
    again reuses the port and the folder, so an AOF written before is replayed.

    `config_file` is read first (deploy/redis/copybot.conf, to run what production runs); the
    options here override it where they are given (port, bind, folder, no RDB snapshots, log file;
    `appendonly` and `appendfsync` only when not None). By default: no AOF, and with `appendonly`
    an fsync per write, so a SIGKILL loses nothing the tests count on."""

    def __init__(
        self,
        directory: Path,
        *,
        appendonly: bool | None = False,
        appendfsync: str | None = "always",
        port: int | None = None,
        config_file: Path | None = None,
    ) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.directory = directory
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.config_file = config_file
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def args(self) -> list[str]:
        args = [str(REDIS_SERVER)]
        if self.config_file is not None:
            args.append(str(self.config_file))
        args += [
            "--port", str(self.port),
            "--bind", HOST,
            "--dir", str(self.directory),
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        if self.appendonly is not None:
            args += ["--appendonly", "yes" if self.appendonly else "no"]
        if self.appendfsync is not None:
            args += ["--appendfsync", self.appendfsync]
        return args

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Its own session: a Ctrl-C meant for the benchmark does not stop Redis under it.
        self.proc = subprocess.Popen(
            self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ping(self.port):
            if self.proc.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {log}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer PING on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


@contextlib.asynccontextmanager
async def bench_redis(workdir: Path) -> AsyncIterator[RedisServer]:
    """A Redis for a benchmark run, set up as deploy/redis/copybot.conf sets production's (an
    append-only file fsynced every second), in `workdir`/redis; started and stopped off the event
    loop, stopped politely (so its files are complete for a look afterwards)."""
    server = RedisServer(workdir / "redis", appendonly=True, appendfsync="everysec")
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)
