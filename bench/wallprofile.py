"""`relay serve` with a wall-clock profile of every request, for finding where latency goes.

py-spy (bench/spy.py) shows where the relay spends CPU; a request that waits (for SQLite's
thread, an fsync, the upstream) shows up there as idle. This wrapper runs the real `relay serve`
with a middleware that profiles each request with pyinstrument in async mode, which charges the
time a coroutine spends awaiting to the line that awaits. On exit it writes one report per route
to $BENCH_WALLPROFILE_DIR (default ./wallprofile): the requests of that route combined.

    BENCH_RELAY_WRAPPER=bench/wallprofile.py BENCH_WALLPROFILE_DIR=/tmp/wp \\
        .venv/bin/python bench/create.py --quick

pyinstrument is not a project dependency: install it into the venv, or put a site-packages
that has it on PYTHONPATH.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from pyinstrument import Profiler
from pyinstrument.renderers import ConsoleRenderer
from pyinstrument.session import Session

import relay.app
from relay import cli
from relay.cli import serve as serve_command

SESSIONS: dict[str, Session] = {}
COUNTS: dict[str, int] = {}


def _route(request: web.Request) -> str:
    info = request.match_info.route.resource
    return f"{request.method} {info.canonical if info is not None else request.path}"


@web.middleware
async def profile_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    profiler = Profiler(interval=0.0002, async_mode="enabled")
    profiler.start()
    try:
        return await handler(request)
    finally:
        session = profiler.stop()
        key = _route(request)
        previous = SESSIONS.get(key)
        SESSIONS[key] = session if previous is None else Session.combine(previous, session)
        COUNTS[key] = COUNTS.get(key, 0) + 1


def write_reports() -> None:
    folder = Path(os.environ.get("BENCH_WALLPROFILE_DIR", "wallprofile"))
    folder.mkdir(parents=True, exist_ok=True)
    renderer = ConsoleRenderer(unicode=False, color=False, show_all=False, short_mode=False)
    for key, session in SESSIONS.items():
        name = key.replace(" ", "_").replace("/", "_").strip("_")
        per_request = session.duration / COUNTS[key] * 1000
        text = f"{key}: {COUNTS[key]} requests, {per_request:.2f} ms each on average\n"
        (folder / f"{name}.txt").write_text(text + renderer.render(session))


def main() -> int:
    original = relay.app.create_app

    def create_app(*args: Any, **kwargs: Any) -> web.Application:
        app = original(*args, **kwargs)
        app.middlewares.insert(0, profile_requests)
        return app

    serve_command.create_app = create_app  # type: ignore[assignment]
    try:
        return cli.main(sys.argv[1:])
    finally:
        write_reports()


if __name__ == "__main__":
    sys.exit(main())
