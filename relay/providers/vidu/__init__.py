"""Vidu (Shengshu), `provider = "vidu"`: native.py translates, adapter.py talks."""

from relay.providers.vidu.adapter import ViduProvider

__all__ = ["ViduProvider"]
