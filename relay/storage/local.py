"""Stored copies in the data directory: `<data_dir>/videos/<id>/<variant>.<ext>`.

A copy is streamed into a `.part` file, length-checked, fsynced, renamed into place and its
directory fsynced, so a copy either exists whole or not at all; a restart deletes half-written
`.part` files. Files are 0600: a video is its owner's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from relay.domain import EXTENSIONS, VARIANTS, LocalFile
from relay.storage.errors import StorageError
from relay.store import Copy

log = logging.getLogger("relay.storage")


def extension(content_type: str, variant: str) -> str:
    """A stored file's extension: from its type, else its variant's (a hosted input: "bin")."""
    return EXTENSIONS.get(content_type) or VARIANTS.get(variant, ("", "bin"))[1]


class LocalLibrary:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "videos"

    def path(self, relative: str) -> Path:
        return self.root.parent / relative

    def relative(self, task_id: str, variant: str, content_type: str) -> str:
        return f"videos/{task_id}/{variant}.{extension(content_type, variant)}"

    async def write(
        self,
        task_id: str,
        variant: str,
        content_type: str,
        body: AsyncIterator[bytes],
        expected: int | None,
    ) -> tuple[str, int]:
        relative = self.relative(task_id, variant, content_type)
        return relative, await _write(self.path(relative), body, expected)

    def source(self, copy: Copy) -> LocalFile | None:
        if copy.path is None:
            return None
        path = self.path(copy.path)
        if not path.is_file():
            log.error("stored copy %s of %s is missing on disk", copy.variant, copy.task_id)
            return None
        return LocalFile(path, copy.content_type or VARIANTS[copy.variant][0])

    async def remove(self, task_id: str) -> None:
        shutil.rmtree(self.root / task_id, ignore_errors=True)

    async def forget(self, path: str) -> None:
        file = self.path(path)
        file.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            file.parent.rmdir()  # only once it is empty

    async def read(self, path: str, limit: int) -> bytes | None:
        file = self.path(path)
        try:
            if file.stat().st_size > limit:
                return None
        except OSError:
            return None
        return await asyncio.get_running_loop().run_in_executor(None, file.read_bytes)

    async def forget_named(self, task_id: str, prefix: str) -> None:
        folder = self.root / task_id
        if folder.is_dir():
            for file in folder.glob(f"{prefix}*"):
                await self.forget(str(file.relative_to(self.root.parent)))

    async def clean_partials(self) -> int:
        count = 0
        if self.root.is_dir():
            for part in self.root.glob("*/*.part"):
                part.unlink(missing_ok=True)
                count += 1
        return count


async def _write(path: Path, body: AsyncIterator[bytes], expected: int | None) -> int:
    """Stream a body to `path` through a .part file: fsync, rename, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    size = 0
    loop = asyncio.get_running_loop()
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        async for chunk in body:
            await loop.run_in_executor(None, _write_all, fd, chunk)
            size += len(chunk)
        if expected is not None and size != expected:
            raise StorageError(f"the upstream sent {size} of {expected} bytes")
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
