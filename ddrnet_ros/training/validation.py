"""Validation during training: the whole validation set, scored where its labels live."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..classes import ClassMap, CoarseLabelSpace
from ..evaluation.metrics import ScoringSpace, SegmentationScores
from ..model import round_up, upsample_logits


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
    """The model's logits for ``images`` run as the engine runs them: in a frame padded at the
    bottom/right to multiples of 64 (zeros = the mean colour after normalisation), where the
    branches align. Logits of a padded frame come back upsampled and cropped to the image."""
    height, width = images.shape[-2:]
    frame = round_up(height), round_up(width)
    if frame == (height, width):
        return model(images)
    padded = torch.nn.functional.pad(images, (0, frame[1] - width, 0, frame[0] - height))
    return upsample_logits(model(padded), frame)[:, :, :height, :width]
