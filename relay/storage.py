"""Stored copies: finished videos kept in the data directory, so they outlive upstream URLs
(Jimeng's and OpenAI's live about an hour).

When a task completes with `[storage] keep_videos` on, one copy job per variant (the video, and
the thumbnail where the provider makes one) is queued in the same transaction that completes the
task. A copier streams each file into `<data_dir>/videos/<id>/<variant>.<ext>.part`, checks its
length, fsyncs it, renames it into place and fsyncs the directory, a few copies at a time. A
failed copy is retried with backoff and never fails the task; until a copy exists, content comes
from upstream. A restart deletes half-written `.part` files and the copy starts again.

Retention: copies older than `keep_days` go, and past `max_gb` the oldest go first. `expires_at`
is null while the relay holds the video, and the time it was removed once it is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from relay.config import StorageConfig
from relay.domain import VARIANTS, ContentSource, LocalFile, Remote
from relay.store import Copy, Store
from relay.upstream import BlockedAddress, Http
from relay.providers.errors import ProviderError, TaskNotFound
from relay.worker import Worker

log = logging.getLogger("relay.storage")

COPIES_AT_ONCE = 2
CHUNK = 256 * 1024
CONNECT_TIMEOUT_S = 15.0
IDLE_TIMEOUT_S = 60.0
LEASE_S = 600.0  # a copy of a large file may take a while; the lease covers one attempt
FIRST_RETRY_S = 30.0
MAX_RETRY_S = 3600.0
GIVE_UP_AFTER = 12  # attempts; at the longest spacing, about half a day of trying
RETENTION_EVERY_S = 600.0
_EXTENSIONS = {"video/mp4": "mp4", "image/webp": "webp", "image/jpeg": "jpg", "image/png": "png"}

# Where a copy comes from, for one task and variant: the provider's content source, a fresh one
# after an expired URL (or None), and whether the task is still there at all.
SourceOf = Callable[[str, str], Awaitable[ContentSource | None]]


class CopyFailed(Exception):
    def __init__(self, why: str, *, final: bool = False) -> None:
        super().__init__(why)
        self.final = final  # no later attempt can succeed (the upstream no longer has it)


def copy_variants(provider_variants: frozenset[str]) -> list[str]:
    return ["video"] + (["thumbnail"] if "thumbnail" in provider_variants else [])


class Library:
    """The files of stored copies, under `<data_dir>/videos`."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "videos"

    def path(self, relative: str) -> Path:
        return self.root.parent / relative

    def relative(self, task_id: str, variant: str, content_type: str) -> str:
        ext = _EXTENSIONS.get(content_type, VARIANTS[variant][1])
        return f"videos/{task_id}/{variant}.{ext}"

    def local(self, copy: Copy) -> LocalFile | None:
        if copy.path is None:
            return None
        path = self.path(copy.path)
        if not path.is_file():
            log.error("stored copy %s of %s is missing on disk", copy.variant, copy.task_id)
            return None
        return LocalFile(path, copy.content_type or VARIANTS[copy.variant][0])

    def remove(self, task_id: str) -> None:
        shutil.rmtree(self.root / task_id, ignore_errors=True)

    def clean_partials(self) -> int:
        """Delete what a stopped copy left half-written."""
        count = 0
        if self.root.is_dir():
            for part in self.root.glob("*/*.part"):
                part.unlink(missing_ok=True)
                count += 1
        return count


class Copier(Worker):
    name = "copier"

    def __init__(
        self,
        store: Store,
        http: Http,
        library: Library,
        *,
        source_of: SourceOf,
        refresh_of: SourceOf,
        settings: Callable[[], StorageConfig],
        instance: str,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(clock)
        self.store = store
        self.http = http
        self.library = library
        self.source_of = source_of
        self.refresh_of = refresh_of
        self.settings = settings
        self.instance = instance
        self._last_retention = 0.0

    def start(self) -> None:
        if cleaned := self.library.clean_partials():
            log.info("removed %d half-written copies from an earlier run", cleaned)
        super().start()

    async def stop(self) -> None:
        """Stop copying; a copy cut off here leaves no file and starts again at the next run."""
        await super().stop()
        await self.store.release_copy_leases(self.instance)

    async def next_at(self) -> float | None:
        return await self.store.next_copy_at()

    async def round(self) -> int:
        if self.clock() - self._last_retention >= RETENTION_EVERY_S:
            self._last_retention = self.clock()
            await self.retention()
        jobs = await self.store.claim_copies(
            now=self.clock(), lease_owner=self.instance, lease_s=LEASE_S, limit=COPIES_AT_ONCE
        )
        await asyncio.gather(*(self._attempt(job) for job in jobs))
        return len(jobs)

    async def _attempt(self, job: Copy) -> None:
        try:
            stored = await self._copy(job)
        except CopyFailed as exc:
            if exc.final or job.attempts + 1 >= GIVE_UP_AFTER:
                log.warning("giving up the copy of %s %s: %s", job.task_id, job.variant, exc)
                await self.store.drop_copy(job.task_id, job.variant)
                return
            wait = min(MAX_RETRY_S, FIRST_RETRY_S * 2.0**job.attempts)
            if job.attempts == 0:
                log.info("copy of %s %s failed (%s); retrying", job.task_id, job.variant, exc)
            await self.store.retry_copy(job.task_id, job.variant, self.clock() + wait, str(exc))
            return
        if stored is not None:
            log.info("stored %s of %s (%d bytes)", job.variant, job.task_id, stored)

    async def _copy(self, job: Copy) -> int | None:
        """Copy one variant; returns its size, or None when there is nothing to store."""
        try:
            source = await self.source_of(job.task_id, job.variant)
        except TaskNotFound as exc:
            raise CopyFailed(f"the upstream no longer has it ({exc.message})", final=True) from None
        except ProviderError as exc:
            raise CopyFailed(exc.message) from None
        if source is None or isinstance(source, LocalFile):
            # the task is gone, or its content is local already (the demo's shipped files)
            await self.store.drop_copy(job.task_id, job.variant)
            return None
        try:
            relative, content_type, size = await self._download(job, source)
        except _Expired:
            fresh = await self.refresh_of(job.task_id, job.variant)
            if not isinstance(fresh, Remote):
                raise CopyFailed("the upstream URL has expired", final=True) from None
            try:
                relative, content_type, size = await self._download(job, fresh)
            except _Expired:
                raise CopyFailed("the upstream URL has expired", final=True) from None
        recorded = await self.store.copy_stored(
            job.task_id,
            job.variant,
            path=relative,
            content_type=content_type,
            size=size,
            now=self.clock(),
        )
        if not recorded:  # deleted while we copied
            self.library.remove(job.task_id)
            return None
        self.wake()  # retention may have work now
        return size

    async def _download(self, job: Copy, source: Remote) -> tuple[str, str, int]:
        try:
            async with self.http.open(
                source.url,
                headers=dict(source.headers),
                trusted=source.trusted,
                connect_timeout=CONNECT_TIMEOUT_S,
                idle_timeout=IDLE_TIMEOUT_S,
            ) as resp:
                if resp.status in (403, 404, 410):
                    raise _Expired
                if resp.status != 200:
                    raise CopyFailed(f"the upstream answered HTTP {resp.status}")
                content_type = _media_type(resp.headers.get("Content-Type"), source, job.variant)
                relative = self.library.relative(job.task_id, job.variant, content_type)
                encoded = resp.headers.get("Content-Encoding", "identity").lower() != "identity"
                expected = None if encoded else resp.headers.get("Content-Length")
                size = await _write(self.library.path(relative), resp.content, expected)
                return relative, content_type, size
        except BlockedAddress:
            raise CopyFailed("the upstream result address is not allowed", final=True) from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, BlockedAddress):
                raise CopyFailed("the upstream result address is not allowed", final=True) from None
            raise CopyFailed("could not reach the upstream") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise CopyFailed(f"the download broke ({type(exc).__name__})") from None

    async def retention(self) -> int:
        """Remove copies past keep_days, then the oldest while the total is over max_gb."""
        settings = self.settings()
        now = self.clock()
        removed = 0
        if settings.keep_days > 0:
            cutoff = now - settings.keep_days * 86400
            while True:
                old = [
                    c
                    for c in await self.store.stored_copies_oldest_first(100)
                    if (c.stored_at or 0) < cutoff
                ]
                if not old:
                    break
                for copy in old:
                    await self._forget(copy, now)
                    removed += 1
        if settings.max_gb > 0:
            cap = int(settings.max_gb * 1024**3)
            total = await self.store.stored_bytes()
            while total > cap:
                oldest = await self.store.stored_copies_oldest_first(50)
                if not oldest:
                    break
                for copy in oldest:
                    if total <= cap:
                        break
                    await self._forget(copy, now)
                    total -= copy.bytes or 0
                    removed += 1
        if removed:
            log.info("retention removed %d stored copies", removed)
        return removed

    async def _forget(self, copy: Copy, now: float) -> None:
        await self.store.forget_copy(copy, now)
        if copy.path:
            self.library.path(copy.path).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.library.path(copy.path).parent.rmdir()  # only once it is empty


class _Expired(Exception):
    pass


def _media_type(header: str | None, source: Remote, variant: str) -> str:
    ctype = (header or "").split(";")[0].strip().lower()
    if ctype.startswith(("video/", "image/")):
        return ctype
    return source.content_type or VARIANTS[variant][0]


async def _write(path: Path, body: aiohttp.StreamReader, expected: str | None) -> int:
    """Stream a body to `path` through a .part file: fsync, rename, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    size = 0
    loop = asyncio.get_running_loop()
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        async for chunk in body.iter_chunked(CHUNK):
            await loop.run_in_executor(None, _write_all, fd, chunk)
            size += len(chunk)
        if expected is not None and expected.isdigit() and size != int(expected):
            raise CopyFailed(f"the upstream sent {size} of {expected} bytes")
        await loop.run_in_executor(None, os.fsync, fd)
    except BaseException:
        os.close(fd)
        part.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(part, path)
    await loop.run_in_executor(None, _fsync_dir, path.parent)
    return size


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
