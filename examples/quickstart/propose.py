"""A no-LLM agent: nudge one setting in model/params.json at random and say which.

arl-bot runs it as `agent: {kind: command}`: it edits the working tree and writes a one-line
description to $AUTORESEARCH_DESCRIPTION_FILE. Random proposals give the loop keeps and discards.
"""

import json
import os
import random
from pathlib import Path

params_file = Path("model/params.json")
params = json.loads(params_file.read_text())
rng = random.Random(int(os.environ.get("AUTORESEARCH_EXPERIMENT", "0")) * 7919)
key = rng.choice(["degree", "degree", "learning_rate", "steps", "l2", "l2"])
old = params[key]
if key == "degree":
    params[key] = max(1, min(6, old + rng.choice([-1, 1, 1])))
elif key == "steps":
    params[key] = max(50, min(1500, int(old * rng.choice([0.5, 1.5, 2.0]))))
else:
    params[key] = round(old * rng.choice([0.3, 0.5, 2.0, 3.0]), 6)
params_file.write_text(json.dumps(params, indent=2) + "\n")
Path(os.environ["AUTORESEARCH_DESCRIPTION_FILE"]).write_text(f"{key}: {old} -> {params[key]}\n")
