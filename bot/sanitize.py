"""Text from outside (agents, evaluations, commenters) made safe for where it goes: a prompt, GitHub, a terminal.

`clean`/`one_line` prepare text for a prompt. `markdown_text`, `code_span` and `code_block` put it into Markdown
that GitHub shows as the same text and nothing else; `terminal_text` prints it without escape sequences;
`display_path` names a path whatever characters git let it hold.
"""

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


def terminal_text(text: str) -> str:
    """text with escape sequences and control characters removed (newline and tab stay), safe to print.

    A terminal acts on ESC/CSI/OSC sequences (clear the screen, set the title, hyperlinks, even answer back),
    a carriage return or backspace overwrites what was printed before, and bidi overrides reorder it.
    """
    text = text.replace("\r\n", "\n")
    text = _ANSI.sub("", text)
    return "".join(ch for ch in text if ch in _KEPT_CONTROLS or not _terminal_control(ch))


def _terminal_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" or ch in _BIDI or ch in "\u2028\u2029"


# Bidi embeddings, overrides and isolates: they make printed text read differently from what it is.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")

# -- Markdown --------------------------------------------------------------------------------------------
# GitHub renders agent and commenter text as GitHub Flavored Markdown and then links mentions, issue
# references and bare URLs in what is left. Backslash escapes (CommonMark 2.4) stop the Markdown; the
# linkers ignore backslashes, so a zero-width space after `@`, `#` and inside `://`/`www.` breaks their
# patterns while the text still reads the same.
ZWSP = "\u200b"
_MD_ESCAPED = frozenset("\\`*[]&~|$")  # emphasis, code, links/images, entities, strikes, tables, math
_MENTION = re.compile(r"([@#])(?=[\w-])")  # @user, @org/team, #123, org/repo#123
_SHORTCODE = re.compile(r"(:)(?=[\w+-]+:)")  # :octocat: and the other custom emoji render as images
_AUTOLINK = re.compile(r"(?i)(:)(//)|\b(www)(\.)")  # http://, https://, ftp://, www.
# A line that starts a block: heading, quote, list item, setext underline, thematic break.
_BLOCK_START = re.compile(r"^(#|>|[-+=]|\d{1,9}(?=[.)]))")


def markdown_text(text: str) -> str:
    """text as Markdown that GitHub shows verbatim: no formatting, link, image, HTML, mention or reference."""
    text = terminal_text(text).replace("\t", " ")
    return "\n".join(_markdown_line(line) for line in text.split("\n"))


def _markdown_line(line: str) -> str:
    line = line.strip(" ")  # leading spaces make indented code; trailing ones a hard break
    out: list[str] = []
    for i, ch in enumerate(line):
        if ch == "<":
            out.append("&lt;")  # not a backslash: the raw text must never hold `<!--`, which opens the bot's markers
        elif ch in _MD_ESCAPED:
            out.append("\\" + ch)
        elif ch == "_" and not (0 < i < len(line) - 1 and line[i - 1].isalnum() and line[i + 1].isalnum()):
            out.append("\\_")  # snake_case stays readable; only an underscore that could open emphasis is escaped
        else:
            out.append(ch)
    escaped = "".join(out)
    escaped = _MENTION.sub(lambda m: m.group(1) + ZWSP, escaped)
    escaped = _SHORTCODE.sub(lambda m: m.group(1) + ZWSP, escaped)
    escaped = _AUTOLINK.sub(lambda m: f"{m.group(1)}{ZWSP}{m.group(2)}" if m.group(1)
                            else f"{m.group(3)}{ZWSP}{m.group(4)}", escaped)
    match = _BLOCK_START.match(escaped)
    if match:
        escaped = escaped[: match.end()] + "\\" + escaped[match.end():] if match.group(1)[0].isdigit() \
            else "\\" + escaped
    return escaped


def table_cell(text: str, limit: int = 80) -> str:
    """text as one cell of a Markdown table: one line, at most limit characters before escaping."""
    text = " ".join(terminal_text(text).split())
    # Cut before escaping: a cut after it could split an escape and leave a bare backslash before the pipe.
    return markdown_text(text if len(text) <= limit else text[: limit - 1] + "…")


def _longest_run(text: str, ch: str = "`") -> int:
    runs = re.findall(re.escape(ch) + "+", text)
    return max((len(r) for r in runs), default=0)


def code_span(text: str, *, in_table: bool = False) -> str:
    """text as inline code that nothing in it can close: the delimiter is longer than any backtick run.

    A code span cannot hold a line break, so whitespace runs fold to one space. Inside a table GitHub splits
    cells at every unescaped pipe, code spans included, so in_table escapes them.
    """
    text = " ".join(terminal_text(text).split())
    fence = "`" * (_longest_run(text) + 1)
    if in_table:
        text = text.replace("|", "\\|")
    if text.startswith("`") or text.endswith("`"):
        # CommonMark strips one space from each side when both are there: padding keeps edge backticks apart.
        text = f" {text} "
    return f"{fence}{text}{fence}"


def code_block(text: str, info: str = "text") -> str:
    """text as a fenced code block that nothing in it can close: the fence is longer than any backtick run."""
    text = terminal_text(text).rstrip("\n")
    fence = "`" * max(3, _longest_run(text) + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def display_path(path: str) -> str:
    """A path as one safe line: plain when it is, else quoted with escapes the way git quotes it."""
    if path and path.isprintable() and not set(path) & set('"\\') and path == path.strip():
        return path
    body = "".join(_PATH_ESCAPES.get(ch) or (ch if ch.isprintable() else _hex(ch)) for ch in path)
    return f'"{body}"'


def path_list(paths: list[str], limit: int = 5) -> str:
    """The first paths, each as display_path shows it, and how many more: agent-chosen names in a reason."""
    shown = ", ".join(display_path(p) for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


_PATH_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def _hex(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _visible(ch: str) -> bool:
    if ch in _KEPT_CONTROLS:
        return True
    if ch in _INVISIBLE_LETTERS:
        return False
    return unicodedata.category(ch) not in _DROPPED
