"""Fixtures of the model tests: the official key/shape manifests in ../shared/ddrnet.

The manifests were written from the official DDRNet code (ydhongHIT/DDRNet). They live outside
the repository, next to it (CI has them at ../shared too); tests that need them skip, saying
where they looked, when they are absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST_DIR = REPO_ROOT.parent / "shared" / "ddrnet"
#: our variant name -> manifest file tag
MANIFEST_TAGS = {"ddrnet23_slim": "23-slim", "ddrnet23": "23", "ddrnet39": "39"}


@dataclass(frozen=True)
class Manifest:
    """One official state_dict layout: ordered (key, shape, dtype) rows plus the header's counts."""

    entries: tuple[tuple[str, tuple[int, ...], torch.dtype], ...]
    trainable_params: int
    state_dict_entries: int

    @property
    def keys(self) -> list[str]:
        return [key for key, _, _ in self.entries]

    def synthetic_state_dict(self, seed: int = 0) -> dict[str, torch.Tensor]:
        """Tensors of the manifest's shapes and dtypes, built without our model (an 'official file')."""
        generator = torch.Generator().manual_seed(seed)
        state = {}
        for key, shape, dtype in self.entries:
            if dtype.is_floating_point:
                value = torch.rand(shape, generator=generator, dtype=dtype) * 0.1
                if key.endswith("running_var"):
                    value = value + 0.5
                state[key] = value
            else:
                state[key] = torch.zeros(shape, dtype=dtype)
        return state


def _read_manifest(path: Path) -> Manifest:
    lines = path.read_text().splitlines()
    header = lines[0]
    counts = {name: int(value) for name, value in re.findall(r"(\w+)=(\d+)", header)}
    entries = []
    for line in lines[1:]:
        if not line.strip():
            continue
        key, shape, dtype = line.split("\t")
        dims = tuple(int(d) for d in shape.split(",")) if shape else ()
        entries.append((key, dims, getattr(torch, dtype)))
    return Manifest(tuple(entries), counts["trainable_params"], counts["state_dict_entries"])


@pytest.fixture(scope="session")
def official_manifest():
    """``official_manifest(variant, augment=False)`` -> :class:`Manifest`, or skip if ../shared is absent."""

    def load(variant: str, augment: bool = False) -> Manifest:
        path = MANIFEST_DIR / f"official_keys_{MANIFEST_TAGS[variant]}{'_augment' if augment else ''}.txt"
        if not path.is_file():
            pytest.skip(f"official key manifest not found at {path} (expected ../shared/ddrnet beside the repo)")
        return _read_manifest(path)

    return load
