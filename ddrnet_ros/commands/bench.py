"""``ddrnet-ros bench``: every inference backend against plain eager PyTorch, side by side in one run
(see :mod:`ddrnet_ros.engine.bench`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..engine import Segmenter
from ..engine.backends import BACKENDS, available_backends
from ..engine.bench import (
    DEFAULT_SIZES,
    TARGET,
    Contender,
    Row,
    bench_image,
    make_contenders,
    postprocess_costs,
    print_camvid_scores,
    print_table,
    run_size,
    summarise,
    verdict,
)
from ..engine.loading import RANDOM, load_model
from ..model import VARIANTS
from ..resources import DEFAULT_VARIANT, default_checkpoint
from .common import checkpoint_argument, size_argument


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variants", nargs="+", default=["ddrnet23_slim"], choices=sorted(VARIANTS) + ["all"],
                        help="variants to time (default ddrnet23_slim; 'all' for the three)")
    parser.add_argument("--sizes", nargs="+", type=size_argument, default=[size_argument(s) for s in DEFAULT_SIZES],
                        help="image sizes HEIGHTxWIDTH (default 512x1024 1024x2048)")
    parser.add_argument("--backends", nargs="+", default=None, choices=list(BACKENDS),
                        help="backends besides plain eager (default: every installed one)")
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations per contender (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per contender first (default 1)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for every backend (0: library default)")
    parser.add_argument("--checkpoint", type=checkpoint_argument, default=None, metavar="PATH|shipped|random",
                        help="checkpoint for ddrnet23_slim (default: the shipped one if present, else random "
                             "weights); other variants use random weights")
    parser.add_argument("--channels-last", action="store_true", help="also time torch with channels_last")
    parser.add_argument("--precisions", nargs="+", default=None, choices=("fp32", "bf16", "int8"),
                        help="OpenVINO pipelines to time (default fp32 bf16, plus int8 where nncf is installed "
                             "or the checkpoint has a calibrated int8 model)")
    parser.add_argument("--camvid-root", default=os.environ.get("DDRNET_ROS_CAMVID") or None, metavar="DIR",
                        help="also score every pipeline of the checkpointed ddrnet23_slim on CamVid val "
                             "(11-class mIoU at the checkpoint's network size; default $DDRNET_ROS_CAMVID); "
                             "precisions are offered only within 1 point of fp32")
    parser.add_argument("--camvid-frames", type=int, default=None, metavar="N",
                        help="score on the first N CamVid val frames (default: all 101)")
    parser.add_argument("--quick", action="store_true", help="ddrnet23_slim at 512x1024 only, 3 iterations")
    parser.add_argument("--json", type=Path, default=None, help="also write every number to this JSON file")


def default_precisions() -> list[str]:
    """fp32 and bf16, and int8 where it can be calibrated (nncf installed)."""
    import importlib.util

    return ["fp32", "bf16", *(["int8"] if importlib.util.find_spec("nncf") else [])]


def _checkpoint_for(variant: str, given: str | None) -> str:
    if given is not None:
        return given
    if variant == DEFAULT_VARIANT and default_checkpoint().is_file():
        return str(default_checkpoint())
    return RANDOM


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


def _camvid_scores(variant: str, checkpoint: str, contenders: list[Contender], root: str,
                   frames: int | None) -> dict[str, Any]:
    """CamVid val mIoU of every pipeline, each run at the checkpoint's own network size (as the node
    runs it), scored with ``evaluate``'s protocol; printed against fp32 eager."""
    from ..evaluation.offline import evaluate_dataset, open_dataset

    dataset = open_dataset("camvid", root, "val")
    loaded = load_model(variant, checkpoint)
    network = loaded.metadata.get("network_input_size")
    scores: dict[str, float] = {}
    for contender in contenders:
        if contender.segmenter is None:
            continue  # the peer: network only, no labels
        config = replace(contender.segmenter.config, input_size=tuple(network) if network else None)
        segmenter = Segmenter(config, contender.segmenter.loaded, optimize=contender.segmenter.optimize)
        report = evaluate_dataset(dataset, segmenter, {}, max_frames=frames, progress=True)
        assert report.scores is not None  # a labelled dataset is always scored
        scores[contender.name] = report.scores.mean_iou
    print_camvid_scores(variant, scores, network, report.frames["scored"])
    return {"variant": variant, "network_input_size": network, "frames": report.frames["scored"], "miou": scores}


def _run(args: argparse.Namespace, variants: list[str], sizes: list[tuple[int, int]], iterations: int,
         backends: list[str]) -> int:
    print(f"ddrnet-ros bench: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads or torch.get_num_threads()} threads, backends: eager fp32 (plain), {', '.join(backends)}")
    results: list[dict[str, Any]] = []
    accuracy: list[dict[str, Any]] = []
    target_rows: list[Row] = []
    for variant in variants:
        checkpoint = _checkpoint_for(variant, args.checkpoint if variant == "ddrnet23_slim" else None)
        print(f"\n== {variant}: {'random weights' if checkpoint == RANDOM else 'checkpoint ' + checkpoint}")
        contenders: list[Contender] = []
        for size in sizes:
            # Built per size: each pipeline runs the network at the measured size, and int8 is
            # calibrated at the size it runs (once per checkpoint and size; cached).
            contenders = make_contenders(variant, checkpoint, args.threads, backends, args.channels_last,
                                         tuple(args.precisions or default_precisions()), size)
            image = bench_image(*size)
            run_size(contenders, image, iterations, args.warmup)
            rows = summarise(variant, size, contenders)
            assert contenders[0].segmenter is not None  # plain eager, the baseline
            post = postprocess_costs(contenders[0].segmenter, image)
            print_table(rows, post)
            results.append({"variant": variant, "size": list(size), "checkpoint": checkpoint,
                            "rows": [asdict(r) for r in rows], "postprocess": post})
            if (variant, size) == TARGET[:2]:
                target_rows = rows
        if args.camvid_root and checkpoint != RANDOM and contenders:
            accuracy.append(_camvid_scores(variant, checkpoint, contenders, args.camvid_root, args.camvid_frames))
        del contenders
    target_miou = next((a["miou"] for a in accuracy if a["variant"] == TARGET[0]), None)
    line = verdict(target_rows, target_miou) if target_rows else None
    if line:
        print(f"\n{TARGET[0]} at {TARGET[1][0]}x{TARGET[1][1]}: {line}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": args.threads or torch.get_num_threads(),
                                         "torch": torch.__version__, "results": results,
                                         "camvid_val": accuracy}, indent=2) + "\n")
    return 0
