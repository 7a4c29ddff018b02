"""``ddrnet-ros demo`` (``make demo``): synthetic bag -> the node -> a scored report, with no downloads.

1. writes a synthetic drive with ground truth (held-out seeds) as a rosbag2, or with
   ``--camvid-root DIR`` (``make demo-camvid``) a real CamVid test drive (scored in CamVid's
   11 classes);
2. starts the segmentation node (``ddrnet-ros run``) with the shipped checkpoint;
3. plays the bag into it over DDS and scores the labels it publishes (``evaluate-live``);
4. writes the report with pictures and prints the headline numbers.

The node is stopped however the demo ends (error, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from pathlib import Path

from ..classes import CAMVID, ClassMap
from ..data.bags import BagError
from ..data.datasets import DatasetLayoutError
from ..data.make_bag import DEFAULT_IMAGE_TOPIC, DEFAULT_LABEL_TOPIC, write_camvid_bag, write_synthetic_bag
from ..data.synthetic import HELDOUT_SEED_START
from ..engine.loading import SHIPPED, checkpoint_path
from ..evaluation.report import write_report
from ..resources import DEFAULT_VARIANT
from ..ros.live_eval import LiveEvalError, NodeProcess, evaluate_live, node_params
from .common import add_checkpoint_argument, fail

DEFAULT_OUTPUT_DIR = Path("out/demo")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR,
                        help=f"bag, node log and report go here (default {DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--camvid-root", type=Path, default=None, metavar="DIR",
                        help="play real frames: the CamVid test split (SegNet layout) instead of a synthetic drive")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=None, help="drive seed (default: the first held-out seed)")
    parser.add_argument("--camera-hz", type=float, default=10.0, help="camera rate recorded in the bag")
    parser.add_argument("--rate", type=float, default=0.2,
                        help="playback speed factor (default 0.2: 2 frames/s, about what a 2-core CPU keeps up "
                             "with at 512x1024; 1 = real time, the node then drops frames)")
    add_checkpoint_argument(parser)
    parser.add_argument("--variant", default=None, help="default: the shipped checkpoint's variant")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--node-wait", type=float, default=180.0, metavar="S",
                        help="seconds to wait for the node to load the model and subscribe")


def main(args: argparse.Namespace) -> int:
    path = checkpoint_path(args.checkpoint)
    checkpoint = str(path) if path is not None else args.checkpoint
    if args.checkpoint == SHIPPED and path is not None and not path.exists():  # shipped: a path, never None
        return fail("demo", f"the shipped checkpoint {checkpoint} is missing from the package (an incomplete "
                               "checkout or install); restore it or pass --checkpoint")
    variant = args.variant or DEFAULT_VARIANT
    seed = HELDOUT_SEED_START if args.seed is None else args.seed
    out = args.output_dir
    bag_path, report_dir = out / "bag", out / "report"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop the node

    started = time.monotonic()
    if args.camvid_root:
        print(f"[1/4] writing the first {args.frames} CamVid test frames (real drives, 480x360) to {bag_path}",
              flush=True)
    else:
        print(f"[1/4] writing {args.frames} synthetic frames {args.width}x{args.height} (seed {seed}) to {bag_path}",
              flush=True)
    try:
        if bag_path.exists():
            shutil.rmtree(bag_path)  # the demo's own bag from an earlier run
        if args.camvid_root:
            write_camvid_bag(bag_path, args.camvid_root, "test", rate_hz=args.camera_hz, max_frames=args.frames,
                             progress=True)
        else:
            write_synthetic_bag(bag_path, args.frames, args.height, args.width, seed, rate_hz=args.camera_hz,
                                progress=True)
    except (BagError, DatasetLayoutError, ValueError, OSError) as exc:
        return fail("demo", exc)

    print(f"[2/4] starting the segmentation node ({variant}, {Path(checkpoint).name}); log: {out / 'node.log'}",
          flush=True)
    params = node_params(DEFAULT_IMAGE_TOPIC, False, checkpoint, variant, args.device, args.backend)
    node = NodeProcess(params, out / "node.log", checkpoint=checkpoint,
                       model={"backend": args.backend, "device": args.device})
    try:
        print(f"[3/4] playing the bag into the node at {args.rate:g}x ({args.camera_hz * args.rate:g} frames/s) "
              "and scoring /segmentation/labels", flush=True)
        report = evaluate_live(bag_path, DEFAULT_IMAGE_TOPIC, DEFAULT_LABEL_TOPIC, rate=args.rate,
                               class_map=ClassMap.builtin(), node_wait_s=args.node_wait, node_process=node,
                               label_space=CAMVID if args.camvid_root else None)
    except (BagError, LiveEvalError) as exc:
        return fail("demo", exc)
    finally:
        node.stop()

    print(f"[4/4] writing the report to {report_dir}", flush=True)
    path = write_report(report, report_dir)
    print()
    print(report.headline())
    print(f"report: {path.with_name('report.md')} (pictures and report.json beside it); "
          f"took {time.monotonic() - started:.0f} s")
    return 0
