"""Loading a model once: network, class map, sidecar metadata and checkpoint hash together.

Every consumer (the Segmenter, ``ddrnet-ros export``, the benchmark) asks for a model here, by
the one checkpoint vocabulary of the project: a file path, ``shipped`` (the checkpoint in the
package, the default) or ``random`` (seeded random weights, for tests and benchmarks).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ddrnet_ros.classes import ClassMap
from ddrnet_ros.model import create_model, load_checkpoint, read_metadata, read_state_dict, sha256_of
from ddrnet_ros.resources import default_checkpoint

log = logging.getLogger(__name__)

SHIPPED = "shipped"
RANDOM = "random"
#: What ``--checkpoint`` / the ``checkpoint`` parameter accept besides a file path.
CHECKPOINT_WORDS = (SHIPPED, RANDOM)
CHECKPOINT_CHOICES = f"a checkpoint file, '{SHIPPED}' (the packaged model) or '{RANDOM}' (random weights)"

#: Seed of the random weights behind ``checkpoint="random"``: every process draws the same
#: network. Unseeded, each process drew another one, and the engine time of a benchmark
#: depended on the draw (20-105 ms per 2048x1024 frame here: noisier logits send more blocks
#: through the exact border path of fast_labels).
RANDOM_WEIGHTS_SEED = 0


def checkpoint_path(checkpoint: str | Path | None) -> Path | None:
    """The file a checkpoint spec names: ``shipped``/None -> the packaged file, ``random`` -> None."""
    if checkpoint is None or str(checkpoint) == SHIPPED:
        return default_checkpoint()
    if str(checkpoint) == RANDOM:
        return None
    return Path(checkpoint)


@dataclass(frozen=True)
class LoadedModel:
    """A network ready for inference (eval mode) and what its checkpoint says about it."""

    module: nn.Module
    variant: str
    class_map: ClassMap
    metadata: dict[str, Any] = field(default_factory=dict)
    checkpoint_path: Path | None = None
    checkpoint_sha256: str | None = None

    @property
    def num_classes(self) -> int:
        return self.class_map.num_classes

    @property
    def weights_key(self) -> str:
        """What identifies these weights for caches (a quantized model): the checkpoint's sha256,
        or for in-memory and random weights a sha256 of the tensors themselves, never a shared name."""
        return self.checkpoint_sha256 or weights_fingerprint(self.module)

    @property
    def network_input_size(self) -> Any:
        """The network size the checkpoint's quality was measured at (sidecar), or None."""
        return self.metadata.get("network_input_size")


def weights_fingerprint(module: nn.Module) -> str:
    """sha256 over a module's state_dict (names, shapes and bytes), in registration order."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def resolve_class_map(class_map: ClassMap | str | Path | None, metadata: dict[str, Any], source: str) -> ClassMap:
    """An explicit class map or YAML path, else the checkpoint's own classes, else Cityscapes' 19."""
    if isinstance(class_map, ClassMap):
        return class_map
    if class_map:
        return ClassMap.load(class_map)
    if metadata.get("class_names") and metadata.get("palette"):
        return ClassMap(names=tuple(metadata["class_names"]), colors=np.asarray(metadata["palette"]),
                        ignore_label=int(metadata.get("ignore_label", 255)), source=f"{source} metadata")
    return ClassMap.load(None)


def random_model(variant: str, num_classes: int) -> nn.Module:
    """Seeded random weights; the caller's random state is left as it was."""
    log.warning("no checkpoint: %s runs with random weights (tests and benchmarks only)", variant)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        return create_model(variant, num_classes=num_classes).eval()


def load_model(variant: str, checkpoint: str | Path | None = SHIPPED, num_classes: int | None = None,
               class_map: ClassMap | str | Path | None = None) -> LoadedModel:
    """Build ``variant`` and load ``checkpoint`` into it (CheckpointError names the file and mismatches)."""
    path = checkpoint_path(checkpoint)
    if path is None:
        classes = resolve_class_map(class_map, {}, RANDOM)
        model = random_model(variant, num_classes or classes.num_classes)
        return LoadedModel(model, variant, classes)
    metadata = read_metadata(path)
    count = num_classes or metadata.get("num_classes") or _classifier_width(path)
    classes = resolve_class_map(class_map, metadata, str(path))
    model = create_model(variant, num_classes=int(count or classes.num_classes))
    load_checkpoint(model, path)
    return LoadedModel(model.eval(), variant, classes, metadata, path, sha256_of(path))


def wrap_model(model: nn.Module, variant: str, class_map: ClassMap | str | Path | None = None) -> LoadedModel:
    """An in-memory network (the trainer's, a test probe) described like a loaded one."""
    return LoadedModel(model.eval(), variant, resolve_class_map(class_map, {}, "model"))


def _classifier_width(path: Path) -> int | None:
    bias = read_state_dict(path).get("final_layer.conv2.bias")
    return int(bias.shape[0]) if bias is not None else None

