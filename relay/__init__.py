"""relay: a self-hosted gateway that serves the OpenAI Videos API over many video providers."""

__version__ = "0.1.0"
