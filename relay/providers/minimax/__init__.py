"""MiniMax Hailuo, `provider = "minimax"`: request.py and answers.py translate, adapter.py talks."""

from relay.providers.minimax.adapter import MinimaxProvider

__all__ = ["MinimaxProvider"]
