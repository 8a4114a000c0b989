"""A tiny fake of the OpenAI Videos API for the benchmarks (shared/spec/providers/openai.md).

    POST /v1/videos                 -> a `queued` video object, answered at once
    GET  /v1/videos/{id}            -> `completed`, or `in_progress` when the prompt asked for it
                                       (or the id is unknown: rows the poller benchmark wrote
                                       straight into the relay's database); after --poll-delay
    GET  /v1/videos/{id}/content    -> 302 to the URL named in the prompt (the byte server, nginx)

Prompts carry directives: `content=<url>` sets where /content redirects, `status=in_progress`
keeps the video running. With --record, every retrieve's arrival time (time.time()) is kept and
`GET /_bench/polls` returns them as [[upstream id, time], ...]; `POST /_bench/reset` clears them.

    python bench/fake_api.py --port 9001 [--poll-delay 0.2] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from typing import Any

import orjson
from _common import HOST
from aiohttp import web

VIDEOS: web.AppKey[dict[str, dict[str, Any]]] = web.AppKey("videos", dict)
POLLS: web.AppKey[list[tuple[str, float]]] = web.AppKey("polls", list)
OPTIONS: web.AppKey[argparse.Namespace] = web.AppKey("options", argparse.Namespace)
_ids = itertools.count(1)


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
        status,
    )


def _video(video_id: str, status: str, created: int, prompt: str = "") -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": video_id,
        "object": "video",
        "created_at": created,
        "status": status,
        "model": "sora-2",
        "progress": 100 if done else (0 if status == "queued" else 40),
        "seconds": "4",
        "size": "720x1280",
        "prompt": prompt,
        "completed_at": created + 60 if done else None,
        "expires_at": int(time.time()) + 3600 if done else None,
        "remixed_from_video_id": None,
        "error": None,
    }


def _authorized(request: web.Request) -> bool:
    return request.headers.get("Authorization", "").startswith("Bearer ")


async def create(request: web.Request) -> web.Response:
    if not _authorized(request):
        return _error(401, "Incorrect API key provided.")
    if request.content_type == "application/json":
        fields = orjson.loads(await request.read())
    else:
        fields = dict(await request.post())
    prompt = str(fields.get("prompt", ""))
    directives = dict(word.split("=", 1) for word in prompt.split() if "=" in word)
    video_id = f"video_bench{next(_ids):09d}"
    created = int(time.time())
    request.app[VIDEOS][video_id] = {"prompt": prompt, "created": created, **directives}
    return _json(_video(video_id, "queued", created, prompt))


async def retrieve(request: web.Request) -> web.Response:
    arrived = time.time()
    options = request.app[OPTIONS]
    video_id = request.match_info["video_id"]
    if options.record:
        request.app[POLLS].append((video_id, arrived))
    if options.poll_delay:
        await asyncio.sleep(options.poll_delay)
    known = request.app[VIDEOS].get(video_id)
    if known is None:
        return _json(_video(video_id, "in_progress", int(arrived) - 60))
    return _json(
        _video(video_id, known.get("status", "completed"), known["created"], known["prompt"])
    )


async def content(request: web.Request) -> web.Response:
    known = request.app[VIDEOS].get(request.match_info["video_id"])
    if known is None or "content" not in known:
        return _error(404, "video not found")
    raise web.HTTPFound(known["content"])


async def polls(request: web.Request) -> web.Response:
    return _json(request.app[POLLS])


async def reset(request: web.Request) -> web.Response:
    request.app[POLLS].clear()
    return _json({"ok": True})


def make_app(options: argparse.Namespace) -> web.Application:
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app[OPTIONS] = options
    app[VIDEOS] = {}
    app[POLLS] = []
    app.router.add_post("/v1/videos", create)
    app.router.add_get("/v1/videos/{video_id}", retrieve)
    app.router.add_get("/v1/videos/{video_id}/content", content)
    app.router.add_get("/_bench/polls", polls)
    app.router.add_post("/_bench/reset", reset)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--poll-delay", type=float, default=0.0, help="seconds before a retrieve answers"
    )
    parser.add_argument("--record", action="store_true", help="keep every retrieve's arrival time")
    options = parser.parse_args()
    web.run_app(
        make_app(options), host=HOST, port=options.port, access_log=None, print=None, backlog=1024
    )


if __name__ == "__main__":
    main()
