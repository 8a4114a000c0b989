"""config.example.toml documents every key the loader knows, every provider and its options,
and its active part loads."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from relay.config import known_keys, parse
from relay.providers import REGISTRY
from relay.providers.base import option_specs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "config.example.toml").read_text()


def documented() -> set[str]:
    """Key paths in the example, commented lines included (`# key = value` counts)."""
    paths: set[str] = set()
    section = ""
    for raw in EXAMPLE.splitlines():
        if raw.startswith("# ---"):  # a prose block follows: no section until the next header
            section = ""
            continue
        line = raw.lstrip("# ").rstrip()
        header = re.match(r"^\[\[?([a-z_.0-9]+)\]\]?$", line)
        if header:
            name = header.group(1)
            section = f"{name}[]" if line.startswith("[[") else name
            continue
        key = re.match(r"^([a-z_0-9]+)\s*=", line)
        if key and section:
            paths.add(f"{section}.{key.group(1)}")
    return paths


def test_every_known_key_is_documented():
    missing = sorted(known_keys() - documented())
    assert not missing, f"config.example.toml lacks: {missing}"


def test_no_documented_key_is_unknown():
    known = known_keys()
    allowed_inline = {"channels[].options"}
    extra = sorted(p for p in documented() - known if p not in allowed_inline)
    assert not extra, f"config.example.toml documents keys the loader rejects: {extra}"


def channel_blocks() -> dict[str, list[str]]:
    """Each provider's channel examples, in order (a provider may have several: openai has
    OpenAI itself and a local vLLM-Omni server)."""
    blocks: dict[str, list[str]] = {}
    for block in re.split(r"^#? ?\[\[channels\]\]$", EXAMPLE, flags=re.M)[1:]:
        provider = re.search(r'provider\s*=\s*"([a-z0-9-]+)"', block)
        assert provider, block[:200]
        blocks.setdefault(provider.group(1), []).append(block)
    return blocks


def test_every_provider_has_a_channel_block_with_its_options_and_credentials():
    blocks = channel_blocks()
    for name, cls in REGISTRY.items():
        assert name in blocks, f"no [[channels]] example for provider {name!r}"
        text = "".join(blocks[name])
        for option in option_specs(cls.Options):
            assert re.search(rf"\b{option}\b", text), f"{name}: option {option}"
        for cred in cls.credentials:
            assert re.search(rf"^#? ?{cred} = ", blocks[name][0], re.M), f"{name}: {cred}"


def test_the_example_loads_with_its_variables_set():
    raw = tomllib.loads(EXAMPLE)
    names = set(re.findall(r"\$\{([A-Z_]+)\}", EXAMPLE))
    config = parse(raw, env={n: "x" * 24 for n in names}, source="example")
    assert [c.name for c in config.channels] == ["demo"]
    assert config.server.port == 8080 and config.polling.interval_s == 5


def test_each_commented_channel_loads_when_uncommented():
    names = set(re.findall(r"\$\{([A-Z_]+)\}", EXAMPLE))
    env = {n: "x" * 24 for n in names}
    for name, block in [(n, b) for n, bs in channel_blocks().items() for b in bs]:
        if name == "demo":
            continue
        lines = []
        for line in block.splitlines():
            text = line[2:] if line.startswith("# ") else line
            if re.match(r"^[a-z_]+ = ", text):  # key lines only, not the prose
                lines.append(text.split("  #")[0].rstrip())
        toml = "[[channels]]\n" + "\n".join(lines)
        parse({"channels": tomllib.loads(toml)["channels"]}, env=env, source=name)
