"""The learning-rate schedule: the paper's poly decay, over iterations or a wall-time budget."""

from __future__ import annotations

import math


def poly_lr(base_lr: float, progress: float, power: float) -> float:
    """The poly schedule: ``base * (1 - progress) ** power``, progress = iteration / total."""
    return base_lr * (1.0 - min(max(progress, 0.0), 1.0)) ** power


class PolySchedule:
    """Poly decay over the run; with ``anneal_to_budget`` over the time budget as well, whichever
    ends first, so a slower machine still ends annealed."""

    def __init__(self, base_lr: float, power: float, total_iterations: int, budget_s: float = math.inf,
                 anneal_to_budget: bool = False) -> None:
        self.base_lr, self.power = base_lr, power
        self.total = total_iterations
        self.budget_s = budget_s
        self.anneal_to_budget = anneal_to_budget

    def progress(self, iteration: int, run_seconds: float) -> float:
        done = iteration / self.total
        return max(done, run_seconds / self.budget_s) if self.anneal_to_budget else done

    def lr(self, iteration: int, run_seconds: float) -> float:
        return poly_lr(self.base_lr, self.progress(iteration, run_seconds), self.power)
