"""Inference backends against plain eager PyTorch, measured side by side in one run.

    .venv/bin/python bench/bench_engine.py              # ddrnet23_slim at 512x1024 and 1024x2048
    .venv/bin/python bench/bench_engine.py --quick      # 512x1024 only, 3 iterations
    .venv/bin/python bench/bench_engine.py --variants all --iterations 10 --json out/bench_engine.json

Same as ``ddrnet-ros bench`` (ddrnet_ros/engine/bench.py). Target (issue 4): the best CPU
backend at most 0.5x plain eager fp32 time for DDRNet-23-slim at 1024x2048.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ddrnet_ros.engine import bench  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench_engine.py", description=bench.__doc__.splitlines()[0])
    bench.configure_parser(parser)
    sys.exit(bench.main(parser.parse_args()))
