"""Training losses of DDRNet: OHEM cross-entropy and the main + auxiliary combination.

The official DDRNet training (built on the HRNet-Seg code) upsamples the 1/8 logits to the
label size, then averages the cross-entropy only over "hard" pixels: those whose predicted
probability of the true class is below a threshold (0.7), but never fewer than ``min_kept``
pixels (the hardest ones). The auxiliary head, fed from the high-resolution branch, is
weighted 0.4 against the main head.

Datasets labelled more coarsely than the model (CamVid's "car" covers Cityscapes' car,
truck, bus and train) train through the set-valued (partial-label) form of the same loss:
a pixel labelled with the set S costs ``-log sum_{c in S} p_c``, which is the ordinary
cross-entropy when S holds one class and never pushes probability between members of S.
OHEM ranks pixels by ``sum_{c in S} p_c``, the probability of being right.

Optional class weights scale each kept pixel's loss by the weight of its label (a weighted mean
over the hard pixels): thin, rare classes (poles, signs, people) are few pixels even among the
hard ones, and mIoU averages over classes, not pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..classes import IGNORE_LABEL, TrainingLabelSets


def upsample_to(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear (align_corners=False) resize of logits to the label size; a no-op when equal."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """Half-precision logits are promoted for the softmax; float64 stays float64."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


class OhemCrossEntropy(nn.Module):
    """Cross-entropy averaged over the hard pixels only (online hard example mining).

    A pixel is hard when the softmax probability of its true class is below ``threshold``.
    When fewer than ``min_kept`` pixels are hard, the ``min_kept`` lowest-probability pixels
    are used instead, so easy batches still give a gradient. Pixels labelled
    ``ignore_label`` never count.
    """

    # buffers (with label_sets): id -> member classes as 0/1 rows, and id -> counts in the loss
    _members: torch.Tensor
    _valid: torch.Tensor
    # buffer (with class_weights): label id -> loss weight
    _label_weight: torch.Tensor

    def __init__(self, ignore_label: int = IGNORE_LABEL, threshold: float = 0.7, min_kept: int = 100_000,
                 label_sets: TrainingLabelSets | None = None,
                 class_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"OHEM threshold must be in (0, 1], got {threshold}")
        if min_kept < 0:
            raise ValueError(f"OHEM min_kept must be >= 0, got {min_kept}")
        self.ignore_label = ignore_label
        self.threshold = threshold
        self.min_kept = min_kept
        self.weighted = class_weights is not None
        if class_weights is not None:
            if min(class_weights) <= 0:
                raise ValueError(f"class weights must be > 0, got {list(class_weights)}")
            per_class = np.asarray(class_weights, np.float32)
            if label_sets is not None:
                per_label = label_sets.label_weights(per_class)
            else:  # labels are the model's own ids
                per_label = np.zeros(256, np.float32)
                per_label[: per_class.size] = per_class
            weights = torch.from_numpy(per_label)
            self.register_buffer("_label_weight", weights, persistent=False)
        self.label_sets = label_sets if label_sets is not None and label_sets.has_sets else None
        if self.label_sets is not None:
            # Ids that count nowhere get a full row: their (masked-out) loss is 0, never NaN.
            table = torch.from_numpy(self.label_sets.table | ~self.label_sets.valid[:, None]).float()
            self.register_buffer("_members", table, persistent=False)
            self.register_buffer("_valid", torch.from_numpy(self.label_sets.valid), persistent=False)

    def select(self, true_class_prob: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the pixels the loss averages over, from the true-class probabilities."""
        hard = valid & (true_class_prob < self.threshold)
        keep = min(self.min_kept, int(valid.sum()))
        if keep == 0 or int(hard.sum()) >= keep:
            return hard
        # Too few hard pixels: lower the bar to the keep-th lowest probability (ties included).
        kth = torch.kthvalue(true_class_prob[valid], keep).values
        return valid & (true_class_prob <= kth)

    def hard_pixel_mask(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Boolean mask (N, H, W) of the pixels the loss would average over (logits at label size)."""
        with torch.no_grad():
            pixel_loss, valid = self.pixel_losses(logits, labels)
            return self.select(torch.exp(-pixel_loss), valid)

    def pixel_losses(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-pixel ``-log P(label)``, mask of pixels that count), logits at label size."""
        labels = labels.long()
        log_prob = F.log_softmax(_at_least_float32(logits), dim=1)
        if self.label_sets is None:
            valid = labels != self.ignore_label
            safe_labels = torch.where(valid, labels, torch.zeros_like(labels))
            return -log_prob.gather(1, safe_labels.unsqueeze(1)).squeeze(1), valid
        # sum of member probabilities: ~2x faster here than a masked logsumexp, same values to 1e-6
        members = self._members[labels].permute(0, 3, 1, 2)  # N x C x H x W, 0/1
        in_set = (log_prob.exp() * members).sum(dim=1).clamp_min(torch.finfo(torch.float32).tiny)
        return -torch.log(in_set), self._valid[labels]

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = upsample_to(logits, labels.shape[-2:])
        # One log-softmax gives both the per-pixel loss and the true-class (or set) probability.
        pixel_loss, valid = self.pixel_losses(logits, labels)
        with torch.no_grad():
            mask = self.select(torch.exp(-pixel_loss.detach()), valid)
        if not bool(mask.any()):
            return pixel_loss.sum() * 0.0  # every pixel ignored: zero, but still part of the graph
        kept = pixel_loss[mask]
        if not self.weighted:
            return kept.mean()
        weight = self._label_weight[labels[mask].long()]  # only the kept pixels' labels are looked up
        return (kept * weight).sum() / weight.sum()


class DDRNetLoss(nn.Module):
    """``weights[0] * loss(main) + weights[1] * loss(aux)``; the paper uses (1.0, 0.4).

    Accepts either a single logits tensor (no auxiliary head) or the ``[main, aux]`` list a
    DDRNet built with ``aux=True`` returns in train mode.
    """

    def __init__(self, criterion: nn.Module | None = None, weights: Sequence[float] = (1.0, 0.4)) -> None:
        super().__init__()
        self.criterion = criterion if criterion is not None else OhemCrossEntropy()
        self.weights = tuple(float(w) for w in weights)

    def forward(self, outputs: torch.Tensor | Sequence[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            outputs = [outputs]
        if len(outputs) > len(self.weights):
            raise ValueError(f"{len(outputs)} model outputs but only {len(self.weights)} loss weights")
        total = outputs[0].new_zeros(())
        for weight, logits in zip(self.weights, outputs):
            if weight:
                total = total + weight * self.criterion(logits, labels)
        return total
