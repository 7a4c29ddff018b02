"""An exponential moving average of the weights, validated and saved in place of the live ones.

Why: fine-tuning at a useful learning rate moves the weights enough between steps that CamVid
val mIoU jumped by +-3 points from one validation to the next (run 2 of the real-roads model:
0.662, 0.668, 0.631, 0.668, 0.638, 0.675, ...), so choosing "the best validation" partly chose
noise. An average over the last few hundred steps sits nearer the middle of the basin the
optimiser is circling; it is the model that is validated, written to ``best.pt``/``last.pt`` and
kept in ``resume.pt``, while SGD keeps stepping the live weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """EMA of every floating-point parameter and buffer of ``model`` (integer buffers are copied).

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so a run that
    starts (or resumes without a saved average) is not dragged towards its first weights for
    thousands of steps.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"weight average decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    def start_from(self, model: nn.Module) -> None:
        """Restart the average at ``model``'s weights, its decay warming up again (a resumed run that
        saved no average)."""
        self.model.load_state_dict(model.state_dict())
        self.updates = 0

    def current_decay(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s current weights."""
        weight = 1.0 - self.current_decay()
        live = model.state_dict()
        for key, average in self.model.state_dict().items():
            if average.is_floating_point():
                average.lerp_(live[key].detach(), weight)
            else:
                average.copy_(live[key])
        self.updates += 1

    def state_dict(self) -> dict:
        """Plain tensors and an int, for ``torch.load(weights_only=True)``."""
        return {"weights": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["weights"], strict=True)
        self.updates = int(state["updates"])
