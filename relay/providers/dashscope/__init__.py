"""DashScope (Alibaba Cloud Model Studio): Wan 2.1-2.6 video tasks.

models.py    what each Wan model can do: kind, size tiers, durations
request.py   the client's job as a create body, and what a model refuses (pure)
response.py  task records and error bodies in relay terms (pure)
provider.py  the adapter: submit, poll, content
"""

from relay.providers.dashscope.provider import DashScopeProvider

__all__ = ["DashScopeProvider"]
