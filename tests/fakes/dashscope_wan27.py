"""The DashScope fake serving the Wan 2.7 "new protocol" models, for the contract suites: the same
fake (tests/fakes/dashscope.py), with a channel that maps `sora-2` to `wan2.7-t2v` for text and
`wan2.7-i2v` for image jobs. The relay reaches it as `provider = "dashscope"`."""

from __future__ import annotations

from typing import Any, ClassVar

from tests.fakes.dashscope import DashScopeFake


class DashScopeWan27Fake(DashScopeFake):
    name: ClassVar[str] = "dashscope-wan27"
    provider: ClassVar[str] = "dashscope"  # the registry name the relay reaches it with

    def __init__(self, **kw: Any) -> None:
        super().__init__(**{"model": "wan2.7-t2v", **kw})

    def channel(self, base_url: str, *, model: str | None = None, **extra: Any) -> dict[str, Any]:
        return {**super().channel(base_url, model=model, **extra), "name": "dashscope-wan27"}
