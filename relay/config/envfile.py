"""`relay.env` beside the config file: the secrets systemd's `EnvironmentFile=` gives the service,
read by every `relay` command too, so `sudo relay check-config` or `relay users list` sees the
`${NAME}` values the service sees without exporting them by hand.

The file wins over the process environment: under systemd the environment holds what the file
said at start, so a SIGHUP after editing the file picks up a rotated secret. A missing file is
fine (not every setup has secrets); one that exists but cannot be read is a config error, like an
unreadable config file. The syntax is the part of systemd's that env files use in practice:
`NAME=value` lines, `#` and `;` comments, optional single or double quotes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from relay.errors import ConfigError

ENV_FILE = "relay.env"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def beside(config_path: Path) -> Path:
    return config_path.parent / ENV_FILE


def environment(config_path: Path, base: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The environment `${NAME}` expands from: `base` (default os.environ) with the env file
    beside the config on top, when there is one."""
    base = os.environ if base is None else base
    path = beside(config_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return base
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    return {**base, **parse(text, str(path))}


def parse(text: str, source: str = ENV_FILE) -> dict[str, str]:
    """`NAME=value` lines; a problem names the line, never its value (it may be a secret)."""
    values: dict[str, str] = {}
    problems: list[str] = []
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        while line.endswith("\\") and number < len(lines):  # a continued line
            line = line[:-1] + lines[number]
            number += 1
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        name, eq, value = stripped.partition("=")
        name = name.strip()
        if not eq or not _NAME.match(name):
            problems.append(f"{source}:{number}: not a NAME=value line")
            continue
        values[name] = _unquote(value.strip())
    if problems:
        raise ConfigError(problems)
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r'\\(["\\$`])', r"\1", value[1:-1])
    return value
