"""Markdown as GitHub shows it, offline: GFM through markdown-it, GitHub's CSS, Mermaid drawn by mermaid.js.

Used to check that the pull-request body and job summary draw their charts, and to make the README's
screenshot. mermaid and github-markdown-css come from npm into .ci/node (see .ci/run).
"""

from __future__ import annotations

import html
from pathlib import Path

from markdown_it import MarkdownIt

NODE = Path(__file__).resolve().parents[1] / ".ci" / "node" / "node_modules"
MERMAID_JS = NODE / "mermaid" / "dist" / "mermaid.min.js"
GITHUB_CSS = NODE / "github-markdown-css" / "github-markdown-light.css"
READY = "window.__mermaidDone === true"


def _fence(self, tokens, idx, options, env):  # type: ignore[no-untyped-def]
    token = tokens[idx]
    if token.info.strip() == "mermaid":
        return f'<pre class="mermaid">{html.escape(token.content)}</pre>\n'
    return f"<pre><code>{html.escape(token.content)}</code></pre>\n"


def page(markdown: str, title: str = "pull request") -> str:
    """A self-contained HTML page that renders `markdown` roughly as github.com does."""
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.add_render_rule("fence", _fence)
    body = md.render(markdown)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{GITHUB_CSS.read_text(encoding="utf-8")}
body {{ background: #fff; }} .markdown-body {{ max-width: 880px; margin: 24px auto; padding: 24px;
border: 1px solid #d0d7de; border-radius: 6px; }}</style>
<script>{MERMAID_JS.read_text(encoding="utf-8")}</script></head>
<body><article class="markdown-body">{body}</article>
<script>
mermaid.initialize({{startOnLoad: false, theme: "default"}});
mermaid.run({{querySelector: "pre.mermaid"}})
  .catch(e => {{ console.error("mermaid: " + e); }})
  .finally(() => {{ window.__mermaidDone = true; }});
</script></body></html>
"""
