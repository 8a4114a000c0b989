"""`relay check-config`: the same validation as `serve`, then whether the store and the bucket
the config names can be reached and written, each problem naming its key."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import aiohttp

from relay.cli.common import database_name, load, one_line
from relay.config import Config
from relay.errors import ConfigError
from relay.storage import S3Library, StorageError
from relay.store import open_store

CONNECT_TIMEOUT_S = 15.0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    check = sub.add_parser(
        "check-config",
        parents=[common],
        help="validate the config, check its database (SQLite: the path is writable; PostgreSQL:"
        " open it, creating the tables as serve would) and write to its bucket, then exit",
    )
    check.add_argument(
        "--offline", action="store_true", help="validate the file only; reach nothing"
    )
    check.set_defaults(run=cmd_check_config)


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load(args)
    problems = [] if args.offline else asyncio.run(reach(config))
    if problems:
        print(f"relay: {config.source} is valid, but:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print(
        f"{config.source}: OK ({len(config.channels)} channels, {len(config.keys)} static keys, "
        f"models: {', '.join(sorted({m for c in config.channels for m in c.models}))})"
    )
    if not args.offline:
        print(
            f"store {database_name(config.store.url)} and storage {_storage_name(config)}: reached"
        )
    return 0


def _storage_name(config: Config) -> str:
    s3 = config.storage.s3
    if config.storage.backend == "s3" and s3 is not None:
        return f"s3 bucket {s3.bucket!r} at {s3.endpoint}"
    return f"{config.server.data_dir}/videos"


async def reach(config: Config) -> list[str]:
    """What is wrong with the store and the storage the config names, one line each."""
    return [p for p in (await _store(config), await _storage(config)) if p]


async def _store(config: Config) -> str | None:
    url = config.store.url
    if url.startswith("sqlite:///"):
        return _writable("store.url", url.removeprefix("sqlite:///"))
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            store = await open_store(url, pool_size=1)
    except ConfigError as exc:
        return "; ".join(exc.problems)
    except TimeoutError:
        return f"store.url: {database_name(url)} did not answer within {CONNECT_TIMEOUT_S:g} s"
    except Exception as exc:  # the driver's errors name the cause (host, password, database)
        return f"store.url: cannot open the database at {database_name(url)}: {one_line(exc)}"
    await store.close()
    return None


def _writable(key: str, path: str) -> str | None:
    """Whether serve could open `path` (a file or a folder); never creates it here. A path that
    does not exist yet is not judged: serve makes it, or systemd does (`StateDirectory=`) before
    serve starts, where this check, run as the service user, could not."""
    if os.path.exists(path):
        return None if os.access(path, os.R_OK | os.W_OK) else f"{key}: {path} is not writable"
    existing = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return None if os.path.isdir(existing) else f"{key}: {existing} is a file, not a folder"


async def _storage(config: Config) -> str | None:
    s3 = config.storage.s3
    if config.storage.backend != "s3" or s3 is None:
        return _writable("server.data_dir", str(config.server.data_dir / "videos"))
    timeout = aiohttp.ClientTimeout(total=CONNECT_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            await S3Library(s3, session).check()
        except StorageError as exc:  # also a refused connection or a timeout
            return f"storage.s3: {exc} (endpoint {s3.endpoint})"
    return None
