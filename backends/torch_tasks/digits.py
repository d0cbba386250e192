"""The digits task's fixed API: 8x8 handwritten digits and the val error rate train.py reports.

A training script imports this module, trains any model that maps images (N, 1, 8, 8) to logits
(N, 10) within the time budget, and calls `evaluate_error(model)` once at the end. The module lives
in the installed package, not in the lab, so no experiment can change how it scores.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from . import data, runtime
from .runtime import Clock, device, seed_everything

__all__ = [
    "IMAGE_SHAPE",
    "N_CLASSES",
    "Clock",
    "budget",
    "device",
    "evaluate_error",
    "get_data",
    "seed_everything",
    "step_budget",
    "time_budget",
]

TASK = "digits"
METRIC = "error"  # reported as val_error (or test_error on a holdout run): the fraction misclassified
N_CLASSES = 10
IMAGE_SHAPE = (1, 8, 8)  # channels, height, width
PIXEL_MAX = 16.0  # the raw pixels are 0..16; get_data scales them to 0..1
DEFAULT_TIME_BUDGET = 10.0  # seconds of training when the evaluation does not set `time_budget`
DEFAULT_STEPS = 60  # epochs (train.py asks the clock once per epoch) when budgeted by steps (on the CPU, by default)

_loaded: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
_prepared: list[data.Prepared] = []


def _data() -> data.Prepared:
    if not _prepared:
        _prepared.append(data.from_environment(TASK))
    return _prepared[0]


def _split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if split not in _loaded:
        images, labels = (bytearray(p.read_bytes()) for p in _data().files(split))
        x = torch.frombuffer(images, dtype=torch.uint8).float().div(PIXEL_MAX).reshape(-1, *IMAGE_SHAPE)
        y = torch.frombuffer(labels, dtype=torch.uint8).long()
        _loaded[split] = (x, y)
    return _loaded[split]


def time_budget() -> float:
    """Seconds of training every experiment gets (fixed by the loop's config, not by train.py)."""
    return runtime.time_budget(DEFAULT_TIME_BUDGET)


def step_budget() -> int:
    """Training steps every experiment gets when budgeted by steps (fixed by the loop's config)."""
    return runtime.step_budget(DEFAULT_STEPS)


def budget() -> Clock:
    """The clock to train against: steps on the CPU, seconds on CUDA (as `evaluate.options.budget` says)."""
    return runtime.budget(DEFAULT_TIME_BUDGET, DEFAULT_STEPS)


def get_data(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, 8, 8) as float32 in 0..1 and labels (N,) as int64, on the CPU; train or val."""
    if split not in ("train", "val"):
        raise data.TaskError(f"digits.get_data({split!r}): only 'train' and 'val' are readable",
                                 hint="the test split is the holdout; only evaluate_error reads it")
    x, y = _split(split)
    return x.clone(), y.clone()  # the scorer keeps its own copy, whatever train.py does to these


@torch.no_grad()
def evaluate_error(model: torch.nn.Module, batch_size: int = 512) -> float:
    """Score model on the val split (test on a holdout run): the fraction misclassified, lower is better."""
    split = runtime.eval_split()
    x, y = _split(split)
    where = next((p.device for p in model.parameters()), device())
    was_training = model.training
    model.eval()
    wrong = 0
    samples: list[dict[str, Any]] = []  # one per image, for `arl-bot diagnose`
    for first in range(0, len(y), batch_size):
        out: Any = model(x[first:first + batch_size].to(where))
        if isinstance(out, (tuple, list)):
            out = out[0]
        expected = (min(batch_size, len(y) - first), N_CLASSES)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise data.TaskError(f"the model returned {shape} for {expected[0]} images",
                                     hint=f"return logits shaped (batch, {N_CLASSES})")
        labels = y[first:first + batch_size]
        losses = F.cross_entropy(out.float().cpu(), labels, reduction="none").tolist()
        predicted = out.argmax(dim=1).cpu()
        wrong += int((predicted != labels).sum())
        for offset, (label, guess, loss) in enumerate(zip(labels.tolist(), predicted.tolist(), losses, strict=True)):
            samples.append({"id": f"{split}/{first + offset}", "score": loss,
                            "extra": {"label": label, "predicted": guess}})
    model.train(was_training)
    error = wrong / len(y)
    params = sum(p.numel() for p in model.parameters())
    runtime.report(TASK, f"{split}_{METRIC}", error, _data(),
                   {"eval_images": len(y), "params": params, "device": str(where)}, samples)
    return error
