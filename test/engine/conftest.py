"""Engine tests: a Segmenter with num_threads > 0 sets torch's process-wide thread count; undo it."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
