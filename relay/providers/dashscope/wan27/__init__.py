"""The Wan 2.7 / Wan 3.0 "new protocol" of DashScope (spec/providers/dashscope-wan27.md), chosen
by the model's name (`wan2.7…`, `wan3…`, `happyhorse…`) on the 2.6 URLs.

models.py    what each new-protocol model can do: family, media types, tiers, durations
rules.py     which inputs a model takes: media items per family, combinations (pure)
request.py   the create and remix bodies (pure, but for the URL of bytes the relay hosts)
"""
