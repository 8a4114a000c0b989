"""The copier: keeps each finished video (and thumbnail) in storage, so it outlives the upstream.

When a task completes with `[storage] keep_videos` on, one copy job per variant is queued in the
same transaction that completes the task (Store.finish). The copier streams each into the
library a couple at a time; a failed copy is retried with backoff and never fails the task; until
a copy exists, content comes from upstream. What a provider error means for a copy is policy
(phase copy). Retention: copies older than `keep_days` go, and past `max_gb` the oldest go first;
`expires_at` is null while the relay holds the video, and the time it was removed once it is gone.

A copy that can never succeed is dropped at once with one log line: a result URL that does not
parse or is not http(s), or one the private-network guard refuses (nothing is fetched). A copy
is stored with the type content.served_type allows, so a stored copy never carries a type an
upstream made up; an error page sent with a 200 (JSON or text) is a failed attempt, not a copy.

A result the upstream answered inline (an `InlineBytes`: the adapter read its answer again and
decoded it) is written from memory through the same library, local or S3, and checked against
its own length. Inline results follow the same copy-job rules as any other: a copy is queued at
completion only with `keep_videos` on. Without one, each download reads the upstream's answer
again, for as long as the upstream keeps it (the operator chose not to hold videos; a copy made
against that choice would also escape `keep_days` and `max_gb`, which only apply while copies
are kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp

from relay.config import StorageConfig
from relay.content import served_type
from relay.domain import ContentSource, InlineBytes, LocalFile, Remote
from relay.errors import StorageUnavailable
from relay.events import CopyStored, Events
from relay.policy import Phase, TaskEffect, decide
from relay.providers.errors import ProviderError
from relay.storage import CopyFailed, Library, StorageError
from relay.store import Copy, Store
from relay.tasks.content import Contents
from relay.upstream import BlockedAddress, Http, UnusableUrl
from relay.workers.base import Worker

log = logging.getLogger("relay.workers.copier")

COPIES_AT_ONCE = 2
CHUNK = 256 * 1024
CONNECT_TIMEOUT_S = 15.0
IDLE_TIMEOUT_S = 60.0
# a copy renews its lease while it runs, so one a killed relay held is taken up within a minute
LEASE_S = 60.0
RENEW_EVERY_S = 20.0
FIRST_RETRY_S = 30.0
MAX_RETRY_S = 3600.0
GIVE_UP_AFTER = 12  # attempts; at the longest spacing, about half a day of trying
RETENTION_EVERY_S = 600.0


class _Expired(Exception):
    """The upstream URL answered 403/404/410."""


class Copier(Worker):
    name = "copier"

    def __init__(
        self,
        store: Store,
        http: Http,
        library: Library,
        contents: Contents,
        *,
        settings: Callable[[], StorageConfig],
        events: Events,
        instance: str,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(clock)
        self.store = store
        self.http = http
        self.library = library
        self.contents = contents
        self.settings = settings
        self.events = events
        self.instance = instance
        self._last_retention = 0.0

    async def clean(self) -> None:
        """Remove what a copy cut off by a stop left half-written (before the first round)."""
        try:
            cleaned = await self.library.clean_partials()
        except StorageError as exc:
            log.warning("could not clean half-written copies: %s", exc)
            return
        if cleaned:
            log.info("removed %d half-written copies from an earlier run", cleaned)

    async def stop(self) -> None:
        """Stop copying; a copy cut off here leaves no file and starts again at the next run."""
        await super().stop()
        # with the database gone the leases run out by themselves; another start copies then
        with contextlib.suppress(StorageUnavailable):
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
        renewing = asyncio.create_task(self._renew(job))
        try:
            stored = await self._copy(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: keep it to this job, and retry it like any failure
            if not isinstance(exc, CopyFailed):
                log.exception("copy of %s %s broke", job.task_id, job.variant)
                exc = CopyFailed(f"the copy broke ({type(exc).__name__})")
            await self._failed(job, exc)
            return
        finally:
            renewing.cancel()
        if stored is not None:
            log.info("stored %s of %s (%d bytes)", job.variant, job.task_id, stored)
            self.events.emit(CopyStored(job.task_id, job.variant, stored))

    async def _renew(self, job: Copy) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY_S)
            with contextlib.suppress(StorageUnavailable):  # the lease may lapse; a retry copes
                await self.store.renew_copy_lease(
                    job.task_id, job.variant, self.instance, self.clock() + LEASE_S
                )

    async def _failed(self, job: Copy, exc: CopyFailed) -> None:
        if exc.final or job.attempts + 1 >= GIVE_UP_AFTER:
            log.warning("giving up the copy of %s %s: %s", job.task_id, job.variant, exc)
            await self.store.drop_copy(job.task_id, job.variant)
            return
        wait = min(MAX_RETRY_S, FIRST_RETRY_S * 2.0**job.attempts)
        if job.attempts == 0:
            log.info("copy of %s %s failed (%s); retrying", job.task_id, job.variant, exc)
        await self.store.retry_copy(job.task_id, job.variant, self.clock() + wait, str(exc))

    async def _copy(self, job: Copy) -> int | None:
        """Copy one variant; returns its size, or None when there is nothing to store."""
        try:
            source = await self.contents.for_copy(job.task_id, job.variant)
        except ProviderError as exc:
            final = decide(exc, Phase.COPY).task is TaskEffect.DROP
            raise CopyFailed(f"the upstream cannot give it ({exc.message})", final=final) from None
        if source is None or isinstance(source, LocalFile):
            # the task is gone, or its content is local already (the demo's shipped files)
            await self.store.drop_copy(job.task_id, job.variant)
            return None
        try:
            relative, content_type, size = await self._fetch(job, source)
        except _Expired:
            fresh = await self.contents.refresh_for_copy(job.task_id, job.variant)
            if not isinstance(fresh, Remote | InlineBytes):
                raise CopyFailed("the upstream URL has expired", final=True) from None
            try:
                relative, content_type, size = await self._fetch(job, fresh)
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
            await self.library.remove(job.task_id)
            return None
        self.wake()  # retention may have work now
        return size

    async def _fetch(self, job: Copy, source: ContentSource) -> tuple[str, str, int]:
        if isinstance(source, InlineBytes):
            return await self._write_inline(job, source)
        assert isinstance(source, Remote)
        return await self._download(job, source)

    async def _write_inline(self, job: Copy, source: InlineBytes) -> tuple[str, str, int]:
        content_type = served_type(source.content_type, None, job.variant)
        try:
            relative, size = await self.library.write(
                job.task_id, job.variant, content_type, _chunks(source.data), len(source.data)
            )
        except StorageError as exc:
            raise CopyFailed(str(exc)) from None
        return relative, content_type, size

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
                claimed = resp.headers.get("Content-Type", "").lower()
                if claimed.startswith(("application/json", "text/")):
                    raise CopyFailed("the upstream sent an error page instead of the content")
                content_type = served_type(claimed, source.content_type, job.variant)
                encoded = resp.headers.get("Content-Encoding", "identity").lower() != "identity"
                length = resp.headers.get("Content-Length", "")
                expected = int(length) if length.isdigit() and not encoded else None
                relative, size = await self.library.write(
                    job.task_id,
                    job.variant,
                    content_type,
                    resp.content.iter_chunked(CHUNK),
                    expected,
                )
                return relative, content_type, size
        except UnusableUrl as exc:
            raise CopyFailed(f"the upstream result URL is unusable: {exc}", final=True) from None
        except StorageError as exc:  # a short body, or the library failed
            raise CopyFailed(str(exc)) from None
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
            try:
                await self.library.forget(copy.path)
            except StorageError as exc:
                log.warning(
                    "could not remove the stored %s of %s: %s", copy.variant, copy.task_id, exc
                )


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    # the library's contract is a stream: it then holds one chunk (one S3 part) beside the data
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        yield bytes(view[start : start + CHUNK])
