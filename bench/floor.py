"""aiohttp's own minimal answer to a status read, the ceiling for any one-process aiohttp server.

One route, `GET /v1/videos/{id}`, that answers the bytes of a file given at start (the relay's
own body for that path) as `application/json`: no authentication, no database, no access log,
no middleware. bench/status.py runs it beside the relay and nginx, under the same load, so the
relay's rate can be read against what aiohttp alone reaches on the same machine in the same run.

    python bench/floor.py --port 9002 --body FILE
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import HOST
from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True)
    args = parser.parse_args()
    body = args.body.read_bytes()

    async def status(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/videos/{id}", status)
    web.run_app(app, host=HOST, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
