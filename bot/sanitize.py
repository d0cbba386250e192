"""Clean text that came from outside (GitHub comments, redirect notes, agent output) before a prompt sees it."""

from __future__ import annotations

import re
import unicodedata

LIMIT = 2000  # characters a note may keep; longer ones are cut with a marker
TRUNCATED = " … [truncated]"

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), DCS/SOS/PM/APC strings, and two-byte ESC
# sequences; terminals act on them, and in a prompt they only hide or garble what a person wrote.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\|$)"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\|$)"
    r"|\x1b[ -/]*[0-~]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
# HTML comments render as nothing on GitHub, so a reader never sees what they would tell an agent.
# An unterminated one hides the rest of the text on GitHub too.
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
# Characters that render as nothing but are letters to Unicode (Hangul fillers, braille blank).
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Unicode categories dropped outright: control, format (zero-width, bidi overrides, tag characters,
# soft hyphen, BOM), private use, surrogates, unassigned.
_DROPPED = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})
_KEPT_CONTROLS = frozenset("\n\t")
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def clean(text: str, limit: int = LIMIT) -> str:
    """Text with escape sequences, invisible characters and HTML comments removed, at most limit chars."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    text = _ANSI.sub("", text)
    text = "".join(ch for ch in text if _visible(ch))
    previous = None
    while previous != text:  # nested tricks like "<!<!-- x -->-- y -->" need more than one pass
        previous, text = text, _HTML_COMMENT.sub("", text)
    text = _TRAILING_SPACE.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text).strip()
    return cap(text, limit)


def one_line(text: str, limit: int = 200) -> str:
    """clean() folded onto one line: for descriptions and reasons shown in a list."""
    return cap(" ".join(clean(text, limit=max(limit * 4, 1000)).split()), limit)


def cap(text: str, limit: int) -> str:
    """text, cut to at most limit characters with a marker when it was longer."""
    if len(text) <= limit:
        return text
    if limit <= len(TRUNCATED):
        return text[:limit]
    return text[: limit - len(TRUNCATED)].rstrip() + TRUNCATED


def _visible(ch: str) -> bool:
    if ch in _KEPT_CONTROLS:
        return True
    if ch in _INVISIBLE_LETTERS:
        return False
    return unicodedata.category(ch) not in _DROPPED
