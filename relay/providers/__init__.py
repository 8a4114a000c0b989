"""The provider registry: `provider = "<name>"` in a channel picks a class from here.

This is the only place that lists providers. Adding one is a module, a line here, a fake in
tests/fakes/ and its fixtures.
"""

from __future__ import annotations

from typing import Any

from relay.providers.base import Provider
from relay.providers.compat_relay import CompatRelayProvider
from relay.providers.dashscope import DashScopeProvider
from relay.providers.demo import DemoProvider
from relay.providers.gemini_omni import GeminiOmniProvider
from relay.providers.jimeng import JimengProvider
from relay.providers.kling import KlingProvider
from relay.providers.minimax import MinimaxProvider
from relay.providers.minimax_v2 import MinimaxV2Provider
from relay.providers.openai import OpenAIProvider
from relay.providers.openrouter import OpenRouterProvider
from relay.providers.runway import RunwayProvider
from relay.providers.seedance import SeedanceProvider
from relay.providers.veo import VeoProvider
from relay.providers.vidu import ViduProvider
from relay.providers.xai import XaiProvider

REGISTRY: dict[str, type[Provider[Any]]] = {
    cls.name: cls
    for cls in (
        CompatRelayProvider,
        DashScopeProvider,
        DemoProvider,
        GeminiOmniProvider,
        JimengProvider,
        KlingProvider,
        MinimaxProvider,
        MinimaxV2Provider,
        OpenAIProvider,
        OpenRouterProvider,
        RunwayProvider,
        SeedanceProvider,
        VeoProvider,
        ViduProvider,
        XaiProvider,
    )
}
