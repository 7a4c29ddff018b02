"""Files shipped inside the package: the default checkpoint and the built-in class map.

This module is the one place that names the default checkpoint.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_CHECKPOINT_NAME = "ddrnet23_slim_roads.pt"
DEFAULT_VARIANT = "ddrnet23_slim"


def resource_path(name: str) -> Path:
    return Path(__file__).resolve().parent / name


def default_checkpoint() -> Path:
    """The shipped DDRNet-23-slim checkpoint: real roads (CamVid) and the synthetic scenes."""
    return resource_path(DEFAULT_CHECKPOINT_NAME)
