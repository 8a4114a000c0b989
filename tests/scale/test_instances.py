"""Several relays, one PostgreSQL, one bucket (scale-out.md, "What must be shown").

Three `relay serve` processes share a real PostgreSQL and a real S3-compatible store, and one
fake upstream that watches them: every create, every poll (how many at once for one task), how
many jobs run at once. A few hundred tasks are created round-robin across the three, one
instance is killed with SIGKILL half-way and started again, and then every task must have
finished exactly once: one terminal state, one webhook event, one stored copy, one upstream job
per acknowledged task, no task polled by two instances at once, `max_in_flight` held at every
moment, and every video downloadable with Range from every instance.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fakes.base import VIDEO
from tests.fakes.openai import FakeOpenAI
from tests.s3server import S3Server
from tests.store.pgcluster import Cluster

KEY = "sk-scale-out-0123456789abcdef"
TASKS = 240
MAX_IN_FLIGHT = 12
CLIENTS = 12


class Watched(FakeOpenAI):
    """The OpenAI fake, slowed a little and watching what the relays do to it."""

    polls_to_finish = 3

    def __init__(self) -> None:
        super().__init__()
        self.polling: collections.Counter[str] = collections.Counter()
        self.overlapping_polls = 0
        self.running: set[str] = set()
        self.most_running = 0
        self.accepted = 0

    async def create(self, request: web.Request) -> web.Response:
        resp = await super().create(request)
        if resp.status == 200:
            self.accepted += 1
            self.running.add(json.loads(resp.text or "{}")["id"])
            self.most_running = max(self.most_running, len(self.running))
        return resp

    async def retrieve(self, request: web.Request) -> web.Response:
        video_id = request.match_info["video_id"]
        self.polling[video_id] += 1
        if self.polling[video_id] > 1:
            self.overlapping_polls += 1
        try:
            await asyncio.sleep(0.02)  # long enough for a second poller to overlap
            resp = await super().retrieve(request)
        finally:
            self.polling[video_id] -= 1
        video = self.videos.get(video_id)
        if video is not None and video["status"] in ("completed", "failed"):
            self.running.discard(video_id)
        return resp


class Receiver:
    """Webhook events as they arrive, by video."""

    def __init__(self) -> None:
        self.events: dict[str, set[str]] = collections.defaultdict(set)
        self.deliveries = 0
        self.app = web.Application()
        self.app.router.add_post("/hook", self.hook)
        self.server: TestServer | None = None

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.deliveries += 1
        self.events[body["data"]["id"]].add(body["id"])
        return web.Response(status=204)


def write_config(
    path: Path, port: int, data_dir: Path, pg: str, s3: S3Server, upstream: Watched, hook: str
) -> None:
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{data_dir}"
allow_private_networks = true

[store]
url = "{pg}"
pool_size = 4

[storage]
keep_videos = true
backend = "s3"

[storage.s3]
endpoint = "{s3.endpoint}"
bucket = "{s3.bucket}"
region = "us-east-1"
access_key = "{s3.access_key}"
secret_key = "{s3.secret_key}"
path_style = true

[polling]
interval_s = 0.2
max_interval_s = 0.5

[limits]
requests_per_minute = 0

[[keys]]
name = "t"
key = "{KEY}"
user = "tester"
role = "admin"

[[webhooks]]
url = "{hook}"
secret = "whsec_c2NhbGUtb3V0LXNlY3JldA=="

[[channels]]
name = "openai"
provider = "openai"
base_url = "{upstream.base_url}/v1"
api_key = "{upstream.api_key}"
models = ["sora-2"]
max_in_flight = {MAX_IN_FLIGHT}
# a create cut off by the kill holds its submit lease for timeout_s + 30 s; then a sweep fails it
timeout_s = 5
"""
    )


class Instance:
    def __init__(self, index: int, root: Path, config: Path, port: int) -> None:
        self.index = index
        self.config = config
        self.port = port
        self.log = root / f"relay-{index}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "relay", "serve", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def healthy(session: aiohttp.ClientSession, instance: Instance, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with session.get(instance.url + "/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, instance.log.read_text()[-3000:]
        await asyncio.sleep(0.1)


async def database_rows(url: str) -> dict[str, list[Any]]:
    import asyncpg

    con = await asyncpg.connect(url)
    try:
        return {
            "tasks": await con.fetch("SELECT id, status, upstream_id FROM tasks"),
            "copies": await con.fetch(
                "SELECT task_id, variant, min(state) AS state, count(*) AS n FROM copies"
                " GROUP BY task_id, variant"
            ),
        }
    finally:
        await con.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_three_relays_share_the_work_exactly_once(
    tmp_path: Path, pg_cluster: Cluster, s3_server: S3Server
) -> None:
    name = "scale_out"
    pg_cluster.create_database(name)
    upstream, receiver = Watched(), Receiver()
    await upstream.start()
    receiver.server = TestServer(receiver.app, host="127.0.0.1")
    await receiver.server.start_server()
    hook = str(receiver.server.make_url("/hook"))
    instances = []
    for i in range(3):
        config = tmp_path / f"relay-{i}.toml"
        write_config(
            config,
            free_port(),
            tmp_path / f"data-{i}",
            pg_cluster.url(name),
            s3_server,
            upstream,
            hook,
        )
        instances.append(
            Instance(i, tmp_path, config, int(config.read_text().split("port = ")[1].split()[0]))
        )
    headers = {"Authorization": f"Bearer {KEY}"}
    acknowledged: list[str] = []
    retried = 0
    try:
        for instance in instances:
            instance.start()
        async with aiohttp.ClientSession() as session:
            for instance in instances:
                await healthy(session, instance)
            queue: asyncio.Queue[int] = asyncio.Queue()
            for n in range(TASKS):
                queue.put_nowait(n)

            async def client() -> None:
                nonlocal retried
                while not queue.empty():
                    n = queue.get_nowait()
                    while True:
                        target = (
                            instances[n % 3]
                            if instances[n % 3].proc.poll() is None
                            else instances[(n + 1) % 3]
                        )  # type: ignore[union-attr]
                        try:
                            async with session.post(
                                target.url + "/v1/videos",
                                json={"prompt": f"task {n}"},
                                headers=headers,
                            ) as resp:
                                if resp.status == 200:
                                    acknowledged.append((await resp.json())["id"])
                                    break
                                assert resp.status in (429, 503), await resp.text()
                        except aiohttp.ClientError:
                            pass  # the instance was killed mid-request: try again elsewhere
                        retried += 1
                        await asyncio.sleep(0.05)

            async def killer() -> None:
                while len(acknowledged) < TASKS // 2:
                    await asyncio.sleep(0.02)
                instances[1].kill()
                await asyncio.sleep(1.0)
                instances[1].start()

            await asyncio.gather(killer(), *(client() for _ in range(CLIENTS)))
            await healthy(session, instances[1])
            # every acknowledged task finishes, whichever instance polls it
            deadline = time.monotonic() + 120
            pending = set(acknowledged)
            while pending:
                assert time.monotonic() < deadline, f"{len(pending)} tasks never finished"
                for video_id in list(pending):
                    async with session.get(
                        instances[0].url + f"/v1/videos/{video_id}", headers=headers
                    ) as resp:
                        body = await resp.json()
                    if body["status"] in ("completed", "failed"):
                        assert body["status"] == "completed", body
                        pending.discard(video_id)
                await asyncio.sleep(0.2)
            # webhooks and copies catch up
            deadline = time.monotonic() + 60
            while len(receiver.events) < len(acknowledged):
                assert time.monotonic() < deadline, "webhooks missing"
                await asyncio.sleep(0.2)
            # every video, from every instance, with Range
            for video_id in acknowledged[:: max(1, len(acknowledged) // 30)]:
                for instance in instances:
                    async with session.get(
                        instance.url + f"/v1/videos/{video_id}/content",
                        headers={**headers, "Range": "bytes=100-199"},
                    ) as resp:
                        assert resp.status == 206, (instance.index, await resp.text())
                        assert await resp.read() == VIDEO[100:200]
        assert len(set(acknowledged)) == len(acknowledged) == TASKS
        deadline = time.monotonic() + 90
        while True:  # the copiers catch up; the cut creates' submit leases run out and a sweep
            rows = await database_rows(pg_cluster.url(name))  # (every 10 s) fails them
            copied = all(r["state"] == "stored" for r in rows["copies"])
            swept = all(
                r["status"] == "failed" for r in rows["tasks"] if r["id"] not in set(acknowledged)
            )
            if (copied and swept) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        # one terminal state each: every acknowledged task completed once, with its own job
        done = {r["id"]: r for r in rows["tasks"] if r["id"] in set(acknowledged)}
        assert len(done) == TASKS and {r["status"] for r in done.values()} == {"completed"}
        assert len({r["upstream_id"] for r in done.values()}) == TASKS
        # the creates the kill cut off: not acknowledged, failed once their lease ran out, never
        # retried (no relay can tell its own cut submits from a live relay's slow ones sooner)
        cut = [r for r in rows["tasks"] if r["id"] not in set(acknowledged)]
        assert len(cut) <= CLIENTS and all(r["status"] == "failed" for r in cut)
        assert TASKS <= upstream.accepted <= TASKS + len(cut)
        # one stored copy per task and variant, in the bucket
        assert rows["copies"] and all(
            r["n"] == 1 and r["state"] == "stored" for r in rows["copies"]
        )
        assert {r["task_id"] for r in rows["copies"] if r["variant"] == "video"} >= set(
            acknowledged
        )
        assert upstream.overlapping_polls == 0, "a task was polled by two instances at once"
        assert upstream.most_running <= MAX_IN_FLIGHT
        assert all(len(events) == 1 for events in receiver.events.values())
        assert set(receiver.events) >= set(acknowledged)
    finally:
        for instance in instances:
            instance.stop()
        await upstream.close()
        await receiver.server.close()
        pg_cluster.drop_database(name)
