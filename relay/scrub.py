"""Upstream text made fit to show. An upstream's error text is untrusted: an HTML error page, a
Python traceback naming server paths and `sqlite3.OperationalError`, a signed URL, a key echoed
back. Two cleaners, one per audience:

    client_text(text, limit)   what a client, a stored task or an INFO/WARNING line may hold:
                               markup stripped and entities decoded, everything from the first
                               sign of a traceback or stack dump on dropped, module-qualified
                               exception names and SQL dumps dropped, URLs and server paths
                               masked (`<url>`, `<path>`), secrets masked, whitespace collapsed
                               to one line, dangling separators trimmed, length capped. Returns
                               "" when nothing readable is left; other languages are kept.
    log_excerpt(text, limit)   a DEBUG line's look at a raw answer: markup stripped, URLs and
                               secrets masked, one line, capped; tracebacks and paths kept,
                               since they are what an operator reporting an upstream bug needs.

Both are idempotent, so text cleaned early (where an adapter builds its message) can pass
through them again at the edge unchanged.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

CLIENT_LIMIT = 300
EXCERPT_LIMIT = 500
# Bounds on the work per text: markup is stripped from the first 64 KiB (an error page's words
# come after its styles), the rest of the rules look at the first 4 KiB of what is left.
_MARKUP_WINDOW = 64 * 1024
_TEXT_WINDOW = 4 * 1024
_ELLIPSIS = "..."

# --- markup -----------------------------------------------------------------------------------

_INVISIBLE = re.compile(r"<(script|style)\b.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
# a tag, a doctype or a processing instruction; the relay's own `<url>`/`<path>` marks stay
_TAG = re.compile(r"<(?!(?:url|path)>)[/!?]?[A-Za-z][^<>]*(?:>|\Z)")
# terminal escapes, C0/C1 controls other than tab and newline, and the bidi overrides that
# could reorder a line
_CONTROL = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|"
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _without_markup(text: str) -> str:
    if "<" not in text and "&" not in text:
        return text
    text = _INVISIBLE.sub("\n", text)
    text = _COMMENT.sub("\n", text)
    text = _TAG.sub("\n", text)  # a newline keeps a <pre> traceback's lines apart
    text = html.unescape(text)
    return _TAG.sub("\n", text)  # markup that arrived entity-encoded


# --- tracebacks and dumps ---------------------------------------------------------------------

# The first sign of a stack trace or crash dump; the text is cut there, since what follows is
# frames, server paths and the exception's internals.
_TRACE_START = re.compile(
    "|".join(
        (
            r"Traceback \(most recent call last\)",
            r"\bFile \"[^\"\n]+\", line \d+",  # a Python frame
            r"\bStack ?trace:",  # PHP, .NET
            r"\bException in thread \"",  # Java
            r"(?:^|\n)\s*at [\w$.<>]+\s*\([\w$.\s]*:\d+\)",  # a Java frame
            r"(?:^|\n)\s*at (?:[^\s()]+\s+)?\(?(?:/|[A-Za-z]:\\|file:|node:)[^\s()]*:\d+:\d+\)?",
            r"\bgoroutine \d+ \[",  # a Go panic
            r"(?:^|\n)\s*#\d+ (?:/|[A-Za-z]:\\)",  # a PHP frame
            r"(?:^|\n)\s*from (?:/|[A-Za-z]:\\)\S+:\d+:in ",  # a Ruby frame
        )
    ),
    re.IGNORECASE,
)
_EXCEPTION = re.compile(
    r"(?<![\w.])(?:[a-z_][a-z0-9_]*\.)+[A-Z]\w*"
    r"(?:Error|Exception|Warning|Exit|Interrupt|Violation|Fault|Failure)\b:?"
)
_SQL_DUMP = re.compile(r"\[(?:SQL|parameters):[^\]]*\]?", re.IGNORECASE)
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")
_EMPTY = re.compile(r"\(\s*\)|\[\s*\]|\{\s*\}")

# --- URLs, paths, secrets ---------------------------------------------------------------------

_URL = re.compile(r"\b[a-z][a-z0-9+.-]{1,15}://[^\s<>\"'`]+|\bwww\.[^\s<>\"'`]+", re.IGNORECASE)
_CODE_EXT = r"(?:py|pyc|pyx|js|mjs|cjs|ts|go|rb|java|kt|scala|php|rs|cs|cpp|cc|c|h|ex|exs|sql)"
_PATH = re.compile(
    "|".join(
        (
            r"(?<![\w/.:~-])~?/(?:[\w.@+-]+/)+[\w.@+-]*",  # /srv/app/db.py, ~/x/y
            r"(?<![\w/.:~-])/[\w.@+-]+\." + _CODE_EXT + r"\b",  # /app.py
            r"\b[A-Za-z]:\\(?:[^\\\s\"'<>|?*]+\\)*[^\\\s\"'<>|?*]*",  # C:\srv\app.py
            r"(?<![\w./-])[\w.-]+(?:/[\w.-]+)*\." + _CODE_EXT + r"\b",  # app/db.py
        )
    )
)
_LINE_NO = re.compile(r"(<path>)(?::\d+)+")


def _value(match: re.Match[str]) -> str:
    """The value after a secret's name masked when it looks like one: "signature: invalid" or
    "Bearer token" says nothing secret."""
    value = match[2]
    if any(c.isdigit() for c in value) or len(value) >= 20:
        return match[1] + "***"
    return match[0]


_SECRETS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"(\b(?:Bearer|Basic)\s+)([\w\-.~+/=]{8,})", re.IGNORECASE), _value),
    (re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*"), "***"),  # a JWT
    (re.compile(r"\bsk-[\w*-]{6,}"), "sk-***"),
    (re.compile(r"\bxai-[\w*-]{6,}"), "xai-***"),  # an xAI key (xAI echoes it masked, xa***23)
    (re.compile(r"\bkey_[0-9a-fA-F*]{16,}"), "key_***"),  # a Runway key: key_ and long hex
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "***"),
    (
        re.compile(
            r"(\b(?:api[_-]?key|apikey|access[_-]?key|secret(?:[_-]?key)?|token|access[_-]?token|"
            r"password|passwd|signature|sig|session(?:[_-]?id)?|cookie|authorization|"
            r"x-api-key|credential)s?[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;}]{8,})",
            re.IGNORECASE,
        ),
        _value,
    ),
)


def _masked(text: str) -> str:
    text = _URL.sub("<url>", text)
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


# --- the two cleaners ------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")
_DANGLING = " \t:;,-=|/\\([{<\u2013\u2014\uff1a\uff1b\uff0c\u3001"


def _one_line(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _closers(text: str) -> str:
    return ")" * max(0, text.count("(") - text.count(")")) + "]" * max(
        0, text.count("[") - text.count("]")
    )


def _tidy(text: str) -> str:
    """No separator left hanging where a removal ended the text; brackets closed."""
    text = text.strip().lstrip(":;,| ").rstrip(_DANGLING)
    return text + _closers(text)


def _capped(text: str, limit: int) -> str:
    """At most `limit` characters, ending at a word where one ends nearby, marked as cut."""
    if len(text) <= limit:
        return text
    room = limit - len(_ELLIPSIS)
    while room > 0:
        cut = text[:room]
        mark = cut[cut.rfind("<") :] if "<" in cut else ""
        if mark and ("<url>".startswith(mark) or "<path>".startswith(mark)):
            cut = cut[: -len(mark)]  # never half a mark
        space = cut.rfind(" ")
        if space > 0 and space >= len(cut) - 20:
            cut = cut[:space]
        cut = cut.rstrip(_DANGLING + ".")
        closers = _closers(cut)
        if len(cut) + len(_ELLIPSIS) + len(closers) <= limit:
            return cut + _ELLIPSIS + closers
        room -= len(closers)
    return text[: max(0, limit)]


def client_text(text: str, limit: int = CLIENT_LIMIT) -> str:
    """Upstream text as a client may read it (see the module docstring); "" when nothing is."""
    if not text:
        return ""
    text = _without_markup(_CONTROL.sub("", text[:_MARKUP_WINDOW]))[:_TEXT_WINDOW]
    found = _TRACE_START.search(text)
    if found:
        text = text[: found.start()]
    text = _masked(text)
    text = _SQL_DUMP.sub(" ", text)
    text = _EXCEPTION.sub(" ", text)
    text = _ADDRESS.sub(" ", text)
    text = _PATH.sub("<path>", text)
    text = _LINE_NO.sub(r"\1", text)
    text = _EMPTY.sub(" ", text)
    return _capped(_tidy(_one_line(text)), limit)


def log_excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """A raw upstream answer for a DEBUG line (see the module docstring)."""
    if not text:
        return ""
    text = _without_markup(_CONTROL.sub("", text[:_MARKUP_WINDOW]))[:_TEXT_WINDOW]
    return _capped(_one_line(_masked(text)), limit)
