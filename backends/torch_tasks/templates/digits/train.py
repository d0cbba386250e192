"""Train a small classifier on the digits task; the score is the val error rate (lower is better).

Edit anything in this file. The data, the time budget and the scoring come from arl-bot's fixed API
(arl_bot.backends.torch_tasks.digits) and cannot be changed from here.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from arl_bot.backends.torch_tasks import digits as task

# --- hyperparameters --------------------------------------------------------------------------------
HIDDEN = 32  # width of the hidden layer
BATCH_SIZE = 64  # images per step
LEARNING_RATE = 0.02  # SGD learning rate
MOMENTUM = 0.9  # SGD momentum
WEIGHT_DECAY = 0.0  # L2 penalty
MAX_EPOCHS = 30  # passes over the training set (the time budget may end training sooner)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, task.N_CLASSES))

    def forward(self, x):
        return self.net(x)


def main():
    task.seed_everything()
    device = task.device()
    x, y = task.get_data("train")
    x, y = x.to(device), y.to(device)
    model = Classifier().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM,
                                weight_decay=WEIGHT_DECAY)
    clock = task.budget()  # one step per epoch: on the CPU at most task.step_budget() epochs, on a GPU seconds
    epoch = 0
    while epoch < MAX_EPOCHS and not clock.done():
        order = torch.randperm(len(y), device=device)
        for first in range(0, len(y), BATCH_SIZE):
            batch = order[first:first + BATCH_SIZE]
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        epoch += 1
    print(f"trained {epoch} epochs in {clock.elapsed:.1f}s on {device} (budgeted by {clock.by}); "
          f"last loss {loss.item():.3f}")
    task.evaluate_error(model)


if __name__ == "__main__":
    main()
