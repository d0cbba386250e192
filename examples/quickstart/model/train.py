"""The model the agent improves: polynomial regression fitted by gradient descent, in pure Python."""

import json
import random
from pathlib import Path

PARAMS = Path(__file__).with_name("params.json")


def load_params():
    return json.loads(PARAMS.read_text())


def features(x, degree):
    return [x**k for k in range(degree + 1)]


def fit(xs, ys, params, seed):
    """Return weights fitted to (xs, ys)."""
    rng = random.Random(seed)
    degree = int(params["degree"])
    weights = [rng.uniform(-0.1, 0.1) for _ in range(degree + 1)]
    lr, l2 = float(params["learning_rate"]), float(params["l2"])
    for _ in range(int(params["steps"])):
        grads = [0.0] * len(weights)
        for x, y in zip(xs, ys):
            f = features(x, degree)
            err = sum(w * v for w, v in zip(weights, f)) - y
            for k, v in enumerate(f):
                grads[k] += 2 * err * v / len(xs)
        weights = [w - lr * (g + 2 * l2 * w) for w, g in zip(weights, grads)]
    return weights


def predict(weights, x):
    return sum(w * v for w, v in zip(weights, features(x, len(weights) - 1)))
