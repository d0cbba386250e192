"""Compare text with a file in tests/golden/; ARL_UPDATE_GOLDEN=1 rewrites the file instead."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def check(name: str, text: str) -> None:
    """Fail with a readable diff when text differs from tests/golden/<name>."""
    path = GOLDEN / name
    if os.environ.get("ARL_UPDATE_GOLDEN") == "1" or not path.exists():
        path.write_text(text, encoding="utf-8")
        if os.environ.get("ARL_UPDATE_GOLDEN") != "1":
            raise AssertionError(f"wrote new golden file {path}; review it and run again")
        return
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                            f"golden/{name}", "rendered", n=2))
        raise AssertionError(f"{name} differs from the golden file (ARL_UPDATE_GOLDEN=1 to accept):\n{diff}")
