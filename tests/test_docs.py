"""The docs: the README's commands and links, and the configuration reference generated from the schema.

Links between the pages under docs/ (and their #anchors) are checked by `mkdocs build --strict` in .ci/run;
the README and CONTRIBUTING.md live outside docs/, so their links are checked here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from arl_bot import config, schema_docs
from pydantic import BaseModel, Field

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference" / "configuration.md"
REGENERATE = "python -m arl_bot.schema_docs > docs/reference/configuration.md"


def test_the_readmes_first_commands_are_the_ones_ci_and_the_quickstart_test_run() -> None:
    # tests/test_quickstart.py runs examples/quickstart/run.sh and .ci/run is CI: the README must show them.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert commands == [
        'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[optuna]" && examples/quickstart/run.sh',
        ".ci/run",
    ]
    assert (ROOT / "examples/quickstart/run.sh").is_file() and (ROOT / ".ci/run").is_file()


@pytest.mark.parametrize("page", ["README.md", "docs/loop.md"])
def test_the_configuration_examples_load(page: str) -> None:
    # A newcomer copies these: each whole file the README or the loop's page shows must load as it is.
    text = (ROOT / page).read_text(encoding="utf-8")
    examples = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:] if b.startswith("version: 1\n")]
    assert examples
    for example in examples:
        assert config.parse(example).loops


def _anchors(markdown: str) -> set[str]:
    """The #anchors GitHub gives a Markdown file's headings (code blocks skipped)."""
    found, fence = set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and (heading := re.match(r"#{1,6} (.+)", line)):
            text = heading.group(1).replace("`", "").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return found


def _links(markdown: str) -> list[str]:
    """Relative link targets of a Markdown file, outside code blocks (images included)."""
    found, fence = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence:
            found += [t for t in re.findall(r"\]\(([^)\s]+)\)", line) if not re.match(r"[a-z]+:", t)]
    return found


@pytest.mark.parametrize("name", ["README.md", "CONTRIBUTING.md"])
def test_every_relative_link_and_anchor_resolves(name: str) -> None:
    source = ROOT / name
    text = source.read_text(encoding="utf-8")
    broken = []
    for target in _links(text):
        path, _, anchor = target.partition("#")
        file = (source.parent / path) if path else source
        if not file.exists():
            broken.append(f"{target}: no file {path}")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, f"{name} has broken links:\n" + "\n".join(broken)


def test_the_readme_stays_a_first_read_that_links_every_page() -> None:
    # The reference belongs on its page under docs/; the README summarises and links each one.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300, "the README grew past a first read: move the detail to its docs/ page"
    pages = {str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")} - {"docs/index.md"}
    assert pages <= {t.partition("#")[0] for t in _links(readme)}, "the README's Documentation table misses a page"


def test_no_docs_table_puts_an_escaped_pipe_in_code() -> None:
    # GitHub needs `\|` for a pipe inside code in a table cell, but MkDocs shows the backslash: spell it another way.
    found = [f"{page.relative_to(ROOT)}: {span}" for page in sorted((ROOT / "docs").rglob("*.md"))
             for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("|")
             for span in line.split("`")[1::2] if "\\|" in span]  # the odd pieces are inside code
    assert not found, found


def test_the_link_check_finds_a_broken_anchor() -> None:
    # The checker above is only as good as its slugs: they must match GitHub's for real headings.
    assert _anchors("# Performance: what the bot itself costs\n## `claude-code`\n## Tokens: `GITHUB_TOKEN` or a "
                    "GitHub App\n```\n# not a heading\n```\n") == {
        "performance-what-the-bot-itself-costs", "claude-code", "tokens-github_token-or-a-github-app"}


def test_the_configuration_reference_is_the_generated_page() -> None:
    generated = schema_docs.render(config.json_schema(), schema_docs.models())
    committed = REFERENCE.read_text(encoding="utf-8")
    assert committed == generated, f"docs/reference/configuration.md is out of date with the models: run {REGENERATE}"


def test_the_reference_has_a_row_for_every_key_of_every_model() -> None:
    schema = config.json_schema()
    page = schema_docs.render(schema, schema_docs.models())
    sections = page.split("\n## ")[1:]
    tables = {section.split("\n", 1)[0]: section for section in sections}
    for key in schema["properties"]:
        assert f"| `{key}` |" in tables["The file: `.autoresearch.yml`"]
    for name, model in schema["$defs"].items():
        keys = set(model.get("properties", {}))
        holders = [t for t in tables.values() if keys <= set(re.findall(r"^\| `([^`]+)` \|", t, re.M))]
        assert holders, f"no table lists every key of {name}: {sorted(keys)}"
    assert "workers" in tables["`loops.<name>`"] and "max_increase" in page  # deep and plugin keys alike
    rows = [line for line in page.splitlines() if line.startswith("| ")]
    split = [row for row in rows if len(re.findall(r"(?<!\\)\|", row)) != 5]
    assert not split, f"a | in a description splits its row: {split}"  # a comment's pipe must be escaped


class _Demo(BaseModel):
    """A demo section."""

    size: int = Field(default=3, ge=1)  # how big it is
    # the names it takes,
    # in order
    names: list[str] = Field(default_factory=lambda: ["a", "b"])
    mode: str | None = None


def test_a_row_says_type_constraints_default_and_the_fields_comment() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"demo": {"$ref": "#/$defs/_Demo"}},
                              "required": ["demo"], "$defs": {"_Demo": _Demo.model_json_schema()}}
    page = schema_docs.render(schema, {"_Demo": _Demo})
    assert "| `demo` | [mapping](#demo) | required | A demo section. |" in page  # no comment: its model's
    assert "## `demo`\n\nA demo section." in page
    assert "| `size` | integer, ≥ 1 | `3` | How big it is. |" in page
    assert '| `names` | list of string | `["a", "b"]` | The names it takes, in order. |' in page  # default_factory
    assert "| `mode` | string or null | `null` |  |" in page


def test_every_benchmark_the_docs_name_exists_and_each_readme_figure_is_on_the_performance_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    named = set(re.findall(r"python -m benchmarks\.(\w+)", readme + page))
    assert named and all((ROOT / "benchmarks" / f"{name}.py").is_file() for name in named), named
    section = readme[readme.index("## Performance"):readme.index("<!-- section: docs -->")]
    for row in re.findall(r"^\| (?!what|---)(.+)$", section, re.MULTILINE):
        measured = row.split(" | ")[1]
        for figure in re.findall(r"\d[\d.,]*", measured):  # each number the README shows, the page shows too
            assert re.search(rf"(?<![\d.]){re.escape(figure)}(?![\d])", page), (figure, row)
