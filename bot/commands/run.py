"""`copybot run`: the daemon."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from bot.commands.common import EXIT_CONFIG, load_or_report
from bot.config.secrets import SecretError
from bot.service.app import Daemon
from bot.service.logs import configure_logging



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config file (see docs/config.md)")
    parser.add_argument("--api-port", type=int, default=None, help="override api.port (0 = any free port)")


def run(args: argparse.Namespace) -> int:
    cfg = load_or_report(args.config)
    if cfg is None:
        return EXIT_CONFIG
    configure_logging(cfg.logging.level, json=cfg.logging.json_output, cache=True)
    try:
        return _run_loop(Daemon(cfg, api_port=args.api_port))
    except SecretError as exc:
        print(f"copybot: credentials: {exc}", file=sys.stderr)
        return 2


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
    # The journal's writer thread must not hold the GIL for the default 5 ms while a fill waits.
    sys.setswitchinterval(0.0005)
    try:
        import uvloop

        return uvloop.run(daemon.run())
    except ImportError:
        return asyncio.run(daemon.run())
