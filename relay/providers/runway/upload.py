"""Runway's own upload (spec/providers/runway.md, "Upload flow"), for an input too big for a
data URI: `POST /v1/uploads` for an ephemeral slot, then the file as multipart to the slot's
`uploadUrl` with every pair of its `fields` and none of Runway's headers; the `runway://` URI it
names works wherever Runway takes a URL, for 24 h. Unlike a relay-hosted URL it needs nothing of
the relay's public_url, so it is the path for big inputs here.

The slot's URL comes from Runway's answer: it is posted to through the private-network guard,
like any URL an upstream names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from relay.domain import EXTENSIONS
from relay.providers.errors import ProviderError, Unavailable
from relay.providers.http import ChannelHttp, Reply
from relay.upstream import BlockedAddress, UnusableUrl, check_literal_host, parse_url

UPLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)


async def upload(
    http: ChannelHttp,
    base_url: str,
    headers: Mapping[str, str],
    data: bytes,
    mime: str,
    *,
    error: Any,
) -> str:
    """The `runway://` URI of the bytes, uploaded; `error(reply, body)` classifies a refused
    slot request as the adapter does every answer."""
    name = f"input.{EXTENSIONS.get(mime, 'bin')}"
    reply: Reply = await http.request(
        "POST",
        f"{base_url}/v1/uploads",
        headers=headers,
        json={"filename": name, "type": "ephemeral"},
    )
    body = reply.json()
    if not 200 <= reply.status < 300:
        raise error(reply, body)
    slot = body if isinstance(body, Mapping) else {}
    target, fields, uri = slot.get("uploadUrl"), slot.get("fields"), slot.get("runwayUri")
    if not (
        isinstance(target, str)
        and isinstance(fields, Mapping)
        and isinstance(uri, str)
        and uri.startswith("runway://")
    ):
        raise Unavailable("runway's answer to an upload request was unreadable")
    form = aiohttp.FormData()
    for key, value in fields.items():
        form.add_field(str(key), str(value))
    form.add_field("file", data, filename=name, content_type=mime)
    session = http.http
    try:
        url, _ = parse_url(target)
        check_literal_host(url.host or "", session.allow_private)
        async with session.guarded.post(
            url, data=form, timeout=UPLOAD_TIMEOUT, allow_redirects=False
        ) as resp:
            if not 200 <= resp.status < 300:
                raise Unavailable(f"runway's upload storage answered HTTP {resp.status}")
    except ProviderError:
        raise
    except (BlockedAddress, UnusableUrl):
        raise Unavailable("runway named an upload address the relay may not reach") from None
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise Unavailable(f"the upload to runway's storage failed ({type(exc).__name__})") from None
    return uri
