"""Validation during training: the whole validation set, scored where its labels live."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..classes import ClassMap, CoarseLabelSpace
from ..engine.postprocess import reference_logits
from ..engine.preprocess import plan_frame
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
            logits = aligned_logits(model, images.to(device))
            prediction = upsample_logits(logits, tuple(labels.shape[-2:])).argmax(1).cpu().numpy()
            for pred, truth in zip(space.prediction(prediction.astype(np.uint8)), labels.numpy()):
                accumulator.update(pred, truth)
    model.train(was_training)
    return accumulator.scores()


def aligned_logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The model's logits for ``images`` run as the engine runs them: in the engine's frame for
    their size (:func:`plan_frame`: padded at the bottom/right to multiples of 64, zeros = the mean
    colour after normalisation, where the branches align). Logits of a padded frame come back at the
    image's size through the engine's own :func:`reference_logits`."""
    height, width = images.shape[-2:]
    plan = plan_frame(height, width)
    if plan.network == plan.image:
        return model(images)
    padded = torch.nn.functional.pad(images, (0, plan.network[1] - width, 0, plan.network[0] - height))
    return reference_logits(model(padded), plan)
