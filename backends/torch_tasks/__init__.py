"""Built-in torch tasks: a benchmark out of the box, each with a fixed API the lab's train.py imports.

This package is the only place that imports torch. The evaluators (evaluator.py) run in the bot
and never import it; the task modules (charlm.py, digits.py) run inside the training script.
"""

from __future__ import annotations

TASKS = ("charlm", "digits")

# The contract between an evaluator and the fixed API inside the training script it runs.
SEED_ENV = "AUTORESEARCH_SEED"  # set for every seed of `evaluate.seeds`
DATA_ENV = "ARL_TASK_DATA"  # the folder of prepared data the evaluator staged for this run
DEVICE_ENV = "ARL_TASK_DEVICE"  # auto (CUDA when present, else CPU), cpu, cuda, cuda:1, ...
BUDGET_ENV = "ARL_TASK_TIME_BUDGET"  # seconds of training every experiment gets (when budgeted by time)
STEPS_ENV = "ARL_TASK_STEPS"  # training steps every experiment gets (when budgeted by steps)
BUDGET_BY_ENV = "ARL_TASK_BUDGET_BY"  # auto (steps on the CPU, time on CUDA), time or steps
SPLIT_ENV = "ARL_TASK_SPLIT"  # the split the score is computed on: val, or test for a holdout run
RESULT_ENV = "ARL_TASK_RESULT"  # where the fixed API writes the score; the evaluator reads only this
