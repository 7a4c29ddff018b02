"""``make gpu-check`` (bench/gpu_check.py) on a machine without CUDA: one line, exit 0, nothing written.

CUDA_VISIBLE_DEVICES="" hides every GPU, so this checks the no-CUDA path on GPU machines too.
What it does with a GPU is make gpu-check's own business (and test/engine/test_cuda.py's).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_without_cuda_gpu_check_says_so_in_one_line_and_succeeds(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--out", str(out)],
                          cwd=tmp_path, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    assert lines[0].startswith("gpu-check: skipped, CUDA is not available here")
    assert not out.exists()
