"""The optional context-IR step (`options.context_ir`, spec/providers/minimax-v2.md "Optional"):
the job starts as MiniMax's prompt expansion (`POST /v2/h3_context_ir`), and the poll that sees
it succeed sends the generation with `content.prompt` as its text item.

The task's state says where a job is: `context_ir` (the expansion's id) and `pending` (the
generation body, held until the expansion succeeds) while it expands; `task_id` (the
generation's id) from then on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from relay.domain import TaskRef
from relay.providers.base import TaskError, Update
from relay.providers.errors import Rejected, Unavailable
from relay.providers.minimax_v2.request import with_prompt
from relay.providers.minimax_v2.response import context_prompt, status_of, task_update

Create = Callable[[Mapping[str, Any]], Awaitable[str]]


def current(task: TaskRef) -> str:
    """The task to ask about: the generation, or the context-IR task until there is one."""
    found = task.state.get("task_id")
    return found if isinstance(found, str) and found else task.upstream_id


def expanding(state: Mapping[str, Any]) -> bool:
    return bool(state.get("pending")) and not state.get("task_id")


def generation_update(task: TaskRef, found: Mapping[str, Any], *, now: float) -> Update:
    """A generation's news; after an expansion a queued generation is shown as underway, since
    the job as a whole is (progress never goes back)."""
    update = task_update(found, now=now)
    if task.state.get("context_ir") and update.status == "queued":
        return replace(update, status="in_progress", progress=None)
    return update


async def after_expansion(
    task: TaskRef, found: Mapping[str, Any], create: Create, *, now: float
) -> Update:
    """The expansion's news; once it succeeds, the generation goes out with its prompt. A
    create that may have gone through is never sent again (the page's submit-time caution)."""
    status = status_of(found)
    if status == "queued":
        return Update(status="queued", progress=0)
    if status != "succeeded":
        update = task_update(found, now=now)
        if update.error is None:
            return update
        return replace(
            update, error=replace(update.error, message=f"context IR {update.error.message}")
        )
    prompt = context_prompt(found)
    if prompt is None:
        error = TaskError("generation_failed", "context IR succeeded without a prompt")
        return Update(status="failed", error=error, completed_at=now)
    try:
        generation = await create(with_prompt(task.state["pending"], prompt))
    except Unavailable as exc:
        if not exc.maybe_created:
            raise  # nothing was made: the next poll sends it
        error = TaskError(
            "upstream_error",
            f"the generation may have been created upstream, so it is not sent again: "
            f"{exc.message}",
        )
        return Update(status="failed", error=error, completed_at=now)
    except Rejected as exc:
        return Update(status="failed", error=TaskError(exc.code, exc.message), completed_at=now)
    return Update(status="in_progress", state={"task_id": generation, "pending": None})
