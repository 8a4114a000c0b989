"""What the subcommands share: the config search (the same as `serve`), the store it names,
and dates for tables."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from relay import config as config_mod
from relay.config import Config
from relay.store import Store, open_store


def config_source(args: argparse.Namespace) -> str:
    path = config_mod.find_config_path(getattr(args, "config", None))
    return str(path) if path is not None else "the defaults"


def load(args: argparse.Namespace) -> Config:
    return config_mod.load(config_mod.find_config_path(args.config))


def with_store(args: argparse.Namespace, work: Callable[[Store], Awaitable[int]]) -> int:
    """Run `work` on the store the config names, and close it."""
    config = load(args)

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
