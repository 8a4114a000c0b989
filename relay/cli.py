"""The `relay` command: serve, check-config, users, keys."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from relay import config as config_mod
from relay.app import create_app, reload
from relay.auth import digest, display_prefix, new_api_key
from relay.config import Config
from relay.errors import ConfigError
from relay.logs import AccessLogger, setup_logging
from relay.store import Store, open_store, sqlite_url
from relay.web.keys import RUNTIME, STORE

log = logging.getLogger("relay")

SHUTDOWN_GRACE_S = 10.0
BOOTSTRAP_USER = "admin"
BOOTSTRAP_KEY_FILE = "admin.key"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except ConfigError as exc:
        source = config_mod.find_config_path(getattr(args, "config", None)) or "the defaults"
        print(f"relay: config error in {source}:", file=sys.stderr)
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

    serve = sub.add_parser("serve", parents=[common], help="run the relay")
    serve.set_defaults(run=cmd_serve)

    check = sub.add_parser("check-config", parents=[common], help="validate the config and exit")
    check.set_defaults(run=cmd_check_config)

    users = sub.add_parser("users", help="manage users").add_subparsers(metavar="ACTION")
    add = users.add_parser("add", parents=[common], help="add a user")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="the user sees every user's tasks")
    add.set_defaults(run=cmd_users_add)
    ulist = users.add_parser("list", parents=[common], help="list users")
    ulist.set_defaults(run=cmd_users_list)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(metavar="ACTION")
    create = keys.add_parser("create", parents=[common], help="create a key (printed once)")
    create.add_argument("user")
    create.add_argument("--name", default="", help="a label for the key")
    create.set_defaults(run=cmd_keys_create)
    klist = keys.add_parser("list", parents=[common], help="list keys (never the keys themselves)")
    klist.add_argument("user", nargs="?")
    klist.set_defaults(run=cmd_keys_list)
    revoke = keys.add_parser("revoke", parents=[common], help="revoke a key by its id")
    revoke.add_argument("key_id", type=int)
    revoke.set_defaults(run=cmd_keys_revoke)
    return parser


def _load(args: argparse.Namespace) -> Config:
    return config_mod.load(config_mod.find_config_path(args.config))


# --- check-config ---------------------------------------------------------------------------


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    print(
        f"{config.source}: OK ({len(config.channels)} channels, {len(config.keys)} static keys, "
        f"models: {', '.join(sorted({m for c in config.channels for m in c.models}))})"
    )
    return 0


# --- users and keys -----------------------------------------------------------------------------


def _with_store(args: argparse.Namespace, work):  # type: ignore[no-untyped-def]
    config = _load(args)

    async def run() -> int:
        store = await open_store(sqlite_url(config.server.data_dir / "relay.db"))
        try:
            return int(await work(store))
        finally:
            await store.close()

    return asyncio.run(run())


def cmd_users_add(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        if await store.get_user(args.name):
            print(f"relay: user {args.name!r} exists already", file=sys.stderr)
            return 1
        user = await store.add_user(args.name, "admin" if args.admin else "user", time.time())
        print(f"added {user.role} {user.name}")
        return 0

    if config_mod.invalid_name(args.name):
        print("relay: a user name is letters, digits, '_', '.', '-' (at most 64)", file=sys.stderr)
        return 2
    return int(_with_store(args, work))


def cmd_users_list(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        for user in await store.list_users():
            print(f"{user.name}\t{user.role}\t{_date(user.created_at)}")
        return 0

    return int(_with_store(args, work))


def cmd_keys_create(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        user = await store.get_user(args.user)
        if user is None:
            print(
                f"relay: no user {args.user!r}; add one with `relay users add {args.user}`",
                file=sys.stderr,
            )
            return 1
        key = new_api_key()
        key_id = await store.add_key(
            user.id, args.name, display_prefix(key), digest(key), time.time()
        )
        print(key)
        print(f"key {key_id} for {user.name}: shown once, keep it safe", file=sys.stderr)
        return 0

    return int(_with_store(args, work))


def cmd_keys_list(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        for key in await store.list_keys(args.user):
            status = f"revoked {_date(key.revoked_at)}" if key.revoked_at else "active"
            print(
                f"{key.id}\t{key.user}\t{key.name or '-'}\t{key.prefix}...\t"
                f"{_date(key.created_at)}\t{status}"
            )
        return 0

    return int(_with_store(args, work))


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        if await store.revoke_key(args.key_id, time.time()):
            print(f"revoked key {args.key_id}")
            return 0
        print(f"relay: no active key with id {args.key_id}", file=sys.stderr)
        return 1

    return int(_with_store(args, work))


def _date(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


# --- serve ----------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    setup_logging()
    path = config_mod.find_config_path(args.config)
    config = config_mod.load(path)
    log.info("config: %s", config.source)
    return asyncio.run(_serve(config, path))


async def _serve(config: Config, path: Path | None) -> int:
    app = create_app(config)
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log_class=AccessLogger,
        shutdown_timeout=SHUTDOWN_GRACE_S,
    )
    try:
        await runner.setup()
        await bootstrap_key(app[STORE], config)
        site = web.TCPSite(runner, config.server.host, config.server.port)
        await site.start()
    except Exception as exc:
        # whatever opened is closed again; one line says why, and the exit code tells systemd
        await runner.cleanup()
        print(f"relay: could not start: {_reason(exc)}", file=sys.stderr)
        return 1
    log.info(
        "serving on http://%s:%d (public URL %s); models: %s",
        config.server.host,
        config.server.port,
        config.server.public_url,
        ", ".join(app[RUNTIME].channels.models()),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def do_reload() -> None:
        try:
            new = config_mod.load(path)
        except ConfigError as exc:
            log.error("reload refused, keeping the old config: %s", "; ".join(exc.problems))
            return
        await reload(app, new)

    reloads: set[asyncio.Task[None]] = set()

    def on_hup() -> None:
        task = asyncio.create_task(do_reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    try:
        await stop.wait()
    finally:
        log.info("stopping: finishing requests in flight (up to %.0f s)", SHUTDOWN_GRACE_S)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        await runner.cleanup()
        log.info("stopped")
    return 0


def _reason(exc: BaseException) -> str:
    """One line naming the cause: the error itself, and where it came from when that helps."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{text} ({type(exc).__name__})" if type(exc).__name__ not in text else text


async def bootstrap_key(store: Store, config: Config) -> None:
    """With no key anywhere, make an admin key so a first run is usable, and say where it is."""
    if config.keys or await store.count_active_keys():
        return
    now = time.time()
    user = await store.get_user(BOOTSTRAP_USER) or await store.add_user(
        BOOTSTRAP_USER, "admin", now
    )
    key = new_api_key()
    await store.add_key(user.id, "bootstrap", display_prefix(key), digest(key), now)
    path = config.server.data_dir / BOOTSTRAP_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    log.warning(
        "no API key was configured: created an admin key for user %r and wrote it to %s "
        "(export RELAY_KEY=$(cat %s)); delete the file once you have copied the key",
        BOOTSTRAP_USER,
        path,
        path,
    )
