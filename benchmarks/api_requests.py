"""GitHub API requests per experiment and per session, against the loopback GitHub stand-in.

Usage: python -m benchmarks.api_requests [--sessions 4] [--experiments 5]
Each session is a `/autoresearch continue N` comment handled by `arl-bot action` end to end (gate and
research in one process), with a real bare remote. Prints requests by method and operation.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

from tests.action_world import world

RESULTS = Path(__file__).with_name("results")


def run(sessions: int, experiments: int) -> dict[str, object]:
    """Requests per session, and the marginal requests per experiment, as history grows.

    Sessions alternate between 1 and `experiments` experiments: the difference between a long and a
    short session at about the same history is what one more experiment costs.
    """
    rows = []
    by_operation: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="arl-bench-api-") as tmp, world(Path(tmp)) as w:
        w.dispatch(experiments=1)  # opens the research PR
        for _ in range(sessions):
            counts = []
            for n in (1, experiments):
                before = len(w.github.requests)
                result, _ = w.comment(1, f"/autoresearch continue {n}")
                assert result.code == 0, result.stderr
                made = w.github.requests[before:]
                by_operation.update(f"{r.method} {r.operation}" for r in made)
                counts.append(len(made))
            record = w.record()
            assert record is not None
            marginal = (counts[1] - counts[0]) / (experiments - 1)
            rows.append({"history": len(record.attempts), "session_of_1": counts[0],
                         f"session_of_{experiments}": counts[1], "per_extra_experiment": marginal,
                         "fixed_per_session": counts[0] - marginal})
    return {"sessions": rows, "by_operation": dict(by_operation.most_common())}


def main() -> None:
    """Print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--experiments", type=int, default=5)
    args = parser.parse_args()
    data = run(args.sessions, args.experiments)
    print(f"{'attempts after':>14}  {'session of 1':>12}  {'session of ' + str(args.experiments):>13}  "
          f"{'per extra experiment':>20}  {'fixed per session':>17}")
    for row in data["sessions"]:  # type: ignore[attr-defined]
        print(f"{row['history']:>14}  {row['session_of_1']:>12}  {row[f'session_of_{args.experiments}']:>13}  "
              f"{row['per_extra_experiment']:>20.2f}  {row['fixed_per_session']:>17.1f}")
    print("by operation (all sessions):")
    for op, n in data["by_operation"].items():  # type: ignore[attr-defined]
        print(f"  {n:>4}  {op}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api_requests.json").write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
