"""`relay backup PATH`: a consistent copy of the SQLite database, safe while the relay runs.

It finds the database through the same config search as `serve`, says which database it copied
and where to, and checks the copy (quick_check) before it takes the name. The restore step is in
the README ("Backup and restore"); a damaged database at start points there too. The provider
secrets the config names need not be set: a backup needs only the store's location, and a cron
job has no EnvironmentFile.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from relay import config as config_mod
from relay.cli.common import config_source
from relay.store.sqlite.maintenance import DatabaseDamaged, backup


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser(
        "backup",
        parents=[common],
        help="copy the database to PATH (safe while the relay runs)",
        description="Copy the relay's SQLite database with SQLite's online backup API: one "
        "consistent moment, taken while the relay goes on serving. The copy is checked, "
        "written with mode 0600 and renamed into place only when complete.",
    )
    cmd.add_argument(
        "path", type=Path, help="the backup file, or a directory for relay-YYYYMMDD-HHMMSS.db"
    )
    cmd.set_defaults(run=cmd_backup)


class _AnyEnvironment(Mapping[str, str]):
    """The environment, with a placeholder for each variable it lacks."""

    def __getitem__(self, name: str) -> str:
        return os.environ.get(name, "unset-in-the-environment-of-this-backup")

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(os.environ)

    def __len__(self) -> int:
        return len(os.environ)


def cmd_backup(args: argparse.Namespace) -> int:
    path = config_mod.find_config_path(args.config)
    url = config_mod.load(path, env=_AnyEnvironment()).store.url
    if not url.startswith("sqlite:///"):
        print("relay: backup copies a SQLite store; for PostgreSQL use pg_dump", file=sys.stderr)
        return 2
    source = Path(url.removeprefix("sqlite:///")).absolute()
    try:
        done = backup(source, args.path)
    except (FileNotFoundError, NotADirectoryError, PermissionError, ValueError) as exc:
        print(f"relay: backup of {source} failed: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error, DatabaseDamaged) as exc:
        print(f"relay: backup of {source} failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"copied the database {source} (config: {config_source(args)}) to "
        f"{done.target.absolute()}: {_size(done.bytes)}, {done.tasks} tasks, {done.users} users,"
        f" checked, in {done.seconds:.2f} s"
    )
    return 0


def _size(n: int) -> str:
    value, unit = float(n), "bytes"
    for bigger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
