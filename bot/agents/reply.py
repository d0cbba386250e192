"""What a model's final reply says about its experiment: the one-line summary the record keeps."""

from __future__ import annotations

SUMMARY_RULE = ("When you are done, end your final reply with one line: "
                "`SUMMARY: <what you changed, under 100 characters>`.")


def summary(text: str) -> str:
    """The reply's `SUMMARY:` line, else its last line of text, else empty."""
    lines = [line.strip().strip("`").strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.upper().startswith("SUMMARY:"):
            return line.split(":", 1)[1].strip()[:200]
    return lines[-1][:200] if lines else ""
