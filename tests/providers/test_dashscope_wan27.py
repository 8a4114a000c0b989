"""DashScope's Wan 2.7 / Wan 3.0 "new protocol" (spec/providers/dashscope-wan27.md): the bodies
per family on the page's examples, the refusals before any network, the fake's checks, and the
relay against the fake (create, poll, content, remix by video edit)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer, unused_port

from relay import hosting
from relay.app import create_app
from relay.config import Config, ConfigError
from relay.domain import Image, Media, Size, TaskRef, VideoRequest
from relay.providers import REGISTRY
from relay.providers.base import ChannelView
from relay.providers.dashscope import DashScopeOptions, DashScopeProvider
from relay.providers.dashscope.request import CreateBody
from relay.providers.dashscope.response import classify, produced_size, task_update
from relay.providers.dashscope.wan27.models import accepts, is_new_protocol, spec_for
from relay.providers.dashscope.wan27.request import remix_body
from relay.providers.errors import Rejected, Unsupported
from relay.providers.http import ChannelHttp
from tests.conftest import Relay, auth
from tests.fakes.base import VIDEO
from tests.fakes.dashscope import CREATE, DashScopeFake
from tests.images import data_url, png
from tests.storetools import update_task

FIXTURES = Path(__file__).parent / "fixtures" / "dashscope"
T2V, I2V, R2V, EDIT, WAN3 = (
    "wan2.7-t2v",
    "wan2.7-i2v",
    "wan2.7-r2v",
    "wan2.7-videoedit",
    "wan3.0-video",
)
IMG = "https://img.example.test/cat.png"
IMG2 = "https://img.example.test/dog.png"
CLIP = "https://v.example.test/clip.mp4"
SONG = "https://a.example.test/song.mp3"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(24)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def req(size: str = "1280x720", seconds: int = 5, **kw: Any) -> VideoRequest:
    parsed = Size.parse(size)
    assert parsed is not None
    return VideoRequest(prompt="a red kite", model="sora-2", seconds=seconds, size=parsed, **kw)


def frame(url: str = IMG, role: str | None = None) -> Image:
    return Image(role=role, url=url)


def video(url: str = CLIP) -> Media:
    return Media("video", url, role="reference_video")


def audio(url: str = SONG) -> Media:
    return Media("audio", url, role="reference_audio")


def adapter(**options: Any) -> DashScopeProvider:
    return DashScopeProvider(ChannelView("d", DashScopeOptions(**options), api_key="k"), None)


class StubScope:
    """Stands in for relay/hosting.py's Scope: the URL a provider would fetch hosted bytes at."""

    def __init__(self, put: Callable[[bytes, str], str] | None = None) -> None:
        self.hosted: list[tuple[bytes, str, str]] = []
        self.put = put

    async def url(self, data: bytes, mime: str, param: str) -> str:
        self.hosted.append((data, mime, param))
        if self.put is not None:
            return self.put(data, mime)
        return f"https://relay.example.test/v1/files/tok{len(self.hosted)}"


@contextmanager
def hosted(stub: StubScope) -> Iterator[StubScope]:
    token = hosting.SCOPE.set(stub)  # type: ignore[arg-type]
    try:
        yield stub
    finally:
        hosting.SCOPE.reset(token)


async def body_of(request: VideoRequest, model: str, **options: Any) -> CreateBody:
    """The create body the adapter builds for a new-protocol model (bytes hosted by a stub)."""
    from relay.providers.dashscope.wan27 import request as wan27
    from relay.providers.dashscope.wan27.rules import target_model

    provider = adapter(**options)
    assert provider.refusal(request, model) is None, provider.refusal(request, model)
    target = target_model(request, model, provider.channel.options.wan27_image_model)
    with hosted(StubScope()):
        return await wan27.create_body(
            request, target, url_of=provider.input_url, prompt_extend=True
        )


# --- models ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "new"),
    [
        ("wan2.7-t2v", True),
        ("wan2.7-i2v-2026-04-25", True),
        ("wan3.0-video-prime", True),
        ("happyhorse-1.0-i2v", True),
        ("wan2.6-t2v", False),
        ("wanx2.1-t2v-turbo", False),
        ("wan2.2-kf2v-flash", False),
    ],
)
def test_the_protocol_is_chosen_by_name(model: str, new: bool):
    assert is_new_protocol(model) is new


@pytest.mark.parametrize(
    ("model", "family", "tiers", "seconds"),
    [
        (T2V, "t2v", ("720P", "1080P"), (2, 15)),
        ("wan2.7-i2v-2026-04-25", "i2v", ("720P", "1080P"), (2, 15)),
        (R2V, "r2v", ("720P", "1080P"), (2, 15)),
        (EDIT, "videoedit", ("720P", "1080P"), None),
        (WAN3, "aio", ("480P", "720P", "1080P"), (2, 30)),
        ("wan3.0-video-prime", "aio", ("480P", "720P", "1080P"), (2, 30)),
        ("happyhorse-1.1-r2v", "r2v", ("720P", "1080P"), (2, 15)),
    ],
)
def test_model_families(model: str, family: str, tiers: tuple[str, ...], seconds: Any):
    spec = spec_for(model)
    assert (spec.family, spec.tiers, spec.seconds) == (family, tiers, seconds)


def test_happyhorse_i2v_takes_a_first_frame_only():
    assert spec_for("happyhorse-1.0-i2v").media == ("first_frame",)
    assert "first_clip" in spec_for(I2V).media


def test_accepts():
    seconds, sizes = accepts(T2V)
    assert seconds == tuple(range(2, 16))
    assert "1280x720" in sizes and "1920x1080" in sizes and "832x480" not in sizes
    seconds, sizes = accepts(WAN3)
    assert seconds == tuple(range(2, 31)) and "832x480" in sizes
    assert adapter().accepts(WAN3) == accepts(WAN3)
    assert adapter().accepts("wan2.6-t2v")[0] == tuple(range(2, 16))


# --- the create body, per family (the page's examples) -----------------------------------------


async def test_t2v_body_is_the_pages():
    voice = audio("https://assets.example.com/voice.mp3")
    request = req(negative_prompt="blurry, low quality", seed=42, media=(voice,))
    request = replace(request, prompt=fixture("wan27_t2v.json")["input"]["prompt"])
    built = await body_of(request, T2V)
    assert built.body == fixture("wan27_t2v.json")
    assert (built.seconds, built.size, built.oss) == ("5", "1280x720", False)


async def test_i2v_first_last_and_driving_audio_body_is_the_pages():
    page = fixture("wan27_i2v.json")
    urls = [item["url"] for item in page["input"]["media"]]
    request = req(
        "1920x1080",
        images=(frame(urls[0], "first_frame"), frame(urls[1], "last_frame")),
        media=(audio(urls[2]),),
        generate_audio=True,
    )
    request = replace(request, prompt=page["input"]["prompt"])
    built = await body_of(request, I2V)
    page["parameters"]["prompt_extend"] = True  # the relay always says
    assert built.body == page
    assert "ratio" not in built.body["parameters"]  # the frame sets the aspect
    assert built.size == "1920x1080"


async def test_i2v_first_clip_and_last_frame():
    request = req("720x1280", images=(frame(role="last_frame"),), media=(video(),))
    built = await body_of(request, I2V)
    assert built.body["input"]["media"] == [
        {"type": "last_frame", "url": IMG},
        {"type": "first_clip", "url": CLIP},
    ]
    assert built.body["parameters"]["resolution"] == "720P"
    assert built.size == "720x1280"


async def test_r2v_body_is_the_pages():
    page = fixture("wan27_r2v.json")
    request = req(
        "720x1280",
        seconds=8,
        images=(frame("https://assets.example.com/man.jpg"),),
        media=(video("https://assets.example.com/cat.mp4"),),
    )
    request = replace(request, prompt=page["input"]["prompt"])
    built = await body_of(request, R2V)
    for item in page["input"]["media"]:  # voice and description come through metadata only
        item.pop("reference_voice", None)
        item.pop("reference_description", None)
    page["parameters"].update(prompt_extend=True, watermark=False)
    assert built.body == page
    # the page's own list, with the voice and the description, through metadata
    full = fixture("wan27_r2v.json")["input"]["media"]
    again = await body_of(replace(request, metadata={"input": {"media": full}}), R2V)
    assert again.body["input"]["media"] == full


async def test_r2v_a_named_first_frame_drops_the_ratio():
    request = req(images=(frame(role="first_frame"), frame(IMG2, "reference_image")))
    built = await body_of(request, R2V)
    assert [m["type"] for m in built.body["input"]["media"]] == ["first_frame", "reference_image"]
    assert "ratio" not in built.body["parameters"]


async def test_videoedit_body():
    request = req(images=(frame(),), media=(video(),), generate_audio=False, seconds=9)
    built = await body_of(request, EDIT)
    assert built.body["input"]["media"] == [
        {"type": "reference_image", "url": IMG},
        {"type": "video", "url": CLIP},
    ]
    params = built.body["parameters"]
    # the source sets the length and the aspect; its sound is audio_setting's, not `audio`
    assert "duration" not in params and "ratio" not in params and "audio" not in params
    assert params["resolution"] == "720P"


@pytest.mark.parametrize(
    ("kw", "types", "ratio"),
    [
        ({}, [], "16:9"),
        ({"images": (frame(),)}, ["first_frame"], None),
        ({"images": (frame(), frame(IMG2))}, ["first_frame", "last_frame"], None),
        (
            {"images": (frame(role="reference_image"),), "media": (video(), audio())},
            ["reference_image", "reference_video", "reference_audio"],
            "16:9",
        ),
    ],
)
async def test_wan3_all_in_one(kw: dict[str, Any], types: list[str], ratio: str | None):
    built = await body_of(req(**kw), WAN3)
    assert [m["type"] for m in built.body["input"].get("media", [])] == types
    assert built.body["parameters"].get("ratio") == ratio


@pytest.mark.parametrize(
    ("model", "asked", "kw", "sent"),
    [
        (T2V, 1, {}, 2),
        (T2V, 20, {}, 15),
        (T2V, 9, {}, 9),
        (R2V, 12, {"images": (frame(),)}, 12),
        (R2V, 12, {"media": (video(),)}, 10),  # 2-10 with any reference video
        (WAN3, 40, {}, 30),
        (WAN3, 1, {}, 2),
        ("happyhorse-1.0-t2v", 30, {}, 15),
    ],
)
async def test_duration_is_clamped_to_the_family_range(
    model: str, asked: int, kw: dict[str, Any], sent: int
):
    built = await body_of(req(seconds=asked, **kw), model)
    assert built.body["parameters"]["duration"] == sent
    assert built.seconds == str(sent)


@pytest.mark.parametrize(
    ("model", "size", "resolution", "ratio", "reported"),
    [
        (T2V, "1280x720", "720P", "16:9", "1280x720"),
        (T2V, "854x480", "720P", "16:9", "1280x720"),  # no 480P on 2.7
        (T2V, "1080x1920", "1080P", "9:16", "1080x1920"),
        (T2V, "3840x2160", "1080P", "16:9", "1920x1080"),
        (T2V, "1024x1024", "1080P", "1:1", "1440x1440"),
        (T2V, "1280x960", "1080P", "4:3", "1632x1248"),
        (T2V, "768x1024", "720P", "3:4", "832x1088"),
        (WAN3, "854x480", "480P", "16:9", "832x480"),
        (WAN3, "720x1280", "720P", "9:16", "720x1280"),
    ],
)
async def test_size_is_resolution_and_ratio(
    model: str, size: str, resolution: str, ratio: str, reported: str
):
    built = await body_of(req(size), model)
    params = built.body["parameters"]
    assert (params["resolution"], params["ratio"], built.size) == (resolution, ratio, reported)
    assert "size" not in params


async def test_a_bare_ratio_sets_only_the_ratio():
    built = await body_of(req("9:16"), T2V)
    assert "resolution" not in built.body["parameters"]
    assert built.body["parameters"]["ratio"] == "9:16"
    assert built.size == "1080x1920"  # the model's default tier in that shape
    built = await body_of(req("16:9", images=(frame(),)), I2V)
    assert "resolution" not in built.body["parameters"] and "ratio" not in built.body["parameters"]


@pytest.mark.parametrize("model", [T2V, I2V, R2V, WAN3])
async def test_generate_audio_is_parameters_audio(model: str):
    kw: dict[str, Any] = {
        T2V: {},
        I2V: {"images": (frame(),)},
        R2V: {"images": (frame(),)},
        WAN3: {},
    }[model]
    assert "audio" not in (await body_of(req(**kw), model)).body["parameters"]
    built = await body_of(req(generate_audio=False, **kw), model)
    assert built.body["parameters"]["audio"] is False


async def test_hints_and_the_prompt_extend_option():
    built = await body_of(req(enhance_prompt=False, seed=7, person_generation="allow_all"), T2V)
    params = built.body["parameters"]
    assert (params["prompt_extend"], params["seed"], params["watermark"]) == (False, 7, False)
    with pytest.raises(Rejected) as caught:
        await body_of(req(seed=-1), T2V)
    assert caught.value.param == "seed"


async def test_bytes_are_hosted_and_urls_go_as_they_are():
    clip = Media(
        "video",
        role="reference_video",
        data=VIDEO,
        mime="video/mp4",
        param="input_reference.content[1].video_url.url",
    )
    upload = Image(data=png(), mime="image/png")
    request = req(images=(upload, frame(IMG2, "reference_image")), media=(clip,))
    provider = adapter()
    from relay.providers.dashscope.wan27 import request as wan27

    with hosted(StubScope()) as stub:
        built = await wan27.create_body(
            replace(request, images=(frame(IMG2, "reference_image"),)),
            R2V,
            url_of=provider.input_url,
            prompt_extend=True,
        )
        assert built.body["input"]["media"] == [
            {"type": "reference_image", "url": IMG2},
            {"type": "reference_video", "url": "https://relay.example.test/v1/files/tok1"},
        ]
        assert stub.hosted == [(VIDEO, "video/mp4", "input_reference.content[1].video_url.url")]
        built = await wan27.create_body(
            replace(request, images=(upload,), media=()),
            WAN3,
            url_of=provider.input_url,
            prompt_extend=True,
        )
        assert built.body["input"]["media"][0]["url"].startswith("https://relay.example.test/")
        assert stub.hosted[1] == (png(), "image/png", "input_reference")
    assert not any(m["url"].startswith("data:") for m in built.body["input"]["media"])


async def test_hosting_outside_a_submit_is_refused():
    from relay.providers.dashscope.wan27 import request as wan27

    upload = Image(data=png(), mime="image/png")
    with pytest.raises(Unsupported, match="input_reference"):
        await wan27.create_body(
            req(images=(upload,)), I2V, url_of=adapter().input_url, prompt_extend=True
        )


async def test_metadata_media_replaces_the_built_list_and_hosts_nothing():
    upload = Image(data=png(), mime="image/png")
    given = [{"type": "first_frame", "url": "oss://dashscope-instant/abc/cat.png"}]
    request = req(images=(upload,), metadata={"input": {"media": given}})
    from relay.providers.dashscope.wan27 import request as wan27

    with hosted(StubScope()) as stub:
        built = await wan27.create_body(
            request, I2V, url_of=adapter().input_url, prompt_extend=True
        )
    assert built.body["input"]["media"] == given and stub.hosted == []
    assert built.oss is True  # the create then carries X-DashScope-OssResourceResolve


async def test_duration_follows_a_metadata_media_list():
    metadata = {"input": {"media": [{"type": "reference_video", "url": CLIP}]}}
    built = await body_of(req(seconds=14, images=(frame(),), metadata=metadata), R2V)
    assert built.body["parameters"]["duration"] == 10  # 2-10 with a reference video


async def test_bad_metadata_is_refused_before_anything_is_hosted():
    from relay.providers.dashscope.wan27 import request as wan27

    upload = Image(data=png(), mime="image/png")
    request = req(images=(upload,), metadata={"input": {"img_url": IMG}})
    with hosted(StubScope()) as stub, pytest.raises(Rejected):
        await wan27.create_body(request, I2V, url_of=adapter().input_url, prompt_extend=True)
    assert stub.hosted == []


async def test_metadata_passthrough():
    metadata = {"parameters": {"shot_type": "multi", "duration": -1}}
    built = await body_of(req(metadata=metadata), WAN3)
    assert built.body["parameters"]["shot_type"] == "multi"
    assert built.body["parameters"]["duration"] == -1
    assert built.seconds == "5"  # the model chooses: what was asked shows until usage says


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ({"input": {"img_url": IMG}}, "metadata.input.img_url is a Wan 2.6 field"),
        ({"input": {"first_frame_url": IMG}}, "metadata.input.first_frame_url"),
        ({"input": {"reference_video_urls": [CLIP]}}, "reference_video_urls"),
        ({"parameters": {"size": "1280*720"}}, "metadata.parameters.size is a Wan 2.6 field"),
        (
            {"input": {"media": [{"type": "first_frame", "url": data_url(png())}]}},
            r"metadata.input.media\[0\].url: DashScope takes no data: URL",
        ),
        ({"parameters": "fast"}, "must be objects"),
    ],
)
async def test_2_6_fields_never_reach_a_new_model(metadata: dict[str, Any], words: str):
    with pytest.raises(Rejected, match=words) as caught:
        await body_of(req(images=(frame(),), metadata=metadata), I2V)
    assert caught.value.param == "metadata"


# --- wan27_image_model: a t2v model asked with an image ---------------------------------------


async def test_t2v_with_an_image_is_refused_without_the_option():
    why = adapter().refusal(req(images=(frame(),)), T2V)
    assert why is not None and "options.wan27_image_model" in why and "text-to-video" in why


async def test_t2v_with_an_image_switches_to_the_image_model():
    built = await body_of(req(images=(frame(),)), T2V, wan27_image_model=I2V)
    assert built.body["model"] == I2V
    assert built.body["input"]["media"] == [{"type": "first_frame", "url": IMG}]
    assert "ratio" not in built.body["parameters"]
    # text jobs stay on the t2v model
    assert (await body_of(req(), T2V, wan27_image_model=I2V)).body["model"] == T2V


@pytest.mark.parametrize("bad", ["wan2.6-i2v", T2V, "happyhorse-1.0-t2v"])
def test_the_image_model_must_be_a_new_image_model(bad: str):
    why = adapter(wan27_image_model=bad).refusal(req(images=(frame(),)), T2V)
    assert why is not None and "is not a Wan 2.7/3.0 image model" in why


# --- refusals, before any network --------------------------------------------------------------


I2V_ALLOWED = [
    {"images": (frame(),)},
    {"images": (frame(),), "media": (audio(),)},
    {"images": (frame(), frame(IMG2))},
    {"images": (frame(), frame(IMG2)), "media": (audio(),)},
    {"media": (video(),)},
    {"images": (frame(role="last_frame"),), "media": (video(),)},
]


@pytest.mark.parametrize("kw", I2V_ALLOWED)
def test_the_six_i2v_combinations(kw: dict[str, Any]):
    assert adapter().refusal(req(**kw), I2V) is None


@pytest.mark.parametrize(
    ("model", "kw", "words"),
    [
        (I2V, {}, "needs a first frame image or a first clip video"),
        (I2V, {"images": (frame(role="last_frame"),)}, "got last_frame"),
        (I2V, {"images": (frame(role="last_frame"),), "media": (audio(),)}, "got driving_audio"),
        (I2V, {"images": (frame(),), "media": (video(),)}, "got first_clip + first_frame"),
        (I2V, {"media": (video(), audio())}, "got driving_audio + first_clip"),
        (I2V, {"media": (video(), video())}, "got first_clip"),
        (I2V, {"images": (frame(role="reference_image"),)}, "takes no reference image"),
        ("happyhorse-1.0-i2v", {"images": (frame(), frame(IMG2))}, "takes no last frame"),
        ("happyhorse-1.0-i2v", {"media": (video(),)}, "takes no first clip"),
        (T2V, {"media": (video(),)}, "takes no reference video"),
        (T2V, {"media": (audio(), audio())}, "one driving audio"),
        (R2V, {}, "takes 1 to 5 reference images or videos (got 0)"),
        (R2V, {"images": (frame(role="first_frame"),)}, "(got 0)"),
        (R2V, {"images": tuple(frame(f"{IMG}?{n}") for n in range(6))}, "(got 6)"),
        (R2V, {"images": (frame(),), "media": (audio(),)}, "takes no audio"),
        (R2V, {"images": (frame(), frame(IMG2, "last_frame"))}, "takes no last frame"),
        (EDIT, {"images": (frame(),)}, "edits exactly one video (got 0)"),
        (EDIT, {"media": (video(), video())}, "(got 2)"),
        (EDIT, {"images": (frame(role="first_frame"),), "media": (video(),)}, "no first frame"),
        (EDIT, {"media": (video(), audio())}, "takes no audio"),
        (WAN3, {"images": (frame(), frame(IMG2, "reference_image"))}, "not both"),
        (WAN3, {"images": (frame(),), "media": (audio(),)}, "not both"),
        (WAN3, {"images": (frame(),), "media": (video(),)}, "not both"),
        (WAN3, {"images": (frame(role="last_frame"),)}, "only together with a first frame"),
        (
            WAN3,
            {"images": tuple(frame(f"{IMG}?{n}", "reference_image") for n in range(11))},
            "at most 10 reference image",
        ),
        (
            WAN3,
            {"media": tuple(video(f"{CLIP}?{n}") for n in range(6))},
            "at most 5 reference video",
        ),
        (
            WAN3,
            {"media": tuple(audio(f"{SONG}?{n}") for n in range(6))},
            "at most 5 reference audio",
        ),
    ],
)
def test_refusals(model: str, kw: dict[str, Any], words: str):
    why = adapter().refusal(req(**kw), model)
    assert why is not None and words in why, why
    assert model in why


@pytest.mark.parametrize(
    ("model", "media", "words"),
    [
        (I2V, [{"type": "last_frame", "url": IMG}], "got last_frame"),
        (I2V, [{"type": "reference_image", "url": IMG}], "no media of type 'reference_image'"),
        (WAN3, [{"type": "first_frame", "url": IMG}, {"type": "link", "url": IMG2}], "not both"),
        (WAN3, [{"type": "file", "url": IMG}, {"type": "file", "url": IMG2}], "at most 1 file"),
        (EDIT, [], "edits exactly one video"),
    ],
)
def test_a_metadata_media_list_is_checked_by_the_same_rules(
    model: str, media: list[dict[str, str]], words: str
):
    why = adapter().refusal(req(metadata={"input": {"media": media}}), model)
    assert why is not None and words in why


def test_allowed_beyond_i2v():
    provider = adapter()
    assert provider.refusal(req(images=(frame(),), media=(video(),)), R2V) is None
    assert provider.refusal(req(media=(video(),)), EDIT) is None
    assert provider.refusal(req(media=(audio(),)), T2V) is None
    references = (frame(role="reference_image"),) * 10
    assert provider.refusal(req(images=references, media=(video(),) * 5), WAN3) is None


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"images": (frame(role="reference_image"),)}, "takes no reference images"),
        ({"media": (video(),)}, "takes no reference video"),
    ],
)
def test_2_6_models_refuse_references_and_videos(kw: dict[str, Any], words: str):
    why = adapter().refusal(req(**kw), "wan2.6-i2v")
    assert why is not None and words in why


# --- remix by video edit ----------------------------------------------------------------------


def test_remix_is_opt_in():
    plain, remixing = adapter(), adapter(remix_model=EDIT)
    assert "remix" not in plain.features and not plain.can_remix(T2V)
    assert "remix" in remixing.features and remixing.can_remix("wan2.6-t2v")
    request = replace(req(), remix_of="video_src")
    assert "does not support remix" in (plain.refusal(request, T2V) or "")
    assert remixing.refusal(request, T2V) is None
    assert remixing.refusal(request, "wan2.6-t2v") is None  # any source model: its file is edited
    why = adapter(remix_model="wan2.7-t2v").refusal(request, T2V)
    assert why is not None and "is not a Wan video edit model" in why


def test_remix_body_is_the_pages():
    page = fixture("wan27_videoedit.json")
    request = replace(req(size="1920x1080", seconds=12), prompt=page["input"]["prompt"])
    built = remix_body(
        request, EDIT, page["input"]["media"][0]["url"], "1280x720", "5", prompt_extend=True
    )
    page["parameters"].update(prompt_extend=True, watermark=False)
    assert built.body == page
    assert (built.seconds, built.size) == ("5", "1280x720")  # the source's, not the request's
    built = remix_body(request, EDIT, "https://x.test/v.mp4", "1080x1920", "8", prompt_extend=False)
    assert built.body["parameters"]["resolution"] == "1080P"


def source_ref(state: dict[str, Any]) -> TaskRef:
    return TaskRef(
        id="video_src",
        upstream_id="up",
        upstream_model=T2V,
        state=state,
        submitted_at=0.0,
        seconds="5",
        size="1280x720",
        status="completed",
    )


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ({"video_url": "https://r.test/v.mp4", "expires_at": 1.0}, "upstream result expired"),
        ({}, "keeps no copy"),
    ],
)
async def test_remix_of_an_expired_or_missing_result_is_a_400(state: dict[str, Any], words: str):
    with pytest.raises(Rejected, match=words) as caught:
        await adapter(remix_model=EDIT).remix(source_ref(state), replace(req(), remix_of="v"), T2V)
    assert caught.value.param == "video_id"
    with pytest.raises(Unsupported):
        await adapter().remix(source_ref(state), replace(req(), remix_of="v"), T2V)


# --- answers ----------------------------------------------------------------------------------


def test_the_pages_success():
    update = task_update(
        fixture("wan27_query_succeeded.json"),
        seen_at=1_790_000_000 - 86000,
        utc_offset_hours=8,
        requested_size="720x1280",
    )
    assert update.status == "completed" and update.seconds == "5"
    assert update.size == "1080x1920"  # SR 1080 in the requested aspect
    assert update.expires_at == 1_790_000_000


@pytest.mark.parametrize(
    ("usage", "requested", "size"),
    [
        ({"SR": 720, "ratio": "9:16"}, "1920x1080", "720x1280"),
        ({"ratio": "1:1"}, "1920x1080", "1440x1440"),  # the tier asked, in the ratio made
        ({"ratio": "4:3", "SR": "480"}, "1280x720", "832x480"),
        ({"size": "1632*1248", "ratio": "4:3"}, "1280x720", "1632x1248"),
        ({}, "1280x720", None),
    ],
)
def test_size_from_usage(usage: dict[str, Any], requested: str, size: str | None):
    assert produced_size(usage, requested) == size


def test_a_failed_fetch_is_invalid_request():
    update = task_update(
        fixture("wan27_query_invalid_url.json"),
        seen_at=0,
        utc_offset_hours=8,
        requested_size="1280x720",
    )
    assert update.status == "failed" and update.error is not None
    assert update.error.code == "invalid_request"
    assert update.error.message.startswith("InvalidURL: Download the media resource")


@pytest.mark.parametrize("case", sorted(fixture("wan27_errors.json")))
def test_new_protocol_rejections_are_invalid_request(case: str):
    answer = fixture("wan27_errors.json")[case]
    error = classify(answer["status"], {}, answer["body"], "", creating=True)
    assert isinstance(error, Rejected) and not error.moderation
    assert error.code == "invalid_request"
    assert error.param == ("input_reference" if case == "invalid_url" else None)
    assert answer["body"]["message"] in error.message


def test_options_are_validated(registered: None, make_config: Callable[..., Config]):
    def channel(**options: Any) -> dict[str, Any]:
        return {
            "name": "d",
            "provider": "dashscope",
            "api_key": "k",
            "models": ["sora-2"],
            "options": options,
        }

    for key in ("wan27_image_model", "remix_model"):
        with pytest.raises(ConfigError, match=key):
            make_config(channels=[channel(**{key: True})])
    ok = make_config(channels=[channel(wan27_image_model=I2V, remix_model=EDIT)])
    assert ok.channels[0].options["remix_model"] == EDIT


# --- the fake, as the page describes it --------------------------------------------------------


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "dashscope", DashScopeProvider)


@pytest.fixture
async def fake() -> AsyncIterator[DashScopeFake]:
    server = DashScopeFake(model=T2V)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def direct(fake: DashScopeFake) -> AsyncIterator[DashScopeProvider]:
    from relay.upstream import Http

    http = Http(allow_private_networks=True)
    channel = ChannelView(
        "d", DashScopeOptions(remix_model=EDIT), base_url=fake.base_url, api_key=fake.api_key
    )
    yield DashScopeProvider(channel, ChannelHttp(http, 10))
    await http.close()


def on_the_cdn(fake: DashScopeFake) -> StubScope:
    """Hosted bytes land on the fake's own CDN, where the fake's media fetch finds them."""

    def put(data: bytes, mime: str) -> str:
        name = f"hosted-{len(fake.files)}.{mime.partition('/')[2]}"
        fake.files[name] = data
        return fake.cdn_url(name)

    return StubScope(put)


async def post(direct: DashScopeProvider, fake: DashScopeFake, body: dict[str, Any]) -> Any:
    headers = {"Authorization": f"Bearer {fake.api_key}", "X-DashScope-Async": "enable"}
    return await direct.http.request("POST", direct.api + CREATE[7:], headers=headers, json=body)


@pytest.mark.parametrize(
    ("model", "kw"),
    [
        (T2V, {"media": (audio(),), "negative_prompt": "blur", "seed": 3}),
        (I2V, {"images": (Image(data=png(), mime="image/png"),), "media": (audio(),)}),
        (I2V, {"images": (frame(role="last_frame"),), "media": (video(),)}),
        ("wan2.7-i2v-2026-04-25", {"images": (frame(),)}),
        (R2V, {"images": (frame(),), "media": (video(),)}),
        (EDIT, {"images": (frame(),), "media": (video(),)}),
        (WAN3, {"images": (frame(), frame(IMG2))}),
        (WAN3, {"images": (frame(role="reference_image"),), "media": (video(), audio())}),
        ("wan3.0-video-prime", {"size": "854x480", "seconds": 30}),
        ("happyhorse-1.0-i2v", {"images": (frame(),)}),
        ("happyhorse-1.1-t2v", {}),
    ],
)
async def test_the_fake_takes_every_body_the_adapter_builds(
    direct: DashScopeProvider, fake: DashScopeFake, model: str, kw: dict[str, Any]
):
    with hosted(on_the_cdn(fake)) as stub:
        submitted = await direct.submit(req(**kw), model)
    task = fake.tasks[submitted.upstream_id]
    assert task.request["model"] == model
    for data, _, _ in stub.hosted:  # the fake fetched what the relay hosted, byte for byte
        assert data in fake.fetched.values()


async def test_the_fake_fetches_a_hosted_reference_video(
    direct: DashScopeProvider, fake: DashScopeFake
):
    clip = Media("video", role="reference_video", data=VIDEO, mime="video/mp4")
    with hosted(on_the_cdn(fake)):
        await direct.submit(req(images=(frame(),), media=(clip,)), R2V)
    [url] = [
        m["url"] for m in fake.creates()[0]["input"]["media"] if m["type"] != "reference_image"
    ]
    assert fake.fetched[url] == VIDEO


def edited(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(body))
    *parents, last = path.split(".")
    node = copy
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is DROP:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return copy


DROP = object()
BAD = "InvalidParameter"
FIRST = {"type": "first_frame", "url": IMG}
CLIP_ITEM = {"type": "first_clip", "url": CLIP}
OSS = "oss://dashscope-instant/a.png"
PAGE_T2V = fixture("wan27_t2v.json")
PAGE_I2V = fixture("wan27_i2v.json")
PAGE_R2V = fixture("wan27_r2v.json")
PAGE_EDIT = fixture("wan27_videoedit.json")


@pytest.mark.parametrize("body", [PAGE_T2V, PAGE_I2V, PAGE_R2V, PAGE_EDIT])
async def test_the_fake_takes_the_pages_bodies(
    direct: DashScopeProvider, fake: DashScopeFake, body: dict[str, Any]
):
    reply = await post(direct, fake, body)
    assert reply.status == 200, reply.text()


@pytest.mark.parametrize(
    ("body", "path", "value", "code", "words"),
    [
        (PAGE_T2V, "parameters.size", "1280*720", BAD, "parameters.size"),
        (PAGE_T2V, "parameters.resolution", "720p", BAD, "resolution"),
        (PAGE_T2V, "parameters.duration", "5", BAD, "integer"),
        (PAGE_T2V, "parameters.duration", 16, BAD, "out of range"),
        (PAGE_T2V, "parameters.ratio", "21:9", BAD, "ratio"),
        (PAGE_T2V, "parameters.audio", "yes", BAD, "boolean"),
        (PAGE_T2V, "parameters.audio_setting", "origin", BAD, "audio_setting"),
        (PAGE_T2V, "parameters.shot_type", "many", BAD, "shot_type"),
        (PAGE_T2V, "parameters.seed", -1, BAD, "seed"),
        (PAGE_T2V, "input.prompt", DROP, BAD, "input.prompt"),
        (PAGE_T2V, "input.img_url", IMG, BAD, "input.img_url"),
        (PAGE_T2V, "input.audio_url", "ftp://a.test/a.mp3", "InvalidURL", "audio_url"),
        (PAGE_T2V, "input.media", [FIRST], BAD, "media type"),
        (PAGE_I2V, "parameters.ratio", "16:9", BAD, "ratio is not supported"),
        (PAGE_I2V, "input.first_frame_url", IMG, BAD, "first_frame_url"),
        (PAGE_I2V, "input.media", [], BAD, "must provide an image"),
        (PAGE_I2V, "input.media.0", CLIP_ITEM, BAD, "combination"),
        (PAGE_I2V, "input.media.0.url", data_url(png()), BAD, "data URLs"),
        (PAGE_I2V, "input.media.0.url", OSS, BAD, "OssResourceResolve"),
        (PAGE_I2V, "input.media.0.url", "cat.png", "InvalidURL", "input.media[0].url"),
        (PAGE_I2V, "input.media.0.colour", "red", BAD, "colour"),
        (PAGE_T2V, "input.negative_prompt", "n" * 501, BAD, "negative_prompt"),
        (PAGE_T2V, "parameters.prompt_extend", "yes", BAD, "prompt_extend"),
        (PAGE_T2V, "parameters.watermark", 0, BAD, "watermark"),
        (PAGE_I2V, "input.audio_url", SONG, BAD, "use a media item"),
        (PAGE_I2V, "input.media.0.type", "reference_video", BAD, "media type"),
        (PAGE_R2V, "parameters.duration", 12, BAD, "out of range"),
        (PAGE_R2V, "input.media.0.reference_voice", "data:audio/wav;base64,AA==", BAD, "data URLs"),
        (PAGE_R2V, "input.media.1.reference_description", 7, BAD, "reference_description"),
        (PAGE_R2V, "input.media", [], BAD, "1 to 5"),
        (PAGE_EDIT, "parameters.ratio", "16:9", BAD, "ratio is not supported"),
        (PAGE_EDIT, "parameters.audio_setting", "mute", BAD, "audio_setting"),
        (PAGE_EDIT, "input.media", [], BAD, "exactly one"),
        (PAGE_EDIT, "model", "wan2.7-videoedit-us", "ModelNotFound", "Model not exist"),
    ],
)  # fmt: skip
async def test_the_fake_refuses_as_the_page_says(
    direct: DashScopeProvider,
    fake: DashScopeFake,
    body: dict[str, Any],
    path: str,
    value: Any,
    code: str,
    words: str,
):
    reply = await post(direct, fake, edited(body, path, value))
    answer = reply.json()
    assert reply.status == (404 if code == "ModelNotFound" else 400)
    assert answer["code"] == code and words in answer["message"], answer
    assert set(answer) == {"request_id", "code", "message"}
    assert fake.tasks == {}


async def test_the_fake_refuses_wan3_frames_with_references(
    direct: DashScopeProvider, fake: DashScopeFake
):
    media = [{"type": "first_frame", "url": IMG}, {"type": "reference_audio", "url": SONG}]
    body = {"model": WAN3, "input": {"prompt": "x", "media": media}, "parameters": {}}
    reply = await post(direct, fake, body)
    assert reply.status == 400 and "cannot be mixed" in reply.json()["message"]
    body["parameters"] = {"duration": -1, "resolution": "480P"}
    body["input"]["media"] = media[:1]
    assert (await post(direct, fake, body)).status == 200


async def test_the_fake_caps_wan3_media_and_takes_i2v_without_a_prompt(
    direct: DashScopeProvider, fake: DashScopeFake
):
    frames = [{"type": "first_frame", "url": IMG}] * 2
    body = {"model": WAN3, "input": {"prompt": "x", "media": frames}, "parameters": {}}
    reply = await post(direct, fake, body)
    assert reply.status == 400 and "at most 1 media of type first_frame" in reply.json()["message"]
    assert (await post(direct, fake, edited(PAGE_I2V, "input.prompt", DROP))).status == 200


async def test_oss_media_sends_the_resolve_header(direct: DashScopeProvider, fake: DashScopeFake):
    metadata = {"input": {"media": [{"type": "first_frame", "url": OSS}]}}
    await direct.submit(req(metadata=metadata), I2V)
    [create] = fake.calls(CREATE, "POST")
    assert create.headers["X-DashScope-OssResourceResolve"] == "enable"
    assert create.json()["input"]["media"] == metadata["input"]["media"]


async def test_the_fake_accepts_data_urls_when_told(direct: DashScopeProvider, fake: DashScopeFake):
    body = edited(PAGE_I2V, "input.media.0.url", data_url(png()))
    assert (await post(direct, fake, body)).status == 400
    fake.accept_data_urls = True
    assert (await post(direct, fake, body)).status == 200


async def test_an_unreachable_media_url_is_invalid_url(
    direct: DashScopeProvider, fake: DashScopeFake
):
    body = edited(PAGE_I2V, "input.media.0.url", fake.url("/cdn/nothing-here.png"))
    reply = await post(direct, fake, body)
    assert reply.status == 400 and reply.json()["code"] == "InvalidURL"
    error = classify(reply.status, reply.headers, reply.json(), reply.text(), creating=True)
    assert isinstance(error, Rejected) and error.param == "input_reference"


@pytest.mark.parametrize(
    ("extra", "size"),
    [(None, "1920x1080"), ("ratio", "1080x1920"), ("size", "1080x1920")],
)
async def test_usage_with_and_without_ratio_or_size(
    direct: DashScopeProvider, fake: DashScopeFake, extra: str | None, size: str
):
    fake.usage_extra = extra
    fake.usage_numbers = "float"
    submitted = await direct.submit(req("9:16", seconds=7), T2V)
    assert (submitted.seconds, submitted.size) == ("7", "1080x1920")
    task = source_ref({})
    task = replace(task, upstream_id=submitted.upstream_id, size="1920x1080")
    for _ in range(5):
        update = await direct.poll(task)
        if update.status == "completed":
            break
    assert (update.seconds, update.size) == ("7", size)


# --- through the relay --------------------------------------------------------------------------


Start = Callable[..., Any]


@pytest.fixture
def start(
    registered: None,
    fake: DashScopeFake,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
) -> Start:
    async def run(**channel: Any) -> Relay:
        config = make_config(
            channels=[fake.channel(fake.base_url, **channel)], storage={"keep_videos": False}
        )
        relay: Relay = await start_relay(config)
        return relay

    return run


@pytest.mark.parametrize(
    ("model", "size", "params", "reported"),
    [
        (T2V, "1280x720", {"resolution": "720P", "ratio": "16:9", "duration": 8}, "1280x720"),
        (WAN3, "16:9", {"ratio": "16:9", "duration": 8}, "1920x1080"),  # the default tier
    ],
)
async def test_create_poll_content_with_range(
    start: Start,
    fake: DashScopeFake,
    model: str,
    size: str,
    params: dict[str, Any],
    reported: str,
):
    relay = await start(model=model)
    video = await relay.create(model=model, size=size, seconds="8", generate_audio=True)
    assert (video["seconds"], video["size"]) == ("8", reported)
    [create] = fake.calls(CREATE, "POST")
    assert create.headers["X-DashScope-Async"] == "enable"
    body = create.json()
    assert body == {
        "model": model,
        "input": {"prompt": "a paper airplane over a lake"},
        "parameters": {**params, "prompt_extend": True, "watermark": False, "audio": True},
    }
    done = await relay.wait(video["id"])
    assert done["status"] == "completed" and done["seconds"] == "8"
    assert done["size"] == reported
    resp = await relay.client.get(
        f"/v1/videos/{video['id']}/content", headers={**auth(), "Range": "bytes=10-99"}
    )
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 10-99/{len(VIDEO)}"
    assert await resp.read() == VIDEO[10:100]


async def test_a_wan27_i2v_job_through_the_model_map(start: Start, fake: DashScopeFake):
    relay = await start()  # sora-2: text -> wan2.7-t2v, image -> wan2.7-i2v
    video = await relay.create(size="720x1280", input_reference={"image_url": IMG})
    body = fake.creates()[0]
    assert body["model"] == I2V
    assert body["input"]["media"] == [{"type": "first_frame", "url": IMG}]
    assert body["parameters"]["resolution"] == "720P" and "ratio" not in body["parameters"]
    assert video["size"] == "720x1280"
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_refusals_reach_the_client_before_any_call(start: Start, fake: DashScopeFake):
    relay = await start(model_map={"sora-2": I2V})
    for body, words in [
        ({"prompt": "x"}, "needs a first frame image"),
        (
            {
                "prompt": "x",
                "input_reference": {
                    "content": [
                        {"type": "image_url", "image_url": {"url": IMG}, "role": "last_frame"},
                        {"type": "audio_url", "audio_url": {"url": SONG}},
                    ]
                },
            },
            "got driving_audio + last_frame",
        ),
    ]:
        resp = await relay.client.post("/v1/videos", json=body, headers=auth())
        error = (await resp.json())["error"]
        assert resp.status == 400 and words in error["message"], error
        assert error["code"] == "unsupported_feature"
    assert fake.requests == []


async def test_wan27_image_model_option(start: Start, fake: DashScopeFake):
    refused = await start(model_map={"sora-2": T2V})
    resp = await refused.client.post(
        "/v1/videos", json={"prompt": "x", "image": IMG}, headers=auth()
    )
    assert resp.status == 400 and "wan27_image_model" in (await resp.json())["error"]["message"]
    relay = await start(model_map={"sora-2": T2V}, options={"wan27_image_model": I2V})
    video = await relay.create(image=IMG)
    assert fake.creates()[0]["model"] == I2V
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_a_rejection_from_the_upstream_is_a_400(start: Start, fake: DashScopeFake):
    relay = await start()
    resp = await relay.client.post(
        "/v1/videos",
        json={"prompt": "x", "metadata": {"parameters": {"resolution": "720p"}}},
        headers=auth(),
    )
    error = (await resp.json())["error"]
    assert resp.status == 400 and error["code"] == "invalid_parameter"
    assert error["message"].startswith("InvalidParameter: parameters.resolution must be one of")


async def test_remix_by_video_edit(start: Start, fake: DashScopeFake):
    fake.usage_extra = "ratio"
    relay = await start(options={"remix_model": EDIT})
    source = await relay.create(size="720x1280", seconds="6")
    done = await relay.wait(source["id"])
    task = next(iter(fake.tasks.values()))
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix",
        json={"prompt": "in snow", "seconds": "12", "size": "1920x1080"},
        headers=auth(),
    )
    remix = await resp.json()
    assert resp.status == 200, remix
    assert remix["remixed_from_video_id"] == source["id"]
    assert (remix["seconds"], remix["size"]) == (done["seconds"], done["size"])
    edit = fake.creates()[1]
    [url] = [m["url"] for m in edit["input"]["media"]]
    assert edit["model"] == EDIT
    assert edit["input"]["prompt"] == "in snow"
    assert edit["parameters"] == {
        "resolution": "720P",
        "audio_setting": "origin",
        "prompt_extend": True,
        "watermark": False,
    }
    assert url.startswith(fake.url(f"/cdn/{task.id}.mp4?Expires="))  # the source's result
    assert fake.fetched[url] == VIDEO  # fetched as received: the signature still matched
    assert fake.url("/cdn/") not in json.dumps(remix)  # the upstream URL stays upstream
    finished = await relay.wait(remix["id"])
    assert finished["status"] == "completed" and finished["remixed_from_video_id"] == source["id"]
    content = await relay.client.get(f"/v1/videos/{remix['id']}/content", headers=auth())
    assert await content.read() == VIDEO


async def test_remix_after_the_result_expired_is_refused(start: Start, fake: DashScopeFake):
    relay = await start(options={"remix_model": EDIT})
    source = await relay.create()
    await relay.wait(source["id"])
    row = await relay.store.get_task(source["id"])
    assert row is not None
    state = {**row.upstream_state, "expires_at": 1_000_000.0}
    await update_task(relay.store, source["id"], {"upstream_state": state})
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    error = (await resp.json())["error"]
    assert resp.status == 400 and error["param"] == "video_id"
    assert "upstream result expired" in error["message"]
    assert len(fake.creates()) == 1


@pytest.fixture
def start_public(
    registered: None,
    fake: DashScopeFake,
    aiohttp_client: Callable[..., Any],
    providers: dict[str, Any],
    make_config: Callable[..., Config],
) -> Start:
    """A relay whose public_url is its own address, so the fake can fetch what it hosts."""

    async def run(*, private: bool = True, keep: bool = False, **channel: Any) -> Relay:
        port = unused_port()
        server = {"public_url": f"http://127.0.0.1:{port}", "allow_private_networks": private}
        config = make_config(
            server=server,
            storage={"keep_videos": keep},
            channels=[fake.channel(fake.base_url, **channel)],
        )
        app = create_app(config, providers=providers)
        return Relay(await aiohttp_client(TestServer(app, host="127.0.0.1", port=port)))

    return run


R2V_WITH_A_DATA_URL_VIDEO = {
    "prompt": "Image 1 and Video 1 meet",
    "input_reference": {
        "content": [
            {"type": "image_url", "image_url": {"url": IMG}, "role": "reference_image"},
            {
                "type": "video_url",
                "video_url": {"url": "data:video/mp4;base64," + base64.b64encode(VIDEO).decode()},
            },
        ]
    },
}


async def test_a_data_url_reference_video_reaches_the_fake_through_the_hosted_url(
    start_public: Start, fake: DashScopeFake
):
    relay = await start_public(model_map={"sora-2": R2V})
    video = await relay.create(**R2V_WITH_A_DATA_URL_VIDEO)
    media = fake.creates()[0]["input"]["media"]
    assert media[0] == {"type": "reference_image", "url": IMG}
    assert media[1]["type"] == "reference_video"
    assert media[1]["url"].startswith(relay.url("/v1/files/"))  # never a data: URL
    assert fake.fetched[media[1]["url"]] == VIDEO  # the fake's GET got the client's bytes
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_a_data_url_needs_a_public_url_the_provider_reaches(
    start_public: Start, fake: DashScopeFake
):
    relay = await start_public(private=False, model_map={"sora-2": R2V})
    resp = await relay.client.post("/v1/videos", json=R2V_WITH_A_DATA_URL_VIDEO, headers=auth())
    error = (await resp.json())["error"]
    assert resp.status == 400 and error["param"] == "input_reference.content[1].video_url.url"
    assert "public_url" in error["message"]
    assert fake.creates() == []


async def test_audio_bytes_for_a_wan26_model_reach_it_through_the_hosted_url(
    start_public: Start, fake: DashScopeFake
):
    """The 2.6 audio_url takes a URL (data URLs are documented for img_url only)."""
    song = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 4
    relay = await start_public(model_map={"sora-2": "wan2.6-t2v"})
    item = {
        "type": "audio_url",
        "audio_url": {"url": "data:audio/mpeg;base64," + base64.b64encode(song).decode()},
    }
    video = await relay.create(prompt="a song", input_reference={"content": [item]})
    url = fake.creates()[0]["input"]["audio_url"]
    assert url.startswith(relay.url("/v1/files/"))
    assert fake.fetched[url] == song
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_remix_after_the_result_expired_edits_the_stored_copy(
    start_public: Start, fake: DashScopeFake
):
    """The page's "temporary upload of the stored copy": a relay-hosted URL of it."""
    relay = await start_public(keep=True, options={"remix_model": EDIT})
    source = await relay.create()
    assert (await relay.wait(source["id"]))["status"] == "completed"
    for _ in range(200):
        if await relay.store.stored_copy(source["id"], "video") is not None:
            break
        await relay.copier.round()
    row = await relay.store.get_task(source["id"])
    assert row is not None
    state = {**row.upstream_state, "expires_at": 1_000_000.0}
    await update_task(relay.store, source["id"], {"upstream_state": state})
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 200, await resp.text()
    [url] = [m["url"] for m in fake.creates()[1]["input"]["media"]]
    assert url.startswith(relay.url("/v1/files/"))
    assert fake.fetched[url] == VIDEO
