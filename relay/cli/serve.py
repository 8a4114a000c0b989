"""`relay serve`: the relay itself, until SIGTERM; SIGHUP reloads; a start that fails closes
what it opened, says why in one line, and exits non-zero.

The stop (SIGTERM or SIGINT), as config.md and operations.md have it: stop listening, close idle
connections at once, give the requests in flight up to `SHUTDOWN_GRACE_S` (10 s) to finish, cut
whatever is still running (a download's client sees its body end short, never a complete-looking
file), close the app's resources, exit 0. With nothing in flight that takes a few milliseconds.
A second SIGTERM or SIGINT during the grace ends it at once (an operator pressing Ctrl-C twice).

aiohttp's own graceful stop (`AppRunner(shutdown_timeout=...)`) is not used for the grace: it
waits up to the timeout for handlers, then only cancels the request's *body reader* and waits up to
the same timeout again, so a download that keeps writing holds the process for twice the grace (a
relay took 19.4 s). Here every request is counted by a wrapper around the low-level server's
`request_handler` (`InFlight`), the stop waits on exactly those tasks and cancels them when the
grace is over; the runner's own timeout is then only a backstop for anything left.
The connection timeouts (request head, body) are in `relay/web/timeouts.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
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
AFTER_GRACE_S = 1.0  # for cut requests to unwind, and aiohttp's own stop after that
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
        shutdown_timeout=AFTER_GRACE_S,
    )
    in_flight: InFlight | None = None
    try:
        await runner.setup()
        assert runner.server is not None
        in_flight = InFlight(runner.server.request_handler)
        # connections take the handler when they open, so this is before the site starts
        runner.server.request_handler = in_flight
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
    stop, hurry = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_stop() -> None:
        if stop.is_set():
            hurry.set()  # a second signal: no more grace
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop)

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
        loop.remove_signal_handler(signal.SIGHUP)
        await _stop(runner, in_flight, SHUTDOWN_GRACE_S, hurry)
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        log.info("stopped")
    return 0


class InFlight:
    """The app's request handler, counting the requests it is handling (their tasks)."""

    def __init__(self, handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]) -> None:
        self._handler = handler
        self.tasks: set[asyncio.Task[Any]] = set()

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            # until the task ends: the response is written after the handler returns
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return await self._handler(request)


async def _stop(
    runner: web.AppRunner, in_flight: InFlight | None, grace: float, hurry: asyncio.Event
) -> None:
    """Stop listening, let the requests in flight finish within `grace` (or until `hurry` is
    set), cut the rest, close."""
    for site in list(runner.sites):
        await site.stop()
    await asyncio.sleep(0)  # connections accepted just now reach the server first
    if runner.server is not None:
        runner.server.pre_shutdown()  # idle keep-alive connections close now, busy ones after
    late = set(in_flight.tasks) if in_flight else set()
    if not late:
        log.info("stopping: no requests in flight")
    else:
        log.info("stopping: %d requests in flight get up to %.0f s", len(late), grace)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        hurried = asyncio.create_task(hurry.wait())
        while late and not hurried.done() and (left := deadline - loop.time()) > 0:
            await asyncio.wait({*late, hurried}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            late = {task for task in late if not task.done()}
        hurried.cancel()
    if late:
        log.warning("stopping: cutting %d requests still running", len(late))
        for task in late:
            task.cancel()
        await asyncio.wait(late, timeout=AFTER_GRACE_S)
    await runner.cleanup()


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
