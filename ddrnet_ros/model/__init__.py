"""DDRNet variants and checkpoint I/O (ROS-free)."""

from .checkpoint import CheckpointError, load_checkpoint, read_metadata, read_state_dict, save_checkpoint, sha256_of
from .ddrnet import (
    ALIGNED_MULTIPLE,
    INPUT_MULTIPLE,
    OUTPUT_STRIDE,
    VARIANTS,
    DDRNet,
    create_model,
    round_up,
    upsample_logits,
)

__all__ = [
    "ALIGNED_MULTIPLE", "CheckpointError", "DDRNet", "INPUT_MULTIPLE", "OUTPUT_STRIDE", "VARIANTS", "create_model",
    "load_checkpoint", "read_metadata", "read_state_dict", "round_up", "save_checkpoint", "sha256_of",
    "upsample_logits",
]
