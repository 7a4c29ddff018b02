"""Validation during training: the whole validation set, scored where its labels live."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..classes import ClassMap, CoarseLabelSpace
from ..evaluation.metrics import ScoringSpace, SegmentationScores
from ..model import upsample_logits


def validate(model: nn.Module, loader: DataLoader, class_map: ClassMap, device: torch.device,
             label_space: CoarseLabelSpace | None = None) -> SegmentationScores:
    """Scores on the whole validation set: logits upsampled to each label map, then argmax;
    with a coarse ``label_space`` the predictions are mapped into it and scored there."""
    was_training = model.training
    model.eval()
    space = ScoringSpace(class_map, label_space)
    accumulator = space.accumulator()
    with torch.inference_mode():
        for images, labels in loader:
            logits = model(images.to(device))
            prediction = upsample_logits(logits, tuple(labels.shape[-2:])).argmax(1).cpu().numpy()
            for pred, truth in zip(space.prediction(prediction.astype(np.uint8)), labels.numpy()):
                accumulator.update(pred, truth)
    model.train(was_training)
    return accumulator.scores()
