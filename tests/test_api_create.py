"""POST /v1/videos over HTTP: body forms, limits, the stored row, Idempotency-Key, rate limits."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import openai
import pytest

from relay.config import Config
from relay.domain import Task, VideoRequest
from relay.providers.base import Provider, Submitted
from relay.providers.demo import DemoProvider
from tests.conftest import ALICE, BOB, Relay, auth
from tests.images import data_url, jpeg, png, webp

URL = "https://img.example.test/a.png"
SMALL_UPLOAD_MB = 0.01  # 10485 bytes: uploads over it stay cheap to send


async def error_of(resp: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    """The error envelope of a response that must have this status."""
    body = await resp.json()
    assert resp.status == status, body
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert resp.headers["x-request-id"].startswith("req_")
    return body["error"]  # type: ignore[no-any-return]


async def stored(relay: Relay, video_id: str) -> Task:
    row = await relay.store.get_task(video_id)
    assert row is not None, "the task row must exist as soon as create answers"
    return row


async def alice_rows(relay: Relay) -> list[Task]:
    return await relay.store.list_tasks(owner="alice", after=None, limit=100, descending=True)


def form(*fields: tuple[str, Any], **files: tuple[str, bytes, str]) -> aiohttp.FormData:
    """A multipart body: text fields in the order given, then files (name -> (filename, data,
    content type))."""
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields:
        data.add_field(name, value)
    for name, (filename, content, ctype) in files.items():
        data.add_field(name, content, filename=filename, content_type=ctype)
    return data


@pytest.fixture
async def small(start_relay: Callable[[Config], Any], make_config: Callable[..., Config]) -> Relay:
    """A relay with a 10 KiB upload limit (and media limit: a JSON body holds either)."""
    server = {"max_upload_mb": SMALL_UPLOAD_MB, "max_media_mb": SMALL_UPLOAD_MB}
    relay: Relay = await start_relay(make_config(server=server))
    return relay


# --- the three body forms ---------------------------------------------------------------------


async def test_json_create(relay: Relay):
    resp = await relay.client.post(
        "/v1/videos",
        json={"prompt": "a paper boat", "model": "sora-2", "seconds": 8, "size": "1280x720"},
        headers=auth(),
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "Idempotent-Replayed" not in resp.headers
    assert body["object"] == "video" and body["id"].startswith("video_")
    assert (body["status"], body["model"], body["seconds"], body["size"]) == (
        "queued",
        "sora-2",
        "4",  # what the demo's landscape clip really is; the request's 8 is kept below
        "1280x720",
    )
    assert body["task_id"] == body["id"] and body["error"] is None and body["url"] is None
    row = await stored(relay, body["id"])
    assert (row.owner, row.prompt, row.status) == ("alice", "a paper boat", "queued")
    assert row.request["seconds"] == 8 and row.request["size"] == "1280x720"
    assert (await relay.get(body["id"]))["id"] == body["id"]


async def test_json_create_with_defaults_and_data_url(relay: Relay):
    body = await relay.create(input_reference={"image_url": data_url(jpeg(), "image/png")})
    assert (body["model"], body["seconds"]) == ("sora-2", "4")
    row = await stored(relay, body["id"])
    (image,) = row.request["images"]
    assert image["mime"] == "image/jpeg" and image["bytes"] == len(jpeg())


async def test_multipart_text_only(relay: Relay):
    data = form(
        ("prompt", "a lighthouse"),
        ("seconds", "8"),
        ("size", "16:9"),
        ("seed", "12"),
        ("generate_audio", "false"),
        ("metadata", '{"watermark": false}'),
    )
    resp = await relay.client.post("/v1/videos", data=data, headers=auth())
    body = await resp.json()
    assert resp.status == 200, body
    assert body["seconds"] == "4"  # the demo's clip
    row = await stored(relay, body["id"])
    assert row.request["seconds"] == 8 and row.request["size"] == "16:9"
    assert row.request["seed"] == 12 and row.request["generate_audio"] is False
    assert row.request["metadata"] == {"watermark": False}
    assert row.request["images"] == []


@pytest.mark.parametrize(
    ("image", "mime"), [(png(), "image/png"), (jpeg(), "image/jpeg"), (webp(), "image/webp")]
)
async def test_multipart_with_an_uploaded_image(relay: Relay, image: bytes, mime: str):
    # the part's own Content-Type and file name are not trusted: the bytes decide
    data = form(("prompt", "animate this"), input_reference=("upload.bin", image, "text/plain"))
    resp = await relay.client.post("/v1/videos", data=data, headers=auth())
    body = await resp.json()
    assert resp.status == 200, body
    row = await stored(relay, body["id"])
    (stored_image,) = row.request["images"]
    assert (stored_image["mime"], stored_image["bytes"]) == (mime, len(image))


async def test_a_text_file_named_png_is_415(relay: Relay):
    data = form(
        ("prompt", "animate this"),
        input_reference=("frame.png", b"hello, I am not an image", "image/png"),
    )
    resp = await relay.client.post("/v1/videos", data=data, headers=auth())
    error = await error_of(resp, 415)
    assert (error["code"], error["param"]) == ("unsupported_media_type", "input_reference")
    assert error["type"] == "invalid_request_error"
    assert await alice_rows(relay) == []


async def test_an_empty_file_input_from_a_browser_is_no_image(relay: Relay):
    # a browser sends an unselected <input type=file> as a part with filename="" and no bytes
    body = (
        b'--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na fox\r\n'
        b'--b\r\nContent-Disposition: form-data; name="input_reference"; filename=""\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n\r\n--b--\r\n"
    )
    resp = await relay.client.post(
        "/v1/videos",
        data=body,
        headers={**auth(), "Content-Type": "multipart/form-data; boundary=b"},
    )
    video = await resp.json()
    assert resp.status == 200, video
    assert (await stored(relay, video["id"])).request["images"] == []


async def test_a_file_under_another_name_is_refused(relay: Relay):
    data = form(("prompt", "p"), image=("a.png", png(), "image/png"))
    error = await error_of(await relay.client.post("/v1/videos", data=data, headers=auth()), 400)
    assert error["param"] == "image"


async def test_multipart_content_items_interleaved_as_a_browser_sends_them(relay: Relay):
    p = "input_reference[content][]"
    data = form(
        ("prompt", "from first to last"),
        (f"{p}[type]", "image_url"),
        (f"{p}[image_url][url]", "https://img.example.test/first.png"),
        (f"{p}[type]", "image_url"),
        (f"{p}[image_url][url]", "https://img.example.test/last.png"),
        (f"{p}[role]", "last_frame"),
    )
    resp = await relay.client.post("/v1/videos", data=data, headers=auth())
    body = await resp.json()
    assert resp.status == 200, body
    row = await stored(relay, body["id"])
    assert row.request["images"] == [
        {"role": None, "url": "https://img.example.test/first.png"},
        {"role": "last_frame", "url": "https://img.example.test/last.png"},
    ]


async def test_openai_sdk_content_items_grouped(relay: Relay):
    sdk = openai.AsyncOpenAI(base_url=relay.base_url, api_key=ALICE, max_retries=0)
    try:
        video = await sdk.videos.create(
            prompt="first, last and a reference clip",
            extra_body={
                "input_reference": {
                    "content": [
                        {"type": "image_url", "image_url": {"url": URL}, "role": "first_frame"},
                        {"type": "video_url", "video_url": {"url": "https://x.test/v.mp4"}},
                        {"type": "image_url", "image_url": {"url": "https://x.test/z.png"},
                         "role": "last_frame"},
                    ]
                }
            },
        )  # fmt: skip
    finally:
        await sdk.close()
    row = await stored(relay, video.id)
    assert row.request["images"] == [
        {"role": "first_frame", "url": URL},
        {"role": "last_frame", "url": "https://x.test/z.png"},
    ]
    assert row.request["media"] == [
        {"kind": "video", "url": "https://x.test/v.mp4", "role": "reference_video"}
    ]


async def test_form_urlencoded_create(relay: Relay):
    resp = await relay.client.post(
        "/v1/videos",
        data={"prompt": "a kite", "seconds": "12", "input_reference[image_url]": URL},
        headers=auth(),
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body["seconds"] == "4"  # the demo's clip
    row = await stored(relay, body["id"])
    assert row.request["seconds"] == 12
    assert row.request["images"] == [{"role": None, "url": URL}]


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "image/png"])
async def test_unsupported_content_type_is_415(relay: Relay, ctype: str):
    resp = await relay.client.post(
        "/v1/videos", data=b'{"prompt": "x"}', headers={**auth(), "Content-Type": ctype}
    )
    error = await error_of(resp, 415)
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"]


async def test_invalid_json_is_400(relay: Relay):
    resp = await relay.client.post(
        "/v1/videos",
        data=b'{"prompt": "x",',
        headers={**auth(), "Content-Type": "application/json"},
    )
    error = await error_of(resp, 400)
    assert error["type"] == "invalid_request_error" and "JSON" in error["message"]


@pytest.mark.parametrize("body", [b'[{"prompt": "x"}]', b'"a prompt"', b"42", b"null"])
async def test_a_json_body_that_is_not_an_object_is_400(relay: Relay, body: bytes):
    resp = await relay.client.post(
        "/v1/videos", data=body, headers={**auth(), "Content-Type": "application/json"}
    )
    error = await error_of(resp, 400)
    assert "object" in error["message"]
    assert await alice_rows(relay) == []


async def test_field_errors_over_http_carry_the_path(relay: Relay):
    bad = {"prompt": "x", "input_reference": {"content": [{"type": "text", "text": "hi"}]}}
    resp = await relay.client.post("/v1/videos", json=bad, headers=auth())
    error = await error_of(resp, 400)
    assert (error["code"], error["param"]) == (
        "unsupported_parameter",
        "input_reference.content[0].text",
    )
    resp = await relay.client.post("/v1/videos", json={"prompt": "x", "fps": 24}, headers=auth())
    error = await error_of(resp, 400)
    assert (error["code"], error["param"]) == ("unknown_parameter", "fps")
    assert "put vendor fields in metadata" in error["message"]


# --- size limits ------------------------------------------------------------------------------


async def raw_request(relay: Relay, head: str) -> bytes:
    """Send request headers only (no body) and read what the relay answers."""
    server = relay.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head.encode())
        await writer.drain()
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            if not chunk:
                break
            answer += chunk
        return answer
    finally:
        writer.close()


@pytest.mark.parametrize("ctype", ["application/json", "multipart/form-data; boundary=x"])
async def test_an_announced_oversize_body_is_refused_before_reading(small: Relay, ctype: str):
    # only the headers are sent: the 413 cannot have waited for the body
    answer = await raw_request(
        small,
        "POST /v1/videos HTTP/1.1\r\nHost: relay.test\r\n"
        f"Authorization: Bearer {ALICE}\r\nContent-Type: {ctype}\r\n"
        "Content-Length: 50000000\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b'"code":"request_too_large"' in answer


async def test_a_chunked_oversize_body_is_cut_off_while_reading(small: Relay):
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        # past the JSON limit (about 1 MiB here), then never finish: only a relay that stops
        # reading at the limit can answer
        nonlocal sent
        yield b'{"prompt": "'
        while sent < 3 * 1024 * 1024:
            sent += 64 * 1024
            yield b"a" * 64 * 1024
        await asyncio.Event().wait()

    resp = await asyncio.wait_for(
        small.client.post(
            "/v1/videos",
            data=endless(),
            headers={**auth(), "Content-Type": "application/json"},
        ),
        timeout=20,
    )
    error = await error_of(resp, 413)
    assert error["code"] == "request_too_large"
    assert await alice_rows(small) == []


async def test_an_upload_over_max_upload_mb_is_413(small: Relay):
    image = png() + b"\0" * 20_000  # a valid PNG start, over 10 KiB
    data = form(("prompt", "too big"), input_reference=("big.png", image, "image/png"))
    resp = await small.client.post("/v1/videos", data=data, headers=auth())
    error = await error_of(resp, 413)
    assert (error["code"], error["param"]) == ("request_too_large", "input_reference")
    assert "10.24 KiB" in error["message"]  # the limit, in a unit a person can read
    assert await alice_rows(small) == []


async def test_an_upload_at_the_limit_is_accepted(small: Relay):
    limit = small.runtime.config.server.max_upload_bytes
    image = png() + b"\0" * (limit - len(png()))
    data = form(("prompt", "just fits"), input_reference=("ok.png", image, "image/png"))
    resp = await small.client.post("/v1/videos", data=data, headers=auth())
    assert resp.status == 200, await resp.text()


async def test_a_data_url_over_max_upload_mb_is_413(small: Relay):
    image = data_url(png() + b"\0" * 20_000)
    resp = await small.client.post(
        "/v1/videos", json={"prompt": "p", "image": image}, headers=auth()
    )
    error = await error_of(resp, 413)
    assert error["param"] == "image"


async def test_sdk_multipart_data_url_as_large_as_an_upload(relay: Relay):
    # the SDK sends input_reference[image_url] as a form text field: a data: URL in it may be as
    # large as an uploaded file (base64 makes it 4/3 bigger)
    image = png() + b"\0" * 600_000
    sdk = openai.AsyncOpenAI(base_url=relay.base_url, api_key=ALICE, max_retries=0)
    try:
        video = await sdk.videos.create(
            prompt="animate", extra_body={"input_reference": {"image_url": data_url(image)}}
        )
    finally:
        await sdk.close()
    row = await stored(relay, video.id)
    assert row.request["images"][0]["bytes"] == len(image)


async def test_too_much_form_text_is_413(small: Relay):
    text = "a" * (1024 * 1024 + 20_000)  # over 4/3 of 10 KiB plus 1 MiB
    data = form(("prompt", "p"), ("metadata", text))
    error = await error_of(await small.client.post("/v1/videos", data=data, headers=auth()), 413)
    assert error["param"] == "metadata" and "form fields" in error["message"]


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("multipart/form-data; boundary=abc", b"not multipart at all"),
        ("multipart/form-data; boundary=abc", b"--abc\r\nContent-Disposition: form-data\r\n"),
        ("multipart/form-data; boundary=abc", b"--xyz\r\n\r\nvalue\r\n--xyz--\r\n"),
        ("multipart/form-data", b"--abc\r\n\r\n--abc--\r\n"),
    ],
)
async def test_malformed_multipart_is_a_client_error(relay: Relay, ctype: str, body: bytes):
    resp = await relay.client.post(
        "/v1/videos", data=body, headers={**auth(), "Content-Type": ctype}
    )
    error = await error_of(resp, 400)
    assert error["code"] == "invalid_body"


def part(headers: bytes, value: bytes) -> bytes:
    return b"--b\r\n" + headers + b"\r\n\r\n" + value + b"\r\n"


def multipart(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--b--\r\n"


PROMPT_PART = part(b'Content-Disposition: form-data; name="prompt"', b"a fox")
MULTIPART_B = "multipart/form-data; boundary=b"


@pytest.mark.parametrize("char", [b"\x00", b"\r", b"\n"])
async def test_a_control_character_in_an_upload_file_name_is_400(relay: Relay, char: bytes):
    # a bare LF ends the header line early: the rest is a malformed line of no known part
    body = multipart(
        PROMPT_PART,
        part(
            b'Content-Disposition: form-data; name="input_reference"; filename="a'
            + char
            + b'.png"\r\nContent-Type: image/png',
            png(),
        ),
    )
    resp = await relay.client.post(
        "/v1/videos", data=body, headers={**auth(), "Content-Type": MULTIPART_B}
    )
    error = await error_of(resp, 400)
    assert error["param"] == (None if char == b"\n" else "input_reference"), error
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_body")
    assert await alice_rows(relay) == []


async def test_a_control_character_in_an_unnamed_part_header_is_400(relay: Relay):
    body = multipart(part(b'Content-Disposition: form-data\x00; name="x\x01y"', b"v"))
    resp = await relay.client.post(
        "/v1/videos", data=body, headers={**auth(), "Content-Type": MULTIPART_B}
    )
    error = await error_of(resp, 400)
    assert (error["code"], error["param"]) == ("invalid_body", None)


async def test_an_upload_file_name_that_is_not_utf8_is_400(relay: Relay):
    body = multipart(
        PROMPT_PART,
        part(
            b'Content-Disposition: form-data; name="input_reference"; filename="\xff.png"',
            png(),
        ),
    )
    resp = await relay.client.post(
        "/v1/videos", data=body, headers={**auth(), "Content-Type": MULTIPART_B}
    )
    error = await error_of(resp, 400)
    assert error["param"] == "input_reference" and "UTF-8" in error["message"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"prompt", b"a \xff fox"),
        (b"prompt", b"cut short \xe2\x82"),
        (b"metadata[note]", b"\xc0\xaf"),  # an overlong '/': not UTF-8 either
    ],
)
async def test_a_multipart_text_field_that_is_not_utf8_is_400(
    relay: Relay, name: bytes, value: bytes
):
    fields = [part(b'Content-Disposition: form-data; name="' + name + b'"', value)]
    if name != b"prompt":
        fields.insert(0, PROMPT_PART)
    resp = await relay.client.post(
        "/v1/videos", data=multipart(*fields), headers={**auth(), "Content-Type": MULTIPART_B}
    )
    error = await error_of(resp, 400)
    assert error["param"] == name.decode()
    assert "UTF-8" in error["message"]
    assert await alice_rows(relay) == []


async def test_a_multipart_field_name_that_is_not_utf8_is_400(relay: Relay):
    body = multipart(PROMPT_PART, part(b'Content-Disposition: form-data; name="n\xffte"', b"v"))
    resp = await relay.client.post(
        "/v1/videos", data=body, headers={**auth(), "Content-Type": MULTIPART_B}
    )
    error = await error_of(resp, 400)
    assert error["param"] is None and "UTF-8" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"prompt": "a \xff fox"}', "prompt"),
        (b'{"prompt": "p", "metadata": {"note": "\xfe"}}', "metadata.note"),
        (
            b'{"prompt": "p", "input_reference": {"content": [{"type": "text", "text": "\xff"}]}}',
            "input_reference.content[0].text",
        ),
    ],
)
async def test_a_json_string_that_is_not_utf8_is_400_naming_the_field(
    relay: Relay, body: bytes, param: str
):
    resp = await relay.client.post(
        "/v1/videos", data=body, headers={**auth(), "Content-Type": "application/json"}
    )
    error = await error_of(resp, 400)
    assert error["param"] == param and "UTF-8" in error["message"]
    assert await alice_rows(relay) == []


@pytest.mark.parametrize("body", [b"prompt=a%FFfox", b"prompt=a\xfffox"])
async def test_a_urlencoded_field_that_is_not_utf8_is_400(relay: Relay, body: bytes):
    resp = await relay.client.post(
        "/v1/videos",
        data=body,
        headers={**auth(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    error = await error_of(resp, 400)
    assert error["param"] == "prompt"
    assert await alice_rows(relay) == []


async def test_utf8_text_in_every_form_still_passes(relay: Relay):
    prompt = "un renard — 狐狸 🦊"
    resp = await relay.client.post("/v1/videos", data=form(("prompt", prompt)), headers=auth())
    assert resp.status == 200, await resp.text()
    resp = await relay.client.post(
        "/v1/videos",
        data="prompt=" + urllib.parse.quote(prompt),
        headers={**auth(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 200, await resp.text()
    assert [t.request["prompt"] for t in await alice_rows(relay)] == [prompt, prompt]


# --- the stored row and Idempotency-Key -------------------------------------------------------


async def test_the_task_row_exists_right_after_create(relay: Relay):
    body = await relay.create(prompt="right away")
    row = await stored(relay, body["id"])
    assert row.id == body["id"] and row.owner == "alice"
    assert row.status in ("queued", "in_progress")
    resp = await relay.client.get(f"/v1/videos/{body['id']}", headers=auth())
    assert resp.status == 200


async def idem_post(
    relay: Relay, key: str, body: dict[str, Any], api_key: str = ALICE
) -> aiohttp.ClientResponse:
    return await relay.client.post(
        "/v1/videos", json=body, headers={**auth(api_key), "Idempotency-Key": key}
    )


async def test_idempotency_key_replays_the_same_task(relay: Relay):
    body = {"prompt": "only once", "seconds": "8"}
    first = await idem_post(relay, "key-1", body)
    made = await first.json()
    assert first.status == 200 and "Idempotent-Replayed" not in first.headers
    again = await idem_post(relay, "key-1", body)
    replayed = await again.json()
    assert again.status == 200, replayed
    assert again.headers["Idempotent-Replayed"] == "true"
    assert replayed["id"] == made["id"]
    assert [r.id for r in await alice_rows(relay)] == [made["id"]]


async def test_idempotency_key_replay_across_json_and_multipart(relay: Relay):
    first = await idem_post(relay, "key-form", {"prompt": "same", "seconds": 8})
    made = await first.json()
    again = await relay.client.post(
        "/v1/videos",
        data=form(("prompt", "same"), ("seconds", "8")),
        headers={**auth(), "Idempotency-Key": "key-form"},
    )
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert (await again.json())["id"] == made["id"]


async def test_idempotency_replay_shows_the_current_state(relay: Relay):
    first = await idem_post(relay, "key-later", {"prompt": "wait for me"})
    made = await first.json()
    done = await relay.wait(made["id"])
    assert done["status"] == "completed"
    again = await idem_post(relay, "key-later", {"prompt": "wait for me"})
    replayed = await again.json()
    assert replayed["id"] == made["id"] and replayed["status"] == "completed"
    assert replayed["url"] is not None


async def test_idempotency_key_with_another_body_is_400(relay: Relay):
    first = await idem_post(relay, "key-2", {"prompt": "first"})
    assert first.status == 200
    resp = await idem_post(relay, "key-2", {"prompt": "second"})
    error = await error_of(resp, 400)
    assert error["code"] == "idempotency_key_reused"
    assert len(await alice_rows(relay)) == 1


async def test_idempotency_keys_are_per_user(relay: Relay):
    a = await (await idem_post(relay, "shared", {"prompt": "alice's"})).json()
    resp = await idem_post(relay, "shared", {"prompt": "bob's"}, api_key=BOB)
    b = await resp.json()
    assert resp.status == 200, b
    assert "Idempotent-Replayed" not in resp.headers
    assert b["id"] != a["id"] and b["prompt"] == "bob's"
    # the same body as alice's is still a new task for bob
    resp = await idem_post(relay, "shared2", {"prompt": "same"})
    resp_bob = await idem_post(relay, "shared2", {"prompt": "same"}, api_key=BOB)
    assert (await resp.json())["id"] != (await resp_bob.json())["id"]
    assert "Idempotent-Replayed" not in resp_bob.headers


@pytest.mark.parametrize("key", ["k" * 256, " ", "tab\tkey"])
async def test_bad_idempotency_key_is_400(relay: Relay, key: str):
    resp = await idem_post(relay, key, {"prompt": "x"})
    error = await error_of(resp, 400)
    assert error["param"] == "Idempotency-Key"
    assert await alice_rows(relay) == []


async def test_idempotency_key_of_255_characters_is_fine(relay: Relay):
    resp = await idem_post(relay, "k" * 255, {"prompt": "x"})
    assert resp.status == 200


# --- model and rate limit ---------------------------------------------------------------------


async def test_unknown_model_is_404(relay: Relay):
    resp = await relay.client.post(
        "/v1/videos", json={"prompt": "x", "model": "no-such-model"}, headers=auth()
    )
    error = await error_of(resp, 404)
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert "no-such-model" in error["message"]
    assert await alice_rows(relay) == []


@pytest.fixture
async def limited(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
) -> Relay:
    relay: Relay = await start_relay(make_config(limits={"requests_per_minute": 2}))
    return relay


async def assert_rate_limited(resp: aiohttp.ClientResponse) -> None:
    error = await error_of(resp, 429)
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    retry_after = resp.headers["Retry-After"]
    assert retry_after.isdigit() and int(retry_after) >= 1


async def test_requests_per_minute_gives_429_with_retry_after(limited: Relay):
    await limited.create(prompt="one")
    await limited.create(prompt="two")
    resp = await limited.client.post("/v1/videos", json={"prompt": "three"}, headers=auth())
    await assert_rate_limited(resp)
    assert len(await alice_rows(limited)) == 2
    await limited.create(BOB, prompt="bob has his own budget")


async def test_rejected_requests_do_not_use_up_the_budget(limited: Relay):
    for bad in ({"prompt": "x", "size": "wide"}, {"prompt": "x", "aspect_ratio": "16:9"}):
        resp = await limited.client.post("/v1/videos", json=bad, headers=auth())
        assert resp.status == 400
    resp = await limited.client.post(
        "/v1/videos", json={"prompt": "x", "model": "nope"}, headers=auth()
    )
    assert resp.status == 404
    await limited.create(prompt="one")
    await limited.create(prompt="two")
    resp = await limited.client.post("/v1/videos", json={"prompt": "three"}, headers=auth())
    await assert_rate_limited(resp)


async def test_an_idempotent_replay_is_not_rate_limited(limited: Relay):
    first = await idem_post(limited, "retry-me", {"prompt": "one"})
    made = await first.json()
    await limited.create(prompt="two")
    again = await idem_post(limited, "retry-me", {"prompt": "one"})
    assert again.status == 200, await again.text()
    assert (await again.json())["id"] == made["id"]


class GatedProvider(DemoProvider):
    """The demo provider, whose submit waits at a gate the test opens."""

    name = "gated"
    gate = asyncio.Event()
    submits = 0
    second_submit = asyncio.Event()

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        cls = GatedProvider
        cls.submits += 1
        if cls.submits == 2:
            cls.second_submit.set()
        await cls.gate.wait()
        return await super().submit(request, model)


@pytest.fixture
def gated(
    monkeypatch: pytest.MonkeyPatch, providers: dict[str, type[Provider[Any]]]
) -> type[GatedProvider]:
    providers["gated"] = GatedProvider
    monkeypatch.setattr(GatedProvider, "gate", asyncio.Event())
    monkeypatch.setattr(GatedProvider, "second_submit", asyncio.Event())
    monkeypatch.setattr(GatedProvider, "submits", 0)
    return GatedProvider


async def test_a_concurrent_burst_cannot_pass_the_rate_limit(
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    gated: type[GatedProvider],
):
    relay: Relay = await start_relay(
        make_config(
            limits={"requests_per_minute": 1},
            channels=[{"name": "g", "provider": "gated", "models": ["sora-2"]}],
        )
    )
    first = asyncio.ensure_future(
        relay.client.post("/v1/videos", json={"prompt": "a"}, headers=auth())
    )
    second = asyncio.ensure_future(
        relay.client.post("/v1/videos", json={"prompt": "b"}, headers=auth())
    )
    # whichever create comes first holds the budget while its submit waits; the other must not
    # get past the limit: either it is answered (429) or, wrongly, it reaches the upstream too
    reached = asyncio.ensure_future(gated.second_submit.wait())
    await asyncio.wait({first, second, reached}, return_when=asyncio.FIRST_COMPLETED)
    reached.cancel()
    gated.gate.set()
    statuses = sorted([(await first).status, (await second).status])
    assert statuses == [200, 429]


# --- remix_video_id ---------------------------------------------------------------------------


async def test_remix_video_id_in_a_create(relay: Relay):
    source = await relay.create(prompt="a cat")
    assert (await relay.wait(source["id"]))["status"] == "completed"
    remix = await relay.create(prompt="a cat in the snow", remix_video_id=source["id"])
    assert remix["remixed_from_video_id"] == source["id"]
    assert remix["seconds"] == source["seconds"]


async def test_remix_video_id_with_an_uploaded_file_is_400(relay: Relay):
    data = form(
        ("prompt", "p"),
        ("remix_video_id", "video_whatever"),
        input_reference=("a.png", png(), "image/png"),
    )
    error = await error_of(await relay.client.post("/v1/videos", data=data, headers=auth()), 400)
    assert error["param"] == "remix_video_id"
