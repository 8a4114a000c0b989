"""One fake upstream per provider, found by file name: `tests/fakes/<provider>.py` (a `-` in the
provider's name is a `_` here) holds a FakeUpstream subclass whose `name` is the provider's."""

from __future__ import annotations

import importlib

from tests.fakes.base import FakeUpstream


def fake_class(provider: str) -> type[FakeUpstream]:
    module = importlib.import_module(f"tests.fakes.{provider.replace('-', '_')}")
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, FakeUpstream)
            and value is not FakeUpstream
            and value.name == provider
        ):
            return value
    raise LookupError(f"tests/fakes/{provider.replace('-', '_')}.py has no fake named {provider!r}")
