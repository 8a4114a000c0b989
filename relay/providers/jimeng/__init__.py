"""Jimeng (ByteDance) video models on the Volcengine visual API.

sign.py      Volcengine HMAC-SHA256 V4 request signing (standard library only)
request.py   req_key families and the submit body (pure)
answers.py   the gateway and business envelopes, task states, error classes (pure)
provider.py  the adapter: submit, poll, content, refresh_content
"""

from relay.providers.jimeng.provider import JimengProvider

__all__ = ["JimengProvider"]
