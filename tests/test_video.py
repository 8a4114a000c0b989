"""The OpenAI wire format as pure functions: parse_create, parse_remix, unflatten, render."""

from __future__ import annotations

import base64
from typing import Any

import openai
import orjson
import pytest

from relay.config import Defaults
from relay.domain import Image, Media, Size, Task, VideoRequest, sniff_image
from relay.errors import InvalidRequest, RelayError, RequestTooLarge
from relay.video import Upload, parse_create, parse_remix, render
from relay.web.forms import unflatten
from tests.images import data_url, jpeg, png, webp

MAX_UPLOAD = 10 * 1024 * 1024
URL = "https://img.example.test/a.png"


def parsed(upload: Upload | None = None, **data: Any) -> VideoRequest:
    """The request as the wire format reads it: what the client left out is None."""
    data.setdefault("prompt", "a paper airplane")
    return parse_create(data, upload, max_upload=MAX_UPLOAD)


def create(
    defaults: Defaults | None = None, upload: Upload | None = None, **data: Any
) -> VideoRequest:
    """The request with the config's defaults applied, as the create use case does once."""
    defaults = defaults or Defaults()
    return parsed(upload, **data).with_defaults(
        model=defaults.model, seconds=int(defaults.seconds), size=Size.parse(defaults.size)
    )


def refused(data: dict[str, Any], upload: Upload | None = None, **kw: Any) -> RelayError:
    """The error a create body gets (with a prompt unless the body says otherwise)."""
    body = {"prompt": "a paper airplane", **data}
    with pytest.raises(RelayError) as caught:
        parse_create(body, upload, max_upload=kw.get("max_upload", MAX_UPLOAD))
    return caught.value


def bad(data: dict[str, Any], param: str, code: str = "invalid_parameter") -> RelayError:
    """Assert a 400 with this code and param, and hand the error back for message checks."""
    error = refused(data)
    assert (error.status, error.code, error.param) == (400, code, param), error.body()
    assert error.type == "invalid_request_error"
    return error


# --- prompt and model -------------------------------------------------------------------------


def test_minimal_request_takes_the_config_defaults():
    req = create()
    assert isinstance(req, VideoRequest)
    assert (req.prompt, req.model, req.seconds, req.size) == (
        "a paper airplane",
        "sora-2",
        4,
        Size(width=720, height=1280),
    )
    assert req.images == () and req.media == () and dict(req.metadata) == {}
    given = parsed()
    assert (given.model, given.seconds, given.size) == (None, None, None)
    hints = (req.negative_prompt, req.seed, req.generate_audio, req.enhance_prompt)
    assert hints == (None, None, None, None) and req.person_generation is None
    assert req.remix_of is None


def test_defaults_come_from_the_config():
    req = create(Defaults(model="kling-v2", seconds="8", size="16:9"))
    assert (req.model, req.seconds, req.size) == ("kling-v2", 8, Size(ratio=(16, 9)))


def test_prompt_bounds_count_characters():
    assert create(prompt="x").prompt == "x"
    assert create(prompt="é" * 32000).prompt == "é" * 32000  # characters, not bytes
    error = bad({"prompt": "x" * 32001}, "prompt")
    assert "32000" in error.message


@pytest.mark.parametrize("prompt", ["", "   \n"])
def test_empty_prompt_is_missing(prompt: str):
    bad({"prompt": prompt}, "prompt", "missing_parameter")


def test_absent_or_null_prompt_is_missing():
    with pytest.raises(InvalidRequest) as caught:
        parse_create({}, None, max_upload=MAX_UPLOAD)
    assert (caught.value.code, caught.value.param) == ("missing_parameter", "prompt")
    bad({"prompt": None}, "prompt", "missing_parameter")


@pytest.mark.parametrize("prompt", [42, ["a"], {"text": "a"}, True])
def test_prompt_must_be_a_string(prompt: Any):
    bad({"prompt": prompt}, "prompt")


def test_model_given_is_kept_and_trimmed():
    req = parsed(model=" sora-2-pro ")
    assert req.model == "sora-2-pro"


def test_null_fields_count_as_not_sent():
    req = create(model=None, seconds=None, size=None, metadata=None, seed=None, image=None)
    assert (req.model, req.seconds, str(req.size)) == ("sora-2", 4, "720x1280")
    given = parsed(model=None, seconds=None, size=None, metadata=None, seed=None, image=None)
    assert (given.model, given.seconds, given.size, given.seed) == (None, None, None, None)


@pytest.mark.parametrize("model", ["", "  ", 5, ["sora-2"]])
def test_bad_model(model: Any):
    bad({"model": model}, "model")


# --- seconds and size -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("4", 4), (8, 8), (" 12 ", 12), ("1", 1), (120, 120), ("010", 10)]
)
def test_seconds_string_or_integer(value: Any, expected: int):
    assert create(seconds=value).seconds == expected


@pytest.mark.parametrize(
    "value", ["0", 0, "121", 121, "-1", -4, "4.5", 4.5, 8.0, "four", "", True, "²", "٣", "9" * 5000]
)
def test_seconds_out_of_bounds_or_not_whole(value: Any):
    bad({"seconds": value}, "seconds")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1280x720", Size(width=1280, height=720)),
        ("720x1280", Size(width=720, height=1280)),
        (" 1920X1080 ", Size(width=1920, height=1080)),
        ("16:9", Size(ratio=(16, 9))),
        ("9:16", Size(ratio=(9, 16))),
        ("1:1", Size(ratio=(1, 1))),
    ],
)
def test_size_pixels_or_ratio(value: str, expected: Size):
    assert create(size=value).size == expected


@pytest.mark.parametrize(
    "value",
    ["", "1280", "0x720", "1280x0", "0:9", "axb", "1280x720x3", "9000x720", "101:1", "²x3",
     "16/9", "-16:9", 1280, ["16:9"], "9" * 5000 + "x1"],
)  # fmt: skip
def test_bad_size(value: Any):
    error = bad({"size": value}, "size")
    assert "WIDTHxHEIGHT" in error.message


# --- input_reference: image_url ---------------------------------------------------------------


@pytest.mark.parametrize("url", [URL, "http://img.example.test/b.jpg?sig=1"])
def test_input_reference_image_url(url: str):
    req = create(input_reference={"image_url": url})
    assert req.images == (Image(url=url),)
    assert create(input_reference={"image_url": {"url": url}}).images == (Image(url=url),)


@pytest.mark.parametrize(
    ("image", "mime"), [(png(), "image/png"), (jpeg(), "image/jpeg"), (webp(), "image/webp")]
)
def test_input_reference_data_url_is_sniffed(image: bytes, mime: str):
    # the data: URL's own mime type is not trusted: the bytes decide
    req = create(input_reference={"image_url": data_url(image, "application/octet-stream")})
    (got,) = req.images
    assert (got.data, got.mime, got.url, got.role) == (image, mime, None, None)


def test_data_url_tolerates_wrapped_base64_and_case():
    encoded = base64.encodebytes(png()).decode()  # wrapped at 76 columns
    (got,) = create(image=f"data:image/png;BASE64,{encoded}").images
    assert got.data == png()


@pytest.mark.parametrize(
    "value",
    [
        data_url(b"just some text, not an image", "image/png"),
        "data:image/png,rawbytes",  # not base64
        "data:image/png;base64,!!!not base64!!!",
        "data:image/png;base64,",
        "data:image/png;base64",
    ],
)
def test_data_url_must_be_a_base64_image(value: str):
    bad({"input_reference": {"image_url": value}}, "input_reference.image_url", "invalid_image")


def test_data_url_over_the_upload_limit_is_413():
    big = png() + b"\0" * 2000
    error = refused({"input_reference": {"image_url": data_url(big)}}, max_upload=1000)
    assert (error.status, error.param) == (413, "input_reference.image_url")
    assert isinstance(error, RequestTooLarge)


@pytest.mark.parametrize(
    "value",
    ["ftp://img.example.test/a.png", "file:///etc/passwd", "img.example.test/a.png", "https://",
     "http://[::1/x", "https://img.example.test/a b.png", "", 42, None, {"href": URL}],
)  # fmt: skip
def test_image_url_must_be_http_or_data(value: Any):
    error = bad({"input_reference": {"image_url": value}}, "input_reference.image_url")
    assert "http(s) URL or a data: URL" in error.message


def test_input_reference_as_a_bare_url_string():
    assert create(input_reference=URL).images == (Image(url=URL),)


def test_input_reference_file_id_is_refused_by_name():
    error = refused({"input_reference": {"file_id": "file_123"}})
    assert (error.status, error.param) == (400, "input_reference.file_id")
    assert "Files API" in error.message and "file_id" in error.message


@pytest.mark.parametrize(
    ("value", "param", "code"),
    [
        ({"image_url": URL, "detail": "high"}, "input_reference.detail", "unknown_parameter"),
        ({"image_url": URL, "content": []}, "input_reference", "invalid_parameter"),
        ({}, "input_reference.content", "invalid_parameter"),
        ([URL], "input_reference", "invalid_parameter"),
        (5, "input_reference", "invalid_parameter"),
        ({"content": []}, "input_reference.content", "invalid_parameter"),
        ({"content": {"type": "image_url"}}, "input_reference.content", "invalid_parameter"),
    ],
)
def test_bad_input_reference_shapes(value: Any, param: str, code: str):
    bad({"input_reference": value}, param, code)


# --- input_reference: content[] ---------------------------------------------------------------


def item(kind: str = "image_url", url: str = URL, role: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, kind: {"url": url}}
    if role is not None:
        out["role"] = role
    return out


def content(*items: Any) -> dict[str, Any]:
    return {"input_reference": {"content": list(items)}}


def test_content_items_with_roles():
    req = create(
        **content(
            item(role="first_frame"),
            item(url="https://img.example.test/z.png", role="last_frame"),
            {"type": "image_url", "image_url": data_url(webp()), "role": "reference_image"},
            item("video_url", "https://cdn.example.test/ref.mp4"),
            item("audio_url", "https://cdn.example.test/ref.mp3", role="reference_audio"),
            item(),
        )
    )
    assert req.images == (
        Image(role="first_frame", url=URL),
        Image(role="last_frame", url="https://img.example.test/z.png"),
        Image(role="reference_image", data=webp(), mime="image/webp"),
        Image(role=None, url=URL),
    )
    assert req.media == (
        Media(kind="video", url="https://cdn.example.test/ref.mp4", role="reference_video"),
        Media(kind="audio", url="https://cdn.example.test/ref.mp3", role="reference_audio"),
    )


@pytest.mark.parametrize(
    ("items", "param", "code"),
    [
        (["https://x.test/a.png"], "input_reference.content[0]", "invalid_parameter"),
        ([item(), {"image_url": {"url": URL}}], "input_reference.content[1].type",
         "invalid_parameter"),
        ([{"type": "image", "image": {"url": URL}}], "input_reference.content[0].type",
         "invalid_parameter"),
        ([{"type": "text", "text": "a cat"}], "input_reference.content[0].text",
         "unsupported_parameter"),
        ([item(), {**item(), "text": "a cat"}], "input_reference.content[1].text",
         "unsupported_parameter"),
        ([{"type": "text"}], "input_reference.content[0].text", "unsupported_parameter"),
        ([{**item(), "detail": "low"}], "input_reference.content[0].detail",
         "unknown_parameter"),
        ([{**item(), "video_url": {"url": URL}}], "input_reference.content[0].video_url",
         "unknown_parameter"),
        ([item(role="middle_frame")], "input_reference.content[0].role", "invalid_parameter"),
        ([{**item(), "role": 1}], "input_reference.content[0].role", "invalid_parameter"),
        ([item(role="first_frame"), item(role="first_frame")],
         "input_reference.content[1].role", "invalid_parameter"),
        ([item("video_url", "https://x.test/v.mp4", role="first_frame")],
         "input_reference.content[0].role", "invalid_parameter"),
        ([item("audio_url", "https://x.test/a.mp3", role="reference_video")],
         "input_reference.content[0].role", "invalid_parameter"),
        ([item("video_url", "data:video/mp4;base64,AAAA")],
         "input_reference.content[0].video_url.url", "invalid_parameter"),
        ([{"type": "video_url", "video_url": {}}],
         "input_reference.content[0].video_url.url", "invalid_parameter"),
        ([item(), item(url="ftp://x.test/a.png")], "input_reference.content[1].image_url.url",
         "invalid_parameter"),
        ([item(url=data_url(b"GIF89a..."))], "input_reference.content[0].image_url.url",
         "invalid_image"),
    ],
)  # fmt: skip
def test_content_item_checks_name_the_item(items: list[Any], param: str, code: str):
    bad(content(*items), param, code)


def test_content_text_error_points_to_prompt():
    error = bad(content({"type": "text", "text": "a cat"}), "input_reference.content[0].text",
                "unsupported_parameter")  # fmt: skip
    assert "prompt" in error.message


# --- uploads, image, and how they combine -----------------------------------------------------


def test_uploaded_file_becomes_an_image():
    req = create(upload=Upload(png(), "image/png", "frame.png"))
    assert req.images == (Image(data=png(), mime="image/png"),)


def test_upload_and_input_reference_fields_conflict():
    error = refused({"input_reference": {"image_url": URL}}, Upload(png(), "image/png", "a.png"))
    assert (error.status, error.param) == (400, "input_reference")


def test_image_field_of_older_clients():
    assert create(image=URL).images == (Image(url=URL),)
    assert create(image=data_url(jpeg())).images == (Image(data=jpeg(), mime="image/jpeg"),)
    bad({"image": "not a url"}, "image")
    bad({"image": data_url(b"plain text")}, "image", "invalid_image")


@pytest.mark.parametrize(
    "other", [{"input_reference": {"image_url": URL}}, content(item("video_url"))]
)
def test_image_and_input_reference_conflict(other: dict[str, Any]):
    bad({"image": URL, **other}, "image")
    with pytest.raises(InvalidRequest) as caught:
        parse_create(
            {"prompt": "p", "image": URL},
            Upload(png(), "image/png", "a.png"),
            max_upload=MAX_UPLOAD,
        )
    assert caught.value.param == "image"


# --- optional hints ---------------------------------------------------------------------------


def test_hints_are_passed_with_their_types():
    req = create(
        negative_prompt="blur",
        seed=42,
        generate_audio=True,
        enhance_prompt=False,
        person_generation="allow_adult",
    )
    assert (req.negative_prompt, req.seed, req.generate_audio, req.enhance_prompt) == (
        "blur",
        42,
        True,
        False,
    )
    assert req.person_generation == "allow_adult"
    stored = req.stored()
    assert stored["seed"] == 42 and stored["generate_audio"] is True
    assert stored["enhance_prompt"] is False and stored["person_generation"] == "allow_adult"


def test_form_strings_become_typed_hints():
    req = create(seed="7", generate_audio="false", enhance_prompt="1")
    assert (req.seed, req.generate_audio, req.enhance_prompt) == (7, False, True)
    assert create(generate_audio="TRUE", enhance_prompt="0").generate_audio is True


@pytest.mark.parametrize("seed", [-1, 0, 2**32 - 1, "-1"])
def test_seed_range(seed: Any):
    assert create(seed=seed).seed == int(seed)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seed", 2**32),
        ("seed", -2),
        ("seed", 4.2),
        ("seed", "4.2"),
        ("seed", "abc"),
        ("seed", True),
        ("seed", "²"),
        ("generate_audio", "yes"),
        ("generate_audio", 1),
        ("generate_audio", "on"),
        ("enhance_prompt", "no"),
        ("enhance_prompt", [True]),
        ("negative_prompt", 5),
        ("negative_prompt", ["blur"]),
        ("person_generation", False),
    ],
)
def test_hint_types(field: str, value: Any):
    bad({field: value}, field)


# --- remix_video_id ---------------------------------------------------------------------------


def test_remix_video_id():
    req = parsed(remix_video_id="video_abc", seconds="8")
    assert req.remix_of == "video_abc"
    assert (req.model, req.seconds, req.size) == (None, 8, None)
    assert req.stored()["remix_video_id"] == "video_abc"


def test_remix_video_id_with_an_uploaded_file():
    error = refused({"remix_video_id": "video_abc"}, Upload(png(), "image/png", "a.png"))
    assert (error.status, error.param) == (400, "remix_video_id")
    assert "uploaded" in error.message


@pytest.mark.parametrize(
    "other", [{"input_reference": {"image_url": URL}}, {"image": URL}, content(item())]
)
def test_remix_video_id_with_an_image_is_not_silently_dropped(other: dict[str, Any]):
    bad({"remix_video_id": "video_abc", **other}, "remix_video_id")


@pytest.mark.parametrize("value", ["", "  ", 5])
def test_bad_remix_video_id(value: Any):
    bad({"remix_video_id": value}, "remix_video_id")


# --- metadata ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"watermark": False, "camera": {"type": "pan"}}, {"watermark": False,
                                                             "camera": {"type": "pan"}}),
        ('{"watermark": false, "n": 2}', {"watermark": False, "n": 2}),
        ("", {}),
        ("  ", {}),
        ({}, {}),
    ],
)  # fmt: skip
def test_metadata_object_or_json_string(value: Any, expected: dict[str, Any]):
    req = create(metadata=value)
    assert dict(req.metadata) == expected
    assert req.stored()["metadata"] == expected


@pytest.mark.parametrize("value", ["[1, 2]", "not json", '"text"', "{", 5, ["a"], True])
def test_metadata_must_be_an_object(value: Any):
    bad({"metadata": value}, "metadata")


def test_metadata_from_bracket_fields():
    fields = unflatten([("prompt", "p"), ("metadata[camera][type]", "pan"), ("metadata[n]", "2")])
    req = parse_create(fields, None, max_upload=MAX_UPLOAD)
    assert dict(req.metadata) == {"camera": {"type": "pan"}, "n": "2"}


# --- names: foreign, unknown, ignored ---------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "right"),
    [
        ("aspect_ratio", "size"),
        ("resolution", "size"),
        ("duration", "seconds"),
        ("duration_seconds", "seconds"),
        ("content", "input_reference.content"),
        ("img_url", "image"),
    ],
)
def test_fields_of_other_apis_name_the_right_one(field: str, right: str):
    error = bad({field: "16:9"}, field, "unsupported_parameter")
    assert field in error.message and right in error.message
    error = bad({field: None}, field, "unsupported_parameter")  # even empty: never ignored


@pytest.mark.parametrize("field", ["n", "quality", "style", "fps", "callback_url", "Prompt"])
def test_unknown_fields_suggest_metadata(field: str):
    error = bad({field: "x"}, field, "unknown_parameter")
    assert "put vendor fields in metadata" in error.message
    assert repr(field) in error.message


def test_task_id_and_video_id_are_ignored():
    req = create(task_id="abc", video_id="video_x")
    given = parsed(task_id="abc", video_id="video_x")
    assert (given.model, given.seconds, given.size) == (None, None, None)
    assert "task_id" not in req.stored() and "video_id" not in req.stored()
    assert req.fingerprint() == create().fingerprint()


def test_same_request_as_json_or_form_has_one_fingerprint():
    as_json = create(prompt="p", seconds=8, seed=3, generate_audio=True, metadata={"a": "1"})
    as_form = create(prompt="p", seconds="8", seed="3", generate_audio="true",
                     metadata='{"a": "1"}')  # fmt: skip
    assert as_json.fingerprint() == as_form.fingerprint()
    assert as_json.fingerprint() != create(prompt="q", seconds=8).fingerprint()


def test_stored_request_keeps_a_digest_of_image_bytes():
    stored = create(upload=Upload(png(), "image/png", "a.png")).stored()
    (image,) = stored["images"]
    assert image["mime"] == "image/png" and image["bytes"] == len(png())
    assert len(image["sha256"]) == 64
    orjson.dumps(stored)  # JSON-safe: no bytes inside


# --- remix ------------------------------------------------------------------------------------


def test_parse_remix_minimal_and_full():
    assert parse_remix({"prompt": "again"}) == VideoRequest(
        prompt="again", model=None, seconds=None, size=None, metadata={}
    )
    full = parse_remix(
        {"prompt": "again", "model": "sora-2", "seconds": 8, "size": "16:9", "metadata": "{}"}
    )
    assert full == VideoRequest(
        prompt="again", model="sora-2", seconds=8, size=Size(ratio=(16, 9)), metadata={}
    )
    nulls = parse_remix({"prompt": "again", "seconds": None, "size": None, "model": None})
    assert (nulls.model, nulls.seconds, nulls.size) == (None, None, None)


@pytest.mark.parametrize(
    ("data", "param", "code"),
    [
        ({}, "prompt", "missing_parameter"),
        ({"prompt": "a", "seconds": "0"}, "seconds", "invalid_parameter"),
        ({"prompt": "a", "size": "wide"}, "size", "invalid_parameter"),
        ({"prompt": "a", "model": ""}, "model", "invalid_parameter"),
        ({"prompt": "a", "metadata": "[]"}, "metadata", "invalid_parameter"),
        ({"prompt": "a", "duration": 5}, "duration", "unsupported_parameter"),
        ({"prompt": "a", "input_reference": {"image_url": URL}}, "input_reference",
         "unknown_parameter"),
        ({"prompt": "a", "seed": 1}, "seed", "unknown_parameter"),
        ({"prompt": "a", "colour": "red"}, "colour", "unknown_parameter"),
    ],
)  # fmt: skip
def test_parse_remix_errors(data: dict[str, Any], param: str, code: str):
    with pytest.raises(InvalidRequest) as caught:
        parse_remix(data)
    assert (caught.value.code, caught.value.param) == (code, param)


def test_remix_explains_create_only_fields():
    with pytest.raises(InvalidRequest) as caught:
        parse_remix({"prompt": "a", "image": URL})
    assert "remix" in caught.value.message and "prompt, model, seconds, size" in (
        caught.value.message
    )


# --- bracket names ----------------------------------------------------------------------------

P = "input_reference[content][]"


def test_unflatten_plain_names_and_nesting():
    assert unflatten([("prompt", "p"), ("input_reference[image_url]", URL)]) == {
        "prompt": "p",
        "input_reference": {"image_url": URL},
    }
    assert unflatten([("metadata[a][b]", "1"), ("metadata[a][c]", "2"), ("metadata[d]", "3")]) == {
        "metadata": {"a": {"b": "1", "c": "2"}, "d": "3"}
    }
    assert unflatten([("tags[]", "a"), ("tags[]", "b")]) == {"tags": ["a", "b"]}
    # not bracket names: kept whole, so the unknown-field error quotes what was sent
    assert unflatten([("a[b", "1"), ("[x]", "2"), ("a]b", "3"), ("a[b]c", "4")]) == {
        "a[b": "1",
        "[x]": "2",
        "a]b": "3",
        "a[b]c": "4",
    }


def test_unflatten_grouped_items_as_the_openai_sdk_sends_them():
    pairs = [
        (f"{P}[type]", "image_url"),
        (f"{P}[type]", "image_url"),
        (f"{P}[image_url][url]", "https://x.test/1.png"),
        (f"{P}[image_url][url]", "https://x.test/2.png"),
        (f"{P}[role]", "first_frame"),
        (f"{P}[role]", "last_frame"),
    ]
    assert unflatten(pairs)["input_reference"]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://x.test/1.png"}, "role": "first_frame"},
        {"type": "image_url", "image_url": {"url": "https://x.test/2.png"}, "role": "last_frame"},
    ]


@pytest.mark.parametrize("with_role", [0, 1])
def test_unflatten_interleaved_items_as_a_browser_sends_them(with_role: int):
    # an optional field on one item only lands on that item
    pairs: list[tuple[str, str]] = []
    for i in range(2):
        pairs += [(f"{P}[type]", "image_url"), (f"{P}[image_url][url]", f"https://x.test/{i}.png")]
        if i == with_role:
            pairs.append((f"{P}[role]", "last_frame"))
    items = unflatten(pairs)["input_reference"]["content"]
    assert [i["image_url"]["url"] for i in items] == [
        "https://x.test/0.png",
        "https://x.test/1.png",
    ]
    assert [i.get("role") for i in items] == [
        "last_frame" if n == with_role else None for n in range(2)
    ]


def test_unflatten_indices_in_any_order_with_gaps_closed():
    pairs = [
        ("input_reference[content][1][type]", "video_url"),
        ("input_reference[content][1][video_url][url]", "https://x.test/v.mp4"),
        ("input_reference[content][0][type]", "image_url"),
        ("input_reference[content][0][image_url][url]", URL),
        ("input_reference[content][0][role]", "first_frame"),
        ("list[5]", "b"),
        ("list[2]", "a"),
    ]
    out = unflatten(pairs)
    assert out["input_reference"]["content"] == [
        {"type": "image_url", "image_url": {"url": URL}, "role": "first_frame"},
        {"type": "video_url", "video_url": {"url": "https://x.test/v.mp4"}},
    ]
    assert out["list"] == ["a", "b"]


@pytest.mark.parametrize(
    "pairs",
    [
        [("a[5000][b]", "x")],  # would allocate a huge list
        [("a", "x"), ("a[b]", "y")],
        [("a[b]", "y"), ("a", "x")],
        [("a[b]", "y"), ("a[]", "x")],
        [("a[]", "y"), ("a[b]", "x")],
    ],
)
def test_unflatten_refuses_huge_indices_and_clashing_shapes(pairs: list[tuple[str, str]]):
    with pytest.raises(InvalidRequest) as caught:
        unflatten(pairs)
    assert caught.value.param == pairs[-1][0]


def _sdk_form(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The form fields the openai SDK sends for `body`, in its order (httpx expands lists)."""
    client = openai.OpenAI(api_key="sk-x", base_url="http://relay.test/v1")
    try:
        serialized = client._serialize_multipartform(body)
    finally:
        client.close()
    pairs: list[tuple[str, str]] = []
    for name, value in serialized.items():
        pairs += [(name, v) for v in value] if isinstance(value, list) else [(name, str(value))]
    return pairs


def test_openai_sdk_form_round_trips():
    body = {
        "prompt": "p",
        "seconds": "8",
        "input_reference": {
            "content": [
                item(role="first_frame"),
                item(url="https://x.test/last.png", role="last_frame"),
                item("video_url", "https://x.test/v.mp4", role="reference_video"),
            ]
        },
        "metadata": {"camera": {"type": "pan"}, "watermark": "false"},
    }
    pairs = _sdk_form(body)
    assert [n for n, _ in pairs][:4] == ["prompt", "seconds", f"{P}[type]", f"{P}[type]"]
    assert unflatten(pairs) == body
    req = parse_create(unflatten(pairs), None, max_upload=MAX_UPLOAD)
    assert [i.role for i in req.images] == ["first_frame", "last_frame"]
    assert req.media == (Media(kind="video", url="https://x.test/v.mp4", role="reference_video"),)


def test_sdk_form_of_mixed_items_with_some_roles():
    # grouped fields lose which item a role came from; the role's kind and the item's type
    # put it back where it fits
    body = {
        "prompt": "p",
        "input_reference": {
            "content": [
                item(role="first_frame"),
                item("video_url", "https://x.test/v.mp4"),
                item("audio_url", "https://x.test/a.mp3", role="reference_audio"),
                item(url="https://x.test/z.png", role="last_frame"),
            ]
        },
    }
    assert unflatten(_sdk_form(body)) == body


# --- sniffing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (png(), "image/png"),
        (jpeg(), "image/jpeg"),
        (webp(), "image/webp"),
        (b"GIF89a\x01\x00", None),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
        (b"\x89PNG", None),
        (b"<svg xmlns=...>", None),
        (b"", None),
    ],
)
def test_sniff_image(data: bytes, mime: str | None):
    assert sniff_image(data) == mime


# --- render -----------------------------------------------------------------------------------

PUBLIC = "https://relay.example.test"
KEYS = {
    "id", "object", "model", "status", "progress", "created_at", "completed_at", "expires_at",
    "prompt", "size", "seconds", "quality", "remixed_from_video_id", "error", "task_id",
    "video_url", "url",
}  # fmt: skip


def row(**changes: Any) -> Task:
    values: dict[str, Any] = {
        "seq": 1,
        "id": "video_abc123",
        "owner": "alice",
        "channel": "demo",
        "provider": "demo",
        "model": "sora-2",
        "upstream_model": "demo-upstream",
        "upstream_id": "up_secret_1",
        "upstream_state": {},
        "request": {},
        "prompt": "a paper airplane",
        "seconds": "8",
        "size": "1280x720",
        "status": "queued",
        "progress": 0,
        "error_code": None,
        "error_message": None,
        "remixed_from": None,
        "created_at": 1735689600,
        "submitted_at": 1735689600.5,
        "updated_at": 1735689601.0,
        "completed_at": None,
        "expires_at": None,
        "next_poll_at": None,
        "poll_interval": None,
        "poll_errors": 0,
        "lease_owner": None,
        "lease_until": None,
    }
    values.update(changes)
    return Task(**values)


def test_render_queued_has_every_key_with_nulls():
    out = render(row(expires_at=1735700000.0), PUBLIC)
    assert set(out) == KEYS
    assert out == {
        "id": "video_abc123",
        "object": "video",
        "model": "sora-2",
        "status": "queued",
        "progress": 0,
        "created_at": 1735689600,
        "completed_at": None,
        "expires_at": None,  # only a completed task has content that can expire
        "prompt": "a paper airplane",
        "size": "1280x720",
        "seconds": "8",
        "quality": "standard",
        "remixed_from_video_id": None,
        "error": None,
        "task_id": "video_abc123",
        "video_url": None,
        "url": None,
    }
    assert "up_secret_1" not in orjson.dumps(out).decode()


def test_render_in_progress():
    out = render(row(status="in_progress", progress=42), PUBLIC)
    assert (out["status"], out["progress"], out["video_url"], out["error"]) == (
        "in_progress",
        42,
        None,
        None,
    )


def test_render_completed():
    out = render(
        row(status="completed", progress=90, completed_at=1735689700.9, expires_at=1735693300.2),
        PUBLIC,
    )
    assert set(out) == KEYS
    assert out["progress"] == 100
    assert out["completed_at"] == 1735689700 and isinstance(out["completed_at"], int)
    assert out["expires_at"] == 1735693300 and isinstance(out["expires_at"], int)
    assert out["video_url"] == out["url"] == f"{PUBLIC}/v1/videos/video_abc123/content"
    assert out["error"] is None and out["task_id"] == out["id"]


def test_render_completed_with_a_stored_copy_never_expires():
    out = render(row(status="completed", progress=100, completed_at=1735689700.0), PUBLIC)
    assert out["expires_at"] is None and out["url"] is not None


def test_render_failed():
    out = render(
        row(
            status="failed",
            progress=30,
            error_code="moderation_blocked",
            error_message="the prompt was refused",
            completed_at=1735689650.0,
            expires_at=1735693300.0,
        ),
        PUBLIC,
    )
    assert set(out) == KEYS
    assert out["error"] == {"code": "moderation_blocked", "message": "the prompt was refused"}
    assert (out["video_url"], out["url"], out["expires_at"]) == (None, None, None)
    assert out["completed_at"] == 1735689650 and out["progress"] == 30


def test_render_failed_without_details_still_says_something():
    error = render(row(status="failed"), PUBLIC)["error"]
    assert error["code"] == "generation_failed" and error["message"]


def test_render_error_only_when_failed():
    out = render(row(status="in_progress", error_code="x", error_message="y"), PUBLIC)
    assert out["error"] is None


def test_render_remix_source():
    assert render(row(remixed_from="video_src"), PUBLIC)["remixed_from_video_id"] == "video_src"
