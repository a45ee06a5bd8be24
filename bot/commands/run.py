"""`copybot run`: the daemon.

Before any network call the config is validated, every credential resolved and the API port tried,
so a missing secret or a taken port is one line on stderr, not a traceback after the venues were
contacted. A venue that cannot be reached or refuses a key at start is one line too."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from bot.commands.common import EXIT_CONFIG, CommandError, load_or_report

if TYPE_CHECKING:
    from bot.config.models import AppConfig
    from bot.service.app import Daemon


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config file (see docs/config.md)")
    parser.add_argument("--api-port", type=int, default=None, help="override api.port (0 = any free port)")
    parser.add_argument(
        "--role",
        choices=("all", "feed", "shard"),
        default="all",
        help="all: one process, no Redis (the default); feed: publish the leads' fills to Redis under a "
        "lease; shard: copy them to the followers of the partitions this process owns (docs/cluster.md)",
    )
    parser.add_argument(
        "--shard-id",
        default=None,
        help="override cluster.id (this process's name in the cluster), so several processes can "
        "share one config file",
    )


def check_secrets(cfg: AppConfig, role: str = "all") -> None:
    """Resolve every secret the daemon will ask for (raises CommandError naming the first missing).
    A shard asks for no lead key (the feed publishes the leads' positions), a feed for no follower
    key (docs/cluster.md, "Keys on each host")."""
    from bot.config.secrets import SecretError

    try:
        for lead in cfg.leads if role != "shard" else ():
            cfg.credentials_for(lead.id)
        for follower in cfg.followers if role != "feed" else ():
            if follower.enabled:
                cfg.credentials_for(follower.id)
        cfg.api_token()
        cfg.webhook_url()
        cfg.notify_urls()
    except SecretError as exc:
        raise CommandError(f"credentials: {exc}", EXIT_CONFIG) from None


def check_port(host: str, port: int) -> None:
    """Fail now if the API port is taken, rather than after start-up has contacted every venue."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CommandError(_port_message(host, port, exc)) from None


def _port_message(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"the API port {host}:{port} is already in use (another copybot?); set api.port or --api-port"
    return f"cannot listen on {host}:{port}: {exc.strerror}"


def run(args: argparse.Namespace) -> int:
    cfg = load_or_report(args.config)
    if cfg is None:
        return EXIT_CONFIG
    role = getattr(args, "role", "all")
    shard_id = getattr(args, "shard_id", None)
    cfg = cluster_identity(cfg, role, shard_id)
    check_secrets(cfg, role)
    if cfg.api.enabled:
        check_port(cfg.api.host, cfg.api.port if args.api_port is None else args.api_port)
    from bot.service.app import Daemon
    from bot.service.logs import configure_logging

    configure_logging(cfg.logging.level, json=cfg.logging.json_output, cache=True)
    daemon = Daemon(cfg, api_port=args.api_port, load_config=config_reader(args.config, shard_id), role=role)
    return _run_loop(daemon)


def config_reader(path: str, shard_id: str | None) -> Callable[[], AppConfig]:
    """What SIGHUP re-reads (bot/service/membership.py); a secret missing then is the reload's
    error. `--shard-id` holds as at start: the file's own `cluster.id` is not this process's."""
    from bot.config.models import load_config

    def read() -> AppConfig:
        fresh = load_config(path)
        return fresh.with_cluster_id(shard_id) if shard_id is not None and fresh.cluster else fresh

    return read


def cluster_identity(cfg: AppConfig, role: str, shard_id: str | None) -> AppConfig:
    """A cluster role needs the `cluster:` section; `--shard-id` replaces its `id`."""
    if role == "all":
        if shard_id is not None:
            raise CommandError("--shard-id needs --role feed or --role shard", EXIT_CONFIG)
        return cfg
    if cfg.cluster is None:
        raise CommandError(
            f"--role {role} needs a cluster: section in the config (docs/cluster.md, docs/config.md)",
            EXIT_CONFIG,
        )
    if shard_id is None:
        return cfg
    try:
        return cfg.with_cluster_id(shard_id)
    except ValueError as exc:
        raise CommandError(f"--shard-id: {exc}", EXIT_CONFIG) from None


def _run_loop(daemon: Daemon) -> int:
    profile_path = os.environ.get("COPYBOT_PROFILE")
    if profile_path:
        # The benchmark's profile of a large fan-out: cProfile over the whole run, dumped at exit.
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            return _run_plain(daemon)
        finally:
            profiler.disable()
            profiler.dump_stats(profile_path)
    return _run_plain(daemon)


def _run_plain(daemon: Daemon) -> int:
    import ccxt

    from bot.cluster.redis_client import RedisUnavailable
    from bot.core.errors import short
    from bot.core.redaction import redact_text
    from bot.journal.store import JournalError

    # The journal's writer thread must not hold the GIL for the default 5 ms while a fill waits.
    sys.setswitchinterval(0.0005)
    try:
        import uvloop

        runner: Callable[[Coroutine[Any, Any, int]], int] = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        return runner(daemon.run())
    except ccxt.AuthenticationError as exc:
        raise CommandError(f"a venue refused an API key at start: {redact_text(short(exc))}") from None
    except ccxt.NetworkError as exc:
        raise CommandError(
            f"a venue could not be reached at start: {redact_text(short(exc))} "
            "(check the venue's rest_url / ws_url, the network and the venue's status page)"
        ) from None
    except JournalError as exc:
        raise CommandError(f"journal: {exc}") from None
    except RedisUnavailable as exc:
        raise CommandError(redact_text(str(exc))) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            cfg = daemon.cfg
            port = cfg.api.port if daemon.api_port is None else daemon.api_port
            raise CommandError(_port_message(cfg.api.host, port, exc)) from None
        if isinstance(exc, PermissionError):
            raise CommandError(f"{exc.strerror}: {exc.filename}") from None  # e.g. the journal's folder
        raise
