"""The provider registry: `provider = "<name>"` in a channel picks a class from here.

This is the only place that lists providers. Adding one is a module, a line here, a fake in
tests/fakes/ and its fixtures.
"""

from __future__ import annotations

from typing import Any

from relay.providers.base import Provider
from relay.providers.demo import DemoProvider
from relay.providers.kling import KlingProvider

REGISTRY: dict[str, type[Provider[Any]]] = {cls.name: cls for cls in (DemoProvider, KlingProvider)}
