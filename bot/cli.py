"""`copybot` command line: each subcommand lives in its own module with
`HELP`, `add_arguments(parser)` and `run(namespace) -> int`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, str] = {
    "demo": "bot.commands.demo",
    "run": "bot.commands.run",
    "check-config": "bot.commands.check_config",
    "sim": "bot.sim.cli",
    "status": "bot.commands.control",
    "halt": "bot.commands.control",
    "reduce-only": "bot.commands.control",
    "resume": "bot.commands.control",
    "aum": "bot.commands.aum",
    "follower": "bot.commands.follower",
    "bench": "bot.bench.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="copybot",
        description="Copy-trading daemon: mirrors a lead trader's fills into followers' own accounts.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # command not built yet
            raise
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args._module.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
