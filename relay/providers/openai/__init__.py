"""OpenAI's Videos API (`openai`) and gateways that imitate it (`compat-relay`).

wire.py         the OpenAI wire format: request bodies, the video object, error envelopes
adapter.py      OpenAIProvider: multipart/JSON create, retrieve, /content, remix, delete
compat_wire.py  the gateways' deviations: task_id, status synonyms, both envelopes, URLs
compat.py       CompatRelayProvider: the openai adapter with lenient parsing
"""

from relay.providers.openai.adapter import OpenAIProvider
from relay.providers.openai.compat import CompatRelayProvider

__all__ = ["CompatRelayProvider", "OpenAIProvider"]
