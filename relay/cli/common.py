"""What the subcommands share: the config search (the same as `serve`), the store it names,
and dates for tables."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from relay import config as config_mod
from relay.config import Config
from relay.store import Store, open_store


class CommandError(Exception):
    """An operator's mistake or a state a command cannot work in: one line, exit 2."""


def config_source(args: argparse.Namespace) -> str:
    path = config_mod.find_config_path(getattr(args, "config", None))
    return str(path) if path is not None else "the defaults"


def load(args: argparse.Namespace, *, secrets: bool = True) -> Config:
    """The config `serve` would use; `secrets=False` for commands that only need the store."""
    return config_mod.load(config_mod.find_config_path(args.config), secrets=secrets)


def with_store(args: argparse.Namespace, work: Callable[[Store], Awaitable[int]]) -> int:
    """Run `work` on the store the config names, and close it. Which database that is goes to
    stderr first (the tables on stdout stay clean to pipe), so nobody edits the wrong one."""
    config = load(args, secrets=False)
    missing = missing_database(config)
    if missing and config.source == "embedded defaults":
        raise CommandError(missing)
    print(f"database: {database_name(config.store.url)} (config: {config.source})", file=sys.stderr)

    async def run() -> int:
        store = await open_store(config.store.url, pool_size=config.store.pool_size)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def date(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def database_name(url: str) -> str:
    """Where a store URL points, never its password: the SQLite URL itself, or
    `postgresql://host:port/database`."""
    if url.startswith("sqlite:"):
        return url
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"postgresql://{parts.hostname or 'localhost'}{port}{parts.path}"


def one_line(exc: BaseException) -> str:
    """A driver's error message on one short line (they name the cause: host, password, ...)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def missing_database(config: Config) -> str | None:
    """Why a command should not go on: a SQLite database that does not exist yet. Run from the
    wrong directory with no config file found, a command would make a new, empty one there."""
    url = config.store.url
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url.removeprefix("sqlite:///"))
    if path.exists():
        return None
    where = "no config file found: --config, $RELAY_CONFIG, ./config.toml, /etc/relay/config.toml"
    if config.source != "embedded defaults":
        where = f"config: {config.source}"
    return (
        f"no database at {path.absolute()} ({where}); run this where `relay serve` runs, or"
        " pass --config"
    )


def table(rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell, two spaces apart; the first row is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
