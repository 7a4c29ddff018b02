"""Checkpoint I/O in the official DDRNet key layout.

Loading never unpickles arbitrary objects (``weights_only=True``) and never loads part of
a file silently: any missing key, unexpected key or shape mismatch is one clear error.
Files written here load into the official code unchanged, and official files load here.
A small JSON sidecar (``<file>.json``) carries what a state_dict cannot: variant, classes,
palette, input size, training data and measured quality.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

AUX_PREFIX = "seghead_extra."
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")
_KEY_PREFIXES = ("module.", "model.")


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be loaded into the requested model."""


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(path: str | Path) -> Path:
    return Path(str(path) + ".json")


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The checkpoint's sidecar metadata, or ``{}`` when it has none."""
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    try:
        return json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{side}: unreadable checkpoint metadata ({exc})") from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file with wrappers and ``module.``/``model.`` prefixes removed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for non-checkpoint files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} is not a loadable PyTorch checkpoint (loaded with weights_only=True): {first}"
        ) from None
    return normalize_state_dict(obj, source=str(path))


def normalize_state_dict(obj: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Unwrap ``{'state_dict': ...}``-style containers and strip DataParallel/wrapper prefixes."""
    for _ in range(3):
        if isinstance(obj, Mapping) and not _has_tensors(obj):
            inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not _has_tensors(obj):
        raise CheckpointError(f"{source} holds no state_dict (found {type(obj).__name__})")
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    changed = True
    while changed:
        changed = False
        for prefix in _KEY_PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def _has_tensors(obj: Mapping) -> bool:
    return any(isinstance(v, torch.Tensor) for v in obj.values())


def check_compatible(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> Mapping[str, torch.Tensor]:
    """The subset of ``state`` to load, or a :class:`CheckpointError` naming every mismatch.

    A training-only auxiliary head (``seghead_extra.*``) in the file is dropped when the
    model has none, as official Cityscapes checkpoints were trained with it.
    """
    expected = model.state_dict()
    if not any(k.startswith(AUX_PREFIX) for k in expected):
        state = {k: v for k, v in state.items() if not k.startswith(AUX_PREFIX)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        variant = getattr(getattr(model, "config", None), "name", type(model).__name__)
        classes = getattr(model, "num_classes", "?")
        hint = _guess(state)
        parts = [f"{source} does not fit {variant} with {classes} classes{hint}:"]
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatch(es): " + "; ".join(mismatched[:6])
                         + (" ..." if len(mismatched) > 6 else ""))
        if missing:
            parts.append(f"{len(missing)} missing key(s): " + ", ".join(missing[:6])
                         + (" ..." if len(missing) > 6 else ""))
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): " + ", ".join(unexpected[:6])
                         + (" ..." if len(unexpected) > 6 else ""))
        raise CheckpointError(" ".join(parts))
    return state


def _guess(state: Mapping[str, torch.Tensor]) -> str:
    """A hint of what the file holds: its class count and variant, where recognisable."""
    facts = []
    bias = state.get("final_layer.conv2.bias")
    if bias is not None and bias.ndim == 1:
        facts.append(f"{bias.shape[0]} classes")
    stem = state.get("conv1.0.weight")
    if stem is not None and stem.ndim == 4:
        width = stem.shape[0]
        deep = "layer3_1.0.conv1.weight" in state
        facts.append({32: "ddrnet23_slim", 64: "ddrnet39" if deep else "ddrnet23"}.get(width, f"stem width {width}"))
    return f" (the file looks like {', '.join(reversed(facts))})" if facts else ""


def load_checkpoint(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load ``path`` into ``model`` exactly (all keys, all shapes); returns the sidecar metadata."""
    state = check_compatible(model, read_state_dict(path), str(path))
    model.load_state_dict(state, strict=True)
    return read_metadata(path)


def save_checkpoint(model: nn.Module, path: str | Path, metadata: Mapping[str, Any] | None = None,
                    include_aux: bool = False) -> Path:
    """Save a plain state_dict in the official layout, plus the JSON sidecar.

    The auxiliary head is left out unless ``include_aux``, so that the file loads into the
    official inference model (augment=False) unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Contiguous copies: a model trained channels-last must still save the plain NCHW layout.
    state = {k: v.detach().cpu().contiguous(memory_format=torch.contiguous_format).clone()
             for k, v in model.state_dict().items()
             if include_aux or not k.startswith(AUX_PREFIX)}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    if metadata is not None:
        meta = dict(metadata)
        meta["sha256"] = sha256_of(path)
        sidecar_path(path).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path
