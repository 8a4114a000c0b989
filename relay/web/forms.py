"""Reading request bodies into plain fields: JSON, form-urlencoded, or multipart with bracket
names (`input_reference[content][][type]`) and at most one uploaded image.

Limits hold while reading: a body announcing more than the limit is refused before it is read,
a chunked one is cut off as soon as it passes the limit, one that arrives too slowly is cut with a
408 (`web.timeouts.paced`), and an upload is checked by its magic bytes, never by the client's
Content-Type.

Text is UTF-8 in every form. A field whose bytes are not (the prompt, a metadata value, a field's
name) is a 400 naming the field, never turned into U+FFFD and sent on; a JSON body names it by its
path (`metadata.note`), a form by the name it was sent under. A multipart part whose headers are
malformed (a CR, LF or NUL in its file name) is a 400 naming that part.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import BadHttpMessage, InvalidHeader

from relay.domain import sniff_image
from relay.errors import InvalidRequest, RequestTooLarge, UnsupportedMediaType
from relay.video import Upload
from relay.web.timeouts import paced

MULTIPART_OVERHEAD = 1024 * 1024  # the text around an image: prompt (<= 128 KiB), metadata
MAX_FORM_INDEX = 1000  # a[5000][b] would otherwise allocate the list up to it
# The field of an input_reference.content[] item that a role belongs with, so the SDK's grouped
# form fields (all types, then all roles) land on the right items.
_ROLE_TYPES = {
    "first_frame": "image_url",
    "last_frame": "image_url",
    "reference_image": "image_url",
    "reference_video": "video_url",
    "reference_audio": "audio_url",
}
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # what undecodable bytes become (surrogateescape)
_PART_NAME = re.compile(r'\bname="([\w\[\].-]{1,200})"')


# --- reading the HTTP body --------------------------------------------------------------------


async def read_body(
    request: web.Request, *, max_upload: int, max_media: int = 0
) -> tuple[dict[str, Any], Upload | None]:
    """The request's fields, and the uploaded file if there is one.

    Limits hold while reading: a body announcing more than the limit is refused before it is
    read, and a chunked one is cut off as soon as it passes the limit.
    """
    json_limit = _text_limit(max(max_upload, max_media))  # a data: URL in the JSON
    ctype = request.content_type
    if ctype == "multipart/form-data":
        _check_length(request, max_upload + json_limit)
        return await _read_multipart(request, max_upload, json_limit)
    if ctype in ("application/json", "") or ctype.endswith("+json"):
        _check_length(request, json_limit)
        raw = await _read_limited(request, json_limit)
        if not raw.strip():
            if ctype == "":
                raise UnsupportedMediaType(
                    "send the body as application/json or multipart/form-data"
                )
            raise InvalidRequest(
                "the request body is empty", code="missing_parameter", param="prompt"
            )
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            _check_json_utf8(raw)
            raise InvalidRequest(
                "the request body is not valid JSON", code="invalid_json"
            ) from None
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
        return body, None
    if ctype == "application/x-www-form-urlencoded":
        _check_length(request, json_limit)
        raw = await _read_limited(request, json_limit)
        text = raw.decode("utf-8", "surrogateescape")
        pairs = parse_qsl(text, keep_blank_values=True, errors="surrogateescape")
        for name, value in pairs:
            _check_text(name, value)
        return unflatten(pairs), None
    raise UnsupportedMediaType(
        f"unsupported content type {ctype!r}: send application/json or multipart/form-data "
        "(or application/x-www-form-urlencoded)"
    )


def _text_limit(max_upload: int) -> int:
    """The most text a body may carry: room for an image as a base64 data: URL, and more."""
    return max_upload * 4 // 3 + MULTIPART_OVERHEAD


def _size_text(limit: int) -> str:
    mib = 1024 * 1024
    return f"{limit / mib:.4g} MiB" if limit >= mib else f"{limit / 1024:.4g} KiB"


def _check_length(request: web.Request, limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise RequestTooLarge(f"the request body is larger than {_size_text(limit)}")


async def _read_limited(request: web.Request, limit: int) -> bytes:
    chunks, size = [], 0
    async with paced(request, limit):
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise RequestTooLarge(f"the request body is larger than {_size_text(limit)}")
            chunks.append(chunk)
    return b"".join(chunks)


async def _read_multipart(
    request: web.Request, max_upload: int, text_limit: int
) -> tuple[dict[str, Any], Upload | None]:
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError, KeyError):
        raise InvalidRequest("the multipart body is malformed", code="invalid_body") from None
    async with paced(request, max_upload + text_limit):
        return await _read_parts(reader, max_upload, text_limit)


async def _read_parts(
    reader: MultipartReader, max_upload: int, text_limit: int
) -> tuple[dict[str, Any], Upload | None]:
    pairs: list[tuple[str, str]] = []
    upload: Upload | None = None
    text_total = 0
    try:
        while (part := await _next_part(reader)) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidRequest(
                    "nested multipart bodies are not supported", code="invalid_body"
                )
            name = part.name or ""
            if _SURROGATE.search(name):
                raise InvalidRequest("a form field's name is not valid UTF-8", code="invalid_body")
            if part.filename is not None:
                if name != "input_reference":
                    raise InvalidRequest(
                        f"a file may only be sent as input_reference (got a file named {name!r})",
                        code="invalid_parameter",
                        param=name or None,
                    )
                if upload is not None:
                    raise InvalidRequest("send one input_reference file", param="input_reference")
                data = await _read_part(
                    part,
                    max_upload,
                    f"input_reference is larger than {_size_text(max_upload)}",
                    param="input_reference",
                )
                if not data and not part.filename:
                    continue  # a browser's file input left empty
                if _SURROGATE.search(part.filename):
                    raise InvalidRequest(
                        "the file name of input_reference is not valid UTF-8",
                        param="input_reference",
                    )
                mime = sniff_image(data)
                if mime is None:
                    raise UnsupportedMediaType(
                        "input_reference must be a JPEG, PNG or WebP image (checked by its bytes)",
                        param="input_reference",
                    )
                upload = Upload(data, mime, part.filename)
                continue
            # a text field may hold a data: URL (an image, a reference video or audio)
            value = await _read_part(
                part,
                text_limit - text_total,
                f"the form fields are larger than {_size_text(text_limit)}",
                param=name or None,
            )
            text_total += len(value)
            try:
                pairs.append((name, value.decode("utf-8")))
            except UnicodeDecodeError:
                raise _not_utf8(name) from None
    except ValueError:
        raise InvalidRequest("the multipart body is malformed", code="invalid_body") from None
    return unflatten(pairs), upload


async def _next_part(reader: MultipartReader) -> Any:
    """The next part, its headers checked by aiohttp's parser: a bad header is the client's."""
    try:
        return await reader.next()
    except InvalidHeader as exc:
        # the header line is all there is to go on; the part's name, when it is a plain one
        found = _PART_NAME.search(exc.hdr)
        name = found.group(1) if found else None
        where = f"the part {name!r}" if name else "a part"
        raise InvalidRequest(
            f"the headers of {where} hold a CR, LF or NUL character",
            code="invalid_body",
            param=name,
        ) from None
    except BadHttpMessage:
        raise InvalidRequest(
            "the headers of a part of the multipart body are malformed", code="invalid_body"
        ) from None


async def _read_part(
    part: BodyPartReader, limit: int, too_large: str, *, param: str | None
) -> bytes:
    chunks, size = [], 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(too_large, param=param)
        chunks.append(chunk)
    return b"".join(chunks)


# --- text that is not UTF-8 ----------------------------------------------------------------


def _not_utf8(name: str) -> InvalidRequest:
    return InvalidRequest(f"{name} is not valid UTF-8 text", param=name)


def _check_text(name: str, value: str) -> None:
    """A form field decoded with surrogateescape: its name and value must have been UTF-8."""
    if _SURROGATE.search(name):
        raise InvalidRequest("a form field's name is not valid UTF-8", code="invalid_body")
    if _SURROGATE.search(value):
        raise _not_utf8(name)


def _check_json_utf8(raw: bytes) -> None:
    """For a body orjson refused: when the cause is a string that is not UTF-8, name its field
    (orjson's error does not say where)."""
    try:
        raw.decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    try:
        # the standard parser keeps undecodable bytes as lone surrogates, so they can be found
        body = json.loads(raw.decode("utf-8", "surrogateescape"))
    except ValueError:
        return  # not JSON either way: the generic answer
    path = _bad_text_path(body, "")
    if path is None:
        return
    if _SURROGATE.search(path):
        raise InvalidRequest(
            "a field name in the JSON body is not valid UTF-8", code="invalid_json"
        )
    raise _not_utf8(path or "the JSON body")


def _bad_text_path(node: Any, path: str) -> str | None:
    """The path (`metadata.note`, `input_reference.content[0].text`) of the first string or key
    holding a lone surrogate; None when there is none."""
    if isinstance(node, str):
        return path if _SURROGATE.search(node) else None
    if isinstance(node, dict):
        for key, value in node.items():
            inner = f"{path}.{key}" if path else key
            if _SURROGATE.search(key):
                return inner
            if (found := _bad_text_path(value, inner)) is not None:
                return found
    if isinstance(node, list):
        for i, value in enumerate(node):
            if (found := _bad_text_path(value, f"{path}[{i}]")) is not None:
                return found
    return None


# --- bracket names ------------------------------------------------------------------------


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Form fields with bracket names (`a[b][]`, `a[c][0][d]`) as nested dicts and lists.

    `[]` lists of objects arrive in two orders. Browsers send each item's fields together
    (type, url, type, url); the openai SDK groups them by name (type, type, url, url). A list
    whose fields repeat a name back to back is grouped: a field fills the first item that lacks
    it (preferring an item whose `type` names the field). Otherwise it joins the last item, and
    a name that item already has starts the next one, so an optional field (a role on the
    second item only) lands where it was sent. Numeric indices place items directly; gaps close.
    """
    grouped = _grouped_lists(pairs)
    root: dict[str, Any] = {}
    for name, value in pairs:
        _put(root, _bracket_keys(name), value, (), name, grouped)
    return _without_gaps(root)  # type: ignore[no-any-return]


def _bracket_keys(name: str) -> list[str]:
    head, _, rest = name.partition("[")
    keys = [head] + (_BRACKETS.findall("[" + rest) if rest else [])
    if not head or (rest and "[" + rest != "".join(f"[{k}]" for k in keys[1:])):
        return [name]  # not a bracket name after all: keep it whole
    return keys


def _grouped_lists(pairs: list[tuple[str, str]]) -> set[tuple[str, ...]]:
    """The `[]` lists (by their path) whose fields come grouped by name."""
    last: dict[tuple[str, ...], tuple[str, ...]] = {}
    grouped: set[tuple[str, ...]] = set()
    for name, _ in pairs:
        keys = _bracket_keys(name)
        for j in range(1, len(keys)):
            if keys[j] == "":
                path, sub = tuple(keys[:j]), tuple(keys[j + 1 :])
                if sub and last.get(path) == sub:
                    grouped.add(path)
                last[path] = sub
    return grouped


class _Gap:
    """A list slot no field filled (an index was skipped); removed at the end."""


_GAP = _Gap()


def _is_index(key: str) -> bool:
    return key == "" or (key.isascii() and key.isdigit())


def _put(
    node: dict[str, Any] | list[Any],
    keys: list[str],
    value: str,
    path: tuple[str, ...],
    name: str,
    grouped: set[tuple[str, ...]],
) -> None:
    key, rest = keys[0], keys[1:]
    slot: Any
    if isinstance(node, list):
        if key == "":
            slot = _list_slot(node, rest, value, path in grouped)
        elif len(key) <= 4 and int(key) <= MAX_FORM_INDEX:
            slot = int(key)
        else:
            raise InvalidRequest(
                f"form field {name!r}: list indices go up to {MAX_FORM_INDEX}", param=name
            )
        while len(node) <= slot:
            node.append(_GAP)
        child = node[slot]
    else:
        slot, child = key, node.get(key, _GAP)
    if not rest:
        if isinstance(child, dict | list):
            raise _conflict(name)
        node[slot] = value
        return
    if child is _GAP:
        child = [] if _is_index(rest[0]) else {}
        node[slot] = child
    elif not isinstance(child, dict | list) or isinstance(child, list) != _is_index(rest[0]):
        raise _conflict(name)
    _put(child, rest, value, (*path, key), name, grouped)


def _conflict(name: str) -> InvalidRequest:
    return InvalidRequest(
        f"form field {name!r} conflicts with another field of the same name", param=name
    )


def _list_slot(items: list[Any], rest: list[str], value: str, grouped: bool) -> int:
    if not rest:
        return len(items)
    if grouped:
        free = [i for i, it in enumerate(items) if isinstance(it, dict) and not _has_path(it, rest)]
        # a typed item ({"type": "video_url", "video_url": {...}}) takes the field it names,
        # and the role that fits its type
        kind = _ROLE_TYPES.get(value, "") if rest == ["role"] else rest[0]
        typed = [i for i in free if items[i].get("type") == kind]
        return (typed or free or [len(items)])[0]
    if items and isinstance(items[-1], dict) and not _has_path(items[-1], rest):
        return len(items) - 1
    return len(items)


def _has_path(node: Any, keys: list[str]) -> bool:
    for key in keys:
        if key == "" or not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _without_gaps(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_gaps(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_without_gaps(v) for v in node if v is not _GAP]
    return node
