"""A typed reader over parsed TOML that names the key path of every problem.

config.py describes what the relay's config holds; this module knows how to read a table of it:
typed getters with bounds, `${ENV}` expansion, unknown keys reported (with a "did you mean"),
secrets never shown, and all problems collected so one run reports them all.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Values under these names never appear in an error message (nor under names ending like them).
SECRET_NAMES = frozenset({"api_key", "access_key", "secret_key", "key", "secret"})
_SECRET_ENDINGS = ("_key", "_secret", "token", "password")


def is_secret(name: str) -> bool:
    name = name.lower()
    return name in SECRET_NAMES or name.endswith(_SECRET_ENDINGS)


# --- ${ENV} expansion ---------------------------------------------------------------------------


def expand(value: Any, env: Mapping[str, str], path: str, problems: Problems) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                problems.env_missing(path, name)
                return ""
            return env[name]

        return ENV_REF.sub(sub, value)
    if isinstance(value, Mapping):
        return {k: expand(v, env, join(path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, env, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- problems, and a small typed reader over one TOML table -----------------------------------


class Problems:
    """Every problem found, as `path: what was expected (got value)`.

    A value whose ${VAR} is missing was expanded to "" only to keep going, and a table that is not
    a table was read as an empty one: the later complaints about them ("required", "too short")
    would bury the real cause, so they are dropped.
    """

    def __init__(self) -> None:
        self.items: list[str] = []
        self.paths: list[str] = []
        self.muted: set[str] = set()

    def add(self, path: str, text: str) -> None:
        if not any(_related(path, muted) for muted in self.muted):
            self._append(path, text)

    def root_cause(self, path: str, text: str) -> None:
        """A problem that makes the usual complaints about `path` and what is inside it moot."""
        self.add(path, text)
        self.muted.add(path)

    def unknown(self, path: str, text: str) -> None:
        self._append(path, text)  # a typo in a key name is news even then

    def env_missing(self, path: str, name: str) -> None:
        self._append(path, f"environment variable {name} is not set")
        self.muted.add(path)

    def under(self, path: str) -> bool:
        """Whether a problem was found at `path` or inside it."""
        return any(_related(path, p) and len(p) >= len(path) for p in self.paths)

    def _append(self, path: str, text: str) -> None:
        self.items.append(f"{path}: {text}")
        self.paths.append(path)


def _related(a: str, b: str) -> bool:
    """One path is the other or lies inside it (`models` and `models[1]`)."""
    short, long = sorted((a, b), key=len)
    return long == short or long.startswith((short + ".", short + "["))


class Table:
    """Reads typed values out of one table, recording problems with their key path."""

    def __init__(self, data: Any, path: str, problems: Problems) -> None:
        self.path = path
        self.problems = problems
        self.used: set[str] = set()
        if data is None:
            data = {}
        if not isinstance(data, dict):
            # `keys = ["sk-..."]`: a bare value in place of a key's table may well be the key
            hidden = path.startswith(("keys", "webhooks")) or is_secret(_last_name(path))
            problems.root_cause(path, f"a table (got {'<hidden>' if hidden else show(data)})")
            data = {}
        self.data: dict[str, Any] = data

    def problem(self, key: str, expected: str, got: Any, *, secret: bool = False) -> None:
        if got is None:
            shown = ""
        elif secret or is_secret(key):
            shown = " (got <hidden>)"
        else:
            shown = f" (got {show(got)})"
        self.problems.add(join(self.path, key), f"{expected}{shown}")

    def get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        return self.data.get(key, default)

    def _typed(
        self, key: str, default: T, accept: Callable[[Any], bool], expected: str, secret: bool
    ) -> T:
        value = self.get(key, default)
        if key not in self.data or accept(value):
            return value  # type: ignore[no-any-return]
        self.problem(key, expected, value, secret=secret)
        return default

    def string(
        self,
        key: str,
        default: str,
        *,
        check: Callable[[str], str | None] | None = None,
        nonempty: bool = False,
        secret: bool = False,
    ) -> str:
        value = self._typed(key, default, lambda v: isinstance(v, str), "a string", secret)
        if nonempty and not value:
            if key in self.data and self.data[key] == "":
                self.problem(key, "must not be empty", "", secret=False)
            elif key not in self.data:
                self.problem(key, "required (a non-empty string)", None)
            return default
        if value and check and (why := check(value)):
            self.problem(key, why, value, secret=secret)
            return default
        return value

    def integer(
        self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self._typed(
            key,
            default,
            lambda v: isinstance(v, int) and not isinstance(v, bool),
            "a whole number",
            False,
        )
        return int(self._bounded(key, value, default, minimum, maximum))

    def number(
        self,
        key: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        minimum_name: str | None = None,
    ) -> float:
        value = self._typed(
            key,
            default,
            lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "a number",
            False,
        )
        if not math.isfinite(value):  # TOML has inf and nan; neither means anything here
            self.problem(key, "a finite number", value)
            return default
        return float(self._bounded(key, value, default, minimum, maximum, minimum_name))

    def _bounded(
        self, key: str, value: Any, default: Any, lo: Any, hi: Any, lo_name: str | None = None
    ) -> Any:
        if lo is not None and value < lo:
            bound = f"{lo:g}" if isinstance(lo, float) else str(lo)
            self.problem(key, f"at least {f'{lo_name} ({bound})' if lo_name else bound}", value)
            return default
        if hi is not None and value > hi:
            self.problem(key, f"at most {hi}", value)
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        return self._typed(key, default, lambda v: isinstance(v, bool), "true or false", False)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default)
        if value not in choices:
            self.problem(key, f"one of {', '.join(choices)}", value)
            return default
        return value

    def string_list(self, key: str, *, nonempty: bool = False) -> list[str]:
        value = self.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(key, "a list of non-empty strings", value)
            return []
        if nonempty and not value:
            self.problem(key, "required (at least one entry)", None)
        return value

    def option(self, key: str, spec: Any) -> Any:
        """One provider option, read by its declared `Option` spec (see providers/base.py)."""
        value = self.get(key, spec.default)
        if key not in self.data:
            return value
        why = spec.check(value)
        if not why and isinstance(value, float) and not math.isfinite(value):
            why = "a finite number"
        if why:
            self.problem(key, why, value)
            return spec.default
        return value

    def table(self, key: str) -> Table:
        return Table(self.get(key, {}), join(self.path, key), self.problems)

    def tables(self, key: str) -> list[Table]:
        value = self.get(key, [])
        if not isinstance(value, list):
            hidden = key in ("keys", "webhooks")  # such a table holds a key or a secret
            self.problem(key, "an array of tables ([[" + key + "]])", value, secret=hidden)
            return []
        return [
            Table(v, f"{join(self.path, key)}[{i}]", self.problems) for i, v in enumerate(value)
        ]

    def finish(self, hint: str = "") -> None:
        for key in self.data:
            if key in self.used:
                continue
            close = difflib.get_close_matches(key, sorted(self.used), n=1)
            note = f"did you mean {close[0]}?" if close else hint
            where = f" ({note})" if note else ""
            self.problems.unknown(join(self.path, key), f"unknown key{where}")


class Recorder(Table):
    """A reader over nothing that records each key path asked for (for known_keys())."""

    def __init__(self, paths: set[str], path: str = "") -> None:
        super().__init__({}, path, Problems())
        self.paths = paths

    def get(self, key: str, default: Any) -> Any:
        self.paths.add(join(self.path, key))
        return default

    def table(self, key: str) -> Table:
        if self.path:  # a table inside a section (a channel's options) is itself a key
            self.paths.add(join(self.path, key))
        return Recorder(self.paths, join(self.path, key))

    def array_item(self, key: str) -> Recorder:
        return Recorder(self.paths, f"{key}[]")


def _last_name(path: str) -> str:
    return re.sub(r"\[\d*\]$", "", path.rpartition(".")[2])


def show(value: Any) -> str:
    text = repr(redact(value))
    return text if len(text) <= 80 else text[:77] + "..."


def redact(value: Any) -> Any:
    """A copy fit for an error message: secret-named entries of tables are hidden."""
    if isinstance(value, dict):
        return {k: "<hidden>" if is_secret(k) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
