"""`relay check-config`: the same validation as `serve`, and a one-line summary."""

from __future__ import annotations

import argparse
from typing import Any

from relay.cli.common import load


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    check = sub.add_parser("check-config", parents=[common], help="validate the config and exit")
    check.set_defaults(run=cmd_check_config)


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load(args)
    print(
        f"{config.source}: OK ({len(config.channels)} channels, {len(config.keys)} static keys, "
        f"models: {', '.join(sorted({m for c in config.channels for m in c.models}))})"
    )
    return 0
