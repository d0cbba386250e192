"""How big the agent's prompt gets as the record grows: tokens of history at 10 to 10,000 attempts.

Usage: python -m benchmarks.prompt_size [--sizes 10 100 1000 10000] [--budget 4000]
Prints a table and writes benchmarks/results/prompt_size.json. Tokens are estimated as the prompt
module does (characters / 3, erring high); no tokenizer for Claude models runs offline.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from arl_bot import config, prompt
from arl_bot.record import Note

from tests.labs import value_config
from tests.records import synthetic_record

RESULTS = Path(__file__).with_name("results")
INSTRUCTIONS = "Lower val_bpb by changing train.py. One idea per experiment; describe it in one line.\n"


def measure(attempts: int, budget: int) -> dict[str, float]:
    """Size and render time of the history and the whole prompt after `attempts` attempts."""
    loop = config.parse(value_config(extra=f"prompt: {{history_tokens: {budget}}}")).loop(None)
    record = synthetic_record(attempts)
    record.notes += [Note(kind="redirect", at="", data={"text": f"note {n}: try a wider model"}) for n in range(3)]
    started = time.perf_counter()
    text = prompt.render(loop, INSTRUCTIONS, record, "improve", record.next_experiment)
    render_ms = (time.perf_counter() - started) * 1000
    history = prompt.history(record, loop.metric, loop.prompt)
    return {
        "attempts": attempts, "history_chars": len(history), "history_tokens": prompt.estimate_tokens(history),
        "prompt_tokens": prompt.estimate_tokens(text), "budget_tokens": budget, "render_ms": round(render_ms, 2),
    }


def main() -> None:
    """Run the sizes, print a table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--budget", type=int, default=4000, help="prompt.history_tokens")
    args = parser.parse_args()
    rows = [measure(n, args.budget) for n in args.sizes]
    print(f"{'attempts':>9} {'history chars':>14} {'history tokens':>15} {'prompt tokens':>14} {'render ms':>10}")
    for row in rows:
        print(f"{row['attempts']:>9} {row['history_chars']:>14} {row['history_tokens']:>15} "
              f"{row['prompt_tokens']:>14} {row['render_ms']:>10}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "prompt_size.json"
    out.write_text(json.dumps({"estimate": "chars / 3", "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
