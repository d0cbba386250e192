"""The charlm task's fixed API: byte-level text data and the val bits-per-byte score train.py reports.

A training script imports this module, trains any model that maps byte ids (B, T) to logits
(B, T, 256) within the time budget, and calls `evaluate_bpb(model, block_size)` once at the end.
The module lives in the installed package, not in the lab, so no experiment can change how it scores.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from . import data, runtime
from .runtime import Clock, device, seed_everything

__all__ = [
    "VOCAB_SIZE",
    "Clock",
    "budget",
    "device",
    "evaluate_bpb",
    "get_batch",
    "get_data",
    "seed_everything",
    "step_budget",
    "time_budget",
]

TASK = "charlm"
METRIC = "bpb"  # reported as val_bpb (or test_bpb on a holdout run): lower is better
VOCAB_SIZE = 256  # one token per byte: bits per token are bits per byte
DEFAULT_TIME_BUDGET = 20.0  # seconds of training when the evaluation does not set `time_budget`
DEFAULT_STEPS = 300  # optimizer steps when budgeted by steps (on the CPU, by default)
EVAL_BATCH = 32  # windows per forward pass while scoring; does not change the score

_loaded: dict[str, torch.Tensor] = {}
_prepared: list[data.Prepared] = []


def _data() -> data.Prepared:
    if not _prepared:
        _prepared.append(data.from_environment(TASK))
    return _prepared[0]


def _split(split: str) -> torch.Tensor:
    if split not in _loaded:
        raw = _data().files(split)[0].read_bytes()
        _loaded[split] = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
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



def get_data(split: str) -> torch.Tensor:
    """The bytes of the train or val split as a 1-D uint8 tensor on the CPU."""
    if split not in ("train", "val"):
        raise data.TaskError(f"charlm.get_data({split!r}): only 'train' and 'val' are readable",
                                 hint="the test split is the holdout; only evaluate_bpb reads it")
    return _split(split)


def get_batch(split: str, batch_size: int, block_size: int, where: torch.device | None = None,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows: inputs (B, T) and next-byte targets (B, T), as int64 on where."""
    tokens = get_data(split)
    starts = torch.randint(len(tokens) - block_size - 1, (batch_size,), generator=generator)
    offsets = torch.arange(block_size + 1)
    windows = tokens[starts[:, None] + offsets].long()
    where = where or device()
    return windows[:, :-1].to(where), windows[:, 1:].to(where)


def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out: Any = model(x)
    if isinstance(out, (tuple, list)):  # nanoGPT-style models return (logits, loss)
        out = out[0]
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (*x.shape, VOCAB_SIZE):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise data.TaskError(f"the model returned {shape} for input {tuple(x.shape)}",
                                 hint=f"return logits shaped (batch, time, {VOCAB_SIZE})")
    return out


def _check_causal(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Refuse a model whose earlier predictions change when a later byte does: it sees its targets."""
    changed = x.clone()
    changed[:, -1] = (changed[:, -1] + 1) % VOCAB_SIZE
    before, after = _logits(model, x)[:, :-1].float(), _logits(model, changed)[:, :-1].float()
    if not torch.allclose(before, after, rtol=1e-3, atol=1e-3):
        raise data.TaskError("the model's prediction for a byte depends on later bytes of its input",
                                 hint="keep the model causal: position t may only see bytes 0..t")


@torch.no_grad()
def evaluate_bpb(model: torch.nn.Module, block_size: int, batch_size: int = EVAL_BATCH) -> float:
    """Score model on every byte of the val split (test on a holdout run): bits per byte, lower is better.

    The split is cut into windows of block_size; each byte after the first is predicted exactly
    once, from the bytes before it in its window. The score is written for the evaluator to read.
    """
    split = runtime.eval_split()
    tokens = _split(split).long()
    where = next((p.device for p in model.parameters()), device())
    was_training = model.training
    model.eval()
    total_nats, count = 0.0, 0
    samples: list[dict[str, Any]] = []  # one per window, for `arl-bot diagnose`
    last = len(tokens) - 1  # the final byte is only ever a target
    full = list(range(0, last - block_size + 1, block_size))
    tail = full[-1] + block_size if full else 0
    groups = [(full[i:i + batch_size], block_size) for i in range(0, len(full), batch_size)]
    if tail < last:
        groups.append(([tail], last - tail))  # the one shorter window that covers what is left
    for number, (starts, length) in enumerate(groups):
        windows = torch.stack([tokens[s:s + length + 1] for s in starts]).to(where)
        if number == 0 and length > 1:
            _check_causal(model, windows[:1, :-1])
        logits = _logits(model, windows[:, :-1]).float()
        targets = windows[:, 1:]
        nats = F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), targets.reshape(-1), reduction="none")
        per_window = nats.view(len(starts), length).sum(dim=1).cpu()
        total_nats += float(per_window.sum())
        count += targets.numel()
        for s, window_nats in zip(starts, per_window.tolist(), strict=True):
            text = bytes(tokens[s + 1:s + length + 1].tolist()).decode("utf-8", "replace")
            samples.append({"id": f"{split}[{s + 1}:{s + length + 1}]",
                            "score": window_nats / length / math.log(2), "extra": {"text": text[:80]}})
    model.train(was_training)
    bpb = total_nats / count / math.log(2)
    params = sum(p.numel() for p in model.parameters())
    runtime.report(TASK, f"{split}_{METRIC}", bpb, _data(),
                   {"eval_bytes": count, "params": params, "device": str(where)}, samples)
    return bpb
