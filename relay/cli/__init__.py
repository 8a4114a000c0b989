"""The `relay` command: one module per group of subcommands, each adding its own parsers.

serve.py     serve (the relay itself), and the admin key of a first start
check.py     check-config
accounts.py  users and keys
migrate.py   migrate (SQLite to PostgreSQL, local videos to S3)
backup.py    backup (an online copy of the SQLite database)
common.py    what they share: the config search, the store, one-line errors
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from relay.cli import accounts, backup, check, migrate, serve
from relay.cli.common import config_source
from relay.cli.serve import bootstrap_key
from relay.errors import ConfigError

__all__ = ["bootstrap_key", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"relay: config error in {config_source(args)}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay", description="An OpenAI Videos API gateway over many video providers."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        help="config file (default: $RELAY_CONFIG, ./config.toml, /etc/relay/config.toml, "
        "else the embedded defaults)",
    )
    sub = parser.add_subparsers(metavar="COMMAND")
    serve.register(sub, common)
    check.register(sub, common)
    accounts.register(sub, common)
    migrate.register(sub, common)
    backup.register(sub, common)
    return parser
