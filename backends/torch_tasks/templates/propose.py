"""A no-LLM agent for the built-in torch tasks: change one hyperparameter in train.py and say which.

arl-bot runs it as `agent: {kind: command, command: "python3 propose.py TASK"}`. The choice is seeded
by the experiment number, so a loop is reproducible; swap in `kind: claude-code` for real research.
"""

import os
import random
import re
import sys
from pathlib import Path

# The values each hyperparameter may take; every combination trains (N_EMBD divides by every N_HEAD).
CHOICES = {
    "charlm": {
        "LEARNING_RATE": [3e-3, 5e-3, 1e-2, 2e-2],
        "BATCH_SIZE": [16, 32, 64],
        "BLOCK_SIZE": [32, 64, 128],
        "N_LAYER": [1, 2, 3],
        "N_HEAD": [2, 4, 8],
        "N_EMBD": [32, 64, 96],
        "WEIGHT_DECAY": [0.0, 0.01, 0.1],
        "DROPOUT": [0.0, 0.1],
    },
    "digits": {
        "HIDDEN": [16, 32, 64, 128],
        "BATCH_SIZE": [16, 32, 64, 128],
        "LEARNING_RATE": [0.005, 0.01, 0.02, 0.05, 0.1],
        "MOMENTUM": [0.0, 0.5, 0.9, 0.95],
        "WEIGHT_DECAY": [0.0, 1e-4, 1e-3],
        "MAX_EPOCHS": [10, 30, 60],
    },
}


def main():
    task = sys.argv[1] if len(sys.argv) > 1 else "charlm"
    script = Path(sys.argv[2] if len(sys.argv) > 2 else "train.py")
    text = script.read_text()
    rng = random.Random(int(os.environ.get("AUTORESEARCH_EXPERIMENT", "0")) * 7919)
    present = {}
    for name in CHOICES[task]:
        found = re.search(rf"^{name} = ([-+0-9.eE]+)", text, re.MULTILINE)
        if found:
            present[name] = found
    if not present:
        sys.exit(f"propose.py: none of {', '.join(CHOICES[task])} is set at the top of {script}")
    name = rng.choice(sorted(present))
    old = present[name].group(1)
    new = rng.choice([v for v in CHOICES[task][name] if float(v) != float(old)])
    start, end = present[name].span(1)
    script.write_text(text[:start] + repr(new) + text[end:])
    description = f"{name}: {old} -> {new}"
    out = os.environ.get("AUTORESEARCH_DESCRIPTION_FILE")
    if out:
        Path(out).write_text(description + "\n")
    print(description)


if __name__ == "__main__":
    main()
