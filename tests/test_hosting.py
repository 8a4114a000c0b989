"""Hosted inputs (api.md, "Inputs the provider can only fetch by URL"): bytes a client sent for
an input its provider fetches by URL only are served at `{public_url}/v1/files/{token}` until
the task finishes; a public_url no provider can reach is a 400 before any upstream call."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer, unused_port

from relay.app import create_app
from relay.config import Config
from relay.hosting import MAX_LIFETIME_S, Hosted, Hosting, unreachable
from relay.logs import log_path
from relay.providers import REGISTRY
from relay.providers.seedance import SeedanceProvider
from relay.storage import LocalLibrary
from tests.conftest import Relay, auth
from tests.fakes.base import VIDEO
from tests.fakes.seedance import SeedanceFake
from tests.s3server import S3Server, s3_server  # noqa: F401 - the session fixture
from tests.storetools import update_task

V2 = "doubao-seedance-2-0-260128"
AUDIO = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def reference(kind: str, url: str) -> dict[str, Any]:
    return {"type": f"{kind}_url", f"{kind}_url": {"url": url}, "role": f"reference_{kind}"}


def with_media(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "input_reference": {"content": list(items)},
        "model": "sora-2",
        "prompt": "a cat",
    }


def inputs_on_disk(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "videos").glob("*/input-*"))


# --- the token ------------------------------------------------------------------------------


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def hosting(tmp_path: Path, clock: Clock, public_url: str = "https://relay.example.org") -> Hosting:
    return Hosting(
        LocalLibrary(tmp_path),
        b"k" * 32,
        public_url=lambda: public_url,
        allow_private=lambda: False,
        clock=clock,
    )


def test_a_token_names_its_file_until_it_expires(tmp_path: Path):
    clock = Clock()
    host = hosting(tmp_path, clock)
    hosted = Hosted("video_1", "videos/video_1/input-ab.mp4", "video/mp4", clock.now + 60)
    token = host.token(hosted)
    assert token.endswith(".mp4")  # for fetchers that look at the name
    assert host.parse(token) == Hosted(
        "video_1", "videos/video_1/input-ab.mp4", "video/mp4", int(clock.now + 60)
    )
    clock.now += 61
    assert host.parse(token) is None


def test_a_changed_or_foreign_token_names_nothing(tmp_path: Path):
    clock = Clock()
    host = hosting(tmp_path, clock)
    token = host.token(Hosted("video_1", "videos/video_1/input-ab.mp4", "video/mp4", 2e6))
    payload, mac, ext = token.split(".")
    other = hosting(tmp_path, clock).token(Hosted("video_2", "p", "video/mp4", 2e6))
    forged_payload = other.split(".")[0]
    for bad in (
        f"{forged_payload}.{mac}.{ext}",  # another payload under this signature
        f"{payload}.{mac[:-2]}AA.{ext}",
        f"{payload}.",
        "",
        "x" * 5000,
        "not base64!.@@@.mp4",
    ):
        assert host.parse(bad) is None, bad
    elsewhere = Hosting(
        LocalLibrary(tmp_path), b"j" * 32, public_url=str, allow_private=bool, clock=clock
    )
    assert elsewhere.parse(token) is None  # another relay group's key


async def test_hosting_stores_the_bytes_and_the_url_expires_within_a_day(tmp_path: Path):
    clock = Clock()
    host = hosting(tmp_path, clock)
    url, path = await host.put("video_1", VIDEO, "video/mp4")
    assert url.startswith("https://relay.example.org/v1/files/")
    assert (tmp_path / path).read_bytes() == VIDEO
    found = host.parse(url.rsplit("/", 1)[1])
    assert found is not None and found.expires_at == int(clock.now + MAX_LIFETIME_S)
    await host.drop([path])
    assert not (tmp_path / path).exists()


@pytest.mark.parametrize(
    ("public_url", "why"),
    [
        ("http://127.0.0.1:8080", "loopback"),
        ("http://[::1]:8080", "loopback"),
        ("http://localhost:8080", "local name"),
        ("http://relay.local", "local name"),
        ("http://10.0.0.5", "private"),
        ("http://192.168.1.20:8080", "private"),
        ("http://172.16.0.1", "private"),
        ("http://169.254.1.1", "private"),
        ("http://[fd00::1]", "private"),
        ("http://localhost.:8080", "local name"),
        ("http://relay:8080", "local name"),
        ("http://127.1:8080", "loopback"),
        ("http://0x7f000001", "loopback"),
        ("http://100.64.1.2", "private"),
        ("http://[::ffff:10.0.0.1]", "private"),
        ("https://relay.example.org", None),
        ("https://93.184.216.34", None),
        ("https://8.8.8.8", None),
    ],
)
def test_which_public_urls_a_provider_cannot_reach(public_url: str, why: str | None):
    said = unreachable(public_url)
    assert (said is None) if why is None else (said is not None and why in said)


# --- through the relay ----------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[SeedanceFake]:
    server = SeedanceFake(model=V2)
    server.fetch_media = True
    await server.start()
    yield server
    await server.close()


Start = Callable[..., Any]


@pytest.fixture
def start(
    monkeypatch: pytest.MonkeyPatch,
    fake: SeedanceFake,
    aiohttp_client: Callable[..., Any],
    providers: dict[str, Any],
    make_config: Callable[..., Config],
) -> Start:
    """A relay whose public_url is its own address (known before it starts)."""
    monkeypatch.setitem(REGISTRY, "seedance", SeedanceProvider)

    async def run(*, private: bool = True, **sections: Any) -> Relay:
        port = unused_port()
        server = {
            "public_url": f"http://127.0.0.1:{port}",
            "allow_private_networks": private,
            **sections.pop("server", {}),
        }
        config = make_config(
            server=server, channels=[fake.channel(fake.base_url, model=V2)], **sections
        )
        app = create_app(config, providers=providers)
        client = await aiohttp_client(TestServer(app, host="127.0.0.1", port=port))
        return Relay(client)

    return run


async def test_a_data_url_reference_video_reaches_the_provider_through_the_hosted_url(
    start: Start, fake: SeedanceFake, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    relay = await start()
    video = await relay.create(
        **with_media(
            reference("video", data_url("video/mp4", VIDEO)),
            reference("audio", data_url("audio/mpeg", AUDIO)),
        )
    )
    sent = fake.creates()[0]["content"]
    urls = [item[item["type"]]["url"] for item in sent if item["type"] != "text"]
    base = relay.url("/v1/files/")
    assert all(url.startswith(base) for url in urls), urls
    assert [(f[1], f[2], f[3]) for f in fake.fetched] == [
        (200, "video/mp4", VIDEO),
        (200, "audio/mpeg", AUDIO),
    ]
    path = urls[0][len(relay.url("")) :]

    # no auth, Range and HEAD, and the type exactly as received
    part = await relay.client.get(path, headers={"Range": "bytes=10-19"})
    assert part.status == 206 and await part.read() == VIDEO[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(VIDEO)}"
    head = await relay.client.head(path)
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(VIDEO)
    assert head.headers["Cache-Control"] == "private, no-store"
    assert head.headers["X-Content-Type-Options"] == "nosniff"
    assert len(inputs_on_disk(tmp_path / "data")) == 2

    # nothing lists it, and the row keeps a digest, not the bytes
    listed = await relay.client.get("/v1/videos", headers=auth())
    assert "/v1/files/" not in await listed.text()
    assert (await relay.client.get("/v1/files/")).status == 404

    token = path.rsplit("/", 1)[1]
    ours = [r for r in caplog.records if r.name.startswith("relay")]
    assert ours and not [r for r in ours if token in r.getMessage()]  # a credential
    assert log_path(path) == "/v1/files/(token)"  # what `relay serve`'s access line shows

    finished = await relay.wait(video["id"])
    assert finished["status"] == "completed"
    gone = await relay.client.get(path)
    assert gone.status == 404
    assert (await gone.json())["error"]["code"] == "not_found"
    assert inputs_on_disk(tmp_path / "data") == []


async def test_a_loopback_public_url_is_a_400_naming_the_input_before_any_upstream_call(
    start: Start, fake: SeedanceFake, tmp_path: Path
):
    relay = await start(private=False)
    resp = await relay.client.post(
        "/v1/videos",
        json=with_media(reference("video", data_url("video/mp4", VIDEO))),
        headers=auth(),
    )
    body = await resp.json()
    assert resp.status == 400, body
    assert body["error"]["param"] == "input_reference.content[0].video_url.url"
    assert "public_url" in body["error"]["message"] and "loopback" in body["error"]["message"]
    assert fake.creates() == []
    assert inputs_on_disk(tmp_path / "data") == []


async def test_a_url_reference_is_sent_as_it_is(start: Start, fake: SeedanceFake):
    fake.fetch_media = False
    relay = await start(private=False)  # nothing to host, so public_url does not matter
    await relay.create(**with_media(reference("video", "https://cdn.example.org/ref.mp4")))
    sent = fake.creates()[0]["content"]
    assert {"type": "video_url", "video_url": {"url": "https://cdn.example.org/ref.mp4"},
            "role": "reference_video"} in sent  # fmt: skip


async def test_no_channel_taking_the_job_removes_what_was_hosted(
    start: Start, fake: SeedanceFake, tmp_path: Path
):
    relay = await start()
    fake.fail_next("submit", "overdue")
    resp = await relay.client.post(
        "/v1/videos",
        json=with_media(reference("video", data_url("video/mp4", VIDEO))),
        headers=auth(),
    )
    assert resp.status >= 400
    assert len(fake.fetched) == 0  # refused before the fake downloaded anything
    assert inputs_on_disk(tmp_path / "data") == []


async def test_a_forged_token_is_a_plain_404(start: Start, fake: SeedanceFake):
    relay = await start()
    await relay.create(**with_media(reference("video", data_url("video/mp4", VIDEO))))
    url = fake.creates()[0]["content"][1]["video_url"]["url"]
    payload, mac, ext = url.rsplit("/", 1)[1].split(".")
    for token in (f"{payload}.{mac[::-1]}.{ext}", "abc", f"{payload}x.{mac}.{ext}"):
        resp = await relay.client.get(f"/v1/files/{token}")
        assert resp.status == 404, token


@pytest.mark.parametrize(
    ("item", "says"),
    [
        (reference("video", data_url("video/mp4", b"<html>not a video</html>")), "MP4"),
        (reference("audio", data_url("audio/mpeg", b"<?xml version=1.0?>")), "WAV"),
        (reference("video", "data:video/mp4,plain"), "base64"),
        (reference("video", "ftp://example.org/a.mp4"), "http(s) URL or a data: URL"),
    ],
)
async def test_bad_reference_media_is_a_400_naming_the_item(
    start: Start, fake: SeedanceFake, item: dict[str, Any], says: str
):
    relay = await start()
    resp = await relay.client.post("/v1/videos", json=with_media(item), headers=auth())
    body = await resp.json()
    assert resp.status == 400, body
    kind = item["type"]
    assert body["error"]["param"] == f"input_reference.content[0].{kind}.url"
    assert says in body["error"]["message"]
    assert fake.creates() == []


async def test_reference_media_over_max_media_mb_is_refused(start: Start, fake: SeedanceFake):
    relay = await start(server={"max_media_mb": 0.01})
    resp = await relay.client.post(
        "/v1/videos",
        json=with_media(reference("video", data_url("video/mp4", VIDEO))),
        headers=auth(),
    )
    body = await resp.json()
    assert resp.status == 413, body
    assert fake.creates() == []


async def test_hosted_inputs_live_in_the_bucket_with_s3_storage(
    start: Start,
    fake: SeedanceFake,
    s3_server: S3Server,  # noqa: F811
    tmp_path: Path,
):
    """Every relay of a group can serve them: the bytes are in the shared bucket."""
    relay = await start(storage=s3_server.storage())
    video = await relay.create(**with_media(reference("video", data_url("video/mp4", VIDEO))))
    assert [(f[1], f[2], f[3]) for f in fake.fetched] == [(200, "video/mp4", VIDEO)]
    url = fake.creates()[0]["content"][1]["video_url"]["url"]
    path = url[len(relay.url("")) :]
    part = await relay.client.get(path, headers={"Range": "bytes=0-99"})
    assert part.status == 206 and await part.read() == VIDEO[:100]
    assert part.headers["Content-Type"] == "video/mp4"
    assert not (tmp_path / "data" / "videos").exists()  # nothing on the relay's own disk
    await relay.wait(video["id"])
    assert (await relay.client.get(path)).status == 404


async def test_inputs_of_a_submit_a_crash_cut_off_are_removed_with_the_task(
    start: Start, fake: SeedanceFake, tmp_path: Path
):
    """The paths are recorded only with the upstream id: after a crash in between, the sweep
    that fails the task finds its inputs by name."""
    relay = await start()
    host = relay.videos.ctx.hosting
    assert host is not None
    video = await relay.create()  # a real row to stand for the cut-off one
    await host.put(video["id"], VIDEO, "video/mp4")
    await host.put(video["id"], AUDIO, "audio/mpeg")
    assert len(inputs_on_disk(tmp_path / "data")) == 2
    cut = {"status": "queued", "upstream_id": None, "lease_owner": "dead"}
    assert await update_task(relay.store, video["id"], {**cut, "lease_until": relay.clock() - 1})
    assert await relay.lifecycle.fail_stale_submissions() == 1
    assert inputs_on_disk(tmp_path / "data") == []


async def test_a_remix_past_the_upstream_url_sends_the_stored_copy_by_hosted_url(
    start: Start, fake: SeedanceFake
):
    relay = await start(storage={"keep_videos": True})
    source = await relay.create()
    assert (await relay.wait(source["id"]))["status"] == "completed"
    for _ in range(200):
        if await relay.store.stored_copy(source["id"], "video") is not None:
            break
        await relay.copier.round()
    row = await relay.store.get_task(source["id"])
    assert row is not None
    state = {**row.upstream_state, "expires_at": 1.0}  # Seedance's URL is past its 24 h
    await update_task(relay.store, source["id"], {"upstream_state": state})

    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "at night"}, headers=auth()
    )
    assert resp.status == 200, await resp.text()
    remix = await resp.json()
    url = fake.creates()[1]["content"][1]["video_url"]["url"]
    assert url.startswith(relay.url("/v1/files/"))
    assert fake.fetched[-1][1:] == (200, "video/mp4", VIDEO)  # the stored copy's bytes
    assert (await relay.wait(remix["id"]))["status"] == "completed"
    assert (await relay.client.get(url[len(relay.url("")) :])).status == 404
    kept = await relay.client.get(f"/v1/videos/{source['id']}/content", headers=auth())
    assert kept.status == 200 and await kept.read() == VIDEO  # the source's copy stays


async def test_a_remix_past_the_upstream_url_without_a_stored_copy_is_refused(
    start: Start, fake: SeedanceFake
):
    relay = await start()  # keep_videos off
    source = await relay.create()
    await relay.wait(source["id"])
    row = await relay.store.get_task(source["id"])
    assert row is not None
    await update_task(
        relay.store, source["id"], {"upstream_state": {**row.upstream_state, "expires_at": 1.0}}
    )
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    body = await resp.json()
    assert resp.status == 400 and body["error"]["param"] == "video_id"
    assert "keep_videos" in body["error"]["message"]
    assert len(fake.creates()) == 1


async def test_a_hosted_object_gone_from_the_bucket_is_a_plain_404(
    start: Start,
    fake: SeedanceFake,
    s3_server: S3Server,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
):
    relay = await start(storage=s3_server.storage())
    await relay.create(**with_media(reference("video", data_url("video/mp4", VIDEO))))
    url = fake.creates()[0]["content"][1]["video_url"]["url"]
    host = relay.videos.ctx.hosting
    assert host is not None
    found = host.parse(url.rsplit("/", 1)[1])
    assert found is not None
    await host.library.forget(found.path)  # retention, or another relay's drop
    resp = await relay.client.get(url[len(relay.url("")) :])
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_storage_failure_while_hosting_is_a_503_before_any_upstream_call(
    start: Start, fake: SeedanceFake, monkeypatch: pytest.MonkeyPatch
):
    relay = await start()
    host = relay.videos.ctx.hosting
    assert host is not None

    async def full(*args: Any) -> tuple[str, int]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(host.library, "write", full)
    resp = await relay.client.post(
        "/v1/videos",
        json=with_media(reference("video", data_url("video/mp4", VIDEO))),
        headers=auth(),
    )
    body = await resp.json()
    assert resp.status == 503, body
    assert "store the input" in body["error"]["message"]
    assert fake.creates() == []


async def test_a_declared_type_off_the_list_is_served_as_the_bytes_show(
    start: Start, fake: SeedanceFake
):
    relay = await start()
    await relay.create(**with_media(reference("video", data_url("video/svg+xml", VIDEO))))
    url = fake.creates()[0]["content"][1]["video_url"]["url"]
    resp = await relay.client.get(url[len(relay.url("")) :])
    assert resp.status == 200 and resp.headers["Content-Type"] == "video/mp4"
    assert resp.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"


async def test_a_multipart_form_takes_a_reference_up_to_max_media_mb(
    start: Start, fake: SeedanceFake
):
    relay = await start(server={"max_upload_mb": 0.01, "max_media_mb": 1})
    form = aiohttp.FormData()
    form.add_field("prompt", "a cat")
    prefix = "input_reference[content][0]"
    form.add_field(f"{prefix}[type]", "video_url")
    form.add_field(f"{prefix}[video_url][url]", data_url("video/mp4", VIDEO[:200_000]))
    resp = await relay.client.post("/v1/videos", data=form, headers=auth())
    assert resp.status == 200, await resp.text()
    assert fake.fetched[-1][3] == VIDEO[:200_000]
