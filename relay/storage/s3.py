"""Stored copies in an S3-compatible bucket (AWS S3, R2, MinIO, SeaweedFS, ...), so every relay
of a group serves every copy.

A copy is streamed in: bodies up to one part go up in a single PUT; longer ones as a multipart
upload of PART_BYTES parts, so at most one part is ever held in memory, and a failed upload is
aborted (and one cut off by a crash is aborted by `clean_partials` once it is old). Copies are
served through the content proxy from a short-lived presigned GET URL, so Range, HEAD and
disconnects work as for any upstream; the bucket's endpoint is the operator's and is trusted by
the private-network guard, like a channel's base_url. Requests are signed with SigV4
(sigv4.py): no client library, no second HTTP stack.
"""

from __future__ import annotations

import hashlib
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import aiohttp

from relay.config import S3Config
from relay.domain import VARIANTS, Remote
from relay.storage.errors import StorageError
from relay.storage.local import extension
from relay.storage.sigv4 import EMPTY_SHA256, presign, sign_headers
from relay.store import Copy

log = logging.getLogger("relay.storage")

PART_BYTES = 8 * 1024 * 1024  # S3's smallest part is 5 MiB; one part is all a copy holds
PRESIGN_S = 3600  # a served copy's URL lives this long: long enough for a slow download to start
STALE_UPLOAD_S = 3600.0  # an unfinished multipart upload this old was cut off by a crash
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=60)
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class S3Error(StorageError):
    def __init__(self, status: int, code: str, what: str) -> None:
        super().__init__(f"{what}: HTTP {status} {code}".strip())
        self.status = status
        self.code = code


class S3Library:
    def __init__(self, config: S3Config, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session
        parts = urlsplit(config.endpoint)
        if config.path_style:
            self._base = f"{config.endpoint}/{config.bucket}"
        else:
            self._base = f"{parts.scheme}://{config.bucket}.{parts.netloc}"

    # --- the Library interface ------------------------------------------------------------

    async def write(
        self,
        task_id: str,
        variant: str,
        content_type: str,
        body: AsyncIterator[bytes],
        expected: int | None,
    ) -> tuple[str, int]:
        key = f"videos/{task_id}/{variant}.{extension(content_type, variant)}"
        buffer = bytearray()
        upload: str | None = None
        parts: list[tuple[int, str]] = []
        size = 0
        try:
            async for chunk in body:
                buffer += chunk
                size += len(chunk)
                if len(buffer) >= PART_BYTES:
                    if upload is None:
                        upload = await self._start_upload(key, content_type)
                    parts.append(await self._part(key, upload, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
            if expected is not None and size != expected:
                raise StorageError(f"the upstream sent {size} of {expected} bytes")
            if upload is None:
                await self._put(key, bytes(buffer), content_type)
            else:
                if buffer:
                    parts.append(await self._part(key, upload, len(parts) + 1, bytes(buffer)))
                await self._complete(key, upload, parts)
        except BaseException:
            if upload is not None:
                await self._abort(key, upload)
            raise
        return key, size

    def source(self, copy: Copy) -> Remote | None:
        if copy.path is None:
            return None
        url = presign(
            method="GET",
            url=self._url(copy.path),
            expires_s=PRESIGN_S,
            access_key=self.config.access_key or "",
            secret_key=self.config.secret_key or "",
            region=self.config.region,
            when=datetime.now(UTC),
        )
        return Remote(
            url, content_type=copy.content_type or VARIANTS[copy.variant][0], trusted=True
        )

    async def remove(self, task_id: str) -> None:
        for key in await self._list(f"videos/{task_id}/"):
            await self.forget(key)

    async def read(self, path: str, limit: int) -> bytes | None:
        size = await self.size_of(path)
        if size is None or size > limit:
            return None
        resp = await self._request("GET", path)
        if resp.status != 200:
            raise await _error(resp, f"read {path}")
        return await resp.read()

    async def forget_named(self, task_id: str, prefix: str) -> None:
        for key in await self._list(f"videos/{task_id}/{prefix}"):
            await self.forget(key)

    async def forget(self, path: str) -> None:
        resp = await self._request("DELETE", path)
        if resp.status not in (200, 204, 404):
            raise await _error(resp, f"delete {path}")

    async def size_of(self, path: str) -> int | None:
        """The size of the object at `path`; None when there is none (`relay migrate` skips
        what an earlier run put there)."""
        resp = await self._request("HEAD", path)
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise await _error(resp, f"look up {path}")
        length = resp.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else None

    async def clean_partials(self) -> int:
        """Abort multipart uploads under videos/ older than STALE_UPLOAD_S: a crash cut them
        off (a younger one may be another relay's copy in progress)."""
        resp = await self._request("GET", "", query=[("uploads", ""), ("prefix", "videos/")])
        root = _xml(await resp.read())
        if resp.status != 200:
            raise await _error(resp, "list uploads")
        now = time.time()
        aborted = 0
        for item in root.iter(f"{_NS}Upload"):
            key, upload = _text(item, "Key"), _text(item, "UploadId")
            started = _text(item, "Initiated")
            try:
                age = now - datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
            if key and upload and age > STALE_UPLOAD_S:
                await self._abort(key, upload)
                aborted += 1
        return aborted

    # --- checks ---------------------------------------------------------------------------

    async def check(self) -> None:
        """Reach the bucket and write to it (check-config): raise StorageError saying what is
        wrong."""
        resp = await self._request("HEAD", "")
        if resp.status == 404:
            raise S3Error(404, "NoSuchBucket", f"bucket {self.config.bucket!r} does not exist")
        if resp.status in (401, 403):
            raise S3Error(resp.status, "AccessDenied", "the bucket refused the credentials")
        if resp.status != 200:
            raise S3Error(resp.status, "", "the bucket did not answer")
        probe = ".relay-check"
        await self._put(probe, b"ok", "text/plain")
        await self.forget(probe)

    # --- S3 calls -------------------------------------------------------------------------

    def _url(self, key: str) -> str:
        return f"{self._base}/{quote(key, safe='/-_.~')}" if key else f"{self._base}/"

    async def _request(
        self,
        method: str,
        key: str,
        *,
        query: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        query = list(query)
        url = self._url(key)
        signed = sign_headers(
            method=method,
            url=url,
            query=query,
            headers=headers,
            payload_hash=hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256,
            access_key=self.config.access_key or "",
            secret_key=self.config.secret_key or "",
            region=self.config.region,
            when=datetime.now(UTC),
        )
        if query:
            url += "?" + "&".join(
                f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in query
            )
        try:
            resp = await self.session.request(
                method,
                url,
                data=body or None,
                headers=signed,
                timeout=TIMEOUT,
                allow_redirects=False,
                auto_decompress=False,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise StorageError(f"could not reach the bucket ({type(exc).__name__})") from None
        await resp.read()
        return resp

    async def _put(self, key: str, data: bytes, content_type: str) -> None:
        resp = await self._request("PUT", key, body=data, headers={"Content-Type": content_type})
        if resp.status != 200:
            raise await _error(resp, f"put {key}")

    async def _start_upload(self, key: str, content_type: str) -> str:
        resp = await self._request(
            "POST", key, query=[("uploads", "")], headers={"Content-Type": content_type}
        )
        upload = _text(_xml(await resp.read()), "UploadId") if resp.status == 200 else ""
        if not upload:
            raise await _error(resp, f"start the upload of {key}")
        return upload

    async def _part(self, key: str, upload: str, number: int, data: bytes) -> tuple[int, str]:
        query = [("partNumber", str(number)), ("uploadId", upload)]
        resp = await self._request("PUT", key, query=query, body=data)
        etag = resp.headers.get("ETag", "")
        if resp.status != 200 or not etag:
            raise await _error(resp, f"upload part {number} of {key}")
        return number, etag

    async def _complete(self, key: str, upload: str, parts: list[tuple[int, str]]) -> None:
        body = (
            "<CompleteMultipartUpload>"
            + "".join(
                f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in parts
            )
            + "</CompleteMultipartUpload>"
        )
        resp = await self._request("POST", key, query=[("uploadId", upload)], body=body.encode())
        # a 200 may still carry an <Error> when the store failed while assembling the parts
        root = _xml(await resp.read())
        if resp.status != 200 or root.tag.endswith("Error"):
            raise await _error(resp, f"complete the upload of {key}")

    async def _abort(self, key: str, upload: str) -> None:
        try:
            await self._request("DELETE", key, query=[("uploadId", upload)])
        except StorageError as exc:
            log.info("could not abort the upload of %s: %s", key, exc)

    async def _list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        token = ""
        while True:
            query = [("list-type", "2"), ("prefix", prefix)]
            if token:
                query.append(("continuation-token", token))
            resp = await self._request("GET", "", query=query)
            if resp.status != 200:
                raise await _error(resp, f"list {prefix}")
            root = _xml(await resp.read())
            keys += [_text(c, "Key") for c in root.iter(f"{_NS}Contents")]
            token = _text(root, "NextContinuationToken")
            if _text(root, "IsTruncated") != "true" or not token:
                return [k for k in keys if k]


def _xml(data: bytes) -> ET.Element:
    try:
        return ET.fromstring(data) if data.strip() else ET.Element("empty")  # noqa: S314
    except ET.ParseError:
        return ET.Element("unreadable")


def _text(node: ET.Element, name: str) -> str:
    found = node.find(f"{_NS}{name}")
    if found is None:
        found = node.find(name)  # some servers leave out the namespace
    return (found.text or "") if found is not None else ""


async def _error(resp: aiohttp.ClientResponse, what: str) -> S3Error:
    root = _xml(await resp.read())
    return S3Error(resp.status, _text(root, "Code"), f"could not {what}")
