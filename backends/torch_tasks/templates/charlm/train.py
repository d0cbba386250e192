"""Train a small byte-level transformer on the charlm task; the score is val bits per byte (lower is better).

Edit anything in this file. The data, the time budget and the scoring come from arl-bot's fixed API
(arl_bot.backends.torch_tasks.charlm) and cannot be changed from here.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from arl_bot.backends.torch_tasks import charlm as task

# --- hyperparameters --------------------------------------------------------------------------------
BLOCK_SIZE = 64  # bytes of context
BATCH_SIZE = 32  # windows per step
N_LAYER = 2  # transformer blocks
N_HEAD = 4  # attention heads per block
N_EMBD = 64  # width of the residual stream
DROPOUT = 0.0  # dropout probability
LEARNING_RATE = 1e-2  # peak AdamW learning rate
WEIGHT_DECAY = 0.01  # AdamW weight decay
WARMUP_STEPS = 5  # linear warmup before the cosine decay


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(N_EMBD)
        self.qkv = nn.Linear(N_EMBD, 3 * N_EMBD)
        self.proj = nn.Linear(N_EMBD, N_EMBD)
        self.ln2 = nn.LayerNorm(N_EMBD)
        self.mlp = nn.Sequential(nn.Linear(N_EMBD, 4 * N_EMBD), nn.GELU(), nn.Linear(4 * N_EMBD, N_EMBD))
        self.drop = nn.Dropout(DROPOUT)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, N_HEAD, c // N_HEAD).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # causal: the score requires it
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))
        return x + self.drop(self.mlp(self.ln2(x)))


class CharLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(task.VOCAB_SIZE, N_EMBD)
        self.pos = nn.Embedding(BLOCK_SIZE, N_EMBD)
        self.blocks = nn.Sequential(*[Block() for _ in range(N_LAYER)])
        self.ln = nn.LayerNorm(N_EMBD)
        self.head = nn.Linear(N_EMBD, task.VOCAB_SIZE)

    def forward(self, idx):
        positions = torch.arange(idx.shape[1], device=idx.device)
        return self.head(self.ln(self.blocks(self.tok(idx) + self.pos(positions))))


def main():
    task.seed_everything()
    device = task.device()
    model = CharLM().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    clock = task.budget()  # steps on the CPU (a busy CPU trains slower, never less), seconds on a GPU
    step = 0
    while not clock.done():
        # Learning rate: warmup, then cosine decay over the budget.
        progress = clock.progress
        scale = min(1.0, (step + 1) / WARMUP_STEPS) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in optimizer.param_groups:
            group["lr"] = LEARNING_RATE * max(scale, 0.05)
        x, y = task.get_batch("train", BATCH_SIZE, BLOCK_SIZE, device)
        loss = F.cross_entropy(model(x).reshape(-1, task.VOCAB_SIZE), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.3f} ({clock.elapsed:.1f}s)")
    print(f"trained {step} steps in {clock.elapsed:.1f}s on {device} (budgeted by {clock.by})")
    task.evaluate_bpb(model, BLOCK_SIZE)


if __name__ == "__main__":
    main()
