"""`python -m bot.bench`: the same as `copybot bench`."""

from __future__ import annotations

import argparse
import sys

from bot.bench import cli


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.bench", description=cli.HELP)
    cli.add_arguments(parser)
    return cli.run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
