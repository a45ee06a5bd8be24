"""`copybot` command line: each subcommand lives in its own module with `add_arguments(parser)`
(or `add_arguments_for(name, parser)` when one module serves several commands) and
`run(namespace) -> int`.

Only the chosen subcommand's module is imported: `copybot --help` and `copybot status` must not pay
for ccxt, pydantic and the engine (about a second and a half). The one-line summaries therefore live
here, not in the modules.

Expected failures (a config problem, a venue that cannot be reached, a taken port, ...) are one line
on stderr and a non-zero exit (`bot.commands.common.CommandError`); a traceback is a bug.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("bot.commands.demo",
             "Run copybot on the embedded local exchange with a scripted lead and N followers."),
    "run": ("bot.commands.run",
            "Run the copy-trading daemon (SIGTERM drains in-flight orders and exits 0)."),
    "check-config": ("bot.commands.check_config",
                     "Validate a config file; with --connect, log in to every account and check it."),
    "sim": ("bot.sim.cli",
            "Run the local exchange (Binance USD-M and/or Bybit V5 linear) on loopback."),
    "status": ("bot.commands.control",
               "Show a running daemon's state, streams and followers."),
    "halt": ("bot.commands.control",
             "Halt a running daemon, globally or one follower: no orders at all, exits included."),
    "reduce-only": ("bot.commands.control",
                    "Put a running daemon, globally or one follower, in reduce-only: exits only."),
    "resume": ("bot.commands.control",
               "Resume copying, globally or for one follower, after halt or reduce-only."),
    "aum": ("bot.commands.aum",
            "Leads ranked by AUM with returns, drawdown, win rate, copier PnL and slippage."),
    "follower": ("bot.commands.follower",
                 "Add, change, pause, resume or remove a follower of a running daemon (docs/config.md)."),
    "bench": ("bot.bench.cli",
              "Benchmark copy lag and fan-out on the local exchange against a polling copier."),
}  # fmt: skip


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("copybot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an option)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in `argv` gets its options (all of them when `argv`
    is None, for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="copybot",
        description="Copy-trading daemon: mirrors a lead trader's fills into followers' own accounts.",
    )
    parser.add_argument("--version", action="version", version=f"copybot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen(argv) if argv is not None else None
    for name, (module_name, summary) in COMMANDS.items():
        p = sub.add_parser(name, help=summary, description=summary)
        if argv is not None and name != chosen:
            continue
        module = importlib.import_module(module_name)
        add_for = getattr(module, "add_arguments_for", None)
        if add_for is not None:
            add_for(name, p)
        else:
            module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    from bot.commands.common import CommandError

    try:
        code: int = args._module.run(args)
    except CommandError as exc:
        print(f"copybot {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"copybot {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
