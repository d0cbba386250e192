"""Check answers against GitHub's OpenAPI description (npm @octokit/openapi), so the stand-in cannot drift."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / ".ci/node/node_modules/@octokit/openapi/generated/api.github.com.json"
URI = "urn:github-openapi"


class SpecMissing(RuntimeError):
    """The OpenAPI description is not installed."""


@functools.cache
def spec() -> dict[str, Any]:
    """The OpenAPI description, turned into JSON Schema 2020-12 (OpenAPI 3.0 has `nullable`, JSON Schema not)."""
    if not SPEC.exists():
        raise SpecMissing(f"{SPEC} is missing: run .ci/run (it installs @octokit/openapi into .ci/node)")
    return _convert(json.loads(SPEC.read_text()))


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if k not in ("discriminator", "example", "examples")}
    if out.pop("nullable", False) is True:
        if "type" in out and isinstance(out["type"], str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


def response_schema(operation: str, method: str, status: int) -> dict[str, Any] | None:
    """The JSON Schema of an operation's answer with that status (None: the spec gives no body)."""
    ops = spec()["paths"].get(operation)
    if ops is None:
        raise KeyError(f"{operation} is not an operation of GitHub's REST API")
    op = ops.get(method.lower())
    if op is None:
        raise KeyError(f"{method} {operation} is not an operation of GitHub's REST API")
    answer = op["responses"].get(str(status))
    if answer is None:
        raise KeyError(f"{method} {operation} never answers {status} (it answers {', '.join(op['responses'])})")
    if "$ref" in answer:
        answer = spec()["components"]["responses"][answer["$ref"].rsplit("/", 1)[-1]]
    content = answer.get("content", {}).get("application/json")
    if content is None:
        return None
    pointer = "/".join(p.replace("~", "~0").replace("/", "~1") for p in
                       ("paths", operation, method.lower(), "responses", str(status), "content",
                        "application/json", "schema"))
    if "$ref" in op["responses"][str(status)]:
        name = op["responses"][str(status)]["$ref"].rsplit("/", 1)[-1]
        pointer = f"components/responses/{name}/content/application~1json/schema"
    return {"$ref": f"{URI}#/{pointer}"}


@functools.cache
def _registry() -> Any:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    return Registry().with_resource(URI, Resource.from_contents(spec(), default_specification=DRAFT202012))


def errors(operation: str, method: str, status: int, body: Any) -> list[str]:
    """What is wrong with body as that operation's answer (empty: it conforms)."""
    from jsonschema import Draft202012Validator

    schema = response_schema(operation, method, status)
    if schema is None:
        return [] if body in (None, "", {}) else [f"{method} {operation} {status} has no body in the spec"]
    validator = Draft202012Validator(schema, registry=_registry())
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message[:300]}"
            for e in validator.iter_errors(body)]
