"""``ddrnet-ros bench``: every inference backend against plain eager PyTorch, side by side in one run.

For each variant and image size, every contender segments the same synthetic road image
(labels only, as the node's labels topic). Iterations are interleaved round-robin over the
contenders, so that load from other processes hits them all alike; each contender has its
warm-up first. Printed per contender: p50/p90 of the whole ``segment`` call (preprocess,
network, postprocess), the ratio of its p50 to plain eager's, and the share of pixels whose
label equals plain eager's.

Plain eager is the baseline the targets refer to: the model as written, fp32, no BN folding,
every class upsampled to full size before the argmax (``Segmenter(optimize=False)``).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddrnet_ros.model import VARIANTS

from .config import SegmenterConfig
from .postprocess import ImageMap, fast_labels, labels_and_confidence, reference_logits
from .segmenter import Segmenter

DEFAULT_SIZES = ("512x1024", "1024x2048")
#: The speed target of the issue: best CPU backend <= this x plain eager, for this variant and size.
TARGET = ("ddrnet23_slim", (1024, 2048), 0.5)


@dataclass
class Contender:
    name: str
    segmenter: Segmenter
    times_ms: list[float] = field(default_factory=list)
    agreement: float | None = None


@dataclass
class Row:
    variant: str
    size: tuple[int, int]
    name: str
    min_ms: float
    p50_ms: float
    p90_ms: float
    ratio: float
    agreement: float | None
    iterations: int


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HEIGHTxWIDTH, got {text!r}") from None
    if height < 8 or width < 8:
        raise argparse.ArgumentTypeError(f"size {text} is too small")
    return height, width


def available_backends() -> list[str]:
    found = ["torch"]
    for name in ("onnxruntime", "openvino"):
        try:
            __import__(name)
            found.append(name)
        except ImportError:
            pass
    return found


def make_contenders(variant: str, checkpoint: str, threads: int, backends: list[str],
                    channels_last: bool) -> list[Contender]:
    base = dict(variant=variant, checkpoint=checkpoint, device="cpu", num_threads=threads)
    # Load the weights once; every contender then gets the module itself, so that all of them
    # run the network at the measured image size (a checkpoint's recommended network size
    # would otherwise apply to the loading Segmenter alone).
    module = Segmenter(SegmenterConfig(**base)).module
    model = Segmenter(SegmenterConfig(**base), module, optimize=False)
    contenders = [Contender("eager fp32 (plain)", model)]
    for backend in backends:
        if backend == "torch":
            contenders.append(Contender("torch (BN folded)", Segmenter(SegmenterConfig(**base), model.module)))
            if channels_last:
                contenders.append(Contender("torch channels_last",
                                            Segmenter(SegmenterConfig(**base, channels_last=True), model.module)))
        else:
            contenders.append(Contender(backend, Segmenter(SegmenterConfig(**base, backend=backend), model.module)))
    return contenders


def bench_image(height: int, width: int) -> np.ndarray:
    """A synthetic road scene (large regions, like a camera image); noise if rendering fails."""
    try:
        from ddrnet_ros.data.synthetic import generate_scene

        return generate_scene(7, height, width).image
    except Exception:  # the renderer is a nicety here, not a requirement
        return np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)


def run_size(contenders: list[Contender], image: np.ndarray, iterations: int, warmup: int) -> None:
    for contender in contenders:
        contender.times_ms = []
        for _ in range(warmup):
            contender.segmenter.segment(image)
    reference = None
    for _ in range(iterations):
        for contender in contenders:
            started = time.perf_counter()
            labels = contender.segmenter.segment(image).labels
            contender.times_ms.append((time.perf_counter() - started) * 1e3)
            if reference is None:
                reference = labels
            contender.agreement = float((labels == reference).mean())


def postprocess_costs(segmenter: Segmenter, image: np.ndarray, repeats: int = 5) -> dict[str, float]:
    """Full upsample+argmax vs the border-only label shortcut, on the same logits (ms, p50)."""
    plan = segmenter.frame_plan(*image.shape[:2])
    frame = torch.zeros((1, 3, *plan.network))
    from .preprocess import fill_network_input

    fill_network_input(frame, torch.from_numpy(np.ascontiguousarray(image)), plan, "rgb")
    logits = segmenter.backend.infer(frame)
    image_map = ImageMap.build(plan)
    full, fast = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        reference, _ = labels_and_confidence(reference_logits(logits, plan), want_confidence=False)
        full.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        labels = fast_labels(logits, image_map, plan)
        fast.append((time.perf_counter() - started) * 1e3)
    cells = logits[0].argmax(0)
    border_cells = float(((cells[1:, :] != cells[:-1, :])[:, :-1] | (cells[:, 1:] != cells[:, :-1])[:-1, :])
                         .double().mean())
    return {"full_ms": float(np.median(full)), "fast_ms": float(np.median(fast)),
            "agreement": float((labels == reference).double().mean()), "border_cells": border_cells}


def summarise(variant: str, size: tuple[int, int], contenders: list[Contender]) -> list[Row]:
    base = float(np.percentile(contenders[0].times_ms, 50))
    rows = []
    for c in contenders:
        p50, p90 = float(np.percentile(c.times_ms, 50)), float(np.percentile(c.times_ms, 90))
        rows.append(Row(variant, size, c.name, min(c.times_ms), p50, p90, p50 / base, c.agreement, len(c.times_ms)))
    return rows


def print_table(rows: list[Row], post: dict[str, float] | None, out: Any = None) -> None:
    out = out or sys.stdout
    variant, (h, w) = rows[0].variant, rows[0].size
    print(f"\n{variant} at {h}x{w}: {rows[0].iterations} interleaved iterations", file=out)
    print(f"  {'backend':<22}{'p50 ms':>10}{'p90 ms':>10}{'vs eager':>10}{'min ms':>10}{'labels = eager':>16}",
          file=out)
    for r in rows:
        agree = "-" if r.agreement is None else f"{r.agreement:.4%}"
        print(f"  {r.name:<22}{r.p50_ms:>10.1f}{r.p90_ms:>10.1f}{r.ratio:>9.2f}x{r.min_ms:>10.1f}{agree:>16}", file=out)
    if post:
        print(f"  postprocess of one frame's logits: upsample all classes + argmax {post['full_ms']:.1f} ms, "
              f"border-only labels {post['fast_ms']:.1f} ms ({post['border_cells']:.1%} border cells, "
              f"labels equal {post['agreement']:.4%})", file=out)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variants", nargs="+", default=["ddrnet23_slim"], choices=sorted(VARIANTS) + ["all"],
                        help="variants to time (default ddrnet23_slim; 'all' for the three)")
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=[parse_size(s) for s in DEFAULT_SIZES],
                        help="image sizes HEIGHTxWIDTH (default 512x1024 1024x2048)")
    parser.add_argument("--backends", nargs="+", default=None, choices=["torch", "onnxruntime", "openvino"],
                        help="backends besides plain eager (default: every installed one)")
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations per contender (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per contender first (default 1)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for every backend (0: library default)")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint for ddrnet23_slim (default: the shipped one if present, else random "
                             "weights); other variants use random weights unless their own is given")
    parser.add_argument("--channels-last", action="store_true", help="also time torch with channels_last")
    parser.add_argument("--quick", action="store_true", help="ddrnet23_slim at 512x1024 only, 3 iterations")
    parser.add_argument("--json", type=Path, default=None, help="also write every number to this JSON file")


def _checkpoint_for(variant: str, given: str | None) -> str:
    from ddrnet_ros.resources import default_checkpoint

    if given is not None:
        return "" if given == "random" else given
    if variant == "ddrnet23_slim" and default_checkpoint().is_file():
        return str(default_checkpoint())
    return ""


def main(args: argparse.Namespace) -> int:
    variants = sorted(VARIANTS, key=list(VARIANTS).index) if "all" in args.variants else list(args.variants)
    sizes, iterations = list(args.sizes), args.iterations
    if args.quick:
        variants, sizes, iterations = ["ddrnet23_slim"], [(512, 1024)], min(iterations, 3)
    if iterations < 1 or args.warmup < 0:
        print("ddrnet-ros bench: error: --iterations must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 1
    backends = args.backends or available_backends()
    engine_log = logging.getLogger("ddrnet_ros.engine")
    level = engine_log.level
    engine_log.setLevel(logging.ERROR)  # random-weight warnings are expected here
    try:
        return _run(args, variants, sizes, iterations, backends)
    finally:
        engine_log.setLevel(level)


def _run(args: argparse.Namespace, variants: list[str], sizes: list[tuple[int, int]], iterations: int,
         backends: list[str]) -> int:
    print(f"ddrnet-ros bench: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads or torch.get_num_threads()} threads, backends: eager fp32 (plain), {', '.join(backends)}")
    results: list[dict[str, Any]] = []
    target_rows: list[Row] = []
    for variant in variants:
        checkpoint = _checkpoint_for(variant, args.checkpoint if variant == "ddrnet23_slim" else None)
        print(f"\n== {variant}: {'checkpoint ' + checkpoint if checkpoint else 'random weights'}")
        contenders = make_contenders(variant, checkpoint, args.threads, backends, args.channels_last)
        for size in sizes:
            image = bench_image(*size)
            run_size(contenders, image, iterations, args.warmup)
            rows = summarise(variant, size, contenders)
            post = postprocess_costs(contenders[0].segmenter, image)
            print_table(rows, post)
            results.append({"variant": variant, "size": list(size), "checkpoint": checkpoint or None,
                            "rows": [asdict(r) for r in rows], "postprocess": post})
            if (variant, size) == TARGET[:2]:
                target_rows = rows
        del contenders
    if target_rows:
        best = min(target_rows[1:], key=lambda r: r.ratio, default=None)
        if best is not None:
            verdict = "met" if best.ratio <= TARGET[2] else "NOT met"
            print(f"\ntarget (best CPU backend <= {TARGET[2]}x plain eager, {TARGET[0]} at "
                  f"{TARGET[1][0]}x{TARGET[1][1]}): {verdict}: {best.name} at {best.ratio:.2f}x "
                  f"({best.p50_ms:.0f} ms vs {target_rows[0].p50_ms:.0f} ms)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": args.threads or torch.get_num_threads(),
                                         "torch": torch.__version__, "results": results}, indent=2) + "\n")
    return 0
