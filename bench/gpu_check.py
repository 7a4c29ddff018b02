"""``make gpu-check``: what a machine with CUDA shows before the CUDA path is trusted.

    .venv/bin/python bench/gpu_check.py                          # all of it; results in out/gpu_check/
    .venv/bin/python bench/gpu_check.py --skip-tests --iterations 20

With CUDA: prints the versions and the GPU's capability, runs ``pytest test/engine/test_cuda.py``
(parity with the CPU path), then measures ddrnet23_slim at 1024x2048 through the Segmenter for
each precision (fp32, fp16, bf16 where the GPU has it): the first frame (cuDNN autotuning and
allocator growth included) and p50/p99 of the following frames, wall time of ``segment`` and
engine time (CUDA events). Writes gpu_check.json and gpu_check.md. Exit status 1 when the CUDA
tests fail. Without CUDA: one line saying so, exit status 0 (nothing here can run on a CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ddrnet_ros.commands.common import checkpoint_argument, size_argument  # noqa: E402
from ddrnet_ros.engine.config import cuda_unavailable_reason  # noqa: E402

PRECISIONS = ("fp32", "fp16", "bf16")
CUDA_TESTS = "test/engine/test_cuda.py"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=REPO / "out" / "gpu_check", help="folder for the reports")
    parser.add_argument("--variant", default="ddrnet23_slim")
    parser.add_argument("--checkpoint", type=checkpoint_argument, default="shipped",
                        help="a file, shipped or random (the speed is the same)")
    parser.add_argument("--size", type=size_argument, default=(1024, 2048),
                        help="HEIGHTxWIDTH of the image and of the network input")
    parser.add_argument("--iterations", type=int, default=50, help="timed frames per precision")
    parser.add_argument("--warmup", type=int, default=5, help="untimed frames after the first one")
    parser.add_argument("--skip-tests", action="store_true", help=f"do not run {CUDA_TESTS}")
    return parser.parse_args(argv)


def no_cuda_line() -> str:
    """Why there is nothing to check, in one line (an empty CUDA_VISIBLE_DEVICES hides every GPU)."""
    hidden = " (CUDA_VISIBLE_DEVICES is empty)" if os.environ.get("CUDA_VISIBLE_DEVICES") == "" else ""
    return f"gpu-check: skipped, CUDA is not available here{hidden}: {cuda_unavailable_reason()}"


def native_bf16() -> bool:
    return torch.cuda.is_bf16_supported(including_emulation=False)


def environment() -> dict[str, Any]:
    """Versions and the GPU's capability: what a result depends on."""
    props = torch.cuda.get_device_properties(0)
    return {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "driver": driver_version(), "gpu": props.name,
            "gpu_count": torch.cuda.device_count(), "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1), "bf16_native": native_bf16()}


def driver_version() -> str | None:
    """The NVIDIA driver's version from nvidia-smi (torch does not report it), None if unavailable."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.split()
    return lines[0] if done.returncode == 0 and lines else None


def run_cuda_tests() -> dict[str, Any]:
    """``pytest test/engine/test_cuda.py`` in a fresh interpreter; its output is printed as it comes."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", CUDA_TESTS], cwd=REPO, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    print(done.stdout, end="", flush=True)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return {"returncode": done.returncode, "passed": done.returncode == 0, "summary": lines[-1] if lines else "",
            "seconds": round(time.perf_counter() - started, 1)}


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values)
    return {"p50": round(float(np.percentile(array, 50)), 3), "p99": round(float(np.percentile(array, 99)), 3)}


def measure(precision: str, args: argparse.Namespace, image: np.ndarray) -> dict[str, Any]:
    """First frame and steady-state latency of one precision; a refused precision is reported, not raised."""
    from ddrnet_ros.engine import EngineConfigError, Segmenter, SegmenterConfig

    height, width = image.shape[:2]
    started = time.perf_counter()
    try:
        segmenter = Segmenter(SegmenterConfig(variant=args.variant, checkpoint=args.checkpoint, device="cuda",
                                              backend="torch", precision=precision, input_size=(height, width)))
    except EngineConfigError as exc:  # bf16 on a GPU without it
        return {"precision": precision, "status": "refused", "reason": str(exc)}
    build_ms = (time.perf_counter() - started) * 1e3
    first_ms = timed(segmenter, image)[0]
    for _ in range(args.warmup):
        segmenter.segment(image)
    wall, engine = zip(*(timed(segmenter, image) for _ in range(args.iterations)), strict=True)
    del segmenter
    torch.cuda.empty_cache()
    return {"precision": precision, "status": "ok", "build_ms": round(build_ms, 1),
            "first_frame_ms": round(first_ms, 1), "wall_ms": percentiles(list(wall)),
            "engine_ms": percentiles(list(engine)), "iterations": args.iterations}


def timed(segmenter: Any, image: np.ndarray) -> tuple[float, float]:
    """(wall ms of one ``segment`` call, its engine ms); ``segment`` returns after the frame's synchronisation."""
    started = time.perf_counter()
    result = segmenter.segment(image)
    return (time.perf_counter() - started) * 1e3, float(result.inference_ms)


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown page: versions, test result, one table row per precision."""
    env, tests = report["environment"], report["tests"]
    lines = [f"# GPU check: {env['gpu']} (compute capability {env['capability']}, {env['memory_gib']} GiB)", "",
             f"torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}, driver {env['driver']}, "
             f"Python {env['python']}; native bf16: {'yes' if env['bf16_native'] else 'no'}", "",
             f"`pytest {CUDA_TESTS}`: " + ("skipped" if tests is None else
                                            f"{'passed' if tests['passed'] else 'FAILED'} ({tests['summary']})"), "",
             f"{report['variant']} at {report['size']} through `Segmenter.segment` (labels only), "
             f"{report['iterations']} frames after {report['warmup']} warm-up frames; fp32 is true fp32 (TF32 off).",
             "", "| precision | first frame ms | p50 ms | p99 ms | engine p50 ms | engine p99 ms | fps at p50 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in report["results"]:
        if row["status"] != "ok":
            lines.append(f"| {row['precision']} | refused: {row['reason']} | | | | | |")
            continue
        wall, engine = row["wall_ms"], row["engine_ms"]
        lines.append(f"| {row['precision']} | {row['first_frame_ms']:.1f} | {wall['p50']:.2f} | {wall['p99']:.2f} "
                     f"| {engine['p50']:.2f} | {engine['p99']:.2f} | {1e3 / wall['p50']:.1f} |")
    return "\n".join(lines) + "\n"


def write_reports(out: Path, report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "gpu_check.md").write_text(markdown(report))
    print(f"gpu-check: wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print(no_cuda_line())
        return 0
    from ddrnet_ros.data.synthetic import HELDOUT_SEED_START, generate_scene

    height, width = args.size
    env = environment()
    print("gpu-check: " + ", ".join(f"{key} {value}" for key, value in env.items()), flush=True)
    tests = None if args.skip_tests else run_cuda_tests()
    torch.zeros(1, device="cuda")  # the CUDA context exists before the first precision's first frame
    image = generate_scene(HELDOUT_SEED_START, height, width).image
    results = []
    for precision in PRECISIONS:  # bf16 where the GPU has none: the report shows the refusal
        results.append(measure(precision, args, image))
        print(f"gpu-check: {json.dumps(results[-1])}", flush=True)
    report = {"environment": env, "tests": tests, "variant": args.variant, "size": f"{height}x{width}",
              "checkpoint": args.checkpoint, "iterations": args.iterations, "warmup": args.warmup,
              "results": results}
    write_reports(args.out, report)
    return 0 if tests is None or tests["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
