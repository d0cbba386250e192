"""Run one autoresearch-lab style backend in its own process and write its result as JSON.

The bot never imports a lab's backend: the backend imports the agent's pipeline, and the agent's code
must only ever run in the evaluation's sandbox. `backends/python.py` starts this module there.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import random
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def alias_autoresearch_lab() -> None:
    """Make `autoresearch_lab.harness.backend` importable as arl-bot's copy when the real one is absent."""
    if importlib.util.find_spec("autoresearch_lab") is not None:
        return
    from arl_bot.backends import lab

    for name in ("autoresearch_lab", "autoresearch_lab.harness"):
        package = types.ModuleType(name)
        package.__path__ = []
        sys.modules[name] = package
    sys.modules["autoresearch_lab.harness.backend"] = lab
    sys.modules["autoresearch_lab"].harness = sys.modules["autoresearch_lab.harness"]  # type: ignore[attr-defined]
    sys.modules["autoresearch_lab.harness"].backend = lab  # type: ignore[attr-defined]


def load_class(reference: str) -> Any:
    """The class named by `path/to/file.py:Class` (relative to the current directory) or `module:Class`."""
    target, _, attr = reference.rpartition(":")
    if not target or not attr:
        raise SystemExit(f"backend {reference!r}: expected path/to/file.py:Class or module:Class")
    if target.endswith(".py"):
        path = Path(target).resolve()
        sys.path.insert(0, str(path.parent))  # the backend's own helpers sit beside it
        spec = importlib.util.spec_from_file_location("lab_backend", path)
        if spec is None or spec.loader is None:
            raise SystemExit(f"backend {reference!r}: cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules["lab_backend"] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise SystemExit(f"backend {reference!r}: {target} has no {attr!r}") from None


def as_json(result: Any) -> dict[str, Any]:
    """The result, read by attribute so a real autoresearch-lab EvalResult works as well as ours."""
    samples = []
    for sample in getattr(result, "sample_results", None) or []:
        score = getattr(sample, "score", None)
        samples.append({
            "id": str(getattr(sample, "sample_id", "")),
            "score": float(score) if isinstance(score, int | float) and math.isfinite(score) else None,
            "error": str(getattr(sample, "error", None) or ""),
            "extra": dict(getattr(sample, "extra", None) or {}),
        })
    metrics = {str(k): float(v) for k, v in (getattr(result, "metrics", None) or {}).items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    return {"score": float(result.score), "metrics": metrics, "samples": samples}


def main(argv: Sequence[str] | None = None) -> int:
    """Load the backend, evaluate once, write the result file."""
    parser = argparse.ArgumentParser(prog="arl-bot-lab-runner")
    parser.add_argument("--backend", required=True)
    parser.add_argument("--pipeline-dir", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-id", action="append", dest="sample_ids")
    args = parser.parse_args(argv)
    random.seed(args.seed)  # a backend that samples with `random` follows the loop's seed
    alias_autoresearch_lab()
    backend = load_class(args.backend)()
    setup = getattr(backend, "setup", None)
    if callable(setup):
        setup()
    try:
        result = backend.evaluate(Path(args.pipeline_dir), Path(args.data_dir), args.sample_ids)
    finally:
        teardown = getattr(backend, "teardown", None)
        if callable(teardown):
            teardown()
    # default=str: a numpy float or a Path in `extra` must not lose the whole result
    Path(args.result).write_text(json.dumps(as_json(result), default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
