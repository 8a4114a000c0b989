"""Seedance (ByteDance): Volcengine Ark and BytePlus ModelArk video tasks.

models.py    what each model family can do, and the output-size table by generation
request.py   the client's job as an Ark create body (pure)
response.py  task objects and error envelopes in relay terms (pure)
provider.py  the adapter: submit, poll, content, remix, delete
"""

from relay.providers.seedance.provider import SeedanceProvider

__all__ = ["SeedanceProvider"]
