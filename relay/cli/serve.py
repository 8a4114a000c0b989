"""`relay serve`: the relay itself, until SIGTERM; SIGHUP reloads; a start that fails closes
what it opened, says why in one line, and exits non-zero."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from relay import config as config_mod
from relay.app import create_app, reload
from relay.auth import digest, display_prefix, new_api_key
from relay.config import Config
from relay.errors import ConfigError
from relay.logs import AccessLogger, setup_logging
from relay.store import Store
from relay.web.keys import RUNTIME, STORE

log = logging.getLogger("relay")

SHUTDOWN_GRACE_S = 10.0
BOOTSTRAP_USER = "admin"
BOOTSTRAP_KEY_FILE = "admin.key"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    serve = sub.add_parser("serve", parents=[common], help="run the relay")
    serve.set_defaults(run=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    # whoever starts it, what the relay creates (database, WAL, secrets, videos) is its own
    os.umask(os.umask(0o077) | 0o077)
    path = config_mod.find_config_path(args.config)
    config = config_mod.load(path)
    setup_logging(config.server.log_level, config.server.log_format)
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
    os.fchmod(fd, 0o600)  # a file left from before keeps its mode through O_TRUNC
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    log.warning(
        "no API key was configured: created an admin key for user %r and wrote it to %s "
        "(export RELAY_KEY=$(cat %s)); delete the file once you have copied the key",
        BOOTSTRAP_USER,
        path,
        path,
    )
