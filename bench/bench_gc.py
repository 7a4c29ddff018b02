"""What Python's garbage collector costs the segmentation node, with and without ``freeze_gc``.

    .venv/bin/python bench/bench_gc.py                # shipped model, 150 frames of 2048x1024 rgb8
    .venv/bin/python bench/bench_gc.py --frames 300 --input-size 128 256

One process: a real SegmentationNode (configured and active) and a camera node over real DDS.
Prints, side by side in the same process:

* the pause of a full (generation 2) collection with the node's objects tracked and frozen,
  alternating rounds so that a CPU speed swing hits both alike;
* the collections that ran while the node served ``--frames`` frames at 10 Hz (count, longest
  and total pause per generation), first with everything tracked, then frozen as the node's
  ``freeze_gc`` does, and the longest pause of each case side by side.
"""

from __future__ import annotations

import argparse
import array
import gc
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def full_collection_ms() -> float:
    started = time.perf_counter()
    gc.collect()
    return (time.perf_counter() - started) * 1e3


class PauseRecorder:
    """gc.callbacks hook: every collection's generation and duration."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = defaultdict(list)
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append((time.perf_counter() - self._started) * 1e3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=5, help="full-collection timings per case")
    parser.add_argument("--input-size", type=int, nargs=2, default=(0, 0), metavar=("H", "W"),
                        help="network input size (0 0: the checkpoint's recommended size)")
    args = parser.parse_args()

    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from ddrnet_ros.ros.node import SegmentationNode

    rclpy.init()
    node = SegmentationNode(parameter_overrides=[Parameter("device", value="cpu"),
                                                 Parameter("input_size", value=list(args.input_size)),
                                                 Parameter("freeze_gc", value=False)])
    node.trigger_configure()
    node.trigger_activate()
    gc.collect()  # everything from start-up now sits in the oldest generation, as in a long run
    tracked = len(gc.get_objects())

    unfrozen, frozen = [], []
    for _ in range(args.rounds):
        unfrozen.append(full_collection_ms())
        gc.freeze()
        frozen.append(full_collection_ms())
        gc.unfreeze()
    p50_unfrozen, p50_frozen = statistics.median(unfrozen), statistics.median(frozen)
    print(f"objects the collector tracks after configure: {tracked}")
    print(f"full collection, median of {args.rounds}: tracked {p50_unfrozen:.1f} ms (max {max(unfrozen):.1f}), "
          f"frozen {p50_frozen:.3f} ms (max {max(frozen):.3f}); "
          f"frozen saves {p50_unfrozen - p50_frozen:.1f} ms per full collection")

    executor = MultiThreadedExecutor()
    camera = rclpy.create_node("bench_gc_camera")
    for n in (node, camera):
        executor.add_node(n)
    publisher = camera.create_publisher(Image, "camera/image_raw", 1)
    received: list[int] = []
    camera.create_subscription(Image, "segmentation/labels", lambda _msg: received.append(1), 1)
    threading.Thread(target=executor.spin, daemon=True).start()
    deadline = time.monotonic() + 10
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)

    data = array.array("B")
    data.frombytes(np.random.default_rng(0).integers(0, 255, 1024 * 2048 * 3, np.uint8).tobytes())

    def serve_frames() -> tuple[PauseRecorder, int]:
        """Publish --frames frames at 10 Hz; the collections that ran meanwhile and the labels out."""
        recorder, before = PauseRecorder(), len(received)
        gc.callbacks.append(recorder)
        for _ in range(args.frames):
            msg = Image(height=1024, width=2048, encoding="rgb8", step=2048 * 3, data=data)
            msg.header.stamp = camera.get_clock().now().to_msg()
            publisher.publish(msg)
            time.sleep(0.1)
        time.sleep(1.0)
        gc.callbacks.remove(recorder)
        return recorder, len(received) - before

    gc.collect()
    runs = {"tracked": serve_frames()}
    gc.collect()
    gc.freeze()  # what the node does at configure with freeze_gc: true
    runs["frozen"] = serve_frames()
    gc.unfreeze()

    print(f"\n{args.frames} frames at 10 Hz per case; collections while the node served them:")
    for case, (recorder, served) in runs.items():
        print(f"  {case}: {served} labels out")
        for generation in sorted(recorder.pauses):
            pauses = recorder.pauses[generation]
            print(f"    generation {generation}: {len(pauses):4d} runs, longest {max(pauses):7.2f} ms, "
                  f"total {sum(pauses):7.1f} ms")
    longest = {case: max(max(p) for p in recorder.pauses.values()) if recorder.pauses else 0.0
               for case, (recorder, _) in runs.items()}
    print(f"longest collection pause: tracked {longest['tracked']:.1f} ms, frozen {longest['frozen']:.1f} ms "
          f"(ratio {longest['tracked'] / max(longest['frozen'], 1e-3):.0f}x)")
    executor.shutdown()
    node.destroy_node()
    camera.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
