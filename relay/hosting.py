"""Inputs a provider can only fetch by URL (api.md): bytes the client sent (an upload, a data:
URL) that the relay serves itself at `{public_url}/v1/files/{token}` while the task runs.

An adapter asks with `Provider.hosted_url(data, mime, param=...)` inside submit or remix; the
create use case opens a `Scope` for the task around that call (a context variable, so adapters
need no new argument). The bytes go into the storage library beside the task's stored copies
(`videos/<task>/input-<nonce>.<ext>`, local or S3, so every relay of a group can serve them),
and the scope remembers their paths: they are removed when the task finishes or is deleted,
and at once when no channel took the job. A crash between hosting and recording the upstream
id leaves no recorded paths: the sweep that fails such a task removes its inputs by name.

A remix's source may be served the same way (`Scope.copy_url`): a token for the new task that
names the source's stored copy, for an upstream whose own result URL has expired; nothing is
copied, and nothing is removed with the new task.

The token carries what serving needs, signed, so there is no table to keep: the task id, the
path (with a 128-bit random nonce), the content type as received and an expiry at most 24 h
away, then an HMAC-SHA256 (cut to 128 bits) under a key derived from the relay's signing key,
which every relay sharing a store has. Nothing lists the files; a forged, altered or expired
token, or one whose task has finished, is a plain 404.

A provider must reach `public_url`: when it names a loopback, private or link-local address
(and `allow_private_networks` is off: a provider on the LAN, tests), hosting is refused with a
400 naming the input before any upstream call (InvalidRequest, which the submit loop passes
through like a client error: no other channel could do better).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson

from relay.domain import EXTENSIONS
from relay.errors import InvalidRequest, ServiceUnavailable, StorageError

if TYPE_CHECKING:
    from relay.storage import Library
    from relay.store import Store

log = logging.getLogger("relay.hosting")

MAX_LIFETIME_S = 24 * 3600
STATE_KEY = "hosted"  # the task's upstream state lists the paths hosted for it
PREFIX = "input-"  # the name of a hosted file beside the task's copies: input-<nonce>.<ext>
ROUTE = "/v1/files/"
_MAC_BYTES = 16  # 128 bits
_PART = 1024 * 1024


@dataclass(frozen=True)
class Hosted:
    """What a valid token names."""

    task_id: str
    path: str
    content_type: str
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unreachable(public_url: str) -> str | None:
    """Why a provider on the internet cannot fetch from public_url, or None."""
    host = (urlsplit(public_url).hostname or "").lower().rstrip(".")
    address = _address(host)
    if address is None:
        if "." not in host or host.endswith(_LOCAL_SUFFIXES):
            return f"{host or 'it'} is a local name"
        return None  # a public name: the operator's DNS knows best
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return f"{host} is a loopback address"
    if not address.is_global:
        return f"{host} is a private address"
    return None


_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, legacy IPv4 forms (127.1, 0x7f000001) included."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


class Hosting:
    def __init__(
        self,
        library: Library,
        key: bytes,
        *,
        public_url: Callable[[], str],
        allow_private: Callable[[], bool],
        clock: Callable[[], float],
        store: Store | None = None,
    ) -> None:
        self.library = library
        self.store = store
        self._key = hmac.new(key, b"relay hosted inputs", hashlib.sha256).digest()
        self._public_url = public_url
        self._allow_private = allow_private
        self.clock = clock

    def scope(self, task_id: str) -> Scope:
        return Scope(self, task_id)

    def token(self, hosted: Hosted) -> str:
        payload = _b64(
            orjson.dumps(
                {
                    "t": hosted.task_id,
                    "p": hosted.path,
                    "c": hosted.content_type,
                    "e": int(hosted.expires_at),
                }
            )
        )
        ext = EXTENSIONS.get(hosted.content_type, "bin")
        return f"{payload}.{_b64(self._mac(payload))}.{ext}"

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES]

    def parse(self, token: str) -> Hosted | None:
        """What a token names, or None when it is not one of ours or has expired."""
        if len(token) > 2048:
            return None
        payload, _, rest = token.partition(".")
        mac, _, _ext = rest.partition(".")
        try:
            good = hmac.compare_digest(_unb64(mac), self._mac(payload))
        except (binascii.Error, ValueError):
            return None
        if not good:
            return None
        try:
            fields = orjson.loads(_unb64(payload))
            hosted = Hosted(
                str(fields["t"]), str(fields["p"]), str(fields["c"]), float(fields["e"])
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error):
            return None
        return hosted if hosted.expires_at > self.clock() else None

    def check_reachable(self, param: str) -> None:
        if self._allow_private():
            return
        why = unreachable(self._public_url())
        if why is not None:
            raise InvalidRequest(
                f"{param}: this provider fetches the input by URL, so the relay would serve it at "
                f"its public_url, which the provider cannot reach ({why}); set [server] "
                "public_url to the relay's public address, or send an https URL",
                param=param,
            )

    def url(self, hosted: Hosted) -> str:
        return f"{self._public_url().rstrip('/')}{ROUTE}{self.token(hosted)}"

    def expiry(self) -> float:
        return self.clock() + MAX_LIFETIME_S

    async def stored_video(self, task_id: str) -> tuple[str, str, int | None] | None:
        """(path, content type, size) of a task's stored video, or None."""
        if self.store is None:
            return None
        copy = await self.store.stored_copy(task_id, "video")
        if copy is None or copy.path is None:
            return None
        return copy.path, copy.content_type or "video/mp4", copy.bytes

    async def put(self, task_id: str, data: bytes, content_type: str) -> tuple[str, str]:
        """Store the bytes; returns (the URL a provider fetches, the stored path)."""
        nonce = secrets.token_hex(16)

        async def body() -> AsyncIterator[bytes]:
            view = memoryview(data)  # in parts, as a download arrives: no whole extra copies
            for start in range(0, len(data), _PART):
                yield bytes(view[start : start + _PART])

        try:
            path, _ = await self.library.write(
                task_id, f"{PREFIX}{nonce}", content_type, body(), len(data)
            )
        except (StorageError, OSError) as exc:
            log.warning("could not store an input to host for %s: %s", task_id, exc)
            raise ServiceUnavailable(
                "the relay could not store the input to host it for the provider; try again"
            ) from None
        return self.url(Hosted(task_id, path, content_type, self.expiry())), path

    async def drop_all(self, task_id: str) -> None:
        """Every input hosted for a task, found by name: after a crash cut its submit off, the
        paths were never recorded."""
        try:
            await self.library.forget_named(task_id, PREFIX)
        except Exception as exc:  # best effort: the task's delete removes them too
            log.warning("could not remove the hosted inputs of %s: %s", task_id, type(exc).__name__)

    async def drop(self, paths: list[str]) -> None:
        for path in paths:
            try:
                await self.library.forget(path)
            except Exception as exc:  # best effort: the task's delete removes it too
                log.warning("could not remove a hosted input: %s", type(exc).__name__)


@dataclass
class Scope:
    """The inputs hosted for one task's submit: the same bytes are hosted once, whichever
    channel the job fails over to."""

    hosting: Hosting
    task_id: str
    paths: list[str] = field(default_factory=list)
    _urls: dict[str, str] = field(default_factory=dict)

    async def url(self, data: bytes, content_type: str, param: str) -> str:
        self.hosting.check_reachable(param)
        digest = hashlib.sha256(data).hexdigest() + content_type
        if digest not in self._urls:
            url, path = await self.hosting.put(self.task_id, data, content_type)
            self.paths.append(path)
            self._urls[digest] = url
        return self._urls[digest]

    async def copy_url(self, source_id: str, param: str) -> str | None:
        """A URL serving the stored video of another task (a remix's source) for as long as
        this task runs; None without a stored copy. The copy is the source's: never removed
        with this task's inputs."""
        found = await self.hosting.stored_video(source_id)
        if found is None:
            return None
        self.hosting.check_reachable(param)
        path, content_type, _ = found
        return self.hosting.url(Hosted(self.task_id, path, content_type, self.hosting.expiry()))

    async def drop(self) -> None:
        """Remove what this submit hosted (no channel took the job, or it ended at once)."""
        if self.paths:
            await self.hosting.drop(self.paths)

    async def copy_bytes(self, source_id: str, limit: int) -> tuple[bytes, str] | None:
        """(bytes, content type) of another task's stored video, when it has one of at most
        `limit` bytes."""
        found = await self.hosting.stored_video(source_id)
        if found is None:
            return None
        path, content_type, size = found
        if size is not None and size > limit:
            return None
        data = await self.hosting.library.read(path, limit)
        return None if data is None else (data, content_type)


SCOPE: ContextVar[Scope | None] = ContextVar("relay_hosting_scope", default=None)
