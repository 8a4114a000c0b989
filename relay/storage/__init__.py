"""Stored copies of finished videos, behind one interface, so videos outlive upstream URLs
(Jimeng's and OpenAI's live about an hour).

    Library              where copies live: write one (streamed, never whole in memory),
                         name its source for serving, remove it, clean up after a crash
    local.LocalLibrary   `<data_dir>/videos/<id>/<variant>.<ext>` (the default), served from disk
    s3.S3Library         an S3-compatible bucket (`[storage] backend = "s3"`), served through a
                         presigned URL, so every relay of a group serves every copy

The copier (relay/workers/copier.py) fills the library from the upstream; content serving reads
what `source()` names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp

from relay.config import Config
from relay.domain import ContentSource
from relay.storage.errors import StorageError
from relay.storage.local import LocalLibrary
from relay.storage.s3 import S3Library
from relay.store import Copy

__all__ = [
    "CopyFailed",
    "Library",
    "LocalLibrary",
    "S3Library",
    "StorageError",
    "copy_variants",
    "open_library",
]


class CopyFailed(Exception):
    def __init__(self, why: str, *, final: bool = False) -> None:
        super().__init__(why)
        self.final = final  # no later attempt can succeed (the upstream no longer has it)


def copy_variants(provider_variants: frozenset[str]) -> list[str]:
    """What is kept of a finished task: the video, and the thumbnail where there is one."""
    return ["video"] + (["thumbnail"] if "thumbnail" in provider_variants else [])


class Library(Protocol):
    async def write(
        self,
        task_id: str,
        variant: str,
        content_type: str,
        body: AsyncIterator[bytes],
        expected: int | None,
    ) -> tuple[str, int]:
        """Store one variant from a stream; returns (its path, its size). Only a complete body
        of the expected length becomes a copy; raises StorageError otherwise."""
        ...

    def source(self, copy: Copy) -> ContentSource | None:
        """Where to serve a stored copy from; None when it is missing."""

    async def remove(self, task_id: str) -> None:
        """Every copy of a task (it was deleted)."""

    async def forget(self, path: str) -> None:
        """One copy (retention removed it)."""

    async def read(self, path: str, limit: int) -> bytes | None:
        """A stored file whole, for an upstream that takes it inline; None when it is missing
        or larger than `limit` bytes."""
        ...

    async def forget_named(self, task_id: str, prefix: str) -> None:
        """Every file of a task whose name starts with `prefix` (the inputs hosted for a submit
        that a crash cut off, whose paths were never recorded)."""

    async def clean_partials(self) -> int:
        """Delete what a stopped copy left half-written; returns how many."""
        ...


def open_library(config: Config, session: aiohttp.ClientSession) -> Library:
    """The library `[storage] backend` names; S3 uses the given (trusted) HTTP session."""
    if config.storage.backend == "s3":
        assert config.storage.s3 is not None, "validated by the config loader"
        return S3Library(config.storage.s3, session)
    return LocalLibrary(config.server.data_dir)
