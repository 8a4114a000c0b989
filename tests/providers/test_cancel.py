"""Cancel through the relay against the Seedance, DashScope, Vidu, vLLM-Omni and Gemini Omni
fakes: the real upstream call, each page's refusals (a running task), the race with a job that
just finished, outages, and a credential canary over the whole cancel path."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from relay.config import Config
from relay.providers import REGISTRY
from relay.providers.dashscope import DashScopeProvider
from relay.providers.seedance import SeedanceProvider
from relay.providers.vidu import ViduProvider
from tests.conftest import Relay, auth
from tests.fakes.base import FakeUpstream
from tests.fakes.dashscope import DashScopeFake
from tests.fakes.gemini_omni import GeminiOmniFake
from tests.fakes.seedance import SeedanceFake
from tests.fakes.vidu import ViduFake
from tests.fakes.vllm_omni import FakeVllmOmni

IDLE_POLLER = {"interval_s": 60, "max_interval_s": 60}  # only cancel asks the upstream


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "seedance", SeedanceProvider)
    monkeypatch.setitem(REGISTRY, "dashscope", DashScopeProvider)
    monkeypatch.setitem(REGISTRY, "vidu", ViduProvider)


@pytest.fixture
async def seedance() -> AsyncIterator[SeedanceFake]:
    server = SeedanceFake()
    server.polls_to_finish = 10
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def dashscope() -> AsyncIterator[DashScopeFake]:
    server = DashScopeFake()
    server.polls_to_finish = 10
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def vidu() -> AsyncIterator[ViduFake]:
    server = ViduFake()
    server.polls_to_finish = 10
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def gemini() -> AsyncIterator[GeminiOmniFake]:
    server = GeminiOmniFake()
    server.polls_to_finish = 10
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def vllm() -> AsyncIterator[FakeVllmOmni]:
    server = FakeVllmOmni()
    server.polls_to_finish = 10
    await server.start()
    yield server
    await server.close()


Start = Callable[[FakeUpstream], Any]


@pytest.fixture
def start(start_relay: Callable[[Config], Any], make_config: Callable[..., Config]) -> Start:
    async def run(fake: FakeUpstream) -> Relay:
        config = make_config(
            channels=[fake.channel(fake.base_url)],
            polling=IDLE_POLLER,
        )
        relay: Relay = await start_relay(config)
        return relay

    return run


async def cancel(relay: Relay, video_id: str) -> tuple[int, dict[str, Any]]:
    resp = await relay.client.post(f"/v1/videos/{video_id}/cancel", headers=auth())
    return resp.status, await resp.json()


# --- Seedance: DELETE cancels a queued task, refuses a running one --------------------------


async def test_seedance_cancels_a_queued_task(start: Start, seedance: SeedanceFake):
    relay = await start(seedance)
    video = await relay.create()
    [upstream_id] = seedance.tasks
    status, body = await cancel(relay, video["id"])
    assert status == 200, body
    assert body["status"] == "failed" and body["error"]["code"] == "cancelled"
    assert seedance.tasks[upstream_id].status == "cancelled"
    [call] = seedance.calls(f"/contents/generations/tasks/{upstream_id}", "DELETE")
    assert call.headers["Authorization"] == f"Bearer {seedance.api_key}"


async def test_seedance_refuses_a_running_task_and_it_runs_on(start: Start, seedance: SeedanceFake):
    relay = await start(seedance)
    video = await relay.create()
    [task] = seedance.tasks.values()
    task.status, task.polls = "running", 3
    status, body = await cancel(relay, video["id"])
    assert status == 400
    assert body["error"]["code"] == "unsupported_feature"
    assert "queued" in body["error"]["message"] and "runs on" in body["error"]["message"]
    assert seedance.calls(f"/contents/generations/tasks/{task.id}", "DELETE") == []
    assert task.status == "running"
    assert (await relay.get(video["id"]))["status"] in ("queued", "in_progress")


async def test_seedance_delete_refused_in_the_race_settles_on_the_poll(
    start: Start, seedance: SeedanceFake
):
    """The task left the queue between the adapter's look and its DELETE: Ark refuses, the
    relay polls once, and the task, still running, runs on."""
    relay = await start(seedance)
    video = await relay.create()
    seedance.fail_next("delete", "bad_request")
    status, body = await cancel(relay, video["id"])
    assert status == 400 and body["error"]["code"] == "unsupported_feature"
    assert (await relay.get(video["id"]))["status"] in ("queued", "in_progress")


async def test_seedance_job_that_just_finished_keeps_its_result(
    start: Start, seedance: SeedanceFake
):
    seedance.polls_to_finish = 1  # done at the first look upstream
    relay = await start(seedance)
    video = await relay.create()
    [upstream_id] = seedance.tasks
    status, body = await cancel(relay, video["id"])
    assert status == 200, body
    assert body["status"] == "completed" and body["error"] is None
    # never a DELETE of a finished task: on Ark that deletes the record with its result
    assert seedance.calls(f"/contents/generations/tasks/{upstream_id}", "DELETE") == []
    resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 200


async def test_seedance_outage_is_a_502_and_the_task_runs_on(start: Start, seedance: SeedanceFake):
    relay = await start(seedance)
    video = await relay.create()
    seedance.fail_next("poll", "internal")
    status, body = await cancel(relay, video["id"])
    assert status == 502 and body["error"]["code"] == "upstream_error"
    assert "retry is safe" in body["error"]["message"]
    assert (await relay.get(video["id"]))["status"] == "queued"
    status, body = await cancel(relay, video["id"])  # and a retry works
    assert status == 200 and body["error"]["code"] == "cancelled"


# --- DashScope: POST /tasks/{id}/cancel stops a PENDING task ---------------------------------


async def test_dashscope_cancels_a_pending_task(start: Start, dashscope: DashScopeFake):
    relay = await start(dashscope)
    video = await relay.create()
    [upstream_id] = dashscope.tasks
    status, body = await cancel(relay, video["id"])
    assert status == 200, body
    assert body["status"] == "failed" and body["error"]["code"] == "cancelled"
    [call] = dashscope.calls(f"/api/v1/tasks/{upstream_id}/cancel", "POST")
    assert call.headers["Authorization"] == f"Bearer {dashscope.api_key}"
    assert dashscope.tasks[upstream_id].status == "CANCELED"


async def test_dashscope_refuses_a_running_task_and_it_runs_on(
    start: Start, dashscope: DashScopeFake
):
    relay = await start(dashscope)
    video = await relay.create()
    [task] = dashscope.tasks.values()
    task.status, task.polls = "RUNNING", 2
    status, body = await cancel(relay, video["id"])
    assert status == 400 and body["error"]["code"] == "unsupported_feature"
    assert "pending" in body["error"]["message"]
    assert task.status == "RUNNING"
    assert (await relay.get(video["id"]))["status"] in ("queued", "in_progress")


async def test_dashscope_job_that_just_finished_takes_its_real_outcome(
    start: Start, dashscope: DashScopeFake
):
    dashscope.polls_to_finish = 1
    relay = await start(dashscope)
    ok = await relay.create()
    bad = await relay.create(prompt="a storm #fail")
    async with aiohttp.ClientSession() as session:  # the jobs end upstream, unseen by the relay
        for task_id in list(dashscope.tasks):
            url = f"{dashscope.base_url}/api/v1/tasks/{task_id}"
            headers = {"Authorization": f"Bearer {dashscope.api_key}"}
            async with session.get(url, headers=headers) as resp:
                assert resp.status == 200
    status, body = await cancel(relay, ok["id"])
    assert status == 200 and body["status"] == "completed", body
    status, body = await cancel(relay, bad["id"])
    assert status == 200 and body["status"] == "failed"
    assert body["error"]["code"] != "cancelled"  # the upstream's own failure


async def test_dashscope_cancel_path_missing_leaves_the_task_running(
    start: Start, dashscope: DashScopeFake
):
    """The page leaves the path unconfirmed: a 404 there is a refusal, and the task runs on."""
    relay = await start(dashscope)
    video = await relay.create()
    dashscope.fail_next("cancel", "not_found")
    status, body = await cancel(relay, video["id"])
    assert status == 400 and body["error"]["code"] == "unsupported_feature"
    assert (await relay.get(video["id"]))["status"] == "queued"


async def test_dashscope_refused_credentials_are_a_502(start: Start, dashscope: DashScopeFake):
    relay = await start(dashscope)
    video = await relay.create()
    dashscope.fail_next("cancel", "auth")
    status, body = await cancel(relay, video["id"])
    assert status == 502 and body["error"]["code"] == "upstream_error"
    assert (await relay.get(video["id"]))["status"] == "queued"


# --- Vidu: POST /ent/v2/tasks/{id}/cancel ---------------------------------------------------


async def test_vidu_cancels_a_running_task(start: Start, vidu: ViduFake):
    relay = await start(vidu)
    video = await relay.create()
    [task] = vidu.tasks.values()
    status, body = await cancel(relay, video["id"])
    assert status == 200, body
    assert body["status"] == "failed" and body["error"]["code"] == "cancelled"
    [call] = vidu.calls(f"/ent/v2/tasks/{task.id}/cancel", "POST")
    assert call.headers["Authorization"] == f"Token {vidu.api_key}"
    assert task.cancelled


async def test_vidu_job_that_just_finished_keeps_its_result(start: Start, vidu: ViduFake):
    vidu.polls_to_finish = 1
    relay = await start(vidu)
    video = await relay.create()
    [task] = vidu.tasks.values()
    status, body = await cancel(relay, video["id"])
    assert status == 200 and body["status"] == "completed", body
    assert vidu.calls(f"/ent/v2/tasks/{task.id}/cancel", "POST") == []


# --- Gemini Omni: POST .../cancel while the interaction runs -----------------------------------


async def test_gemini_omni_cancels_a_running_interaction(start: Start, gemini: GeminiOmniFake):
    relay = await start(gemini)
    video = await relay.create()
    [item] = gemini.interactions.values()
    status, body = await cancel(relay, video["id"])
    assert status == 200, body
    assert body["status"] == "failed" and body["error"]["code"] == "cancelled"
    [call] = [r for r in gemini.requests if r.path.endswith("/cancel")]
    assert call.method == "POST" and call.headers["x-goog-api-key"] == gemini.api_key
    assert item.cancelled


async def test_gemini_omni_refusal_of_a_finished_job_keeps_its_result(
    start: Start, gemini: GeminiOmniFake
):
    gemini.polls_to_finish = 0  # finished before the cancel arrives: Google answers 400
    gemini.processing_reads = 0  # and its file is ready at the relay's one poll after that
    relay = await start(gemini)
    video = await relay.create()
    status, body = await cancel(relay, video["id"])
    assert status == 200 and body["status"] == "completed", body
    assert [r for r in gemini.requests if r.path.endswith("/cancel")]


# --- vLLM-Omni: DELETE cancels a queued or running job ---------------------------------------


async def test_vllm_omni_cancels_with_delete(start: Start, vllm: FakeVllmOmni):
    relay = await start(vllm)
    video = await relay.create()
    [upstream_id] = vllm.videos
    status, body = await cancel(relay, video["id"])
    assert status == 200, body
    assert body["status"] == "failed" and body["error"]["code"] == "cancelled"
    assert vllm.calls(f"/v1/videos/{upstream_id}", "DELETE")
    assert vllm.videos == {}


async def test_vllm_omni_slow_cancel_is_still_a_cancel(start: Start, vllm: FakeVllmOmni):
    relay = await start(vllm)
    video = await relay.create()
    vllm.slow_cancels = 1
    status, body = await cancel(relay, video["id"])
    assert status == 200 and body["error"]["code"] == "cancelled", body


async def test_vllm_omni_finished_job_is_not_deleted(start: Start, vllm: FakeVllmOmni):
    vllm.polls_to_finish = 1
    relay = await start(vllm)
    video = await relay.create()
    [upstream_id] = vllm.videos
    status, body = await cancel(relay, video["id"])
    assert status == 200 and body["status"] == "completed", body
    assert vllm.calls(f"/v1/videos/{upstream_id}", "DELETE") == []
    assert upstream_id in vllm.videos


async def test_openai_itself_cannot_cancel(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    config = make_config(
        channels=[
            {
                "name": "sora",
                "provider": "openai",
                "api_key": "sk-none",
                "base_url": "http://127.0.0.1:9/v1",
                "models": ["sora-2"],
            }
        ]
    )
    relay: Relay = await start_relay(config)
    resp = await relay.client.get("/v1/models", headers=auth())
    assert [m["cancel"] for m in (await resp.json())["data"]] == [False]


# --- the canary ------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["seedance", "dashscope"])
async def test_no_credential_or_upstream_url_on_the_cancel_path(
    which: str,
    start: Start,
    seedance: SeedanceFake,
    dashscope: DashScopeFake,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    fake: SeedanceFake | DashScopeFake = seedance if which == "seedance" else dashscope
    relay = await start(fake)
    answers = []
    for setup in ("ok", "running", "outage", "auth"):
        video = await relay.create()
        [task] = [t for t in fake.tasks.values() if t.status in ("queued", "PENDING")][-1:]
        if setup == "running":
            task.status, task.polls = ("running", 3) if which == "seedance" else ("RUNNING", 2)
        elif setup == "outage":
            fake.fail_next("poll" if which == "seedance" else "cancel", "internal")
        elif setup == "auth":
            fake.fail_next("poll" if which == "seedance" else "cancel", "auth")
        resp = await relay.client.post(f"/v1/videos/{video['id']}/cancel", headers=auth())
        answers.append(await resp.text())
        answers.append(
            await (await relay.client.get(f"/v1/videos/{video['id']}", headers=auth())).text()
        )
    seen = "\n".join(answers)
    assert fake.api_key not in seen and fake.api_key not in caplog.text
    assert fake.base_url not in seen
    host = fake.base_url.split("//", 1)[1]
    assert host not in seen
    for record in caplog.records:
        if record.levelno >= logging.INFO:
            assert host not in record.getMessage(), record.getMessage()
